"""R's ``glm.fit`` for large n, binomial and Poisson with any of their links, at memory speed.

glm.fit solves each IRLS step by a QR of sqrt(W) X; numpy's QR formed Q, which was 74-86% of
a fit's time and a second copy of X. Here each step is two compiled passes over X (no copy of
X, no Q): the first takes the working weights and responses at the current fit and
accumulates X'WX and X'Wz from row blocks of sqrt(w) X through BLAS, in block order, in one
thread; the second (parallel over blocks, each block's deviance kept apart and added in
order, so the result does not depend on the number of threads) computes the new linear
predictor, mean, d mu / d eta and deviance. The step is the Cholesky solution of the normal
equations; where the factor's diagonal spreads beyond 100 (Cholesky then loses spread^2 x
1e-16), one step of iterative refinement (X'W r at the new coefficients, an extra pass: the
corrected semi-normal equations) brings it to the QR solution's accuracy. A spread beyond
1e5, a non-finite deviance or an invalid eta or mu sends the fit to glm.fit's QR path. The
iterations, the convergence rule and the covariance (X'WX of the last step) are R's.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import linalg

from glmflow.compiled_links import FAMILY_BINOMIAL, FAMILY_POISSON, LINK_LOGIT, LINK_SQRT, mean_and_slope
from glmflow.constants import LARGE_ROWS
from glmflow.elementary import exp_neg
from glmflow.families import LOGIT_THRESHOLD, Family

BLOCK = 2048
CONDITION_LIMIT = 1e5  # spread of the Cholesky factor's diagonal: beyond it, the QR path
# Cholesky's solution loses about spread^2 * 1e-16 relative: above a spread of 100 one step of
# iterative refinement (an extra pass over X) brings it back to the QR solution's accuracy.
REFINE_ABOVE = 100.0
_KERNEL = {"cache": True, "error_model": "numpy"}


class NotForLargePath(Exception):
    """The blocked path declines: glm.fit's QR path fits instead."""


@numba.njit(inline="always", **_KERNEL)
def _deviance_row(family, y, mu, prior):
    if family == FAMILY_BINOMIAL:
        total = 0.0
        if y > 0.0:
            total += y * math.log(y / mu)
        if y < 1.0:
            total += (1.0 - y) * math.log((1.0 - y) / (1.0 - mu))
        return 2.0 * prior * total
    return 2.0 * prior * ((y * math.log(y / mu) if y > 0.0 else 0.0) - (y - mu))


@numba.njit(inline="always", **_KERNEL)
def _linear_predictor(X, i, beta, start):
    """start + X[i] beta."""
    total = start
    for c in range(X.shape[1]):
        total += X[i, c] * beta[c]
    return total


@numba.njit(**_KERNEL)
def _normal_equations(X, y, prior, offset, eta, mu, mu_eta, family, gram, xwz, working):
    """X'WX and X'Wz (lower triangle) block by block: each block's rows scaled by sqrt(w) into a
    small buffer, whose cross-products BLAS adds (no copy of X); ``working`` gets each row's
    w = prior mu_eta^2 / V(mu), 0 where the row does not count (as glm.fit's ``good``)."""
    n, p = X.shape
    buffer = np.empty((BLOCK, p))
    response = np.empty(BLOCK)
    gram[:] = 0.0
    xwz[:] = 0.0
    for start in range(0, n, BLOCK):
        rows = min(BLOCK, n - start)
        for j in range(rows):
            i = start + j
            variance = mu[i] * (1.0 - mu[i]) if family == FAMILY_BINOMIAL else mu[i]
            if prior[i] <= 0.0 or mu_eta[i] == 0.0:
                working[i] = 0.0
                root = 0.0
                response[j] = 0.0
            else:
                w = prior[i] * mu_eta[i] * mu_eta[i] / variance
                working[i] = w
                root = math.sqrt(w)
                response[j] = root * ((eta[i] - offset[i]) + (y[i] - mu[i]) / mu_eta[i])
            for a in range(p):
                buffer[j, a] = root * X[i, a]
        block = buffer[:rows]
        gram += block.T @ block
        xwz += block.T @ response[:rows]


@numba.njit(parallel=True, **_KERNEL)
def _residual_products(X, working, y, eta, mu, mu_eta, offset, beta, out_blocks):
    """Per block: sum of w r x with r = z - X beta, z the working response at (eta, mu)."""
    n, p = X.shape
    for block in numba.prange(out_blocks.shape[0]):
        out = out_blocks[block]
        out[:] = 0.0
        for i in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
            if working[i] == 0.0:
                continue
            fitted = _linear_predictor(X, i, beta, 0.0)
            r = (eta[i] - offset[i]) + (y[i] - mu[i]) / mu_eta[i] - fitted
            for a in range(p):
                out[a] += working[i] * r * X[i, a]


@numba.njit(parallel=True, **_KERNEL)
def _update_logit(X, offset, beta, y, eta, mu, mu_eta, deviance_blocks):
    """``_update`` for 0/1 responses, unit weights and the logit link, branch-free so that it
    runs on SIMD lanes: a = exp(-|eta|) by glmflow.elementary's polynomial (1e-13 relative), mu and
    d mu / d eta = mu (1 - mu) from it, and a row's deviance 2 (log(1 + a) + max(-s eta, 0)),
    s = 2 y - 1, with the logs of (1 + a) taken of running products of 512 rows. R's
    make.link("logit") clamps beyond |eta| = 30, where this is within 1e-13 of it too."""
    n = X.shape[0]
    for block in numba.prange(deviance_blocks.shape[0]):
        product = 1.0  # of (1 + a) over up to 512 rows
        total = 0.0
        for i in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
            e = _linear_predictor(X, i, beta, offset[i])
            eta[i] = e
            a = exp_neg(min(abs(e), LOGIT_THRESHOLD))
            inverse = 1.0 / (1.0 + a)
            m = inverse if e >= 0.0 else a * inverse
            mu[i] = m
            mu_eta[i] = a * inverse * inverse
            total += max(-(2.0 * y[i] - 1.0) * e, 0.0)
            product *= 1.0 + a
            if (i - block * BLOCK) % 512 == 511:
                total += math.log(product)
                product = 1.0
        deviance_blocks[block] = 2.0 * (total + math.log(product))


@numba.njit(parallel=True, **_KERNEL)
def _update(X, y, prior, offset, beta, family, link, eta, mu, mu_eta, deviance_blocks, invalid_blocks):
    """eta = X beta + offset, mu, d mu / d eta, each block's deviance and its rows where mu or
    eta is invalid for the family (binomial: mu outside (0, 1); Poisson: mu <= 0; sqrt: eta <= 0)."""
    n = X.shape[0]
    for block in numba.prange(deviance_blocks.shape[0]):
        total = 0.0
        invalid = 0
        for i in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
            e = _linear_predictor(X, i, beta, offset[i])
            eta[i] = e
            m, slope = mean_and_slope(link, e)
            mu[i] = m
            mu_eta[i] = slope
            if not (math.isfinite(m) and m > 0.0 and (family != FAMILY_BINOMIAL or m < 1.0)):
                invalid += 1
            if link == LINK_SQRT and not (math.isfinite(e) and e > 0.0):
                invalid += 1
            total += _deviance_row(family, y[i], m, prior[i])
        deviance_blocks[block] = total
        invalid_blocks[block] = invalid


@numba.njit(parallel=True, **_KERNEL)
def _start(eta, y, prior, family, link, mu, mu_eta, deviance_blocks):
    """mu, d mu / d eta and each block's deviance at the starting eta (glm.fit's mustart)."""
    n = eta.shape[0]
    for block in numba.prange(deviance_blocks.shape[0]):
        total = 0.0
        for i in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
            m, slope = mean_and_slope(link, eta[i])
            mu[i] = m
            mu_eta[i] = slope
            total += _deviance_row(family, y[i], m, prior[i])
        deviance_blocks[block] = total


def applies(X: np.ndarray, family: Family) -> bool:
    # the families whose deviance _deviance_row computes (the quasi ones have no code)
    return X.shape[0] >= LARGE_ROWS and X.shape[1] <= 64 and family.code in (FAMILY_BINOMIAL, FAMILY_POISSON)


def glm_fit_large(X, y, family: Family, weights, offset, mustart, epsilon: float, maxit: int):
    """(coef, cov_unscaled, eta, mu, mu_eta, deviance, iterations, converged, working weights),
    or NotForLargePath."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, p = X.shape
    blocks = (n + BLOCK - 1) // BLOCK
    family_code, link_code = family.code, family.link.code
    eta = np.ascontiguousarray(family.linkfun(mustart))
    mu, mu_eta = np.empty(n), np.empty(n)
    gram, xwz, refinement = np.empty((p, p)), np.empty(p), np.empty((blocks, p))
    deviance_blocks, invalid_blocks, working = np.empty(blocks), np.empty(blocks, dtype=np.int64), np.empty(n)
    _start(eta, y, weights, family_code, link_code, mu, mu_eta, deviance_blocks)
    if not (family.validmu(mu) and family.link.valideta(eta)):
        raise NotForLargePath
    dev_old = float(deviance_blocks.sum())
    new_eta, new_mu, new_mu_eta = np.empty(n), np.empty(n), np.empty(n)
    unit_logit = (family_code == FAMILY_BINOMIAL and link_code == LINK_LOGIT and bool(np.all(weights == 1.0))
                  and bool(np.all((y == 0.0) | (y == 1.0))))  # fmt: skip
    converged, coef, iterations = False, None, 0
    for iteration in range(1, maxit + 1):
        iterations = iteration
        _normal_equations(X, y, weights, offset, eta, mu, mu_eta, family_code, gram, xwz, working)
        lower = np.tril(gram)
        try:
            factor = linalg.cho_factor(lower + np.tril(lower, -1).T, lower=True)
        except linalg.LinAlgError:
            raise NotForLargePath from None
        diagonal = np.abs(np.diag(factor[0]))
        spread = diagonal.max() / diagonal.min()
        if spread > CONDITION_LIMIT:
            raise NotForLargePath
        start = linalg.cho_solve(factor, xwz)
        if spread > REFINE_ABOVE:  # one step of iterative refinement (corrected semi-normal equations)
            _residual_products(X, working, y, eta, mu, mu_eta, offset, start, refinement)
            start = start + linalg.cho_solve(factor, refinement.sum(axis=0))
        if unit_logit:
            _update_logit(X, offset, start, y, new_eta, new_mu, new_mu_eta, deviance_blocks)
            invalid_blocks[:] = 0
        else:
            _update(X, y, weights, offset, start, family_code, link_code, new_eta, new_mu, new_mu_eta,
                    deviance_blocks, invalid_blocks)  # fmt: skip
        dev = float(deviance_blocks.sum())
        if not math.isfinite(dev) or invalid_blocks.sum() > 0:
            raise NotForLargePath
        eta, new_eta = new_eta, eta
        mu, new_mu = new_mu, mu
        mu_eta, new_mu_eta = new_mu_eta, mu_eta
        coef = start
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            break
        dev_old = dev
    return coef, linalg.cho_solve(factor, np.eye(p)), eta, mu, mu_eta, dev, iterations, converged, working
