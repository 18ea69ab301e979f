"""Stage 3, lme4's ``optimizeGlmer``: start values, the outer optimisation over (theta, beta)
to the exact optimum of the approximation, and the Hessian for the standard errors.

Start (as lme4): beta from the GLM without random effects, each term's factor the identity;
then, as lme4's first stage (nAGQ = 0), theta alone by a bounded derivative-free search with
beta profiled by PIRLS (``stage_zero``, where ``stage_zero_needed``), whose answer starts the
search over (theta, beta).
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
CURVATURE_TARGET = 1e-3  # the deviance change of derivatives()' steps
GRADIENT_STEP = 1e-5


def glm_start(design: Design, family: Family, prior: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The fixed effects of the GLM without random effects (lme4's start for beta)."""
    return glm_fit(design.X, design.y, family, weights=prior, offset=offset).coef


def irls_start(design: Design, family: Family, prior: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The same GLM by IRLS on the normal equations (Cholesky), from R's mustart, to a
    relative deviance change of 1e-8: a start needs no QR's accuracy."""
    # verbagg (7584 x 6): 4 ms, where glm.fit's QR path took 80 ms
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


def derivatives(objective, x: np.ndarray, step: float = HESSIAN_STEP, scales: np.ndarray | None = None):
    """lme4's ``deriv12``: value, central-difference gradient and Hessian from function values
    (1 + 2p + 2p(p - 1) calls), each parameter's step fitted to its curvature. PIRLS leaves
    rounding of a few 1e-9 in the deviance, which second differences divide by step^2: lme4's
    step of 1e-4 loses a Gamma(identity) model's curvatures (0.016 for an intercept of 260,
    0.0026 for a theta of 191), giving a negative diagonal and NaN SEs, and is 1% off on co2's
    inverse.gaussian model. So a first pass at lme4's step measures each curvature H_ii and the
    step becomes sqrt(2 CURVATURE_TARGET / H_ii), a change of 1e-3 in the deviance: rounding
    then costs 1e-5 of the curvature, and the quadratic region of a deviance spans units."""
    p = len(x)
    f0 = objective(x)
    scales = np.ones(p) if scales is None else scales
    steps = np.array([_curvature_step(objective, x, f0, i, step / scales[i], scales[i]) for i in range(p)])
    return _value_differences(objective, x, steps, f0)


def _curvature_step(objective, x: np.ndarray, f0: float, i: int, step: float, scale: float = 1.0) -> float:
    """The step along parameter i that changes the deviance by about CURVATURE_TARGET: from a
    curvature measured at lme4's step over the column's scale (10x larger while rounding makes it
    non-positive, 100x
    smaller while the step leaves the region where PIRLS converges: a coefficient of conc^2,
    whose column reaches 1e6), then measured again at the step it gives."""
    largest = 0.1 * max(1.0 / scale, abs(x[i]))
    for _ in range(2):
        for _ in range(5):
            e = np.zeros(len(x))
            e[i] = step
            curvature = (objective(x + e) - 2 * f0 + objective(x - e)) / step**2
            if np.isfinite(curvature) and curvature > 0:
                break
            if np.isfinite(curvature) and step >= largest:
                break
            step = min(10 * step, largest) if np.isfinite(curvature) else step / 100
        if not (np.isfinite(curvature) and curvature > 0):
            return step
        step = min(np.sqrt(2 * CURVATURE_TARGET / curvature), largest)
    return step


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
    with ``_seed_hessian`` (gradient differences in theta, beta's profiled information), then
    Newton steps with BFGS's own Hessian at its answer, and one central pass of curvature-sized
    steps for the SEs (and the Newton decrement of ``converged``); otherwise BFGS on central
    differences of values, Newton steps with their Hessian (lme4's deriv12) and Richardson's
    for the SEs."""
    n_theta = glmm_design.n_theta
    if objective.canonical:
        value_and_gradient = objective.value_and_gradient
        # beta's block from its information, not p - n_theta more gradients: verbagg 45
        # evaluations instead of 51, contraception 49 for 56, bdf 26 for 29; BFGS's iterations unchanged
        seed = _seed_hessian(objective, value_and_gradient, start, n_theta)
    else:

        def value_and_gradient(x):
            return objective(x), central_gradient(objective, x)

        # each parameter's first probe in eta units: a coefficient's step divided by its column's scale
        scales = np.concatenate([np.ones(n_theta), np.maximum(1.0, np.max(np.abs(glmm_design.design.X), axis=0))])

        def local(x):
            return derivatives(objective, x, scales=scales)

        seed = forward_hessian(objective, start)
    result = optimize.minimize(
        value_and_gradient, start, jac=True, method="BFGS", callback=_stop_at_rounding(),
        options={"gtol": 1e-3, "maxiter": 1000, "hess_inv0": _inverse_seed(seed)},
    )  # fmt: skip
    params = result.x.copy()
    params[:n_theta] = canonical_theta(glmm_design, params[:n_theta])
    if objective.canonical:
        # Newton's steps with BFGS's own Hessian (a column's sign flipped by canonical_theta
        # flips its rows and columns), not a forward-difference one (p more evaluations): verbagg
        # 51 evaluations instead of 58, contraception 56 for 64; the SEs moved 1e-8 relative at most
        signs = np.where(params * result.x < 0, -1.0, 1.0)
        approx = np.linalg.inv((result.hess_inv + result.hess_inv.T) / 2) * np.outer(signs, signs)

        def local(x):
            value, gradient = value_and_gradient(x)
            return value, gradient, approx

    params, value, gradient, hessian, fresh = _newton_steps(value_and_gradient, local, params, glmm_design)
    params, value = _snap_to_boundary(value_and_gradient, params, value, n_theta)
    if not objective.canonical and not fresh:  # the gradient reported is derivatives()', not BFGS's
        value, gradient, hessian = local(params)
    if objective.canonical:
        hessian = precise_hessian(value_and_gradient, params, hessian, gradient=True, extrapolate=False)
    else:
        hessian = precise_hessian(objective, params, hessian, gradient=False)
    try:  # the Newton decrement: what a further step would gain, in deviance
        converged = bool(gradient @ np.linalg.solve(hessian, gradient) < 1e-6)
    except np.linalg.LinAlgError:
        converged = False
    return params, value, gradient, hessian, converged, str(result.message)


# BFGS stops where an iteration lowers the deviance by less than this, relative: the deviance is
# a sum over the rows, whose rounding (and PIRLS's) moves it by about 1e-14 relative, below which
# BFGS's line searches compare noise. InstEval binary: 71 evaluations, 57 of them line searches
# around one point with a gradient of 1.4e-3 (gtol 1e-3); stopped here, 13, and Newton's steps
# finish. At 1e-11 verbagg took 3 more evaluations (BFGS stopped before its Hessian was good).
BFGS_FTOL = 1e-12


def _stop_at_rounding():
    """BFGS's callback: StopIteration (BFGS then returns its point and inverse Hessian) once an
    iteration lowers the deviance by less than BFGS_FTOL relative."""
    previous = [np.inf]

    def callback(intermediate_result) -> None:
        value = float(intermediate_result.fun)
        if previous[0] - value <= BFGS_FTOL * max(abs(value), 1.0):
            raise StopIteration
        previous[0] = value

    return callback


def _seed_hessian(objective, value_and_gradient, start: np.ndarray, n_theta: int) -> np.ndarray:
    """BFGS's first Hessian: forward differences of the gradient in theta's directions only, and
    beta's block from the information of beta with u profiled out (``objective.beta_information``):
    n_theta + 1 gradients and one PIRLS in place of p + 1 gradients."""
    size = len(start)
    hessian = np.empty((size, size))
    probes = [value_and_gradient(start + HESSIAN_STEP * np.eye(size)[j])[1] for j in range(n_theta)]
    base = value_and_gradient(start)[1]  # the start last: beta_information and BFGS find it evaluated
    for j, probe in enumerate(probes):
        hessian[:, j] = (probe - base) / HESSIAN_STEP
    hessian[n_theta:, n_theta:] = objective.beta_information(start)
    hessian[:n_theta, n_theta:] = hessian[n_theta:, :n_theta].T
    hessian[:n_theta, :n_theta] = (hessian[:n_theta, :n_theta] + hessian[:n_theta, :n_theta].T) / 2
    return hessian


def _newton_steps(value_and_gradient, local, params: np.ndarray, glmm_design: GlmmDesign):
    """Newton's steps from ``params`` with ``local``'s Hessian, while the gradient is above 1e-6
    and the deviance falls; ``local`` is asked for it again only after a step above 1e-4 (with
    the analytic gradient it is BFGS's, the same each time). Returns (params, value, gradient,
    Hessian, fresh: whether that Hessian was taken at the final point)."""
    n_theta = glmm_design.n_theta
    value, gradient, hessian = local(params)
    fresh = True
    for _ in range(6):
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
        fresh = np.max(np.abs(step)) > 1e-4
        if fresh:
            value, gradient, hessian = local(params)
    return params, value, gradient, hessian, fresh


def _snap_to_boundary(value_and_gradient, params: np.ndarray, value: float, n_theta: int):
    """A theta the unbounded search leaves at 1e-14 where the optimum is on the boundary (a
    variance of 0, a singular fit): set to 0, as lme4's bounded bobyqa reports it, when the
    deviance is no worse (it is flat there: quadratic in theta)."""
    tiny = np.abs(params[:n_theta]) < 1e-7
    if not tiny.any() or not np.any(params[:n_theta][tiny] != 0):
        return params, value
    snapped = params.copy()
    snapped[:n_theta][tiny] = 0.0
    snapped_value = value_and_gradient(snapped)[0]
    return (snapped, snapped_value) if snapped_value <= value + 1e-10 else (params, value)


def hessian_by_differences(objective, params: np.ndarray, step: float = HESSIAN_STEP, central: bool = True):
    """Differences of the analytic gradient, symmetrised: central (for standard errors) or
    forward (half the calls, for a starting inverse Hessian)."""
    size = len(params)
    if central:
        hessian = _gradient_differences(objective, params, np.full(size, step))
    else:
        hessian = np.empty((size, size))
        base = objective(params)[1]
        for j in range(size):
            offset = np.zeros(size)
            offset[j] = step
            hessian[:, j] = (objective(params + offset)[1] - base) / step
    return (hessian + hessian.T) / 2


def precise_hessian(
    objective, params: np.ndarray, rough: np.ndarray, gradient: bool, extrapolate: bool = True
) -> np.ndarray:
    """The Hessian for the standard errors, from differences with a step per parameter scaled to
    its curvature (``rough``: a first Hessian) and Richardson's extrapolation of two step sizes.

    An absolute step (lme4's deriv12 takes 1e-4 for every parameter) is far too long for a
    slope of a predictor of size 500 (it moves eta by 0.05) and too short for a variance
    near 0: SEs off by 1-25% on such models against numDeriv's Hessian of lme4's objective.
    Here each step moves the deviance by about ``scale``^2 (1e-6 with an analytic gradient;
    1e-2 from values, which carry PIRLS's rounding: on bdf's Gamma(log) slope model steps a
    tenth as long gave SEs 3% off), and the extrapolation cancels the O(step^2) error. Without
    ``extrapolate``, one central pass at the finer step (half the calls): from the general
    engine's analytic gradient at these steps, the extrapolation moved the SEs of the reference
    and scale models by 2e-7 relative at most. ``objective`` returns (value, gradient) when
    ``gradient``, else a value."""
    curvature = np.abs(np.diag(rough))
    scale = 1e-3 if gradient else 1e-1
    steps = scale / np.sqrt(np.where(np.isfinite(curvature) & (curvature > 1e-12), curvature, 1.0))
    steps = np.clip(steps, 1e-7, 1e-1)

    def at(h):
        return _gradient_differences(objective, params, h) if gradient else _value_differences(objective, params, h)[2]

    if not extrapolate:
        hessian = at(steps / 2)
        return (hessian + hessian.T) / 2
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


def _value_differences(objective, params: np.ndarray, steps: np.ndarray, f0: float | None = None):
    """Value, central-difference gradient and Hessian from function values with a step per
    parameter (1 + 2p + 2p(p - 1) calls)."""
    size = len(params)
    f0 = objective(params) if f0 is None else f0
    gradient, hessian = np.empty(size), np.empty((size, size))
    for i in range(size):
        e = np.zeros(size)
        e[i] = steps[i]
        plus, minus = objective(params + e), objective(params - e)
        gradient[i] = (plus - minus) / (2 * steps[i])
        hessian[i, i] = (plus - 2 * f0 + minus) / steps[i] ** 2
        for j in range(i):
            d = np.zeros(size)
            d[j] = steps[j]
            value = (objective(params + e + d) - objective(params + e - d) - objective(params - e + d)
                     + objective(params - e - d)) / (4 * steps[i] * steps[j])  # fmt: skip
            hessian[i, j] = hessian[j, i] = value
    return f0, gradient, hessian


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


# A random-effect column beyond this size in absolute value (a covariate in the hundreds) makes
# the joint search from lme4's start stall; at this size and below it does not.
STAGE_ZERO_SCALE = 10.0


def stage_zero_needed(objective, glmm_design: GlmmDesign) -> bool:
    """Whether the search over (theta, beta) needs ``stage_zero``'s start. With the analytic
    gradient (canonical links) and random-effect columns of unit scale (intercepts,
    standardised slopes), BFGS from lme4's start reaches the same optimum with fewer
    evaluations than the first stage costs; the first stage is kept where it helps: links
    without the analytic gradient, dispersion families and large covariates."""
    # InstEval binary: the first stage's 95 factorisations were half the fit, and the joint
    # search after it took more evaluations, not fewer; on the probit fits it brings the
    # optimum 1e-4 closer to tight lme4.
    if not objective.canonical or objective.has_dispersion:
        return True
    return any(np.max(np.abs(term.matrix), initial=0.0) > STAGE_ZERO_SCALE for term in glmm_design.terms)


def stage_zero(objective, start: np.ndarray, glmm_design: GlmmDesign) -> np.ndarray:
    """lme4's first stage (``nAGQ0initStep``): theta alone optimised by a derivative-free,
    bounded search on the nAGQ = 0 objective, beta profiled by PIRLS (``objective.profiled``);
    its (theta, beta) start the full optimisation. From lme4's start (each factor the
    identity, beta from the GLM), a joint search over (theta, beta) can stall far from the
    optimum where a random slope's covariate is on a scale of hundreds (exp(500 u) in the
    linear predictor, a surface with no useful gradient); the profiled search moves theta
    first, as lme4's does. The search is COBYQA (quadratic models in a trust region, as lme4's
    bobyqa): on InstEval's first 10,000 rows it took 27 profiled evaluations where Nelder-Mead
    took 67, to the same optimum."""
    n_theta = glmm_design.n_theta
    beta = [start[n_theta:].copy()]

    def value(theta):
        result, beta_theta = objective.profiled(theta, beta[0])
        if np.isfinite(result):
            beta[0] = beta_theta  # a warm start for the next theta
        return result

    lower = glmm_design.theta_lower()
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    result = optimize.minimize(
        value, start[:n_theta], method="COBYQA", bounds=bounds,  # steps of 0.1 at first, as bobyqa's rhobeg
        options={"initial_tr_radius": 0.1, "final_tr_radius": 1e-4, "maxfev": 400 * n_theta},
    )  # fmt: skip
    theta = result.x if np.isfinite(result.fun) else start[:n_theta]
    _, beta_final = objective.profiled(theta, beta[0])
    objective.u[:] = 0.0
    return np.concatenate([theta, beta_final])
