"""A mixed model's log-likelihood recomputed from its written estimates, independently of the
fitting code: it shares the families' densities with it, not the modes, the optimiser, the
factorisation or the quadrature.

One scalar random intercept (binomial or Poisson, any link): each group's mode by scipy's
bounded scalar minimiser, then the Laplace or Gauss-Hermite formula (spread by the Fisher
weights' conditional SD, as lme4's); and the exact marginal log-likelihood by
brute-force quadrature, whose distance from the fitted value is the approximation's error.
Any other structure: Z Lambda as a scipy sparse matrix, the modes by Fisher scoring with
SuperLU solves, log|H| from the LU factor (so the check scales as the fit does; a dense
n x q matrix would need 8 GB for 100,000 rows and 10,000 groups).
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize, sparse, special
from scipy.sparse import linalg

from glmflow.families import Family


def glmm_likelihood_check(model: str, glmm_design, family: Family, nAGQ: int, theta, beta, loglik: float,
                          tolerance: float = 1e-6) -> dict:  # fmt: skip
    recomputed, exact = _recompute(glmm_design, family, nAGQ, theta, beta, marginal=True)
    return {
        "model": model,
        "family": family.name,
        "link": family.link.name,
        "nAGQ": nAGQ,
        **_agreement(recomputed, loglik, tolerance),
        "logLik_exact_marginal": None if exact is None else float(exact),
        "approximation_error": None if exact is None else float(loglik - exact),
    }


def recomputed_loglik(glmm_design, family: Family, nAGQ: int, theta, beta) -> float:
    """The log-likelihood as ``glmm_likelihood_check`` recomputes it, without the exact marginal
    (for differences of it)."""
    return _recompute(glmm_design, family, nAGQ, theta, beta, marginal=False)[0]


def _recompute(glmm_design, family: Family, nAGQ: int, theta, beta, marginal: bool) -> tuple[float, float | None]:
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    beta = np.asarray(beta, dtype=float)
    # one random intercept, binomial or Poisson (any link; the scalar engine fits the canonical ones)
    if glmm_design.is_scalar_intercept and not family.dispersion_in_loglik:
        return _scalar(glmm_design, family, nAGQ, float(theta[0]), beta, marginal)
    return _sparse_laplace(glmm_design, family, theta, beta), None


def _scalar(glmm_design, family: Family, nAGQ: int, theta: float, beta: np.ndarray, marginal: bool):
    """Per group: the Laplace / AGQ value and, with ``marginal``, the brute-force marginal
    (trapezoid rule over u within 12 conditional SDs of the mode, spectrally accurate for these
    smooth integrands): about 2e-3 apart for Laplace on the chapter's model, 2e-7 for nAGQ = 10."""
    design, term = glmm_design.design, glmm_design.terms[0]
    eta0 = design.X @ beta + glmm_design.offset
    if nAGQ == 1:
        nodes, weights = np.array([0.0]), np.array([np.sqrt(2 * np.pi)])
    else:
        nodes, weights = hermegauss(nAGQ)
    grid = np.linspace(-12.0, 12.0, 4001)
    approximation = exact = 0.0
    for j in range(term.n_levels):
        rows = term.codes == j
        y, eta, prior = design.y[rows], eta0[rows], glmm_design.prior[rows]

        def log_joint(u, y=y, eta=eta, prior=prior):
            """log p(y_j | u) + log phi(u), for an array of u."""
            u = np.atleast_1d(u)
            linear = eta[:, None] + theta * u[None, :]
            if family.is_default_link:
                logp = family.canonical_log_density(y[:, None], linear, prior[:, None]).sum(axis=0)
            else:
                logp = family.log_density(y[:, None], family.linkinv(linear), prior[:, None]).sum(axis=0)
            return logp - u**2 / 2 - 0.5 * np.log(2 * np.pi)

        found = optimize.minimize_scalar(lambda u: -log_joint(u)[0], bounds=(-30, 30), method="bounded",
                                         options={"xatol": 1e-12})  # fmt: skip
        mode = found.x
        # the Fisher weights, as lme4's factor L (the observed ones for a canonical link)
        linear = eta + theta * mode
        mu = family.linkinv(linear)
        scale = 1 / np.sqrt(1 + theta**2 * np.sum(prior * family.mu_eta(linear) ** 2 / family.variance(mu)))
        terms = np.log(weights) + nodes**2 / 2 + log_joint(mode + scale * nodes)
        approximation += np.log(scale) + special.logsumexp(terms)
        if not marginal:
            continue
        u = mode + scale * grid
        values = log_joint(u)
        peak = values.max()
        exact += peak + np.log(np.trapezoid(np.exp(values - peak), dx=u[1] - u[0]))
    return approximation, exact if marginal else None


def _sparse_laplace(glmm_design, family: Family, theta: np.ndarray, beta: np.ndarray) -> float:
    """-(1/2)(-2 log p(y | u*) + |u*|^2 + log|Lambda'Z'WZ Lambda + I|), with Z Lambda as a scipy
    sparse matrix and H factored by SuperLU: the modes by Fisher scoring with step-halving to a
    step below 1e-11, log|H| from the LU factor's diagonal (H is symmetric positive definite).
    A family with a dispersion is lme4's objective: the modes minimise the deviance + |u|^2, and
    -2 log p(y | u*) is then the family's density at the dispersion from that deviance, + 2
    (R's family$aic; ``Family.log_density`` with ``deviance``)."""
    design = glmm_design.design
    ZL = _z_lambda(glmm_design, theta)
    eta0 = design.X @ beta + glmm_design.offset
    y, prior = design.y, glmm_design.prior

    with_dispersion = family.dispersion_in_loglik

    def penalised(u):
        mu = family.linkinv(eta0 + ZL @ u)
        if not with_dispersion:
            return -2 * float(np.sum(family.log_density(y, mu, prior))) + u @ u
        if not np.all(np.isfinite(mu)) or (family.positive_mean and np.any(mu <= 0)):
            return np.inf
        return float(np.sum(family.dev_resids(y, mu, prior))) + u @ u

    def factor(u):
        """H = Lambda'Z'WZ Lambda + I (Fisher weights) and the score Lambda'Z' s - u, at u."""
        eta = eta0 + ZL @ u
        mu, mu_eta = family.linkinv(eta), family.mu_eta(eta)
        variance = family.variance(mu)
        H = (ZL.T @ sparse.diags(prior * mu_eta**2 / variance) @ ZL + sparse.identity(len(u))).tocsc()
        return linalg.splu(H), ZL.T @ (prior * (y - mu) * mu_eta / variance) - u

    u = np.zeros(ZL.shape[1])
    value = penalised(u)
    for _ in range(200):
        lu, score = factor(u)
        step = lu.solve(score)
        if np.max(np.abs(step)) < 1e-11:
            break
        fraction = 1.0
        while penalised(u + fraction * step) > value + 1e-10 * abs(value) and fraction > 1e-10:
            fraction /= 2
        u = u + fraction * step
        value = penalised(u)
    logdet = float(np.sum(np.log(np.abs(lu.U.diagonal()))))
    if with_dispersion:
        mu = family.linkinv(eta0 + ZL @ u)
        deviance = float(np.sum(family.dev_resids(y, mu, prior)))
        value += -2 * float(np.sum(family.log_density(y, mu, prior, deviance))) + 2 - deviance
    return -(value + logdet) / 2


def _z_lambda(glmm_design, theta: np.ndarray) -> sparse.csr_matrix:
    """Z Lambda as a scipy sparse matrix (n x q), the terms' columns in u's order."""
    n, blocks = len(glmm_design.design.y), []
    for term, T in zip(glmm_design.terms, glmm_design.factors(theta), strict=True):
        columns = term.codes[:, None] * term.k + np.arange(term.k)[None, :]
        rows = np.repeat(np.arange(n), term.k)
        Z = sparse.csr_matrix((term.matrix.ravel(), (rows, columns.ravel())), shape=(n, term.n_levels * term.k))
        blocks.append(Z @ sparse.kron(sparse.identity(term.n_levels), T))
    return sparse.hstack(blocks).tocsr()


def lmm_likelihood_check(model: str, glmm_design, theta, beta, sigma: float, reml: bool, loglik: float,
                         tolerance: float = 1e-6) -> dict:  # fmt: skip
    """A linear mixed model's log-likelihood (REML's for a REML fit, as R's logLik()) from the
    marginal distribution y ~ N(X beta + offset, V), V = sigma^2 (W^-1 + Z Lambda Lambda'Z'), by
    Woodbury's identity with H = Lambda'Z'WZ Lambda + I factored by SuperLU:
    -2 logLik = n log(2 pi) + log|V| + r'V^-1 r, plus log|X'V^-1 X| - p log(2 pi) for REML."""
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    design, w = glmm_design.design, glmm_design.prior
    X, n, p = design.X, len(design.y), design.X.shape[1]
    ZL = _z_lambda(glmm_design, theta)
    lu = linalg.splu((ZL.T @ sparse.diags(w) @ ZL + sparse.identity(ZL.shape[1])).tocsc())
    logdet_h = float(np.sum(np.log(np.abs(lu.U.diagonal()))))

    def v_inverse(matrix):  # sigma^2 V^-1 = W - W Z Lambda H^-1 Lambda'Z'W
        weighted = w[:, None] * matrix
        return weighted - w[:, None] * (ZL @ lu.solve(np.asarray(ZL.T @ weighted)))

    residual = (design.y - X @ np.asarray(beta, dtype=float) - glmm_design.offset)[:, None]
    minus2 = n * np.log(2 * np.pi * sigma**2) - float(np.sum(np.log(w))) + logdet_h
    minus2 += float((residual.T @ v_inverse(residual))[0, 0]) / sigma**2
    if reml:
        minus2 += float(np.linalg.slogdet(X.T @ v_inverse(X) / sigma**2)[1]) - p * np.log(2 * np.pi)
    recomputed = -minus2 / 2
    return {
        "model": model,
        "family": "gaussian",
        "link": "identity",
        "REML": reml,
        **_agreement(recomputed, loglik, tolerance),
    }


def _agreement(recomputed: float, loglik: float, tolerance: float) -> dict:
    return {
        "logLik_fitted": loglik,
        "logLik_recomputed": float(recomputed),
        "difference": float(recomputed - loglik),
        "tolerance": tolerance,
        "ok": bool(abs(recomputed - loglik) <= tolerance),
    }
