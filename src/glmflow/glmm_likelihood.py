"""A mixed model's log-likelihood recomputed from its written estimates, independently of the
fitting code (it shares the families' densities with it, not the modes, the optimiser or the
quadrature), and the exact marginal log-likelihood by brute-force quadrature."""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize, special

from glmflow.glmm import FAMILIES


def glmm_likelihood_check(
    model: str, glmm_design, family_name: str, nAGQ: int, theta: float, beta, loglik: float, tolerance: float = 1e-6
) -> dict:
    """A mixed model's log-likelihood at its written (theta, beta), recomputed without the
    fitting code: each group's mode by scipy's bounded scalar minimiser, then the same Laplace
    or Gauss-Hermite formula; and the exact marginal log-likelihood by brute force (the
    trapezoid rule over u within 12 conditional SDs of the mode, spectrally accurate for these
    smooth integrands), whose distance from the fitted value is the approximation's error
    (about 2e-3 for Laplace on the chapter's model, 2e-7 for nAGQ = 10)."""
    family = FAMILIES[family_name]
    design, groups = glmm_design.design, glmm_design
    eta0 = design.X @ np.asarray(beta, dtype=float)
    if nAGQ == 1:
        nodes, weights = np.array([0.0]), np.array([np.sqrt(2 * np.pi)])
    else:
        nodes, weights = hermegauss(nAGQ)
    grid = np.linspace(-12.0, 12.0, 4001)
    approximation = exact = 0.0
    for j in range(groups.n_groups):
        rows = groups.group == j
        y, eta, prior = design.y[rows], eta0[rows], groups.prior[rows]

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
    return {
        "model": model,
        "family": family_name,
        "nAGQ": nAGQ,
        "logLik_fitted": loglik,
        "logLik_recomputed": float(approximation),
        "difference": float(approximation - loglik),
        "tolerance": tolerance,
        "ok": bool(abs(approximation - loglik) <= tolerance),
        "logLik_exact_marginal": float(exact),
        "approximation_error": float(loglik - exact),
    }
