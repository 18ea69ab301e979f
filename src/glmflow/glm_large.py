"""R's ``glm.fit`` for large n, binomial and Poisson with any of their links, at memory speed.

glm.fit solves each IRLS step by a QR of sqrt(W) X; numpy's QR forms Q, which was 74-86% of a
fit's time and a second copy of X. Here each step is two compiled passes over X in row blocks
(no copy of X, no Q): the first takes the working weights and responses at the current fit
and accumulates X'WX and X'Wz block by block (each block's sums kept apart and added in block
order, so the result does not depend on the number of threads); the second computes the new
linear predictor, mean and deviance. The step is the Cholesky solution of the normal
equations with one step of iterative refinement (X'W r at the new coefficients, the
corrected semi-normal equations), which brings it to the QR solution's accuracy for the
well-conditioned designs this path takes (a condition estimate of R above 1e5 sends the fit
to glm.fit's QR path, as does anything unusual: a non-finite deviance, an invalid eta or mu).
The iterations, the convergence rule and the covariance (X'WX of the last step) are R's.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy import linalg

from glmflow.compiled_links import FAMILY_BINOMIAL, FAMILY_CODES, LINK_CODES, mean_and_slope
from glmflow.constants import LARGE_ROWS
from glmflow.families import Family

BLOCK = 2048
CONDITION_LIMIT = 1e5  # of R (sqrt of X'WX's): beyond it, the QR path
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


@numba.njit(parallel=True, **_KERNEL)
def _normal_equations(X, y, prior, offset, eta, mu, family, link, weights, gram_blocks, xwz_blocks):
    """Per block: sum of w x x' and w z x over its rows, w = prior mu_eta^2 / V(mu), z the
    working response; ``weights`` gets each row's w (0 where the row does not count)."""
    n, p = X.shape
    for block in numba.prange(gram_blocks.shape[0]):
        gram = gram_blocks[block]
        xwz = xwz_blocks[block]
        gram[:] = 0.0
        xwz[:] = 0.0
        for i in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
            _, mu_eta = mean_and_slope(link, eta[i])
            variance = mu[i] * (1.0 - mu[i]) if family == FAMILY_BINOMIAL else mu[i]
            if prior[i] <= 0.0 or mu_eta == 0.0:
                weights[i] = 0.0
                continue
            w = prior[i] * mu_eta * mu_eta / variance
            weights[i] = w
            wz = w * ((eta[i] - offset[i]) + (y[i] - mu[i]) / mu_eta)
            for a in range(p):
                wa = w * X[i, a]
                xwz[a] += wz * X[i, a]
                for b in range(a + 1):
                    gram[a, b] += wa * X[i, b]


@numba.njit(parallel=True, **_KERNEL)
def _residual_products(X, weights, y, eta, mu, offset, link, beta, out_blocks):
    """Per block: sum of w r x with r = z - X beta, z the working response at (eta, mu)."""
    n, p = X.shape
    for block in numba.prange(out_blocks.shape[0]):
        out = out_blocks[block]
        out[:] = 0.0
        for i in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
            if weights[i] == 0.0:
                continue
            _, mu_eta = mean_and_slope(link, eta[i])
            fitted = 0.0
            for a in range(p):
                fitted += X[i, a] * beta[a]
            r = (eta[i] - offset[i]) + (y[i] - mu[i]) / mu_eta - fitted
            for a in range(p):
                out[a] += weights[i] * r * X[i, a]


@numba.njit(parallel=True, **_KERNEL)
def _update(X, y, prior, offset, beta, family, link, eta, mu, deviance_blocks):
    """eta = X beta + offset, mu and each block's deviance."""
    n, p = X.shape
    for block in numba.prange(deviance_blocks.shape[0]):
        total = 0.0
        for i in range(block * BLOCK, min(n, (block + 1) * BLOCK)):
            e = offset[i]
            for a in range(p):
                e += X[i, a] * beta[a]
            eta[i] = e
            m, _ = mean_and_slope(link, e)
            mu[i] = m
            total += _deviance_row(family, y[i], m, prior[i])
        deviance_blocks[block] = total


def applies(X: np.ndarray, family: Family) -> bool:
    return (X.shape[0] >= LARGE_ROWS and X.shape[1] <= 64 and family.name in FAMILY_CODES
            and family.link.name in LINK_CODES)  # fmt: skip


def glm_fit_large(X, y, family: Family, weights, offset, mustart, epsilon: float, maxit: int):
    """(coef, cov_unscaled, eta, mu, deviance, iterations, converged, working weights), or
    NotForLargePath."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, p = X.shape
    blocks = (n + BLOCK - 1) // BLOCK
    family_code, link_code = FAMILY_CODES[family.name], LINK_CODES[family.link.name]
    eta = family.linkfun(mustart)
    mu = family.linkinv(eta)
    if not (family.validmu(mu) and family.link.valideta(eta)):
        raise NotForLargePath
    eta, mu = np.ascontiguousarray(eta), np.ascontiguousarray(mu)
    dev_old = float(np.sum(family.dev_resids(y, mu, weights)))
    gram_blocks, xwz_blocks = np.empty((blocks, p, p)), np.empty((blocks, p))
    deviance_blocks, working = np.empty(blocks), np.empty(n)
    new_eta, new_mu = np.empty(n), np.empty(n)
    converged, coef, gram, iterations = False, None, None, 0
    for iteration in range(1, maxit + 1):
        iterations = iteration
        _normal_equations(X, y, weights, offset, eta, mu, family_code, link_code, working, gram_blocks, xwz_blocks)
        gram = np.tril(gram_blocks.sum(axis=0))
        gram = gram + np.tril(gram, -1).T
        try:
            factor = linalg.cho_factor(gram, lower=True)
        except linalg.LinAlgError:
            raise NotForLargePath from None
        diagonal = np.diag(factor[0])
        if diagonal.max() / diagonal.min() > CONDITION_LIMIT:
            raise NotForLargePath
        start = linalg.cho_solve(factor, xwz_blocks.sum(axis=0))
        _residual_products(X, working, y, eta, mu, offset, link_code, start, xwz_blocks)
        start = start + linalg.cho_solve(factor, xwz_blocks.sum(axis=0))  # one refinement step
        _update(X, y, weights, offset, start, family_code, link_code, new_eta, new_mu, deviance_blocks)
        dev = float(deviance_blocks.sum())
        if not (math.isfinite(dev) and family.link.valideta(new_eta) and family.validmu(new_mu)):
            raise NotForLargePath
        eta, new_eta = new_eta, eta
        mu, new_mu = new_mu, mu
        coef = start
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            break
        dev_old = dev
    return coef, linalg.cho_solve(factor, np.eye(p)), eta, mu, dev, iterations, converged, working
