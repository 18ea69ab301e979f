"""Stage 3, lme4's ``optimizeGlmer``: start values, the outer optimisation over (theta, beta)
to the exact optimum of the approximation, and the Hessian for the standard errors.

Start (as lme4): beta from the GLM without random effects, each term's factor the identity.
The general Laplace deviance has no analytic gradient here; its central differences are
accurate to about 1e-6 (PIRLS runs to a step of 1e-10), which is ample for BFGS, whose
inverse Hessian is seeded with a forward-difference Hessian (the parameters' scales differ
by 10^4 on the reference models), and Newton steps with the central-difference Hessian
finish at the optimum. The search runs without bounds: the deviance depends on each
term's factor T only through T T', so a column of T with a negative diagonal is flipped
(``canonical_theta``), giving lme4's parametrisation with the same deviance, bit for bit.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from glmflow.families import Family
from glmflow.formula import Design
from glmflow.glmm.design import GlmmDesign
from glmflow.models import glm_fit

HESSIAN_STEP = 1e-4  # lme4's deriv12 step
GRADIENT_STEP = 1e-5


def glm_start(design: Design, family: Family, prior: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The fixed effects of the GLM without random effects (lme4's start for beta)."""
    return glm_fit(design.X, design.y, family, weights=prior, offset=offset).coef


def irls_start(design: Design, family: Family, prior: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The same GLM by IRLS on the normal equations (Cholesky), from R's mustart, to a
    relative deviance change of 1e-8: a start needs no QR's accuracy, and on verbagg
    (7584 x 6) this takes 4 ms where glm.fit's QR path takes 80 ms."""
    X, y = design.X, design.y
    mu = family.initialize(y, prior).mustart
    eta = family.linkfun(mu)
    beta, previous = np.zeros(X.shape[1]), np.inf
    for _ in range(50):
        mu_eta = family.mu_eta(eta)
        weights = prior * mu_eta**2 / family.variance(mu)
        z = eta - offset + (y - mu) / mu_eta
        beta = np.linalg.solve(X.T @ (weights[:, None] * X), X.T @ (weights * z))
        eta = X @ beta + offset
        mu = family.linkinv(eta)
        deviance = float(np.sum(family.dev_resids(y, mu, prior)))
        if abs(deviance - previous) <= 1e-8 * (abs(deviance) + 0.1):
            break
        previous = deviance
    return beta


def canonical_theta(glmm_design: GlmmDesign, theta: np.ndarray) -> np.ndarray:
    """theta with every factor column whose diagonal entry is negative negated (same T T')."""
    factors = [T * np.where(np.diag(T) < 0, -1.0, 1.0)[None, :] for T in glmm_design.factors(theta)]
    return glmm_design.theta_of(factors)


def derivatives(objective, x: np.ndarray, step: float = HESSIAN_STEP):
    """lme4's ``deriv12``: value, central-difference gradient and Hessian from function values
    (1 + 2p + 2p(p - 1) calls)."""
    p = len(x)
    f0 = objective(x)
    gradient, hessian = np.empty(p), np.empty((p, p))
    plus, minus = np.empty(p), np.empty(p)
    for i in range(p):
        e = np.zeros(p)
        e[i] = step
        plus[i], minus[i] = objective(x + e), objective(x - e)
        gradient[i] = (plus[i] - minus[i]) / (2 * step)
        hessian[i, i] = (plus[i] - 2 * f0 + minus[i]) / step**2
    for i in range(p):
        for j in range(i):
            ei, ej = np.zeros(p), np.zeros(p)
            ei[i], ej[j] = step, step
            value = (objective(x + ei + ej) - objective(x + ei - ej) - objective(x - ei + ej)
                     + objective(x - ei - ej)) / (4 * step**2)  # fmt: skip
            hessian[i, j] = hessian[j, i] = value
    return f0, gradient, hessian


def central_gradient(objective, x: np.ndarray, step: float = GRADIENT_STEP) -> np.ndarray:
    gradient = np.empty(len(x))
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = step * max(1.0, abs(x[i]))
        gradient[i] = (objective(x + e) - objective(x - e)) / (2 * e[i])
    return gradient


def forward_hessian(objective, x: np.ndarray, step: float = HESSIAN_STEP) -> np.ndarray:
    p = len(x)
    f0 = objective(x)
    single = np.array([objective(x + step * np.eye(p)[i]) for i in range(p)])
    hessian = np.empty((p, p))
    for i in range(p):
        for j in range(i + 1):
            both = objective(x + step * (np.eye(p)[i] + np.eye(p)[j]))
            hessian[i, j] = hessian[j, i] = (both - single[i] - single[j] + f0) / step**2
    return hessian


def _inverse_seed(hessian: np.ndarray) -> np.ndarray:
    try:
        inverse = np.linalg.inv(hessian)
        inverse = (inverse + inverse.T) / 2
        if np.any(np.linalg.eigvalsh(inverse) <= 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        inverse = np.diag(1.0 / np.maximum(np.abs(np.diag(hessian)), 1e-8))
    return inverse


def minimise_laplace(objective, start: np.ndarray, glmm_design: GlmmDesign):
    """The optimum of the general Laplace deviance: (params, value, gradient, Hessian,
    converged, message). With the analytic gradient (``objective.canonical``): BFGS seeded
    with a forward-difference Hessian of the gradient, then Newton steps with the central one;
    otherwise the same on central differences of values (lme4's deriv12 for the Hessian)."""
    n_theta = glmm_design.n_theta
    if objective.canonical:
        value_and_gradient = objective.value_and_gradient

        def local(x):
            value, gradient = value_and_gradient(x)
            return value, gradient, hessian_by_differences(value_and_gradient, x)

        seed = hessian_by_differences(value_and_gradient, start, central=False)
    else:

        def value_and_gradient(x):
            return objective(x), central_gradient(objective, x)

        def local(x):
            return derivatives(objective, x)

        seed = forward_hessian(objective, start)
    result = optimize.minimize(
        value_and_gradient, start, jac=True, method="BFGS",
        options={"gtol": 1e-3, "maxiter": 1000, "hess_inv0": _inverse_seed(seed)},
    )  # fmt: skip
    params = result.x.copy()
    params[:n_theta] = canonical_theta(glmm_design, params[:n_theta])
    value, gradient, hessian = local(params)
    for _ in range(6):  # Newton steps; the Hessian is recomputed only after a step above 1e-4
        if np.max(np.abs(gradient)) < 1e-6:
            break
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            break
        candidate = params - step
        candidate[:n_theta] = canonical_theta(glmm_design, candidate[:n_theta])
        candidate_value, candidate_gradient = value_and_gradient(candidate)
        if not candidate_value < value + 1e-9:
            break
        params, value, gradient = candidate, candidate_value, candidate_gradient
        if np.max(np.abs(step)) > 1e-4:
            value, gradient, hessian = local(params)
    try:  # the Newton decrement: what a further step would gain, in deviance
        converged = bool(gradient @ np.linalg.solve(hessian, gradient) < 1e-6)
    except np.linalg.LinAlgError:
        converged = False
    if objective.canonical:
        hessian = precise_hessian(value_and_gradient, params, hessian, gradient=True)
    else:
        hessian = precise_hessian(objective, params, hessian, gradient=False)
    return params, value, gradient, hessian, converged, str(result.message)


def hessian_by_differences(objective, params: np.ndarray, step: float = HESSIAN_STEP, central: bool = True):
    """Differences of the analytic gradient, symmetrised: central (for standard errors) or
    forward (half the calls, for a starting inverse Hessian)."""
    size = len(params)
    hessian = np.empty((size, size))
    base = None if central else objective(params)[1]
    for j in range(size):
        offset = np.zeros(size)
        offset[j] = step
        if central:
            hessian[:, j] = (objective(params + offset)[1] - objective(params - offset)[1]) / (2 * step)
        else:
            hessian[:, j] = (objective(params + offset)[1] - base) / step
    return (hessian + hessian.T) / 2


def precise_hessian(objective, params: np.ndarray, rough: np.ndarray, gradient: bool) -> np.ndarray:
    """The Hessian for the standard errors, from differences with a step per parameter scaled to
    its curvature (``rough``: a first Hessian) and Richardson's extrapolation of two step sizes.

    An absolute step (lme4's deriv12 takes 1e-4 for every parameter) is far too long for a
    slope of a predictor of size 500 (it moves eta by 0.05) and too short for a variance
    near 0: SEs off by 1-25% on such models against numDeriv's Hessian of lme4's objective.
    Here each step moves the deviance by about ``scale``^2 (1e-6 with an analytic gradient;
    1e-2 from values, which carry PIRLS's rounding: on bdf's Gamma(log) slope model steps a
    tenth as long gave SEs 3% off), and the extrapolation cancels the O(step^2) error.
    ``objective`` returns (value, gradient) when ``gradient``, else a value."""
    curvature = np.abs(np.diag(rough))
    scale = 1e-3 if gradient else 1e-1
    steps = scale / np.sqrt(np.where(np.isfinite(curvature) & (curvature > 1e-12), curvature, 1.0))
    steps = np.clip(steps, 1e-7, 1e-1)

    def at(h):
        return _gradient_differences(objective, params, h) if gradient else _value_differences(objective, params, h)

    coarse, fine = at(steps), at(steps / 2)
    hessian = (4 * fine - coarse) / 3
    return (hessian + hessian.T) / 2


def _gradient_differences(objective, params: np.ndarray, steps: np.ndarray) -> np.ndarray:
    size = len(params)
    hessian = np.empty((size, size))
    for j in range(size):
        offset = np.zeros(size)
        offset[j] = steps[j]
        hessian[:, j] = (objective(params + offset)[1] - objective(params - offset)[1]) / (2 * steps[j])
    return hessian


def _value_differences(objective, params: np.ndarray, steps: np.ndarray) -> np.ndarray:
    size = len(params)
    f0 = objective(params)
    hessian = np.empty((size, size))
    for i in range(size):
        e = np.zeros(size)
        e[i] = steps[i]
        hessian[i, i] = (objective(params + e) - 2 * f0 + objective(params - e)) / steps[i] ** 2
        for j in range(i):
            d = np.zeros(size)
            d[j] = steps[j]
            value = (objective(params + e + d) - objective(params + e - d) - objective(params - e + d)
                     + objective(params - e - d)) / (4 * steps[i] * steps[j])  # fmt: skip
            hessian[i, j] = hessian[j, i] = value
    return hessian


def minimise_scalar(objective, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, str]:
    """The optimum and the Hessian there. BFGS from the start, its inverse Hessian seeded with
    a forward-difference Hessian (the parameters' scales differ by 10^4, which otherwise
    costs many iterations); then the central-difference Hessian at BFGS's answer and Newton
    steps with it, to the optimum's last digits. The steps are below 1e-5, so that Hessian
    is the optimum's to the precision the standard errors need."""
    inverse = _inverse_seed(hessian_by_differences(objective, start, central=False))
    result = optimize.minimize(
        objective, start, jac=True, method="BFGS", options={"gtol": 1e-5, "maxiter": 500, "hess_inv0": inverse}
    )
    params = result.x
    params[0] = abs(params[0])  # the deviance is even in theta; the search runs unconstrained
    hessian = hessian_by_differences(objective, params)
    deviance, gradient = objective(params)
    for _ in range(4):
        if np.max(np.abs(gradient)) < 1e-9:
            break
        candidate = params - np.linalg.solve(hessian, gradient)
        candidate_deviance, candidate_gradient = objective(candidate)
        if candidate_deviance > deviance + 1e-9:  # worse beyond rounding noise
            break
        params, deviance, gradient = candidate, candidate_deviance, candidate_gradient
    params[0] = abs(params[0])
    converged = np.max(np.abs(gradient)) < 1e-4
    hessian = precise_hessian(objective, params, hessian, gradient=True)
    return params, hessian, converged, str(result.message)
