"""The front door: ``fit_glmm`` fits a configured mixed model through lme4's four stages
(``design`` -> ``deviance`` -> ``optimize`` -> ``result``). One scalar random intercept with a
canonical link goes to the scalar engine (Laplace or nAGQ > 1, analytic gradient); every other
structure to the general Laplace engine, which also runs lme4's adaptive quadrature (nAGQ > 1)
for one scalar random intercept with a non-canonical link."""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from glmflow.errors import GlmflowError
from glmflow.families import family as glm_family
from glmflow.families import mixed_model_family_problem
from glmflow.glmm.design import GlmmDesign, build_glmm_design
from glmflow.glmm.deviance import LaplaceDeviance, QuadratureDeviance
from glmflow.glmm.lmm import fit_lmm
from glmflow.glmm.optimize import (
    glm_start,
    irls_start,
    minimise_laplace,
    minimise_scalar,
    stage_zero,
    stage_zero_needed,
)
from glmflow.glmm.result import CHECK_CONV_TOL, GlmmFit
from glmflow.glmm.scalar import ScalarDeviance, conditional_vcov
from glmflow.models import model_data
from glmflow.plan import is_linear_mixed
from glmflow.separation import detect_separation


def fit_glmm(data: pd.DataFrame, spec: dict, name: str) -> GlmmFit:
    """Fit a configured mixed model: ``formula`` in lme4's syntax, ``family`` and ``link``,
    optional ``weights``, ``offset``, ``filter``, ``nAGQ`` and ``REML``."""
    # One BLAS thread: the dense factor's LAPACK calls are small and frequent, and OpenBLAS's
    # threads spin against each other on a busy machine (a 377 x 377 Cholesky per PIRLS step:
    # 28 ms an evaluation with one thread, 437 ms with two, at load 9 on 2 cores); one thread
    # also makes the numbers independent of the machine's core count.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_glmm(data, spec, name)


def _fit_glmm(data: pd.DataFrame, spec: dict, name: str) -> GlmmFit:
    where = f"model {name!r} (dataset {spec.get('dataset')!r})"
    nAGQ = int(spec.get("nAGQ", 1))
    problem = mixed_model_family_problem(spec["family"], spec.get("link"), nAGQ)
    if problem:
        raise GlmflowError(f"{where}: {problem[1]}")
    try:
        family = glm_family(spec["family"], spec.get("link"))
    except GlmflowError as error:
        raise GlmflowError(f"{where}: {error}") from None
    rows = model_data(data, spec, name)
    gd = build_glmm_design(spec["formula"], rows, where, spec.get("weights"), spec.get("offset"))
    problem = family.mixed_response_problem(gd.design.y, gd.prior)
    if problem:
        raise GlmflowError(f"{where}: response {gd.design.response!r}: {problem}")
    if is_linear_mixed(spec):
        return _fit_linear(gd, spec, name, where)
    if family.dispersion_in_loglik:
        _check_exact_fit(gd, family.name, where)
    # logit binomial, log Poisson
    scalar = gd.is_scalar_intercept and family.is_default_link and not family.dispersion_in_loglik
    if nAGQ > 1 and not gd.is_scalar_intercept:
        raise GlmflowError(
            f"{where}: nAGQ = {nAGQ} needs a single scalar random intercept (1 | group), as lme4; "
            "use nAGQ: 1 (Laplace) for this model"
        )
    try:
        fit = _fit_scalar(gd, family, nAGQ) if scalar else fit_general(gd, family, nAGQ)
    except GlmflowError as error:
        raise GlmflowError(f"{where}: {error}") from None
    fit.name, fit.formula, fit.dataset = name, spec["formula"], spec.get("dataset", "data")
    fit.warnings[:0] = gd.messages  # lme4's design messages (dropped columns) come first, as it prints them
    if family.is_binomial:
        _check_separation(fit, gd)
    check = fit.convergence_check()
    if not check["check_passed"]:
        fit.warnings.append(
            f"Model failed to converge with max|grad| = {check['relative_gradient']:.6g} (tol = {CHECK_CONV_TOL:g})"
        )
    if fit.singular:
        fit.warnings.append("boundary (singular) fit: see help('isSingular')")
    return fit


def _fit_linear(gd: GlmmDesign, spec: dict, name: str, where: str) -> GlmmFit:
    """lmer's fit (REML unless ``REML: false``), with lmer's checks and warnings; a REML fit
    carries its ML refit's logLik, AIC and BIC for anova (lme4 refits REML fits by ML there)."""
    _check_linear(gd, spec, where)
    # lmer: REML without fixed effects is ML (REML <- REML && p > 0), and says so in summary()
    reml = bool(spec.get("REML", True)) and gd.design.X.shape[1] > 0
    try:
        fit = fit_lmm(gd, reml)
        if reml:
            ml = fit_lmm(gd, False, satterthwaite_df=False)
            fit.ml_refit = {"logLik": ml.loglik, "AIC": ml.aic, "BIC": ml.bic, "deviance": ml.criterion}
    except GlmflowError as error:
        raise GlmflowError(f"{where}: {error}") from None
    fit.name, fit.formula, fit.dataset = name, spec["formula"], spec.get("dataset", "data")
    fit.weights, fit.offset, fit.subset = spec.get("weights"), spec.get("offset"), spec.get("filter")
    fit.warnings[:0] = gd.messages
    check = fit.convergence_check()
    if fit.singular:  # lme4's checkConv stops there: no gradient check at a boundary
        fit.warnings.append("boundary (singular) fit: see help('isSingular')")
    elif not check["check_passed"]:
        fit.warnings.append(
            f"Model failed to converge with max|grad| = {check['relative_gradient']:.6g} (tol = {CHECK_CONV_TOL:g})"
        )
    return fit


def _check_linear(gd: GlmmDesign, spec: dict, where: str) -> None:
    """What lmer refuses (its checks' defaults "stop"), and weights it cannot use."""
    if gd.design.trials is not None:
        raise GlmflowError(f"{where}: a linear mixed model (gaussian, identity) needs a numeric response, "
                           f"not {gd.design.response!r}")  # fmt: skip
    weights = spec.get("weights")
    if np.any(gd.prior < 0):  # lmer: all(weights >= 0) is not TRUE
        raise GlmflowError(f"{where}: weights {weights!r} has negative values; lmer needs weights >= 0")
    if np.any(gd.prior == 0):  # lmer's log|W| is then -Inf: logLik -Inf, "Gradient contains NAs"
        raise GlmflowError(f"{where}: weights {weights!r} has zeros, where lmer's likelihood is -Inf; "
                           "leave those rows out with the model's filter")  # fmt: skip
    n = len(gd.design.y)
    too_many = [term.factor for term in gd.terms if term.n_levels >= n]
    if too_many:  # lme4's check.nobs.vs.nlev
        raise GlmflowError(f"{where}: number of levels of each grouping factor must be < number of observations "
                           f"(problems: {', '.join(dict.fromkeys(too_many))}), as lmer requires")  # fmt: skip
    for term in gd.terms:  # lme4's check.nobs.vs.nRE
        if n <= term.k * term.n_levels:
            raise GlmflowError(
                f"{where}: number of observations (={n}) <= number of random effects (={term.k * term.n_levels}) "
                f"for term ({' + '.join(term.columns)} | {term.factor}); the random-effects parameters and the "
                "residual variance (or scale parameter) are probably unidentifiable (lmer stops here)"
            )
    _check_linear_exact_fit(gd, where)


def _check_linear_exact_fit(gd: GlmmDesign, where: str) -> None:
    """A linear mixed model whose response (less its offset) a random intercept or the fixed
    effects fit exactly: no optimum, where lmer stops anywhere (sigma 1e-7 to 1e-13)."""
    _check_exact_fit(gd, "gaussian", where, gd.design.y - gd.offset)
    X, y = gd.design.X, gd.design.y - gd.offset
    residual = y - X @ np.linalg.lstsq(X, y, rcond=None)[0] if X.shape[1] else y
    if np.all(np.abs(residual) <= 1e-10 * np.max(np.abs(y), initial=0.0)):
        # sigma goes to 0 at any theta and the criterion falls without bound: lmer stops at an
        # arbitrary point (sigma 1e-13, 'Model is nearly unidentifiable'), as lm reports an
        # 'essentially perfect fit'
        raise GlmflowError(f"{where}: the fixed effects fit the response {gd.design.response!r} exactly "
                           "(residuals 0): the residual variance goes to 0 and the likelihood has no maximum "
                           "(lmer stops at an arbitrary point); model a response that the predictors do not "
                           "determine")  # fmt: skip


def _check_exact_fit(gd: GlmmDesign, family: str, where: str, y: np.ndarray | None = None) -> None:
    """A family with a dispersion whose response (a linear mixed model's less its offset, y) is
    constant within every level of a random intercept's grouping factor: the intercepts fit it
    exactly as their SD grows, the dispersion goes to 0 and lme4's objective falls without bound
    (infert's age is constant within each matched stratum). lme4 stops where its PIRLS gives
    out, at an arbitrary theta, with 'unable to evaluate scaled gradient'; there is no optimum."""
    y = gd.design.y if y is None else y
    for term in gd.terms:
        if "(Intercept)" not in term.columns:
            continue
        order = np.argsort(term.codes, kind="stable")
        codes, values = term.codes[order], y[order]
        starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0])
        spread = np.maximum.reduceat(values, starts) - np.minimum.reduceat(values, starts)
        if np.all(spread <= 1e-12 * np.max(np.abs(y))):
            raise GlmflowError(
                f"{where}: the response {gd.design.response!r} is constant within every level of {term.factor!r}: "
                f"the random intercept (1 | {term.factor}) fits it exactly as its SD grows, the {family} dispersion "
                "goes to 0 and the likelihood has no maximum (lme4 stops where its PIRLS gives out, or at "
                "an arbitrary point with 'unable to evaluate scaled gradient'); drop the random intercept of "
                f"{term.factor!r} or model a response that varies within its levels"
            )


def _check_separation(fit: GlmmFit, gd: GlmmDesign) -> None:
    """The GLMs' linear-programming separation check on the fixed effects (X, y, prior weights):
    glmer, like glm, reports converged with huge estimates and SEs where the fixed effects
    separate the 0s from the 1s, whatever the random effects."""
    separation = detect_separation(gd.design.X, gd.design.y, gd.design.terms, gd.prior)
    fit.separation = {t: ("Inf" if s > 0 else "-Inf") for t, s in separation.infinite.items()}
    if separation.separated:
        fit.warnings.append(separation.message())


def _fit_scalar(gd: GlmmDesign, family, nAGQ: int) -> GlmmFit:
    design, term = gd.design, gd.terms[0]
    objective = ScalarDeviance(design.y, design.X, term.codes, term.n_levels, family, nAGQ, gd.prior, gd.offset)
    start = np.concatenate([[1.0], glm_start(design, family, gd.prior, gd.offset)])
    params, hessian, converged, message = minimise_scalar(objective, start)
    deviance, gradient = objective(params)
    theta, beta = float(params[0]), params[1:]
    u, mode_sd = objective.conditional(theta, beta)
    eta = design.X @ beta + gd.offset + theta * u[term.codes]
    mu = family.linkinv(eta)
    w, _ = family.canonical_weight_and_slope(mu)
    return GlmmFit(
        name="", formula="", dataset="", family_object=family, nAGQ=nAGQ, glmm_design=gd,
        theta=np.array([theta]), beta=beta, deviance=float(deviance), gradient=gradient, hessian=hessian,
        vcov=2.0 * np.linalg.inv(hessian)[1:, 1:],
        vcov_rx=conditional_vcov(design.X, term.codes, term.n_levels, theta, gd.prior * w),
        condval=[(theta * u)[:, None]], condvar=[(theta * mode_sd)[:, None, None] ** 2],
        eta=eta, fitted=mu, converged=converged, optimizer_message=message,
    )  # fmt: skip


def fit_general(gd: GlmmDesign, family, nAGQ: int = 1) -> GlmmFit:
    """The general engine: Laplace for any structure, or, with nAGQ > 1 (one scalar random
    intercept, binomial or Poisson with a non-canonical link), lme4's adaptive quadrature."""
    design, warnings = gd.design, []
    # a GlmflowError names the sizes; fit_glmm adds the model
    objective = QuadratureDeviance(gd, family, nAGQ) if nAGQ > 1 else LaplaceDeviance(gd, family)
    start = np.concatenate([gd.theta_start(), irls_start(design, family, gd.prior, gd.offset)])
    if objective.has_dispersion:
        start = _scaled_start(objective, start, gd.n_theta)
    if stage_zero_needed(objective, gd):
        start = stage_zero(objective, start, gd)
    params, deviance, gradient, hessian, converged, message = minimise_laplace(objective, start, gd)
    theta, beta = params[: gd.n_theta], params[gd.n_theta :]
    state = objective.conditional(params)
    deviance = state["deviance"]  # PIRLS to its strict tolerance: the optimiser's may stop a step early
    condval, condvar, position = [], [], 0
    for term, T, blocks in zip(gd.terms, gd.factors(theta), state["blocks"], strict=True):
        size = term.k * term.n_levels
        u = state["u"][position : position + size].reshape(term.n_levels, term.k)
        condval.append(u @ T.T)
        # lme4's condVar is sigma^2 Lambda H^-1 Lambda' (sigma = 1 for binomial and Poisson)
        condvar.append(state["sigma"] ** 2 * np.einsum("ab,jbc,dc->jad", T, blocks, T))
        position += size
    return GlmmFit(
        name="", formula="", dataset="", family_object=family, nAGQ=nAGQ, glmm_design=gd,
        theta=theta, beta=beta, deviance=float(deviance), gradient=gradient, hessian=hessian,
        vcov=_hessian_vcov(hessian, gd.n_theta, state["vcov_rx"], warnings), vcov_rx=state["vcov_rx"],
        condval=condval, condvar=condvar, eta=state["eta"], fitted=state["mu"], converged=converged,
        optimizer_message=message, warnings=warnings, sigma=state["sigma"],
    )  # fmt: skip


# With a dispersion, lme4's theta is relative to the working dispersion 1 of its PIRLS, and
# its optimum can lie far from the start 1: bdf's Gamma(inverse) model has it at 0.009, and from
# 1 (objective 16623 against 15539) BFGS stalls on a flat, partly infinite surface; bdf's
# gaussian(log) model has a local minimum at 0.097 (15675.9) and the optimum at 0 (15380.7,
# singular, as lme4 finds). So the start's theta is the best of these multiples of it.
START_SCALES = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 0.0)


def _scaled_start(objective: LaplaceDeviance, start: np.ndarray, n_theta: int) -> np.ndarray:
    candidates = [np.concatenate([scale * start[:n_theta], start[n_theta:]]) for scale in START_SCALES]
    values = [objective(candidate) for candidate in candidates]
    objective.u[:] = 0.0
    return candidates[int(np.argmin(values))]


def _hessian_vcov(hessian: np.ndarray, n_theta: int, fallback: np.ndarray, warnings: list[str]) -> np.ndarray:
    """lme4's vcov: the beta block of 2 H^-1 over (theta, beta); where H is singular (a flat
    direction, e.g. a slope of a constant), the conditional (RX) covariance, with a warning."""
    try:
        return 2.0 * np.linalg.inv(hessian)[n_theta:, n_theta:]
    except np.linalg.LinAlgError:
        warnings.append("the Hessian is singular: standard errors are the conditional (RX) ones")
        return fallback
