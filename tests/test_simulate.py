"""The simulation: R's draws bit for bit, the batched fitter against R's loop and statsmodels."""

from __future__ import annotations

import json

import numba
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import ROOT, assert_close, assert_coverage_as_rs
from scipy import stats

from glmflow.elementary import cos_sin_turn, exp_neg, log_positive
from glmflow.families import family
from glmflow.likelihood import likelihood_table
from glmflow.models import fit_model, glm_fit
from glmflow.philox import cell_key, fill_words, philox_block
from glmflow.rrandom import RRandom, plogis
from glmflow.simulate import (
    BatchFit,
    draw_and_fit,
    fit_logistic_batch,
    run_cell,
    simulate_cell,
    simulate_logistic,
    summarise_cell,
)
from glmflow.study import Cell, study_cells

DRAWS = json.loads((ROOT / "tests" / "r" / "simulation_reference.json").read_text())


def exact(values) -> np.ndarray:
    """The R script writes doubles as %.17g strings, which parse back to the same bits."""
    return np.array(values, dtype=float)


def test_chapter_draws_equal_rs(r_ref):
    reference = r_ref["simulation_seed1"]
    data = simulate_logistic(1000, 0, 1, seed=1, rng="r")
    # The chapter's reference keeps 15 significant digits; whole vectors are compared bit for bit below.
    assert_close(data["x"].head(10), reference["x_head"], 1e-14, "x head")
    assert data["response"].head(10).tolist() == reference["response_head"]
    assert int(data["response"].sum()) == reference["response_sum"] == 485


@pytest.mark.parametrize("name", ["chapter", "seed42", "seed2026_steep"])
def test_whole_data_sets_equal_rs_bit_for_bit(name):
    reference = DRAWS[name]
    data = simulate_logistic(reference["n"], reference["b0"], reference["b1"], reference["seed"], rng="r")
    assert np.array_equal(data["x"].to_numpy(), exact(reference["x"]))
    assert np.array_equal(data["p"].to_numpy(), exact(reference["p"]))
    assert data["response"].tolist() == reference["response"]


def test_runif_and_rnorm_equal_rs_bit_for_bit():
    assert np.array_equal(RRandom(7).runif(20), exact(DRAWS["runif_seed7"]))
    assert np.array_equal(RRandom(123).rnorm(20), exact(DRAWS["rnorm_seed123"]))
    assert np.array_equal(RRandom(-5).rnorm(20), exact(DRAWS["rnorm_seed_negative"]))


class ScriptedUniforms(RRandom):
    """RRandom whose uniforms are ``values`` in order (its generator's state: how many were taken)."""

    class Position:
        def __init__(self, values):
            self.values, self.state = np.asarray(values, dtype=float), 0

    def __init__(self, values):
        self._bits = self.Position(values)

    def unif_rand(self, n: int) -> np.ndarray:
        start = self._bits.state
        self._bits.state += n
        return self._bits.values[start : start + n]


def test_rbinom_for_all_rows_at_once_is_rs_loop_row_by_row():
    """rbinom1 decides every row at once: the same draws, and the same uniforms taken, as R's
    loop row by row (_one_binomial_draw), also where a uniform passes both of the loop's
    comparisons by rounding (p = 0.4315894611749433 with u just below 1: the loop draws again),
    and with no uniform for p of 0 or 1."""
    stuck = 0.4315894611749433
    prob = np.array([0.3, 0.0, stuck, 0.7, 1.0, 0.5, stuck, 0.2])
    uniforms = [0.5, np.nextafter(1.0, 0.0), 0.9, 0.1, 0.6, np.nextafter(1.0, 0.0), 0.3, 0.95, 0.4, 0.8]
    rows = ScriptedUniforms(uniforms)
    loop = ScriptedUniforms(uniforms)
    expected = [loop._one_binomial_draw(float(p)) for p in prob]
    assert rows.rbinom1(prob).tolist() == expected == [0, 0, 1, 1, 1, 1, 0, 1]
    assert rows._bits.state == loop._bits.state == 8  # two uniforms for each stuck row, none for 0 and 1
    generator = np.random.default_rng(3)
    prob = np.where(generator.uniform(size=5000) < 0.05, 1.0, generator.uniform(size=5000))
    a, b = RRandom(11), RRandom(11)
    assert a.rbinom1(prob).tolist() == [b._one_binomial_draw(float(p)) for p in prob]
    assert np.array_equal(a.unif_rand(5), b.unif_rand(5))


def test_chapter_simulation_fit_matches_r(r_ref):
    reference = r_ref["simulation_seed1"]
    data = simulate_logistic(1000, 0, 1, seed=1, rng="r")
    fit = fit_model(data, {"formula": "response ~ 1 + x", "family": "binomial"}, "simulation")
    tidy, glance = fit.tidy(), fit.glance()
    for column in ["estimate", "std_error", "statistic", "p_value"]:
        assert_close(tidy[column], reference["tidy"][column], 1e-6, column)
    for key in ["logLik", "AIC", "BIC", "deviance", "null_deviance"]:
        assert_close(glance[key], reference[key], 1e-6, key)
    assert glance["iterations"] == reference["iter"]
    table = likelihood_table(fit.design.y, fit.fitted)
    assert_close(table["p(Y = 1)"].head(10), reference["p_head"], 1e-6, "p head")
    assert_close(table["log(p(Y = response))"].sum(), reference["logLik"], 1e-6, "logLik by hand")


@pytest.mark.parametrize("name", ["seed42", "chapter"])
def test_r_glm_on_other_seeds(name):
    reference = DRAWS[name]
    data = simulate_logistic(reference["n"], reference["b0"], reference["b1"], reference["seed"], rng="r")
    fit = fit_model(data, {"formula": "response ~ 1 + x", "family": "binomial"}, name)
    assert_close(fit.coef, exact(reference["estimate"]), 1e-6, "estimate")
    assert_close(np.sqrt(np.diag(fit.vcov)), exact(reference["std_error"]), 1e-6, "se")


CELLS = [Cell(50, 0.0, 0.5), Cell(100, 0.0, 2.0), Cell(1000, 0.0, 1.0), Cell(250, -1.0, 0.5)]


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.label)
def test_batched_fits_agree_with_statsmodels_and_rs_loop(cell):
    x, y = simulate_cell(2026, cell, 40)
    batch = fit_logistic_batch(x, y)
    checked = 0
    for r in np.flatnonzero(~batch.separated)[:15]:
        design = np.column_stack([np.ones(cell.n), x[r]])
        converged = sm.GLM(y[r], design, family=sm.families.Binomial()).fit(tol=1e-13)
        assert_close(batch.coef[r], converged.params, 1e-6, f"{cell.label} replicate {r} estimate")
        assert_close(batch.se[r], converged.bse, 1e-6, f"{cell.label} replicate {r} se")
        r_loop = glm_fit(design, y[r], family("binomial"))
        assert_close(batch.coef[r], r_loop.coef, 1e-9, "estimate against R's glm.fit loop")
        assert batch.iterations[r] == r_loop.iterations
        checked += 1
    assert checked >= 10


def test_separation_is_detected_exactly():
    x = np.array([[-2.0, -1, 0, 1, 2], [-2.0, -1, 0, 1, 2], [-2.0, -1, 0, 1, 2], [-2.0, -1, 0, 1, 2]])
    y = np.array([[0.0, 0, 0, 1, 1], [0.0, 0, 1, 1, 1], [1.0, 1, 1, 1, 1], [0.0, 1, 0, 1, 1]])
    # complete, complete, one class, overlapping
    assert fit_logistic_batch(x, y).separated.tolist() == [True, True, True, False]
    quasi_x = np.array([[-1.0, 0, 0, 1]])
    assert fit_logistic_batch(quasi_x, np.array([[0.0, 0, 1, 1]])).separated.tolist() == [True]


# Two-sided 0.001 normal quantile: a sound generator and fit fail a comparison of two
# independent Monte Carlo estimates once in a thousand runs (the seeds are fixed, so never here).
Z_999 = 3.2905267314919255


def test_steep_slope_separates_as_often_as_in_rs_simulation():
    r = json.loads((ROOT / "tests" / "r" / "separation_rate_reference.json").read_text())
    replicates = 2000
    x, y = simulate_cell(2026, Cell(r["n"], float(r["b0"]), float(r["b1"])), replicates)
    rate = fit_logistic_batch(x, y).separated.mean()
    r_rate = r["separated"] / r["replicates"]
    # two independent binomial estimates of one rate: their difference's SE at the pooled rate
    pooled = (rate * replicates + r["separated"]) / (replicates + r["replicates"])
    se = np.sqrt(pooled * (1 - pooled) * (1 / replicates + 1 / r["replicates"]))
    assert abs(rate - r_rate) <= Z_999 * se, (rate, r_rate, se)


def test_replicate_streams_depend_on_seed_cell_and_replicate_only():
    cell = Cell(100, 0.0, 1.0)
    x_all, y_all = simulate_cell(2026, cell, 10)
    x_tail, y_tail = simulate_cell(2026, cell, 4, first=6)
    assert np.array_equal(x_all[6:], x_tail) and np.array_equal(y_all[6:], y_tail)
    small = {"n": [100], "b0": [0], "b1": [1]}
    large = {"n": [50, 100, 250], "b0": [0, 1], "b1": [0, 1, 2]}
    assert cell in study_cells(small) and cell in study_cells(large)
    assert not np.array_equal(simulate_cell(2027, cell, 1)[0], x_all[:1])
    assert not np.array_equal(simulate_cell(2026, Cell(100, 0.0, 2.0), 1)[0], x_all[:1])


def test_philox_is_random123s_and_numpys():
    """The study's generator: Random123's known-answer vector, and numpy's Philox word for word,
    so the stream of glmflow.philox's docstring is reproducible."""
    out = np.empty(4, dtype=np.uint64)
    zero = np.uint64(0)
    philox_block(zero, zero, zero, zero, zero, zero, out)
    assert [hex(v) for v in out] == ["0x16554d9eca36314c", "0xdb20fe9d672d0fdc", "0xd7e772cee186176b",
                                     "0x7e68b68aec7ba23b"]  # fmt: skip
    key = Cell(100, 0.0, 1.0).key(2026)
    for replicate, substream in [(0, 0), (7, 1), (123456, 0)]:
        ours = np.empty(12, dtype=np.uint64)
        fill_words(*cell_key(key), np.uint64(replicate), np.uint64(substream), ours)
        bit_generator = np.random.Philox(key=np.array(key, dtype=np.uint64), counter=[0, replicate, substream, 0])
        assert np.array_equal(ours, bit_generator.random_raw(12))


def _documented_stream(cell: Cell, replicate: int) -> tuple[np.ndarray, np.ndarray]:
    """glmflow.philox's docstring redone with numpy's Philox words and numpy's log, cos, sin."""
    key = np.array(cell.key(2026), dtype=np.uint64)
    words = (cell.n + 1) // 2

    def halves(substream):
        raw = np.random.Philox(key=key, counter=[0, replicate, substream, 0]).random_raw(words)
        return (raw >> np.uint64(32)).astype(float), (raw & np.uint64(0xFFFFFFFF)).astype(float)

    high, low = halves(0)
    radius, theta = np.sqrt(-2 * np.log((high + 1) * 2.0**-32)), 2 * np.pi * low * 2.0**-32
    x = np.column_stack([radius * np.cos(theta), radius * np.sin(theta)]).ravel()[: cell.n]
    u = np.column_stack(halves(1)).ravel()[: cell.n] * 2.0**-32
    eta = cell.b0 + cell.b1 * x
    a = np.array([exp_neg(min(abs(e), 30.0)) for e in eta])
    p = np.where(eta >= 0, 1 / (1 + a), a / (1 + a))
    return x, (u < p).astype(float)


@pytest.mark.parametrize("cell", [Cell(7, -0.5, 1.5), Cell(1000, 0.0, 1.0)], ids=lambda c: c.label)
def test_the_draws_follow_the_documented_stream(cell):
    """Box-Muller normals from substream 0's halves, a uniform per response from substream 1's:
    numpy's libm gives the same x to 1e-15 of the largest |x| (a few ulp; |x| <= 6.7) and
    the same y wherever no u_i is within 1e-12 of its p_i."""
    x, y = simulate_cell(2026, cell, 3)
    for r in range(3):
        expected_x, expected_y = _documented_stream(cell, r)
        assert np.abs(x[r] - expected_x).max() < 1e-15 * max(1.0, np.abs(expected_x).max())
        assert np.array_equal(y[r], expected_y)


def test_elementary_functions_against_libm():
    """glmflow.elementary's log (3 ulp) and cos, sin of a 32-bit turn (1.5e-15) on 10^5 random
    arguments and the edges of their reductions (quadrant and octave boundaries, 2^-32, 1)."""
    rng = np.random.default_rng(5)
    j = np.concatenate([rng.integers(0, 2**32, 100_000), [0, 1, 2**29 - 1, 2**29, 2**30, 2**31, 3 * 2**30, 2**32 - 1]])
    j = j.astype(np.uint64)
    u = np.concatenate([(j.astype(float) + 1) * 2.0**-32, [np.sqrt(0.5), np.nextafter(np.sqrt(2), 0), 0.75, 1.0]])
    logs = np.empty_like(u)
    cosines, sines = np.empty(j.size), np.empty(j.size)
    _elementary_loop(u, logs, j, cosines, sines)
    reference = np.log(u)
    assert (np.abs(logs - reference) <= 3 * np.spacing(np.abs(reference))).all()
    assert logs[u == 1.0][0] == 0.0
    theta = 2 * np.pi * j.astype(float) * 2.0**-32
    # theta itself is rounded (up to 4.4e-16 at 2 pi): the test allows that on top of 1e-15
    assert np.abs(cosines - np.cos(theta)).max() < 1.5e-15
    assert np.abs(sines - np.sin(theta)).max() < 1.5e-15
    assert cosines[j == 0][0] == 1.0 and sines[j == 0][0] == 0.0


@numba.njit
def _elementary_loop(u, logs, j, cosines, sines):
    for i in range(u.shape[0]):
        logs[i] = log_positive(u[i])
    for i in range(j.shape[0]):
        cosines[i], sines[i] = cos_sin_turn(j[i])


def test_draws_inside_the_kernel_equal_the_drawn_arrays():
    cell = Cell(100, 0.0, 1.0)
    fitted = fit_logistic_batch(*simulate_cell(2026, cell, 500, first=20))
    fused = draw_and_fit(2026, cell, 500, first=20)
    for name in BatchFit.__dataclass_fields__:
        assert np.array_equal(getattr(fitted, name), getattr(fused, name)), name


def test_cell_summary_rates_and_monte_carlo_errors():
    cell = Cell(10, 0.0, 1.0)
    fit = BatchFit(
        coef=np.array([[0, 0.5], [0, 1.5], [0, 1.0], [0, 9.0]]),
        se=np.array([[1, 0.5], [1, 0.5], [1, 0.1], [1, 1.0]]),
        deviance=np.zeros(4),
        iterations=np.array([4, 4, 4, 25]),
        converged=np.array([True, True, True, False]),
        separated=np.array([False, False, False, True]),
    )
    row = summarise_cell(cell, fit)
    assert row["used"] == 3 and row["separation_rate"] == 0.25
    assert row["bias"] == pytest.approx(0.0) and row["mean_estimate"] == pytest.approx(1.0)
    assert row["rmse"] == pytest.approx(np.sqrt((0.25 + 0.25 + 0) / 3))
    assert row["coverage"] == pytest.approx(1.0)  # |error| <= 1.96 SE for all three
    assert row["power_all"] == pytest.approx(3 / 4)  # z = 1, 3, 10, 9
    assert row["power_without_separated"] == pytest.approx(2 / 3)
    assert row["nonconvergence_rate_mcse"] == pytest.approx(np.sqrt(0.25 * 0.75 / 4))


def test_plogis_is_rs_inverse_logit():
    assert plogis(0.0) == 0.5 and plogis(np.array([800.0]))[0] == 1.0


def _recomputed_summary(cell: Cell, fit: BatchFit) -> dict:
    """The summary's columns by the formulas of Morris, White & Crowther (2019, Stat Med,
    table 6), written out from the per-replicate results; separated replicates have no MLE and
    are left out of all but power_all and the rates."""
    z = stats.norm.ppf(0.975)
    keep = ~fit.separated
    n, total = int(keep.sum()), len(keep)
    est, se = fit.coef[keep, 1], fit.se[keep, 1]
    emp_se = np.sqrt(np.sum((est - est.mean()) ** 2) / (n - 1))
    sq_err = (est - cell.b1) ** 2
    mse = sq_err.mean()
    mse_mcse = np.sqrt(np.sum((sq_err - mse) ** 2) / (n * (n - 1)))
    ratio = se.mean() / emp_se
    # delta method for mean(SE) / EmpSE: the two relative variances add; Var(EmpSE) = EmpSE^2 / (2(n - 1))
    ratio_mcse = ratio * np.sqrt(np.var(se, ddof=1) / n / se.mean() ** 2 + 1 / (2 * (n - 1)))

    def rate(name, hits, count):
        p = hits.sum() / count
        return {name: p, f"{name}_mcse": np.sqrt(p * (1 - p) / count)}

    row = {"mean_estimate": est.mean(), "mean_estimate_mcse": emp_se / np.sqrt(n), "bias": est.mean() - cell.b1,
           "bias_mcse": emp_se / np.sqrt(n), "rmse": np.sqrt(mse), "rmse_mcse": mse_mcse / (2 * np.sqrt(mse)),
           "se_sd_ratio": ratio, "se_sd_ratio_mcse": ratio_mcse}  # fmt: skip
    row.update(rate("coverage", np.abs(est - cell.b1) <= z * se, n))
    row.update(rate("power_all", np.abs(fit.coef[:, 1] / fit.se[:, 1]) > z, total))
    row.update(rate("power_without_separated", np.abs(est / se) > z, n))
    row.update(rate("separation_rate", fit.separated, total))
    row.update(rate("nonconvergence_rate", ~fit.converged, total))
    return row


def test_summary_columns_are_recomputed_from_the_replicates():
    cell = Cell(50, 0.0, 8.0)  # separated replicates to leave out
    fit = draw_and_fit(2026, cell, 2000)
    assert fit.separated.any()
    row = summarise_cell(cell, fit)
    for name, value in _recomputed_summary(cell, fit).items():
        assert row[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name


def _batch(fit: BatchFit, part: slice) -> BatchFit:
    return BatchFit(fit.coef[part], fit.se[part], fit.deviance[part], fit.iterations[part], fit.converged[part],
                    fit.separated[part])  # fmt: skip


def test_monte_carlo_ses_are_the_spread_of_independent_batches():
    """Each *_mcse predicts how much its statistic varies between independent sets of replicates:
    across K batches the statistic's SD must agree with the batches' mean MCSE. The SD of K
    normal draws has a relative SE of 1 / sqrt(2 (K - 1)), so the bound is Z_999 of those."""
    cell, batches, size = Cell(250, 0.0, 1.0), 40, 250
    fit = draw_and_fit(2026, cell, batches * size)
    rows = [summarise_cell(cell, _batch(fit, slice(k * size, (k + 1) * size))) for k in range(batches)]
    bound = Z_999 / np.sqrt(2 * (batches - 1))
    for name in ["mean_estimate", "rmse", "se_sd_ratio", "coverage"]:
        spread = np.std([row[name] for row in rows], ddof=1)
        predicted = np.mean([row[f"{name}_mcse"] for row in rows])
        assert abs(spread / predicted - 1) <= bound, (name, spread, predicted)


def test_study_coverage_agrees_with_rs_monte_carlo():
    cells = json.loads((ROOT / "tests" / "r" / "study_coverage_reference.json").read_text())["cells"]
    rows = [run_cell(2026, Cell(c["n"], float(c["b0"]), float(c["b1"])), c["replicates"]) for c in cells]
    assert_coverage_as_rs(pd.DataFrame(rows))
