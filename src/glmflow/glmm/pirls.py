"""Compiled kernels of the general Laplace deviance (lme4's ``pwrssUpdate`` and ``laplace``):
PIRLS for the spherical random effects u at fixed (theta, beta), and the block Cholesky
factor of ``H = Lambda' Z' W Z Lambda + I`` that both the Newton steps and log|H| use.

Layout (see ``glmflow.glmm.design``): the random-effect terms are sorted by decreasing number
of levels, as lme4 sorts them. Term 0's part of H is block diagonal (one k0 x k0 block per
level: the levels of one factor never share a row); everything else (the other terms, q_rest
columns) is kept dense, with the cross block A21 (q_rest x q0). The factor is

    L = [L0 0; L21 L22],  L0 = chol of each block,  L21 = A21 L0^-T,  L22 = chol(A22 - L21 L21')

a fill-reducing order computed once for these designs: for crossed factors (316 respondents
x 24 items) it costs one pass over the rows plus O(q_rest^2 q0) flops, for one factor with
random slopes O(q0 k0^3). L21 is kept on A21's pattern (``cross_pattern``); where that pattern
is complete (every level of term 0 meets every other column, as VerbAgg's respondents meet
every item), L21 L21' and the selected inverse's -P11 N run as dense loops, without the lists.
Families (``FAMILY_*``) and links (``LINK_*``) are integer codes; the links are R's,
thresholds included (make.link's C code).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.linalg

from glmflow.compiled_links import (
    FAMILY_BINOMIAL,
    FAMILY_GAMMA,
    FAMILY_GAUSSIAN,
    FAMILY_POISSON,
    LINK_LOGIT,
    LOGIT_THRESHOLD,
    mean_and_slope,
)

_KERNEL = {"cache": True, "error_model": "numpy"}


@numba.njit(inline="always", **_KERNEL)
def _logit_mean(eta):
    """The logit's mean 1 / (1 + exp(-eta)) from a = exp(-|eta|), which cannot overflow:
    (mu, a). Every kernel takes mu from here, so that they agree to the last bit."""
    a = math.exp(-abs(eta))
    inverse = 1.0 / (1.0 + a)
    return (inverse if eta >= 0.0 else a * inverse), a


@numba.njit(inline="always", **_KERNEL)
def _logit_terms(y, eta, constant, i, minus2, product):
    """Row i of 0/1 data with the logit link and unit weight: (weight, score, minus2, product)
    with -2 log p added to the running ``minus2``. log p = y eta - max(eta, 0) - log(1 + a),
    a = exp(-|eta|); the logs of (1 + a) are taken of running products of 512 rows (at most
    2^512), one log per block instead of one per row."""
    # the products' logs: a third of the assembly's time on verbagg before them
    mu, a = _logit_mean(eta)
    minus2 -= 2.0 * (y * eta - max(eta, 0.0) + constant)
    product *= 1.0 + a
    if i % 512 == 511:
        minus2 += 2.0 * math.log(product)
        product = 1.0
    return mu * (1.0 - mu), y - mu, minus2, product


@numba.njit(inline="always", **_KERNEL)
def _row(family, link, y, eta, prior, constant):
    """Per row: the Fisher weight prior mu_eta^2 / V, the working score prior (y - mu) mu_eta / V
    and log p(y | eta) (R's family$aic counts it)."""
    if family == FAMILY_BINOMIAL and link == LINK_LOGIT and -LOGIT_THRESHOLD <= eta <= LOGIT_THRESHOLD:
        # canonical logit: one exp gives mu, the weight and log p; R's make.link("logit") clamps
        # only beyond |eta| = 30
        mu, a = _logit_mean(eta)
        logp = prior * (y * eta - max(eta, 0.0) - math.log1p(a)) + constant
        return prior * mu * (1.0 - mu), prior * (y - mu), logp
    mu, mu_eta = mean_and_slope(link, eta)
    if family == FAMILY_BINOMIAL:
        variance = mu * (1.0 - mu)
        logp = constant
        if y > 0.0:
            logp += prior * y * math.log(mu)
        if y < 1.0:
            logp += prior * (1.0 - y) * math.log1p(-mu)
    elif family == FAMILY_POISSON:
        variance = mu
        logp = constant - prior * mu
        if y > 0.0:
            logp += prior * y * math.log(mu)
    else:
        # Families with a dispersion: lme4's PIRLS minimises the deviance + |u|^2 (the
        # dispersion taken as 1), so "log p" here is -deviance residual / 2; the Laplace
        # objective's aic() term is added outside (glmflow.glmm.deviance). A mean out of the
        # family's range is NaN: PIRLS then halves its step.
        if family == FAMILY_GAUSSIAN:
            variance = 1.0
            logp = -0.5 * prior * (y - mu) * (y - mu)
        elif not mu > 0.0:
            return math.nan, math.nan, math.nan
        elif family == FAMILY_GAMMA:
            variance = mu * mu
            logp = prior * ((math.log(y / mu) if y > 0.0 else 0.0) - (y - mu) / mu)
        else:  # inverse.gaussian
            variance = mu * mu * mu
            logp = -0.5 * prior * (y - mu) * (y - mu) / (y * mu * mu)
    return prior * mu_eta * mu_eta / variance, prior * (y - mu) * mu_eta / variance, logp


@numba.njit(inline="always", **_KERNEL)
def _weight_and_score(family, link, y, eta, prior, constant):
    """``_row``'s weight and score without log p (the logit's log1p is half a row's cost)."""
    # verbagg: predicted_modes 0.25 -> 0.155 ms
    if family == FAMILY_BINOMIAL and link == LINK_LOGIT and -LOGIT_THRESHOLD <= eta <= LOGIT_THRESHOLD:
        mu, _ = _logit_mean(eta)
        return prior * mu * (1.0 - mu), prior * (y - mu)
    w, score, _ = _row(family, link, y, eta, prior, constant)
    return w, score


@numba.njit(**_KERNEL)
def effective_values(Zv, Tmats, k, col):
    """Z Lambda row by row: each row's values (n x K), which multiply u at ``row_index``'s."""
    n, K = Zv.shape
    values = np.zeros((n, K))
    for i in range(n):
        for t in range(k.shape[0]):
            base = col[t]
            for c in range(k[t]):
                total = 0.0
                for m in range(c, k[t]):
                    total += Zv[i, base + m] * Tmats[t, m, c]
                values[i, base + c] = total
    return values


def row_index(codes: np.ndarray, k: np.ndarray, uoff: np.ndarray) -> np.ndarray:
    """The index of u that each of a row's values multiplies (n x K): term t's column c of
    level j is u[uoff[t] + j k[t] + c], whatever theta."""
    columns = [uoff[t] + codes[:, t] * k[t] + c for t in range(len(k)) for c in range(k[t])]
    return np.ascontiguousarray(np.column_stack(columns).astype(np.int64))


# the dense block's columns per tile of the cross products (L21 L21' is summed tile by tile of
# its lower triangle, 512 KB each, which stay in this machine's 2 MB L2 cache): on the simulated
# model's 10^6 rows (5 * 10^7 pairs into a 1,000 x 1,000 block) 0.26 s -> 0.10 s a
# factorisation; tiles of 128 took 0.11 s, 512 0.24 s, 64 0.28 s. On numba's two threads the
# tiles went only 0.10 -> 0.08 s (the scattered updates share the memory system), for 3 s more
# compiling in every first run: serial
TILE = 256


def cross_pattern(index: np.ndarray, k0: int, q0: int, q_rest: int, levels0: int, tile: int = TILE):
    """The pattern of H's cross block, fixed by the design (not by theta): the (other term's
    column r, term 0's level j) pairs that share a row. Returns ``ptr`` (levels0 x tiles + 1)
    and ``rows`` (r ascending within each level j: level j's entries are rows[ptr[j, 0]:ptr[j,
    -1]], those with r in tile t, [t tile, (t + 1) tile), rows[ptr[j, t]:ptr[j, t + 1]]), and
    ``pos`` (n x the other columns), each row's entry in that list. The factor's L21 = A21
    L0^-T keeps exactly this pattern, since L0 is block diagonal."""
    n, K = index.shape
    if K == k0:
        return np.zeros((levels0, 1), dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((n, 0), dtype=np.int64)
    level = index[:, 0] // k0
    key = level[:, None] * q_rest + (index[:, k0:] - q0)
    unique, inverse = np.unique(key.ravel(), return_inverse=True)
    bounds = np.minimum(np.arange(-(-q_rest // tile) + 1) * tile, q_rest)
    ptr = np.searchsorted(unique, np.arange(levels0)[:, None] * q_rest + bounds[None, :]).astype(np.int64)
    rows = (unique % q_rest).astype(np.int64)
    return ptr, rows, np.ascontiguousarray(inverse.reshape(n, K - k0).astype(np.int64))


@numba.njit(inline="always", **_KERNEL)
def _all_ones(values):
    for value in values:
        if value != 1.0:
            return False
    return True


@numba.njit(**_KERNEL)
def _assemble(family, link, y, prior, constant, eta0, values, index, pos, k0, q0, u, D, B, A22, rhs, eta):
    """H's blocks (term 0's diagonal blocks D, the cross block B on its pattern, the dense rest
    A22's lower triangle), the right-hand side Lambda'Z' score - u, and -2 log-likelihood +
    |u|^2 at u."""
    n, K = values.shape
    D[:] = 0.0
    B[:] = 0.0
    A22[:] = 0.0
    for j in range(rhs.shape[0]):
        rhs[j] = -u[j]
    minus2 = 0.0
    # 0/1 data with the logit link: log p from running products (``_logit_terms``)
    product_path = family == FAMILY_BINOMIAL and link == LINK_LOGIT and _all_ones(prior)
    if product_path and k0 == 1 and _within_threshold(eta0, values, index, u, eta):
        return _assemble_logit_scalar(y, constant, values, index, pos, q0, u, D, B, A22, rhs, eta)
    product = 1.0
    for i in range(n):
        e = eta0[i]
        for a in range(K):
            e += values[i, a] * u[index[i, a]]
        eta[i] = e
        if product_path and -LOGIT_THRESHOLD <= e <= LOGIT_THRESHOLD:
            # libm's exp, not glmflow.elementary's polynomial: this loop's scatters keep it off
            # SIMD lanes, where the polynomial's chain of 19 multiplies is the longer (verbagg's
            # assembly 0.33 -> 0.23 ms)
            w, score, minus2, product = _logit_terms(y[i], e, constant[i], i, minus2, product)
        else:
            w, score, logp = _row(family, link, y[i], e, prior[i], constant[i])
            minus2 -= 2.0 * logp
        for a in range(K):
            rhs[index[i, a]] += values[i, a] * score
        level = index[i, 0] if k0 == 1 else index[i, 0] // k0
        for a in range(k0):
            wa = w * values[i, a]
            for b in range(a + 1):
                D[level, a, b] += wa * values[i, b]
        for a in range(k0, K):
            wa = w * values[i, a]
            r = index[i, a] - q0
            p = pos[i, a - k0]
            for b in range(k0):
                B[p, b] += wa * values[i, b]
            for b in range(k0, K):
                s = index[i, b] - q0
                if s <= r:
                    A22[r, s] += wa * values[i, b]
    minus2 += 2.0 * math.log(product)
    for j in range(u.shape[0]):
        minus2 += u[j] * u[j]
    return minus2


@numba.njit(inline="always", **_KERNEL)
def _within_threshold(eta0, values, index, u, eta):
    """eta = eta0 + Z Lambda u into ``eta``; whether every row is within LOGIT_THRESHOLD."""
    inside = True
    for i in range(eta.shape[0]):
        e = eta0[i]
        for a in range(values.shape[1]):
            e += values[i, a] * u[index[i, a]]
        eta[i] = e
        inside = inside and -LOGIT_THRESHOLD <= e <= LOGIT_THRESHOLD
    return inside


@numba.njit(**_KERNEL)
def _assemble_logit_scalar(y, constant, values, index, pos, q0, u, D, B, A22, rhs, eta):
    """``_assemble`` for 0/1 data with the logit link, unit weights, every eta (given) within
    LOGIT_THRESHOLD and a scalar term 0 (k0 = 1): the same sums in the same order, in a loop
    with nothing else in it."""
    # verbagg (two scalar terms): 0.227 -> 0.16 ms an assembly, bit for bit the same blocks
    K = values.shape[1]
    minus2, product = 0.0, 1.0
    for i in range(eta.shape[0]):
        e = eta[i]
        w, score, minus2, product = _logit_terms(y[i], e, constant[i], i, minus2, product)
        v0, level = values[i, 0], index[i, 0]
        rhs[level] += v0 * score
        D[level, 0, 0] += w * v0 * v0
        for a in range(1, K):
            wa = w * values[i, a]
            rhs[index[i, a]] += values[i, a] * score
            B[pos[i, a - 1], 0] += wa * v0
            r = index[i, a] - q0
            for b in range(1, K):
                if index[i, b] - q0 <= r:
                    A22[r, index[i, b] - q0] += wa * values[i, b]
    minus2 += 2.0 * math.log(product)
    for j in range(u.shape[0]):
        minus2 += u[j] * u[j]
    return minus2


@numba.njit(**_KERNEL)
def _factor_blocks(D, k0):
    """Term 0's blocks in place: the unit diagonal of H added, then Cholesky of each k0 x k0
    block (lower triangle); log|L0|^2."""
    logdet = 0.0
    for j in range(D.shape[0]):
        for a in range(k0):
            D[j, a, a] += 1.0
        for a in range(k0):
            total = D[j, a, a]
            for m in range(a):
                total -= D[j, a, m] * D[j, a, m]
            pivot = math.sqrt(total)
            D[j, a, a] = pivot
            logdet += 2.0 * math.log(pivot)
            for b in range(a + 1, k0):
                total = D[j, b, a]
                for m in range(a):
                    total -= D[j, b, m] * D[j, a, m]
                D[j, b, a] = total / pivot
    return logdet


@numba.njit(**_KERNEL)
def _factor(D, B, A22, k0, ptr, rows):
    """Block Cholesky: D -> L0's blocks, B -> L21 = A21 L0^-T on A21's own pattern, and
    L22 = chol(A22 + I - L21 L21') (dense, LAPACK), whose fill the products of each level's
    entries make; returns (log|H|, L22). L21 L21' costs sum over term 0's levels of the square
    of its entries, not q_rest^2 q0."""
    logdet = _factor_blocks(D, k0)
    q_rest = A22.shape[0]
    if q_rest == 0:
        return logdet, A22
    for j in range(D.shape[0]):
        for p in range(ptr[j, 0], ptr[j, -1]):  # forward substitution per entry (a row of k0)
            for a in range(k0):
                total = B[p, a]
                for m in range(a):
                    total -= B[p, m] * D[j, a, m]
                B[p, a] = total / D[j, a, a]
    for r in range(q_rest):
        A22[r, r] += 1.0
    if B.shape[0] == D.shape[0] * q_rest:
        _subtract_complete_cross_products(B, A22, k0)
    else:
        _subtract_cross_products(B, A22, k0, ptr, rows)
    for a in range(q_rest):
        if not math.isfinite(A22[a, a]):
            return math.nan, A22
    L22 = np.linalg.cholesky(A22)  # LAPACK's potrf reads the lower triangle only (numba passes 'U' in F order)
    for a in range(q_rest):
        logdet += 2.0 * math.log(L22[a, a])
    return logdet, L22


@numba.njit(**_KERNEL)
def _subtract_complete_cross_products(L21, A22, k0):
    """A22 -= L21 L21' (lower triangle) where the crossing is complete (level j's entry for
    column r is j q_rest + r): dense loops with no index lists, level by level as
    ``_subtract_cross_products`` sums (for k0 = 1 the same numbers bit for bit)."""
    # verbagg (316 x 24, complete): 0.16 ms through the index lists, 0.04 ms so; BLAS (numba's
    # np.dot) took 0.017 ms but 7 s more compiling in every first run
    q_rest = A22.shape[0]
    for j in range(L21.shape[0] // q_rest):
        base = j * q_rest
        for a in range(k0):
            for r in range(q_rest):
                value = L21[base + r, a]
                for s in range(r + 1):  # contiguous, no sum carried: SIMD lanes
                    A22[r, s] -= value * L21[base + s, a]


@numba.njit(**_KERNEL)
def _subtract_cross_products(L21, A22, k0, ptr, rows):
    """A22 -= L21 L21' (lower triangle), tile by tile of A22 (``cross_pattern``'s ``ptr``),
    then level by level of term 0: each pair of a level's entries once, each entry of A22
    receiving its terms in the order of the levels whatever the tiles."""
    tiles = ptr.shape[1] - 1
    for R in range(tiles):
        for S in range(R + 1):
            for j in range(ptr.shape[0]):
                _level_cross_products(L21, A22, k0, rows, ptr[j, R], ptr[j, R + 1], ptr[j, S], ptr[j, S + 1])


@numba.njit(inline="always", **_KERNEL)
def _level_cross_products(L21, A22, k0, rows, first, last, first2, last2):
    """One level's pairs (p in [first, last), p2 in [first2, last2), p2 <= p) out of A22. Random
    slopes (k0 = 2) and intercepts get loops with k0 fixed, the row of A22 and the entry's k0
    values held (the same sums)."""
    # the fixed-k0 loops: 27 -> 17 ms on the simulated model's first 10^5 rows; inlined: 0.13 ->
    # 0.09 s a factorisation of the 10^6 rows
    for p in range(first, last):
        row = A22[rows[p]]
        end = min(last2, p + 1)
        if k0 == 1:
            b0 = L21[p, 0]
            for p2 in range(first2, end):
                row[rows[p2]] -= b0 * L21[p2, 0]
        elif k0 == 2:
            b0, b1 = L21[p, 0], L21[p, 1]
            for p2 in range(first2, end):
                row[rows[p2]] -= b0 * L21[p2, 0] + b1 * L21[p2, 1]
        else:
            for p2 in range(first2, end):
                total = 0.0
                for a in range(k0):
                    total += L21[p, a] * L21[p2, a]
                row[rows[p2]] -= total


@numba.njit(**_KERNEL)
def solve_factored(D, L21, L22, k0, ptr, rows, rhs):
    """H^-1 rhs from the block factor (L21 on its pattern)."""
    levels = D.shape[0]
    q0 = levels * k0
    q_rest = L22.shape[0]
    x = rhs.copy()
    for j in range(levels):  # L0 y0 = rhs0
        base = j * k0
        for a in range(k0):
            total = x[base + a]
            for m in range(a):
                total -= D[j, a, m] * x[base + m]
            x[base + a] = total / D[j, a, a]
    for j in range(levels):  # rhs1 - L21 y0
        for p in range(ptr[j, 0], ptr[j, -1]):
            total = 0.0
            for a in range(k0):
                total += L21[p, a] * x[j * k0 + a]
            x[q0 + rows[p]] -= total
    for r in range(q_rest):  # L22 y1 = ...
        total = x[q0 + r]
        for m in range(r):
            total -= L22[r, m] * x[q0 + m]
        x[q0 + r] = total / L22[r, r]
    for r in range(q_rest - 1, -1, -1):  # L22' x1 = y1, by rows of L22 (its columns are strided)
        x[q0 + r] /= L22[r, r]
        for m in range(r):
            x[q0 + m] -= L22[r, m] * x[q0 + r]
    for j in range(levels):  # y0 - L21' x1
        for p in range(ptr[j, 0], ptr[j, -1]):
            for a in range(k0):
                x[j * k0 + a] -= L21[p, a] * x[q0 + rows[p]]
    for j in range(levels):  # L0' x0 = ...
        base = j * k0
        for a in range(k0 - 1, -1, -1):
            total = x[base + a]
            for m in range(a + 1, k0):
                total -= D[j, m, a] * x[base + m]
            x[base + a] = total / D[j, a, a]
    return x


@numba.njit(**_KERNEL)
def predicted_modes(
    family, link, y, prior, constant, eta, values, new_values, index, deta0, u, D, L21, L22, k0, ptr, rows,
):  # fmt: skip
    """PIRLS's start at new (theta, beta): the modes there to first order, u + du, from the modes
    ``u`` at the last (theta, beta) with H's factor (D, L21, L22) and ``eta`` there. The implicit
    function theorem on PIRLS's equation Lambda'Z' s(eta) = u: H du = Lambda_d'Z' s -
    Lambda'Z' W (X dbeta + Z Lambda_d u), with Lambda_d the change in Lambda (linear in theta:
    the change of the rows' values, ``new_values`` - ``values``) and ``deta0`` = X dbeta."""
    n, K = values.shape
    rhs = np.zeros(u.shape[0])
    for i in range(n):
        w, score = _weight_and_score(family, link, y[i], eta[i], prior[i], constant[i])
        deta = deta0[i]
        for a in range(K):
            deta += (new_values[i, a] - values[i, a]) * u[index[i, a]]
        for a in range(K):
            rhs[index[i, a]] += (new_values[i, a] - values[i, a]) * score - values[i, a] * w * deta
    step = solve_factored(D, L21, L22, k0, ptr, rows, rhs)
    for j in range(u.shape[0]):
        step[j] += u[j]
    return step


@numba.njit(**_KERNEL)
def laplace(
    family, link, y, prior, constant, eta0, values, index, pos, ptr, rows, levels0, k0, q_rest, u, tolerance,
    max_iterations, accept,
):  # fmt: skip
    """PIRLS from ``u`` (updated in place to the conditional mode) and the Laplace deviance
    there, -2 log p(y | u) + |u|^2 + log|H| (lme4's ``ldL2 + sqrL + aic``). Fisher-scoring
    steps with step-halving on the penalised objective, until the largest step is below
    ``tolerance``, or, with ``accept`` > 0, after a full step below ``accept`` (Newton's
    quadratic convergence leaves an error of order accept^2 in u: one assembly saved per call
    when the gradient is analytic); the factor and the log-determinant are those at the final u.
    Returns (deviance, iterations, converged, L0 blocks, L21, L22, eta), the factor at u."""
    q0 = levels0 * k0
    n = y.shape[0]
    D = np.empty((levels0, k0, k0))
    B = np.empty((rows.shape[0], k0))
    A22 = np.empty((q_rest, q_rest))
    rhs = np.empty(u.shape[0])
    eta = np.empty(n)
    penalised = _assemble(family, link, y, prior, constant, eta0, values, index, pos, k0, q0, u, D, B, A22, rhs, eta)
    logdet, L22 = _factor(D, B, A22, k0, ptr, rows)
    candidate = np.empty_like(u)
    for iteration in range(max_iterations):
        if not math.isfinite(logdet):
            return math.nan, iteration, False, D, B, L22, eta
        step = solve_factored(D, B, L22, k0, ptr, rows, rhs)
        largest = 0.0
        for j in range(step.shape[0]):
            largest = max(largest, abs(step[j]))
        if largest < tolerance:
            return penalised + logdet, iteration, True, D, B, L22, eta
        fraction = 1.0
        for _ in range(40):
            for j in range(u.shape[0]):
                candidate[j] = u[j] + fraction * step[j]
            trial = _assemble(
                family, link, y, prior, constant, eta0, values, index, pos, k0, q0, candidate, D, B, A22, rhs, eta
            )
            if math.isfinite(trial) and trial <= penalised + 1e-10 * abs(penalised):
                break
            fraction /= 2.0
        # element by element, not u[:] = candidate: the slice's shape check compiles numba's string
        # formatting for its error message, a quarter of this kernel's compile time
        for j in range(u.shape[0]):
            u[j] = candidate[j]
        penalised = trial
        logdet, L22 = _factor(D, B, A22, k0, ptr, rows)
        if largest < accept and fraction == 1.0 and math.isfinite(logdet):
            return penalised + logdet, iteration + 1, True, D, B, L22, eta
    return penalised + logdet, max_iterations, False, D, B, L22, eta


def inverse_pieces(D, L21, L22, k0, ptr, rows, mirror=True):
    """H^-1 on H's own pattern from the block factor: the diagonal blocks of term 0 (P0), the
    cross block on its pattern (P10, an entry per ``rows``) and the dense rest (P11). With
    N = L21 L0^-1: P11 = (L22 L22')^-1 (``_upper_inverse``, then LAPACK's lauum), P10 = -P11 N,
    P0_j = L0_j^-T L0_j^-1 + N_j' P11 N_j: only the entries the pattern needs (a selected
    inverse). ``mirror=False``
    leaves P11's upper triangle as lauum left it, for callers that read the lower one only."""
    q_rest = L22.shape[0]
    if q_rest:
        # L22' is L22's Fortran-ordered upper factor U: (L22 L22')^-1 = U^-1 U^-T, which
        # LAPACK's lauum forms in U^-1's upper triangle (potri's second half)
        P11, info = scipy.linalg.lapack.dlauum(_upper_inverse(L22.T), lower=0, overwrite_c=1)
        P11 = _mirror_lower(P11.T) if mirror else P11.T
    else:
        P11 = np.zeros((0, 0))
    P0, P10 = _selected_inverse(D, L21, P11, k0, ptr, rows)
    return P0, P10, P11


# below this order ``_upper_inverse`` calls LAPACK's trtri
TRIANGULAR_LEAF = 192


def _upper_inverse(U: np.ndarray) -> np.ndarray:
    """U^-1 of an upper-triangular U (its upper triangle read), Fortran-ordered, by halves:
    X12 = -X11 U12 X22 with BLAS's trmm, LAPACK's trtri below TRIANGULAR_LEAF. Raises
    LinAlgError where U has a zero on its diagonal."""
    # on InstEval's 1,156 x 1,156 block, one thread: trtri 27 ms, halves with trmm 17.6 ms
    n = U.shape[0]
    if n <= TRIANGULAR_LEAF:
        X, info = scipy.linalg.lapack.dtrtri(U, lower=0)
        if info != 0:
            raise np.linalg.LinAlgError(f"H's dense block is singular (trtri info {info})")
        return X
    h = n // 2
    X = np.zeros((n, n), order="F")
    X[:h, :h] = _upper_inverse(np.asfortranarray(U[:h, :h]))
    X[h:, h:] = _upper_inverse(np.asfortranarray(U[h:, h:]))
    upper_right = scipy.linalg.blas.dtrmm(-1.0, X[:h, :h], np.asfortranarray(U[:h, h:]), side=0, lower=0)
    X[:h, h:] = scipy.linalg.blas.dtrmm(1.0, X[h:, h:], upper_right, side=1, lower=0)
    return X


@numba.njit(**_KERNEL)
def _selected_inverse(D, L21, P11, k0, ptr, rows):
    """``inverse_pieces``' term-0 blocks and cross entries, given P11, level by level of term 0."""
    # on numba's threads (prange over the levels) this took 0.21 -> 0.12 s a call on the 10^6
    # rows, for 2-3 s more compiling in every first run (15.5 -> 17.7-18.9 s): left serial
    levels = D.shape[0]
    L0inv = np.zeros((levels, k0, k0))
    P0 = np.zeros((levels, k0, k0))
    N = np.zeros(L21.shape)
    P10 = np.zeros(L21.shape)
    complete = P11.shape[0] > 0 and L21.shape[0] == levels * P11.shape[0]
    for j in range(levels):
        _level_blocks(D[j], L21, k0, ptr[j, 0], ptr[j, -1], L0inv[j], N, P0[j])
        if not complete:
            _level_cross_inverse(P11, k0, ptr[j, 0], ptr[j, -1], rows, N, P0[j], P10)
    if complete:
        _complete_cross_inverse(N, P11, k0, P0, P10)
    return P0, P10


@numba.njit(**_KERNEL)
def _complete_cross_inverse(N, P11, k0, P0, P10):
    """``_level_cross_inverse`` for every level where the crossing is complete (level j's
    entry for column r is j q_rest + r): P10 = -P11 N in dense loops with no index lists."""
    # verbagg (316 x 24, complete): the selected inverse 0.30 ms through the index lists, 0.11 ms
    # so (this part 0.08 ms); BLAS took 0.03 ms, for numba's np.dot compiled in every first run
    q_rest = P11.shape[0]
    _mirror_lower(P11)  # the whole of the symmetric P11 (a caller may have asked for the lower only)
    for j in range(N.shape[0] // q_rest):
        base = j * q_rest
        for a in range(k0):
            for s in range(q_rest):
                value = N[base + s, a]
                for r in range(q_rest):  # P11 symmetric: its row s, contiguous, no sum carried
                    P10[base + r, a] -= P11[s, r] * value
        for p in range(base, base + q_rest):
            for a in range(k0):
                for b in range(k0):
                    P0[j, a, b] -= N[p, a] * P10[p, b]


@numba.njit(inline="always", **_KERNEL)
def _level_blocks(Dj, L21, k0, first, last, L0inv, N, P0):
    """One level's L0_j^-1, P0 = L0_j^-T L0_j^-1 and N_j = L21_j L0_j^-1 (``Dj``, ``L0inv``,
    ``P0``: the level's k0 x k0 blocks; ``first``, ``last``: its entries)."""
    # inlined (with _level_cross_inverse): called per level, the 10^6 rows' selected inverse
    # took 0.25-0.27 s against 0.23
    for c in range(k0):  # column c of L0_j^-1: forward substitution on e_c
        for a in range(c, k0):
            total = 1.0 if a == c else 0.0
            for m in range(c, a):
                total -= Dj[a, m] * L0inv[m, c]
            L0inv[a, c] = total / Dj[a, a]
    for a in range(k0):
        for b in range(k0):
            total = 0.0
            for m in range(max(a, b), k0):
                total += L0inv[m, a] * L0inv[m, b]
            P0[a, b] = total
    for p in range(first, last):
        for c in range(k0):
            total = 0.0
            for m in range(c, k0):
                total += L21[p, m] * L0inv[m, c]
            N[p, c] = total


@numba.njit(inline="always", **_KERNEL)
def _level_cross_inverse(P11, k0, first, last, rows, N, P0, P10):
    """One level's cross entries P10[first:last] (-P11 N_j on the pattern) and P0 += N_j' P11 N_j."""
    # P10_j = -P11_jj N_j, each pair of the level's entries once (P11 is symmetric: its
    # entry, read at random across the dense block, is the loop's cost); then
    # N_j' P11_jj N_j = -N_j' P10_j adds O(entries k0^2), not O(entries^2 k0^2)
    for p in range(first, last):
        row = P11[rows[p]]
        if k0 == 1:  # the entry's values held, as in _level_cross_products
            n0, total0 = N[p, 0], P10[p, 0]
            for p2 in range(first, p):
                v = row[rows[p2]]
                total0 -= v * N[p2, 0]
                P10[p2, 0] -= v * n0
            P10[p, 0] = total0
        elif k0 == 2:
            n0, n1, total0, total1 = N[p, 0], N[p, 1], P10[p, 0], P10[p, 1]
            for p2 in range(first, p):
                v = row[rows[p2]]
                total0 -= v * N[p2, 0]
                total1 -= v * N[p2, 1]
                P10[p2, 0] -= v * n0
                P10[p2, 1] -= v * n1
            P10[p, 0], P10[p, 1] = total0, total1
        else:
            for p2 in range(first, p):
                v = row[rows[p2]]
                for a in range(k0):
                    P10[p, a] -= v * N[p2, a]
                    P10[p2, a] -= v * N[p, a]
        v = row[rows[p]]
        for a in range(k0):
            P10[p, a] -= v * N[p, a]
    for p in range(first, last):
        for a in range(k0):
            for b in range(k0):
                P0[a, b] -= N[p, a] * P10[p, b]


@numba.njit(**_KERNEL)
def _mirror_lower(P):
    """The lower triangle copied onto the upper, in place (LAPACK's lauum fills the lower only)."""
    for r in range(P.shape[0]):
        for s in range(r):
            P[s, r] = P[r, s]
    return P


@numba.njit(inline="always", **_KERNEL)
def _inverse_times_row(P0, P10, P11, pos, values, index, k0, q0, i, level, Hz):
    """Hz[i] = H^-1 z_i' on row i's own columns: term 0's (0..k0-1, of the row's level
    ``level``) from P0 and the row's cross entries of the pattern, the others' from P10 and
    P11. Block by block, not through an entry function with a branch per (a, b)."""
    # the entry function took 9 times as long (60 ns an entry on the simulated crossed model)
    K = values.shape[1]
    for a in range(k0):
        total = 0.0
        for b in range(k0):
            total += P0[level, a, b] * values[i, b]
        for b in range(k0, K):
            total += P10[pos[i, b - k0], a] * values[i, b]
        Hz[i, a] = total
    for a in range(k0, K):
        p = pos[i, a - k0]
        total = 0.0
        for b in range(k0):
            total += P10[p, b] * values[i, b]
        r = index[i, a] - q0
        for b in range(k0, K):
            total += P11[r, index[i, b] - q0] * values[i, b]
        Hz[i, a] = total


@numba.njit(inline="always", **_KERNEL)
def _canonical_row(family, link, y, eta, prior):
    """A row's weight W, its slope W' in eta and score s for a canonical link (logit binomial,
    log Poisson), mu as _assemble takes it, to the last bit."""
    if link == LINK_LOGIT and -LOGIT_THRESHOLD <= eta <= LOGIT_THRESHOLD:
        mu, _ = _logit_mean(eta)
    else:
        mu, _ = mean_and_slope(link, eta)
    if family == FAMILY_BINOMIAL:
        w = prior * mu * (1.0 - mu)
        return w, w * (1.0 - 2.0 * mu), prior * (y - mu)
    w = prior * mu
    return w, w, prior * (y - mu)


@numba.njit(inline="always", **_KERNEL)
def _gradient_rows(family, link, y, prior, eta, values, index, pos, u, factor, inverse):
    """``laplace_gradient``'s pass over the rows: the scores s, weights W, v = W' h (h_i =
    z_i H^-1 z_i', from H^-1 z_i' on the row's columns, Hz) and Lambda'Z' v."""
    D, L21, L22, k0, ptr, rows = factor
    P0, P10, P11 = inverse
    n, K = values.shape
    q0 = D.shape[0] * k0
    s = np.empty(n)
    w = np.empty(n)
    v = np.empty(n)
    Hz = np.empty((n, K))
    rhs = np.zeros(u.shape[0])
    if k0 == 1:
        _gradient_rows_scalar(family, link, y, prior, eta, values, index, pos, q0, P0, P10, P11, s, w, v, Hz, rhs)
        return s, w, v, Hz, rhs
    for i in range(n):
        w[i], slope, s[i] = _canonical_row(family, link, y[i], eta[i], prior[i])
        _inverse_times_row(P0, P10, P11, pos, values, index, k0, q0, i, index[i, 0] // k0, Hz)
        h = 0.0
        for a in range(K):
            h += values[i, a] * Hz[i, a]
        v[i] = slope * h
        for a in range(K):
            rhs[index[i, a]] += values[i, a] * v[i]
    return s, w, v, Hz, rhs


@numba.njit(**_KERNEL)
def _gradient_rows_scalar(family, link, y, prior, eta, values, index, pos, q0, P0, P10, P11, s, w, v, Hz, rhs):
    """``_gradient_rows`` where term 0 is a scalar term (k0 = 1), into s, w, v, Hz and rhs:
    ``_inverse_times_row`` with term 0's value held and h summed as Hz is, in the same order."""
    # verbagg (two scalar terms): 0.25 -> 0.15 ms, the same sums bit for bit
    K = values.shape[1]
    for i in range(values.shape[0]):
        w[i], slope, s[i] = _canonical_row(family, link, y[i], eta[i], prior[i])
        v0 = values[i, 0]
        total = P0[index[i, 0], 0, 0] * v0
        for b in range(1, K):
            total += P10[pos[i, b - 1], 0] * values[i, b]
        Hz[i, 0] = total
        h = v0 * total
        for a in range(1, K):
            total = P10[pos[i, a - 1], 0] * v0
            row = P11[index[i, a] - q0]
            for b in range(1, K):
                total += row[index[i, b] - q0] * values[i, b]
            Hz[i, a] = total
            h += values[i, a] * total
        v[i] = slope * h
        for a in range(K):
            rhs[index[i, a]] += values[i, a] * v[i]


@numba.njit(**_KERNEL)
def laplace_gradient(family, link, y, prior, eta, values, index, pos, Zv, X, u, factor, inverse, theta_map):
    """The gradient of the Laplace deviance in (theta, beta) at the modes u, for the canonical
    links (logit binomial, log Poisson: Fisher and observed weights agree). With s the scores,
    W the weights, W' their slopes in eta, h_i = z_i H^-1 z_i' (Z Lambda's rows) and
    a = H^-1 Lambda'Z' (W' h):
        d/d beta  = X' (-2 s + W' h - W (Z Lambda a)),
        d/d theta_m = sum_i d_i (-2 s_i + W'_i h_i - W_i (Z Lambda a)_i) + (Z_m a)' s
                      + 2 sum_i W_i (Z_m)_i H^-1 (Z Lambda)_i',
    where Z_m = Z dLambda/dtheta_m and d = Z_m u: the envelope theorem for the modes, the
    implicit function theorem for their change, and d log|H| = tr(H^-1 dH).
    ``theta_map`` gives each theta's (term, row a, column b) of its factor and the term's
    first column in ``values``; ``factor`` is (L0, L21, L22, k0, ptr, rows), ``inverse``
    ``inverse_pieces``' (P0, P10, P11)."""
    D, L21, L22, k0, ptr, rows = factor
    s, w, v, Hz, rhs = _gradient_rows(family, link, y, prior, eta, values, index, pos, u, factor, inverse)
    A = solve_factored(D, L21, L22, k0, ptr, rows, rhs)
    n, K = values.shape
    p = X.shape[1]
    n_theta = theta_map.shape[0]
    gradient = np.zeros(n_theta + p)
    for i in range(n):
        za = 0.0
        for a in range(K):
            za += values[i, a] * A[index[i, a]]
        common = -2.0 * s[i] + v[i] - w[i] * za
        for c in range(p):
            gradient[n_theta + c] += X[i, c] * common
        for m in range(n_theta):
            start, a, b = theta_map[m, 0], theta_map[m, 1], theta_map[m, 2]
            z = Zv[i, start + a]
            position = index[i, start + b]
            gradient[m] += z * u[position] * common + z * A[position] * s[i] + 2.0 * w[i] * z * Hz[i, start + b]
    return gradient


@numba.njit(**_KERNEL)
def linear_theta_sums(w, residual, u, values, index, Zv, X, C, P0, P10, P11, pos, k0, theta_map, by_rows):
    """The sums over rows behind a linear mixed model's derivatives in theta. With
    Z_m = Z dLambda/dtheta_m (row i: the value z = Zv[i, start + a] at u's index
    c = index[i, start + b]), w the prior weights, C = H^-1 Lambda'Z'WX and E = X - Z Lambda C:
        trace[m] = tr(H^-1 dH_m) = 2 sum_i w_i z H^-1[c, :] (Z Lambda)_i',
        pwrss[m] = -2 sum_i w_i z residual_i u[c],
        R[m, c, :] = sum over the rows reaching c of w_i z E_i (so E'W Z_m C = R[m]' C).
    H^-1 on H's pattern comes from ``inverse_pieces`` (P0, P10, P11); trace[m] is summed only
    where ``by_rows[m]`` (elsewhere the caller has it from H^-1's diagonal blocks)."""
    n, K = values.shape
    p = X.shape[1]
    q0 = P0.shape[0] * k0
    M = theta_map.shape[0]
    trace, pwrss = np.zeros(M), np.zeros(M)
    R = np.zeros((M, C.shape[0], p))
    E = np.empty(p)
    any_by_rows = False
    for m in range(M):
        any_by_rows = any_by_rows or by_rows[m]
    Hz = np.empty((n if any_by_rows else 0, K))
    for i in range(n):
        if any_by_rows:
            level = index[i, 0] if k0 == 1 else index[i, 0] // k0
            _inverse_times_row(P0, P10, P11, pos, values, index, k0, q0, i, level, Hz)
        for j in range(p):
            total = X[i, j]
            for a in range(K):
                total -= values[i, a] * C[index[i, a], j]
            E[j] = total
        for m in range(M):
            start, a, b = theta_map[m, 0], theta_map[m, 1], theta_map[m, 2]
            z = w[i] * Zv[i, start + a]
            if z == 0.0:
                continue
            c = index[i, start + b]
            if by_rows[m]:
                trace[m] += 2.0 * z * Hz[i, start + b]
            pwrss[m] -= 2.0 * z * residual[i] * u[c]
            for j in range(p):
                R[m, c, j] += z * E[j]
    return trace, pwrss, R
