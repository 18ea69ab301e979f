"""Simulating logistic regressions: the chapter's data set (R's draws) and a parameter-recovery study.

The study fits thousands of replicates of ``glm(y ~ 1 + x, binomial)`` at once with a
batched IRLS compiled by numba (no library fits many small GLMs in one call): per
replicate it follows R's ``glm.fit`` (starting values ``mu = (y + 0.5) / 2``, stop when
``|dev - dev_old| / (|dev| + 0.1) < 1e-8``, at most 25 iterations), so estimates agree
with R's. Each iteration is one fused pass over the replicate's data that computes the
new linear predictor, the deviance and the weighted sums of the next step. Standard
errors come from the Fisher information at the final estimates (R's summary uses the
weights of the iterate before, which differ by at most the size of the last step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from glmflow.constants import DOUBLE_EPS
from glmflow.elementary import exp_neg as _exp_neg
from glmflow.errors import GlmflowError
from glmflow.families import LOGIT_THRESHOLD
from glmflow.philox import cell_key, draw_logistic, scratch_sizes
from glmflow.rrandom import RRandom, plogis
from glmflow.study import Cell

MAX_ITERATIONS = 25
EPSILON = 1e-8


def simulate_logistic(n: int, b0: float, b1: float, seed: int, rng: str = "r") -> pd.DataFrame:
    """The chapter's data set: ``x ~ N(0, 1)``, ``p = inv.logit(b0 + b1 x)``, ``response ~ Bernoulli(p)``.

    ``rng = "r"`` draws exactly what R draws after ``set.seed(seed)``; ``"numpy"`` uses
    numpy's default generator.
    """
    if rng == "r":
        generator = RRandom(seed)
        x = generator.rnorm(n)
        p = plogis(b0 + b1 * x)
        response = generator.rbinom1(p)
    elif rng == "numpy":
        generator = np.random.default_rng(seed)
        x = generator.standard_normal(n)
        p = plogis(b0 + b1 * x)
        response = (generator.random(n) < p).astype(np.int64)
    else:
        raise GlmflowError(f"simulation rng {rng!r} is not 'r' or 'numpy'")
    return pd.DataFrame({"x": x, "p": p, "response": response})


# --- the study: cells, streams, batched fits -------------------------------------------


def simulate_cell(master_seed: int, cell: Cell, replicates: int, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x and y (replicates x n) of replicates ``first, ..., first + replicates - 1`` of a cell.
    Replicate r draws from its own stream (glmflow.philox): Philox4x64-10 keyed by (seed,
    cell), counter r. It depends on (seed, cell, r) alone, so adding cells or replicates, or
    splitting them differently over jobs, changes no existing draw. The study's jobs draw the
    same numbers inside the fitting kernel (``draw_and_fit``) and never hold them all."""
    length = scratch_sizes(cell.n)[0]
    x = np.empty((replicates, length))
    y = np.empty((replicates, length))
    k0, k1 = cell_key(cell.key(master_seed))
    _draw_batch(k0, k1, first, cell.b0, cell.b1, x, y)
    return np.ascontiguousarray(x[:, : cell.n]), np.ascontiguousarray(y[:, : cell.n])


@numba.njit(cache=True, error_model="numpy")
def _draw_batch(k0, k1, first, b0, b1, x, y):
    words = scratch_sizes(x.shape[1])[1]
    normal_words = np.empty(words, dtype=np.uint64)
    response_words = np.empty(words, dtype=np.uint64)
    for r in range(x.shape[0]):
        draw_logistic(k0, k1, first + r, b0, b1, x[r], y[r], normal_words, response_words)


# R's logit link (glmflow.families) beyond |eta| = LOGIT_THRESHOLD: mu is held at eps or
# 1 - eps and d mu / d eta at eps.
_EPS = DOUBLE_EPS
_MU_HIGH = 1.0 / (1.0 + _EPS)
_MU_LOW = _EPS / (1.0 + _EPS)
_VARIANCE_CLAMPED = _MU_HIGH * _MU_LOW
_W_CLAMPED = _EPS * _EPS / _VARIANCE_CLAMPED
_HALF_DEV_RIGHT = math.log1p(_EPS)  # -log(mu) of a clamped, correctly classified row
_HALF_DEV_WRONG = -math.log(_MU_LOW)
_LOG3 = math.log(3.0)
_NO_VALUE = np.finfo(np.float64).max  # x is finite
_BLOCK = 512  # rows per running product of (1 + exp(-|eta|)): at most 2^512, far from overflow

# The kernels are compiled with fastmath (sums may be reassociated, so that loops run on
# SIMD lanes) and numpy's error model (no zero-division checks, which block vectorisation).
_KERNEL = {"cache": True, "fastmath": True, "error_model": "numpy"}


@numba.njit(inline="always", **_KERNEL)
def _accumulate(s0, s1, s2, t0, t1, w, wz, xi):
    """A row's terms of the weighted sums of the next step: sum w, w x, w x^2, w z, w z x."""
    wx = w * xi
    return s0 + w, s1 + wx, s2 + wx * xi, t0 + wz, t1 + wz * xi


@numba.njit(inline="always", **_KERNEL)
def _add_block(sums, s0, s1, s2, t0, t1, linear, product):
    """A block's sums into ``sums``; its half-deviance is linear + log(product of (1 + a))."""
    sums[0] += s0
    sums[1] += s1
    sums[2] += s2
    sums[3] += t0
    sums[4] += t1
    sums[5] += linear + math.log(product)


@numba.njit(inline="always", **_KERNEL)
def _block(x, y, b0, b1, lo, hi, sums):
    """Rows lo..hi-1 of one IRLS pass at (b0, b1), when every |eta| <= 30: adds the weighted
    sums of the next step and the half-deviance to ``sums``. With the canonical logit link
    the weight is w = mu (1 - mu) = a / (1 + a)^2 for a = exp(-|eta|), w z = w eta + y - mu,
    and a row's half-deviance is log(1 + a) + max(eta, 0) - y eta."""
    s0 = s1 = s2 = t0 = t1 = linear = 0.0
    product = 1.0
    for i in range(lo, hi):
        xi, yi = x[i], y[i]
        eta = b0 + b1 * xi
        a = _exp_neg(abs(eta))
        one_plus = 1.0 + a
        inverse = 1.0 / one_plus
        mu = inverse if eta >= 0.0 else a * inverse
        w = a * inverse * inverse
        wz = w * eta + (yi - mu)
        linear += max(eta, 0.0) - yi * eta
        product *= one_plus
        s0, s1, s2, t0, t1 = _accumulate(s0, s1, s2, t0, t1, w, wz, xi)
    _add_block(sums, s0, s1, s2, t0, t1, linear, product)


@numba.njit(inline="always", **_KERNEL)
def _block_clamped(x, y, b0, b1, lo, hi, sums):
    """As ``_block``, with R's clamping for rows where |eta| > 30. Kept as a loop of its own
    on purpose: one loop with a ``clamp`` flag (even a constant one) ran the study's fits
    1.6x (n = 1000) to 1.9x (n = 100) slower, since the selects stop it vectorising."""
    s0 = s1 = s2 = t0 = t1 = linear = 0.0
    product = 1.0
    for i in range(lo, hi):
        xi, yi = x[i], y[i]
        eta = b0 + b1 * xi
        magnitude = abs(eta)
        clamped = magnitude > LOGIT_THRESHOLD
        a = _exp_neg(min(magnitude, LOGIT_THRESHOLD))
        one_plus = 1.0 + a
        inverse = 1.0 / one_plus
        mu = inverse if eta >= 0.0 else a * inverse
        mu_clamped = _MU_HIGH if eta > 0.0 else _MU_LOW
        w = _W_CLAMPED if clamped else a * inverse * inverse
        wz = (_W_CLAMPED * eta + (yi - mu_clamped) * _EPS / _VARIANCE_CLAMPED) if clamped else w * eta + (yi - mu)
        right = (eta > 0.0) == (yi > 0.5)
        clamped_half_dev = _HALF_DEV_RIGHT if right else _HALF_DEV_WRONG
        # half deviance of a row: log(1 + exp(-|eta|)) + max(eta, 0) - y eta
        linear += clamped_half_dev if clamped else max(eta, 0.0) - yi * eta
        product *= 1.0 if clamped else one_plus
        s0, s1, s2, t0, t1 = _accumulate(s0, s1, s2, t0, t1, w, wz, xi)
    _add_block(sums, s0, s1, s2, t0, t1, linear, product)


@numba.njit(**_KERNEL)
def _pass(x, y, b0, b1, x_min, x_max, sums):
    """One IRLS pass; returns the deviance at (b0, b1). eta is linear in x, so its largest
    magnitude is at x_min or x_max: most passes need no clamping and take the faster loop."""
    sums[:] = 0.0
    n = x.shape[0]
    clamp = max(abs(b0 + b1 * x_min), abs(b0 + b1 * x_max)) > LOGIT_THRESHOLD
    for lo in range(0, n, _BLOCK):
        if clamp:
            _block_clamped(x, y, b0, b1, lo, min(lo + _BLOCK, n), sums)
        else:
            _block(x, y, b0, b1, lo, min(lo + _BLOCK, n), sums)
    return 2.0 * sums[5]


@numba.njit(**_KERNEL)
def _start(x, y, sums):
    """R's start, mu = (y + 0.5) / 2: eta = +-log 3, every weight 3/16; returns the deviance."""
    s0 = s1 = s2 = t0 = t1 = dev = 0.0
    for i in range(x.shape[0]):
        mu = 0.75 if y[i] > 0.5 else 0.25
        eta = _LOG3 if y[i] > 0.5 else -_LOG3
        dev += 0.5753641449035618 if y[i] > 0.5 else 2.772588722239781  # -2 log(mu): log 4/3, log 4
        wz = 0.1875 * eta + (y[i] - mu)
        s0 += 0.1875
        s1 += 0.1875 * x[i]
        s2 += 0.1875 * x[i] * x[i]
        t0 += wz
        t1 += wz * x[i]
    sums[0] = s0
    sums[1] = s1
    sums[2] = s2
    sums[3] = t0
    sums[4] = t1
    return dev


@numba.njit(**_KERNEL)
def _fit_one(x, y, out):
    sums = np.empty(6)
    # One pass for the range of x and the exact separation check: one class only, or the
    # classes' x ranges do not overlap (complete or quasi-complete separation: no MLE).
    # Selects, not branches: on fresh draws a branch on y[i] is mispredicted half the time,
    # and this pass took 4.4 us of a replicate's 18 us at n = 1000 (0.9 us so). Finite
    # sentinels, since fastmath assumes no infinities; a class is empty when its max < min.
    max0 = max1 = -_NO_VALUE
    min0 = min1 = _NO_VALUE
    for i in range(x.shape[0]):
        xi = x[i]
        one = y[i] > 0.5
        max1 = max(max1, xi if one else -_NO_VALUE)
        min1 = min(min1, xi if one else _NO_VALUE)
        max0 = max(max0, -_NO_VALUE if one else xi)
        min0 = min(min0, _NO_VALUE if one else xi)
    x_min = min(min0, min1)
    x_max = max(max0, max1)
    one_class = max0 < min0 or max1 < min1
    out[7] = 1.0 if (one_class or max0 <= min1 or max1 <= min0) else 0.0
    dev_old = _start(x, y, sums)
    b0 = b1 = 0.0
    dev = dev_old
    converged = False
    iterations = 0
    while iterations < MAX_ITERATIONS:
        iterations += 1
        det = sums[0] * sums[2] - sums[1] * sums[1]
        b0 = (sums[2] * sums[3] - sums[1] * sums[4]) / det
        b1 = (sums[0] * sums[4] - sums[1] * sums[3]) / det
        dev = _pass(x, y, b0, b1, x_min, x_max, sums)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < EPSILON:
            converged = True
            break
        dev_old = dev
    det = sums[0] * sums[2] - sums[1] * sums[1]  # the Fisher information at the final estimates
    out[0] = b0
    out[1] = b1
    out[2] = math.sqrt(sums[2] / det)
    out[3] = math.sqrt(sums[0] / det)
    out[4] = dev
    out[5] = iterations
    out[6] = 1.0 if converged else 0.0


@numba.njit(parallel=True, **_KERNEL)
def _fit_batch(x, y, out):
    for r in numba.prange(x.shape[0]):
        _fit_one(x[r], y[r], out[r])


@dataclass
class BatchFit:
    """Per replicate: estimates, standard errors, deviance, iterations, convergence, separation."""

    coef: np.ndarray  # (R, 2): intercept, slope
    se: np.ndarray  # (R, 2)
    deviance: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    separated: np.ndarray


@numba.njit(parallel=True, **_KERNEL)
def _draw_and_fit_batch(k0, k1, first, b0, b1, n, out, workers):
    """Each worker thread reuses one set of buffers for its replicates (every workers-th):
    allocating them per replicate held 2 threads to 1.3x one."""
    length, words = scratch_sizes(n)
    for worker in numba.prange(workers):
        x = np.empty(length)
        y = np.empty(length)
        normal_words = np.empty(words, dtype=np.uint64)
        response_words = np.empty(words, dtype=np.uint64)
        for r in range(worker, out.shape[0], workers):
            draw_logistic(k0, k1, first + r, b0, b1, x, y, normal_words, response_words)
            _fit_one(x[:n], y[:n], out[r])


def draw_and_fit(master_seed: int, cell: Cell, replicates: int, first: int = 0) -> BatchFit:
    """``fit_logistic_batch(*simulate_cell(...))`` with the draws made inside the kernel, per
    replicate: the same numbers, without a pass through memory or a Python call per replicate."""
    out = np.empty((replicates, 8))
    k0, k1 = cell_key(cell.key(master_seed))
    _draw_and_fit_batch(k0, k1, first, cell.b0, cell.b1, cell.n, out, numba.get_num_threads())
    return _batch_fit(out)


def fit_logistic_batch(x: np.ndarray, y: np.ndarray) -> BatchFit:
    """``glm(y ~ 1 + x, binomial)`` for every row of ``x`` and ``y`` (replicates x n)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    out = np.empty((x.shape[0], 8))
    _fit_batch(x, y, out)
    return _batch_fit(out)


def _batch_fit(out: np.ndarray) -> BatchFit:
    return BatchFit(
        coef=out[:, 0:2],
        se=out[:, 2:4],
        deviance=out[:, 4],
        iterations=out[:, 5].astype(np.int64),
        converged=out[:, 6].astype(bool),
        separated=out[:, 7].astype(bool),
    )


# --- summarising a cell ----------------------------------------------------------------

Z_975 = 1.959963984540054
# What needs two replicates with an MLE: NaN where (nearly) every one was separated, so that every
# cell's row has the same columns (the gather, the report and the figure read them all)
UNDEFINED_WITHOUT_FITS = [
    f"{name}{suffix}"
    for name in ("mean_estimate", "bias", "rmse", "se_sd_ratio", "coverage")
    for suffix in ("", "_mcse")
]


def summarise_cell(cell: Cell, fit: BatchFit, alpha: float = 0.05) -> dict:
    """Performance of the slope's estimator in one cell, each with its Monte Carlo SE.

    Bias, RMSE, SE ratio and coverage leave out separated replicates (their MLE does not
    exist); power is given with them (as tested) and without them.
    """
    total = len(fit.separated)
    keep = ~fit.separated
    used = int(keep.sum())
    estimate, se = fit.coef[keep, 1], fit.se[keep, 1]
    rejects = np.abs(fit.coef[:, 1] / fit.se[:, 1]) > Z_975
    row: dict = {"cell": cell.label, "n": cell.n, "b0": cell.b0, "b1": cell.b1}
    row.update({"replicates": total, "used": used, "separated": total - used})
    row.update(_rate("separation_rate", total - used, total))
    row.update(_rate("nonconvergence_rate", int((~fit.converged).sum()), total))
    row.update(dict.fromkeys(UNDEFINED_WITHOUT_FITS, float("nan")))  # every replicate separated: no MLE
    if used >= 2:
        sd = float(estimate.std(ddof=1))
        errors = estimate - cell.b1
        mse = float(np.mean(errors**2))
        rmse = math.sqrt(mse)
        mse_mcse = float((errors**2).std(ddof=1)) / math.sqrt(used)
        ratio = float(se.mean()) / sd
        ratio_mcse = ratio * math.sqrt(float(se.var(ddof=1)) / (used * float(se.mean()) ** 2) + 1 / (2 * (used - 1)))
        covered = np.abs(errors) <= Z_975 * se
        row.update(
            {
                "mean_estimate": float(estimate.mean()),
                "mean_estimate_mcse": sd / math.sqrt(used),
                "bias": float(errors.mean()),
                "bias_mcse": sd / math.sqrt(used),
                "rmse": rmse,
                "rmse_mcse": mse_mcse / (2 * rmse) if rmse > 0 else 0.0,
                "se_sd_ratio": ratio,
                "se_sd_ratio_mcse": ratio_mcse,
            }
        )
        row.update(_rate("coverage", int(covered.sum()), used))
    row.update(_rate("power_all", int(rejects.sum()), total))
    row.update(_rate("power_without_separated", int(rejects[keep].sum()), used))
    return row


def gather_cells(rows: list[dict]) -> pd.DataFrame:
    """The cells' summaries (``summarise_cell``) as one table, ordered by b0, b1, n."""
    return pd.DataFrame(rows).sort_values(["b0", "b1", "n"])


def _rate(name: str, hits: int, total: int) -> dict:
    value = hits / total if total else float("nan")
    return {name: value, f"{name}_mcse": math.sqrt(value * (1 - value) / total) if total else float("nan")}


def run_cell(master_seed: int, cell: Cell, replicates: int, threads: int = 1) -> dict:
    """Simulate and fit a cell's replicates (draws inside the kernel) and summarise them."""
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return summarise_cell(cell, draw_and_fit(master_seed, cell, replicates))


# The cell glmflow.kernels runs before the study's jobs, so that numba compiles their kernels once.
KERNELS_CELL = {"seed": 1, "n": 50, "b0": 0.0, "b1": 1.0, "replicates": 4}


def compile_kernels() -> dict:
    """Run ``KERNELS_CELL`` (numba compiles what its cache lacks); returns it."""
    cell = KERNELS_CELL
    run_cell(cell["seed"], Cell(cell["n"], cell["b0"], cell["b1"]), cell["replicates"])
    return {"cell": cell}
