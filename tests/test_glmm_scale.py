"""Mixed models at scale, on subsamples small enough for CI, against glmer at its exact optimum
and glmmTMB's SEs (tests/r/glmm_scale.R): InstEval as a binary model (its first 300 students,
8,135 rows, 999 lecturers crossed with them) and the bench's simulated crossed model with a
random slope. Both go through the sparse cross block of the general engine (term 0's levels
against a dense rest)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glmflow.bench.scale import INSTEVAL_FORMULA, SIM_FORMULA, insteval, simulated
from glmflow.glmm import fit_glmm

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "tests/reference/glmm_scale_reference.json").read_text())
SIM_CSV = ROOT / "tests/r/scale/sim_small.csv"
# Measured gaps (this engine against tight glmer and glmmTMB): -2 logLik 9.7e-5 below glmer's on
# InstEval (glmer's PIRLS and bobyqa stop short), beta within 3.7e-4 of an SE, SEs within 1e-5
# relative, theta within 2e-5 relative. Tolerances: -2 logLik at or below glmer's + 2e-4 (the
# differential test's: lme4's value at its estimates and an independent Laplace recomputation
# differ by up to 1.4e-4), and about 5x the measured gaps for beta, SEs and theta.
LOGLIK_SLACK = 2e-4
BETA_IN_SE = 2e-3
SE_RELATIVE = 1e-4
THETA_RELATIVE = 1e-4


def test_the_simulated_subsample_is_the_generators():
    written = simulated(400, 60, 20).to_csv(index=False, float_format="%.17g", lineterminator="\n")
    assert written == SIM_CSV.read_text()


def _data(name: str) -> pd.DataFrame:
    if name == "insteval_binary":
        data = insteval()
        return data[data["s"].astype(int) <= 300].reset_index(drop=True)
    return simulated(400, 60, 20)


@pytest.mark.parametrize("name", ["insteval_binary", "sim_slope"])
def test_the_scale_models_match_glmer_and_glmmtmb(name):
    formula = INSTEVAL_FORMULA if name == "insteval_binary" else SIM_FORMULA
    reference = REFERENCE[name]
    fit = fit_glmm(_data(name), {"formula": formula, "family": "binomial", "dataset": name}, name)
    assert len(fit.eta) == reference["n"]
    assert [t.n_levels for t in fit.glmm_design.terms] == sorted(reference["levels"].values(), reverse=True)
    minus2 = -2 * fit.loglik
    assert minus2 <= reference["minus2loglik"] + LOGLIK_SLACK
    assert minus2 >= reference["minus2loglik"] - 1e-2  # not a different, lower model
    se = np.sqrt(np.diag(fit.vcov))
    np.testing.assert_array_less(np.abs(fit.beta - reference["beta"]), BETA_IN_SE * np.asarray(reference["se"]))
    np.testing.assert_allclose(se, reference["se"], rtol=SE_RELATIVE)
    np.testing.assert_allclose(fit.theta, reference["theta"], rtol=THETA_RELATIVE)


@pytest.mark.parametrize(
    "formula",
    ["y ~ 1 + x + (1 | subject) + (1 | item)", SIM_FORMULA, "y ~ 1 + x + (1 + x + x2 | subject) + (1 | item)"],
)
def test_the_factor_is_the_same_tile_by_tile(formula):
    """L21 L21' summed tile by tile of the dense block (7 columns a tile: 9 tiles of the 60
    items) gives the factor and the deviance of one tile to the last bit, for k0 = 1, 2 and 3;
    and each tile's entries are those of its columns."""
    from glmflow.families import family as glm_family
    from glmflow.glmm.design import build_glmm_design
    from glmflow.glmm.deviance import LaplaceDeviance
    from glmflow.glmm.pirls import cross_pattern

    data = simulated(400, 60, 20)
    data["x2"] = data["x"] ** 2 - 1.0
    gd = build_glmm_design(formula, data, "sim")
    objective = LaplaceDeviance(gd, glm_family("binomial"))
    params = np.concatenate([gd.theta_start() * 0.8, [-0.4, 0.8]])
    assert objective.ptr.shape[1] == 2  # one tile: 60 items, TILE 256
    whole, state = objective._evaluate(params)
    values, index = objective._rows(params[: objective.n_theta])
    q0 = objective.levels0 * objective.k0
    ptr, rows, _ = cross_pattern(index, objective.k0, q0, objective.q_rest, objective.levels0, tile=7)
    assert ptr.shape == (400, 10) and np.array_equal(ptr[:, [0, -1]], objective.ptr)
    for t in range(9):
        inside = np.concatenate([rows[ptr[j, t] : ptr[j, t + 1]] for j in range(400)])
        assert inside.size and np.all((inside >= 7 * t) & (inside < 7 * t + 7))
    objective.ptr = ptr
    objective.u[:] = 0.0
    tiled, tiled_state = objective._evaluate(params)
    assert tiled == whole
    for a, b in zip(state[2:5], tiled_state[2:5], strict=True):
        assert np.array_equal(a, b)


def complete_crossing(subjects: int = 30, items: int = 8) -> pd.DataFrame:
    """Every subject meets every item once (as VerbAgg's 316 x 24): a complete cross block."""
    rng = np.random.default_rng(20261201)
    data = pd.DataFrame({"subject": np.repeat(np.arange(subjects), items), "item": np.tile(np.arange(items), subjects)})
    data["x"] = rng.normal(size=len(data))
    effects = rng.normal(size=subjects)[data["subject"]] + rng.normal(size=items)[data["item"]]
    data["y"] = (rng.random(len(data)) < 1 / (1 + np.exp(-(0.3 + 0.8 * data["x"] + effects)))).astype(float)
    return data.astype({"subject": "category", "item": "category"})


@pytest.mark.parametrize(
    "formula",
    ["y ~ 1 + x + (1 | subject) + (1 | item)", SIM_FORMULA, "y ~ 1 + x + (1 + x + x2 | subject) + (1 | item)"],
)
def test_a_complete_crossing_gives_the_cross_products_of_the_index_lists(formula):
    """Where every subject meets every item, L21 L21' runs in dense loops without the index
    lists: the same lower triangle as the sum through them, bit for bit for k0 = 1, to rounding
    for k0 = 2 and 3 (their terms summed in another order)."""
    from glmflow.families import family as glm_family
    from glmflow.glmm.design import build_glmm_design
    from glmflow.glmm.deviance import LaplaceDeviance
    from glmflow.glmm.pirls import _subtract_complete_cross_products, _subtract_cross_products

    data = complete_crossing()
    data["x2"] = data["x"] ** 2 - 1.0
    gd = build_glmm_design(formula, data, "complete")
    objective = LaplaceDeviance(gd, glm_family("binomial"))
    assert len(objective.rows) == objective.levels0 * objective.q_rest
    _, state = objective._evaluate(np.concatenate([gd.theta_start() * 0.8, [-0.4, 0.8]]))
    L21, q_rest = state[3], objective.q_rest
    by_levels, by_dense = np.eye(q_rest) * 50.0, np.eye(q_rest) * 50.0
    _subtract_cross_products(L21, by_levels, objective.k0, objective.ptr, objective.rows)
    _subtract_complete_cross_products(L21, by_dense, objective.k0)
    assert not np.allclose(np.tril(by_levels), np.eye(q_rest) * 50.0)  # the products are not all 0
    np.testing.assert_allclose(np.tril(by_dense), np.tril(by_levels), rtol=1e-13, atol=1e-12)
    assert objective.k0 > 1 or np.array_equal(np.tril(by_dense), np.tril(by_levels))


@pytest.mark.parametrize(
    "formula", ["y ~ 1 + x + (1 | subject) + (1 | item)", "y ~ x + (1 | subject) + (0 + x | item)"]
)
def test_the_logit_assembly_for_scalar_terms_is_the_general_one(formula):
    """0/1 data, the logit link and a scalar term 0 take _assemble_logit_scalar: H's blocks and
    the right-hand side as the general loop gives them (which prior weights a rounding away
    from 1 select), and -2 log p + |u|^2 to 1e-13."""
    from glmflow.families import family as glm_family
    from glmflow.glmm.design import build_glmm_design
    from glmflow.glmm.deviance import LaplaceDeviance
    from glmflow.glmm.pirls import _assemble

    gd = build_glmm_design(formula, complete_crossing(), "complete")
    objective = LaplaceDeviance(gd, glm_family("binomial"))
    values, index = objective._rows(np.array([0.9, 0.7]))
    eta0 = objective._eta0(np.array([-0.4, 0.8]))
    u = np.sin(np.arange(objective.q))  # modes of both signs
    results = []
    for prior in (np.ones(len(eta0)), np.full(len(eta0), 1.0 + 2.0**-52)):
        q_rest = objective.q_rest
        blocks = (np.empty((objective.levels0, 1, 1)), np.empty((len(objective.rows), 1)),
                  np.empty((q_rest, q_rest)), np.empty(objective.q), np.empty(len(eta0)))  # fmt: skip
        minus2 = _assemble(objective.family_code, objective.link_code, objective.y, prior, objective.constant, eta0,
                           values, index, objective.pos, 1, objective.levels0, u, *blocks)  # fmt: skip
        results.append((minus2, blocks))
    (special, ours), (general, theirs) = results
    assert special == pytest.approx(general, rel=1e-13) and special != general  # two paths
    for a, b in zip(ours, theirs, strict=True):
        lower = np.tril(a) if a.ndim == 2 and a.shape[0] == a.shape[1] else a
        np.testing.assert_allclose(lower, np.tril(b) if lower is not a else b, rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    "family, formula",
    [("binomial", "y ~ 1 + x + (1 | subject) + (1 | item)"), ("binomial", SIM_FORMULA),
     ("poisson", "y ~ 1 + x + (1 | subject) + (0 + x | item)")],
)  # fmt: skip
def test_the_analytic_gradient_matches_differences(family, formula):
    """The general engine's analytic gradient (``laplace_gradient``: scalar term 0 and random
    slopes, logit binomial and log Poisson) against central differences of the deviance, each
    PIRLS to a step below 1e-10, on a complete crossing."""
    from glmflow.families import family as glm_family
    from glmflow.glmm.design import build_glmm_design
    from glmflow.glmm.deviance import LaplaceDeviance

    data = complete_crossing()
    if family == "poisson":
        data["y"] = np.round(np.exp(0.3 * data["x"]) * (1 + data["y"] * 2))
    gd = build_glmm_design(formula, data, "complete")
    objective = LaplaceDeviance(gd, glm_family(family))
    params = np.concatenate([gd.theta_start() * 0.8 + 0.05 * np.arange(gd.n_theta), [-0.4, 0.3]])
    _, gradient = objective.value_and_gradient(params)

    def deviance(x):
        return objective._evaluate(x, accept=0.0)[0]

    # a step of 1e-4: differences off by 1e-5 at 1e-3 (their O(h^2)), by 1e-6 at 1e-5 (the
    # deviance's rounding over the step); measured at 1e-4: 1.4e-7 at most, on gradients of 1-50
    step = 1e-4
    numeric = np.array([(deviance(params + step * e) - deviance(params - step * e)) / (2 * step)
                        for e in np.eye(len(params))])  # fmt: skip
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)


def test_a_far_start_keeps_the_effects():
    """Where a factor's diagonal entry changes sign (canonical_theta's flip after BFGS), PIRLS
    starts from the effects b_j = T u_j kept, which are then the modes exactly: no PIRLS step,
    the same deviance; where the first-order prediction would move a mode by more than
    PREDICTION_LIMIT (theta five times as large), it starts from them too."""
    from glmflow.families import family as glm_family
    from glmflow.glmm.design import build_glmm_design
    from glmflow.glmm.deviance import PREDICTION_LIMIT, LaplaceDeviance

    gd = build_glmm_design(SIM_FORMULA, complete_crossing(), "complete")
    objective = LaplaceDeviance(gd, glm_family("binomial"))
    params = np.array([0.9, 0.2, 0.4, 0.7, -0.4, 0.8])  # subject's factor [0.9 0; 0.2 0.4], item's 0.7
    deviance, _ = objective._evaluate(params, accept=0.0)
    modes = objective.u.copy()
    flipped = params * np.array([-1.0, -1.0, 1.0, 1.0, 1.0, 1.0])  # the subject factor's first column
    values, index = objective._rows(flipped[:4])
    objective._predict_modes(flipped[:4], values, index, objective._eta0(flipped[4:]))
    expected = modes.copy()
    expected[0 : 2 * 30 : 2] *= -1.0  # each subject's first u
    np.testing.assert_allclose(objective.u, expected, rtol=0, atol=1e-15)
    assert objective._evaluate(flipped, accept=0.0)[0] == pytest.approx(deviance, rel=1e-14)

    objective._evaluate(params, accept=0.0)
    far = np.concatenate([params[:4] * 5.0, params[4:]])
    values, index = objective._rows(far[:4])
    eta0 = objective._eta0(far[4:])
    last = objective._last
    prediction = predicted_start(objective, values, index, eta0)
    assert np.max(np.abs(prediction - modes)) > PREDICTION_LIMIT
    objective._predict_modes(far[:4], values, index, eta0)
    effects = [objective.u[:60].reshape(30, 2) @ T.T for T in gd.factors(far[:4])[:1]]
    kept = [modes[:60].reshape(30, 2) @ T.T for T in gd.factors(params[:4])[:1]]
    np.testing.assert_allclose(effects[0], kept[0], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(objective.u[60:] * 3.5, modes[60:] * 0.7, rtol=1e-13, atol=1e-15)
    assert objective._last is last


def predicted_start(objective, values, index, eta0):
    """predicted_modes' first-order start from the last evaluation, as _predict_modes computes it."""
    from glmflow.glmm.pirls import predicted_modes

    _, last_values, last_eta0, L0, L21, L22, eta, u = objective._last
    return predicted_modes(
        objective.family_code, objective.link_code, objective.y, objective.prior, objective.constant, eta,
        last_values, values, index, eta0 - last_eta0, u, L0, L21, L22, objective.k0, objective.ptr, objective.rows,
    )  # fmt: skip


@pytest.mark.parametrize("crossing", ["sparse", "complete"])
def test_the_selected_inverse_is_the_dense_inverse_on_the_pattern(crossing):
    """H^-1's pieces from the block factor (term 0's diagonal blocks, the cross block on its
    pattern, the dense rest) against the inverse of H rebuilt dense from that factor: on the
    simulated subsample (a random slope: 2 x 2 blocks, subjects crossed with some items), and on
    a complete crossing (every subject with every item), which runs without the index lists."""
    from glmflow.families import family as glm_family
    from glmflow.glmm.design import build_glmm_design
    from glmflow.glmm.deviance import LaplaceDeviance
    from glmflow.glmm.pirls import inverse_pieces

    data = simulated(400, 60, 20) if crossing == "sparse" else complete_crossing()
    gd = build_glmm_design(SIM_FORMULA, data, "sim")
    objective = LaplaceDeviance(gd, glm_family("binomial"))
    complete = len(objective.rows) == objective.levels0 * objective.q_rest
    assert complete == (crossing == "complete")
    _, state = objective._evaluate(np.array([0.9, 0.2, 0.4, 0.7, -0.4, 0.8]))
    L0, L21, L22 = state[2:5]
    k0, ptr, rows = objective.k0, objective.ptr, objective.rows
    q0, q = L0.shape[0] * k0, objective.q
    L = np.zeros((q, q))
    for j in range(L0.shape[0]):
        L[j * k0 : (j + 1) * k0, j * k0 : (j + 1) * k0] = np.tril(L0[j])
        for p in range(ptr[j, 0], ptr[j, -1]):
            L[q0 + rows[p], j * k0 : (j + 1) * k0] = L21[p]
    L[q0:, q0:] = np.tril(L22)
    dense = np.linalg.inv(L @ L.T)
    P0, P10, P11 = inverse_pieces(L0, L21, L22, k0, ptr, rows)
    blocks = np.stack([dense[j * k0 : (j + 1) * k0, j * k0 : (j + 1) * k0] for j in range(L0.shape[0])])
    np.testing.assert_allclose(P0, blocks, rtol=1e-10, atol=1e-13)
    cross = np.array([dense[q0 + rows[p], j * k0 : (j + 1) * k0] for j in range(L0.shape[0])
                      for p in range(ptr[j, 0], ptr[j, -1])])  # fmt: skip
    np.testing.assert_allclose(P10, cross, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(P11, dense[q0:, q0:], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("n", [1, 192, 193, 450, 1000])
def test_the_dense_blocks_inverse_by_halves_is_the_inverse(n):
    """The dense block's triangular inverse, by halves above TRIANGULAR_LEAF (192) and LAPACK's
    trtri at or below it, against numpy's inverse; and P11 unmirrored keeps the same lower
    triangle as mirrored."""
    from glmflow.glmm.pirls import _upper_inverse, inverse_pieces

    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, n))
    L22 = np.linalg.cholesky(A @ A.T + n * np.eye(n))
    X = _upper_inverse(L22.T)
    np.testing.assert_allclose(np.triu(X), np.linalg.inv(L22.T), rtol=1e-10, atol=1e-14)
    no_levels = np.zeros((0, 2), dtype=np.int64)  # cross_pattern's ptr: no level, one tile
    empty = (np.zeros((0, 1, 1)), np.zeros((0, 1)), L22, 1, no_levels, np.zeros(0, dtype=np.int64))
    mirrored, unmirrored = inverse_pieces(*empty)[2], inverse_pieces(*empty, mirror=False)[2]
    np.testing.assert_allclose(mirrored, np.linalg.inv(L22 @ L22.T), rtol=1e-9, atol=1e-14)
    assert np.array_equal(np.tril(mirrored), np.tril(unmirrored))
    singular = L22.T.copy(order="F")
    singular[n // 2, n // 2] = 0.0
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        _upper_inverse(singular)


def test_bfgs_stops_at_the_deviances_rounding_with_its_hessian():
    """BFGS's callback ends the search once an iteration gains less than BFGS_FTOL relative (the
    deviance's rounding), and scipy then still returns BFGS's inverse Hessian, which the Newton
    steps after it use. A smooth function of minimum 9e4 (InstEval's scale), curvatures 1 to
    1000, with noise of 1e-9 in its value (the rounding of a sum over rows): unstopped, BFGS's
    line searches chase the noise to reach a gradient of 1e-6 (95 calls, "precision loss");
    stopped, it ends as near the minimum in a fifth of them."""
    from scipy import optimize

    from glmflow.glmm.optimize import _stop_at_rounding

    curvature = np.array([1.0, 30.0, 1000.0])

    def value_and_gradient(x):
        d, noise = x - 1.0, 1e-9 * np.sin(1e7 * np.sum(x * [1.0, 2.0, 3.0]))
        return 9e4 + np.sum(curvature * (np.cosh(d) - 1.0 + d**4)) + noise, curvature * (np.sinh(d) + 4.0 * d**3)

    def search(callback):
        return optimize.minimize(value_and_gradient, np.zeros(3), jac=True, method="BFGS", callback=callback,
                                 options={"gtol": 1e-6})  # fmt: skip

    unstopped, stopped = search(None), search(_stop_at_rounding())
    assert not unstopped.success and "StopIteration" in stopped.message
    assert 2 * stopped.nfev < unstopped.nfev
    assert stopped.hess_inv.shape == (3, 3) and np.all(np.linalg.eigvalsh(stopped.hess_inv) > 0)
    np.testing.assert_allclose(stopped.x, 1.0, atol=1e-4)
    np.testing.assert_allclose(unstopped.x, 1.0, atol=1e-4)  # no nearer for its extra calls


@pytest.mark.parametrize("step", [1e-2, 1e-3])
def test_pirls_start_is_the_modes_to_first_order(step):
    """_predict_modes' start at (theta, beta) + d, from the modes and factor at (theta, beta),
    is off the new modes by O(|d|^2) (the implicit function theorem), where the last modes are
    off by O(|d|): on the simulated subsample with a random slope, crossed, every parameter moved."""
    from glmflow.families import family as glm_family
    from glmflow.glmm.design import build_glmm_design
    from glmflow.glmm.deviance import LaplaceDeviance

    gd = build_glmm_design(SIM_FORMULA, simulated(400, 60, 20), "sim")
    objective = LaplaceDeviance(gd, glm_family("binomial"))
    params = np.array([0.9, 0.2, 0.4, 0.7, -0.4, 0.8])
    moved = params + step * np.array([1.0, -1.0, 0.5, 1.0, -0.5, 1.0])
    objective._evaluate(moved, accept=0.0)
    exact = objective.u.copy()
    objective._last = None
    objective._evaluate(params, accept=0.0)
    last = objective.u.copy()
    values, index = objective._rows(moved[: objective.n_theta])
    objective._predict_modes(moved[: objective.n_theta], values, index, objective._eta0(moved[objective.n_theta :]))
    last_error = np.max(np.abs(last - exact))
    predicted_error = np.max(np.abs(objective.u - exact))
    assert last_error > step / 10  # the modes do move with the parameters
    # measured: 1.3 step * last_error at both steps (0.028 -> 3.6e-4; 2.8e-3 -> 3.7e-6)
    assert predicted_error < 5 * step * last_error  # second order: O(step) of the first-order error
