"""A mixed model's log-likelihood recomputed from its written estimates, independently of the
fitting code: it shares the families' densities with it, not the modes, the optimiser, the
factorisation or the quadrature.

One scalar random intercept (canonical link): each group's mode by scipy's bounded scalar
minimiser, then the Laplace or Gauss-Hermite formula; and the exact marginal log-likelihood by
brute-force quadrature, whose distance from the fitted value is the approximation's error.
Any other structure: dense linear algebra on the whole Z Lambda (numpy), the modes by scipy's
trust-region Newton on the penalised log-likelihood, log|H| by ``slogdet``.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize, special

from glmflow.families import Family


def glmm_likelihood_check(model: str, glmm_design, family: Family, nAGQ: int, theta, beta, loglik: float,
                          tolerance: float = 1e-6) -> dict:  # fmt: skip
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    beta = np.asarray(beta, dtype=float)
    if glmm_design.is_scalar_intercept and family.is_default_link:  # the scalar engine's models
        recomputed, exact = _scalar(glmm_design, family, nAGQ, float(theta[0]), beta)
    else:
        recomputed, exact = _dense_laplace(glmm_design, family, theta, beta), None
    return {
        "model": model,
        "family": family.name,
        "link": family.link.name,
        "nAGQ": nAGQ,
        "logLik_fitted": loglik,
        "logLik_recomputed": float(recomputed),
        "difference": float(recomputed - loglik),
        "tolerance": tolerance,
        "ok": bool(abs(recomputed - loglik) <= tolerance),
        "logLik_exact_marginal": None if exact is None else float(exact),
        "approximation_error": None if exact is None else float(loglik - exact),
    }


def _scalar(glmm_design, family: Family, nAGQ: int, theta: float, beta: np.ndarray) -> tuple[float, float]:
    """Per group: the Laplace / AGQ value and the brute-force marginal (trapezoid rule over u
    within 12 conditional SDs of the mode, spectrally accurate for these smooth integrands):
    about 2e-3 apart for Laplace on the chapter's model, 2e-7 for nAGQ = 10."""
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
            logp = family.canonical_log_density(y[:, None], linear, prior[:, None]).sum(axis=0)
            return logp - u**2 / 2 - 0.5 * np.log(2 * np.pi)

        found = optimize.minimize_scalar(lambda u: -log_joint(u)[0], bounds=(-30, 30), method="bounded",
                                         options={"xatol": 1e-12})  # fmt: skip
        mode = found.x
        w, _ = family.canonical_weight_and_slope(family.linkinv(eta + theta * mode))
        scale = 1 / np.sqrt(1 + theta**2 * np.sum(prior * w))
        terms = np.log(weights) + nodes**2 / 2 + log_joint(mode + scale * nodes)
        approximation += np.log(scale) + special.logsumexp(terms)
        u = mode + scale * grid
        values = log_joint(u)
        peak = values.max()
        exact += peak + np.log(np.trapezoid(np.exp(values - peak), dx=u[1] - u[0]))
    return approximation, exact


def _dense_laplace(glmm_design, family: Family, theta: np.ndarray, beta: np.ndarray) -> float:
    """-(1/2)(-2 log p(y | u*) + |u*|^2 + log|Lambda'Z'WZ Lambda + I|), all dense."""
    design = glmm_design.design
    blocks = []
    for term, T in zip(glmm_design.terms, glmm_design.factors(theta), strict=True):
        Z = np.zeros((len(design.y), term.n_levels * term.k))
        for c in range(term.k):
            Z[np.arange(len(design.y)), term.codes * term.k + c] = term.matrix[:, c]
        blocks.append(Z @ np.kron(np.eye(term.n_levels), T))
    ZL = np.hstack(blocks)
    eta0 = design.X @ beta + glmm_design.offset
    y, prior = design.y, glmm_design.prior

    def parts(u):
        eta = eta0 + ZL @ u
        mu = family.linkinv(eta)
        mu_eta = family.mu_eta(eta)
        variance = family.variance(mu)
        logp = family.log_density(y, mu, prior)
        return mu, mu_eta, variance, float(np.sum(logp))

    def objective(u):
        return -2 * parts(u)[3] + u @ u

    def gradient(u):
        mu, mu_eta, variance, _ = parts(u)
        return -2 * ZL.T @ (prior * (y - mu) * mu_eta / variance) + 2 * u

    def fisher(u):
        _, mu_eta, variance, _ = parts(u)
        return 2 * (ZL.T @ ((prior * mu_eta**2 / variance)[:, None] * ZL) + np.eye(len(u)))

    found = optimize.minimize(objective, np.zeros(ZL.shape[1]), jac=gradient, hess=fisher, method="trust-exact",
                              options={"gtol": 1e-10})  # fmt: skip
    u = found.x
    for _ in range(5):  # trust-exact stops at its gtol; Fisher scoring steps finish the mode
        step = np.linalg.solve(fisher(u), gradient(u))
        if not objective(u - step) <= objective(u):
            break
        u = u - step
    _, logdet = np.linalg.slogdet(fisher(u) / 2)
    return -(objective(u) + logdet) / 2
