"""Linear mixed models as ``lme4::lmer`` fits them (gaussian, identity link), with lmerTest's
Satterthwaite degrees of freedom.

For a given theta, lme4's penalised least squares (its ``pls.R`` / ``mkLmerDevfun``) solves
for (u, beta) together,

    [H  B; B' X'WX] [u; beta] = [c; X'W(y - offset)],  H = Lambda'Z'WZ Lambda + I,
    B = Lambda'Z'WX,  c = Lambda'Z'W(y - offset),

with H in the general engine's block factor (``glmflow.glmm.pirls``) and beta from the Schur
complement RX'RX = X'WX - B'H^-1 B. sigma is profiled out, leaving (lme4's ``lmerResp::Laplace``)

    ML:   log|H| - log|W| + n (1 + log(2 pi pwrss / n)),
    REML: log|H| - log|W| + log|RX'RX| + (n - p)(1 + log(2 pi pwrss / (n - p))),

pwrss = sum w (y - offset - X beta - Z Lambda u)^2 + |u|^2. Only ``LmmCriterion._factor_h``
(the factor, its solves and log-determinant) and ``LmmCriterion.conditional_blocks`` (H^-1's
blocks for the conditional variances) touch the factorisation's kernels, so a new
factorisation changes those two alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from glmflow.compiled_links import FAMILY_GAUSSIAN, LINK_IDENTITY
from glmflow.errors import GlmflowError
from glmflow.families import family as glm_family
from glmflow.glmm import pirls
from glmflow.glmm.design import GlmmDesign
from glmflow.glmm.deviance import LaplaceDeviance
from glmflow.glmm.optimize import _value_differences, canonical_theta
from glmflow.glmm.result import GlmmFit
from glmflow.models import wald_table

# Newton's stopping rule: the criterion's gradient in theta below this. The L-BFGS-B search
# before it stops at a gradient of SEARCH_GTOL (its differences' noise makes a tighter one
# cost a hundred iterations); Newton steps (central-difference gradient with steps of
# NEWTON_STEP, rough Hessian) then finish.
GRADIENT_TOL, SEARCH_GTOL, NEWTON_STEP = 1e-7, 1e-4, 1e-5
# numDeriv's defaults, as lmerTest calls numDeriv::hessian and ::jacobian: a first step of
# d |x| (d = 0.1 for hessian, 1e-4 for jacobian; 1e-4 where |x| is below zero.tol), four
# Richardson halvings. A Hessian from steps of 1e-4 |x| is lost to rounding (sleepstudy's theta
# of 0.015: steps of 2e-7 against a criterion of 1744 known to 4e-13).
HESSIAN_STEP, JACOBIAN_STEP, ZERO_STEP, RICHARDSON_LEVELS = 0.1, 1e-4, 1e-4, 4
ZERO_TOL = math.sqrt(np.finfo(float).eps / 7e-7)


@dataclass
class Pls:
    """The penalised least squares solution at one theta."""

    criterion: float  # the REML criterion or -2 logLik (ML), sigma profiled out
    beta: np.ndarray
    u: np.ndarray  # spherical random effects
    pwrss: float
    logdet_h: float  # log|H| = log|L|^2
    rx: np.ndarray  # RX'RX, the Schur complement (X'V^-1X sigma^2)
    eta: np.ndarray  # X beta + offset + Z Lambda u
    state: tuple = field(repr=False, default=())  # the factor, for the conditional variances


class LmmCriterion:
    """``theta -> `` lme4's profiled deviance (ML) or REML criterion, and what it solved."""

    def __init__(self, gd: GlmmDesign, reml: bool):
        # the general engine's layout of Z's rows (terms, columns, Lambda's template)
        self.layout = LaplaceDeviance(gd, glm_family("gaussian"))
        self.gd, self.reml = gd, reml
        self.y, self.X, self.offset = self.layout.y, self.layout.X, self.layout.offset
        self.w = self.layout.prior
        self.n, self.p = self.X.shape
        self.log_w = float(np.sum(np.log(self.w)))
        self.XtWX = self.X.T @ (self.w[:, None] * self.X)
        self.XtWy = self.X.T @ (self.w * (self.y - self.offset))
        self.evaluations = 0

    def __call__(self, theta: np.ndarray) -> float:
        return self.solve(theta).criterion

    def _factor_h(self, theta: np.ndarray):
        """H = Lambda'Z'WZ Lambda + I factored at theta: (solve, log|H|, c, B, Z Lambda's rows).
        The one place that calls the factorisation's kernels."""
        layout = self.layout
        values, index = layout._rows(np.asarray(theta, dtype=float))
        levels0, k0, q_rest, q = layout.levels0, layout.k0, layout.q_rest, layout.q
        D, A21, A22 = np.empty((levels0, k0, k0)), np.empty((len(layout.rows), k0)), np.empty((q_rest, q_rest))
        c, eta = np.empty(q), np.empty(self.n)
        # gaussian identity at u = 0: the weights are the prior weights, rhs = Lambda'Z'W(y - offset)
        pirls._assemble(FAMILY_GAUSSIAN, LINK_IDENTITY, self.y, self.w, np.zeros(self.n), self.offset,
                        values, index, layout.pos, k0, levels0 * k0, np.zeros(q), D, A21, A22, c, eta)  # fmt: skip
        logdet, L22 = pirls._factor(D, A21, A22, k0, layout.ptr, layout.rows)
        B = np.zeros((q, self.p))
        for a in range(values.shape[1]):
            for j in range(self.p):
                B[:, j] += np.bincount(index[:, a], weights=values[:, a] * self.w * self.X[:, j], minlength=q)
        factor = (D, A21, L22, k0, layout.ptr, layout.rows)

        def solve(rhs: np.ndarray) -> np.ndarray:
            return pirls.solve_factored(*factor, np.ascontiguousarray(rhs))

        return solve, float(logdet), c, B, values, index, factor

    def solve(self, theta: np.ndarray) -> Pls:
        self.evaluations += 1
        solve, logdet, c, B, values, index, state = self._factor_h(theta)
        h_c = solve(c)
        h_b = np.column_stack([solve(B[:, j]) for j in range(self.p)]) if self.p else np.zeros((len(c), 0))
        rx = self.XtWX - B.T @ h_b
        rx = (rx + rx.T) / 2
        try:
            chol = np.linalg.cholesky(rx)
        except np.linalg.LinAlgError:
            return Pls(np.inf, np.zeros(self.p), h_c, np.inf, logdet, rx, self.offset.copy(), state)
        beta = np.linalg.solve(rx, self.XtWy - B.T @ h_c)
        u = h_c - h_b @ beta
        eta = self.X @ beta + self.offset + np.einsum("ia,ia->i", values, u[index])
        pwrss = float(np.sum(self.w * (self.y - eta) ** 2) + u @ u)
        dof = self.n - self.p if self.reml else self.n
        criterion = logdet - self.log_w + dof * (1.0 + math.log(2.0 * math.pi * pwrss / dof))
        if self.reml:
            criterion += 2.0 * float(np.sum(np.log(np.diag(chol))))
        return Pls(criterion, beta, u, pwrss, logdet, rx, eta, state)

    def sigma(self, pls: Pls) -> float:
        return math.sqrt(pls.pwrss / (self.n - self.p if self.reml else self.n))

    def conditional_blocks(self, pls: Pls) -> list[np.ndarray]:
        """Per term, the levels' k x k blocks of H^-1 (lme4's condVar is sigma^2 Lambda H^-1 Lambda')."""
        P0, _, P11 = pirls.inverse_pieces(*pls.state)
        blocks, position = [P0], 0
        for term in self.gd.terms[1:]:
            size = term.k * term.n_levels
            rest = P11[position : position + size, position : position + size]
            blocks.append(np.einsum("jajb->jab", rest.reshape(term.n_levels, term.k, term.n_levels, term.k)))
            position += size
        return blocks

    def profiled_deviance(self, varpar: np.ndarray) -> float:
        """lmerTest's ``devfun_vp``: -2 logLik (or the REML criterion) at theta = varpar[:-1]
        with sigma = varpar[-1] given rather than profiled (its Hessian is vcov_varpar's)."""
        sigma2 = varpar[-1] ** 2
        pls = self.solve(varpar[:-1])
        value = pls.logdet_h + pls.pwrss / sigma2 + self.n * math.log(2.0 * math.pi * sigma2)
        if self.reml:
            value += float(np.linalg.slogdet(pls.rx)[1]) - self.p * math.log(2.0 * math.pi * sigma2)
        return value

    def beta_covariance(self, varpar: np.ndarray) -> np.ndarray:
        """lmerTest's ``get_covbeta``: sigma^2 (RX'RX)^-1 at theta = varpar[:-1], sigma = varpar[-1]."""
        return varpar[-1] ** 2 * np.linalg.inv(self.solve(varpar[:-1]).rx)


def minimise_theta(criterion: LmmCriterion, gd: GlmmDesign, start: np.ndarray | None = None, restart: bool = True):
    """lme4's optimum of the profiled criterion over theta (diagonal entries bounded below by 0):
    L-BFGS-B on central differences from lme4's start, then Newton steps on the free thetas
    with a Richardson Hessian (the criterion is exact linear algebra: no PIRLS noise), then
    thetas within 1e-7 of 0 set to 0 where that is no worse, as bobyqa reports a boundary.
    Stopped at a bound, it starts again from a point inward of each theta there (_inward)."""
    lower = gd.theta_lower()
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    start = gd.theta_start() if start is None else start

    def value_and_gradient(theta):
        return criterion(theta), _central_gradient(criterion, theta, lower)

    result = optimize.minimize(
        value_and_gradient, start, jac=True, method="L-BFGS-B", bounds=bounds,
        options={"ftol": 1e-12, "gtol": SEARCH_GTOL, "maxiter": 2000},
    )  # fmt: skip
    theta, value = np.maximum(result.x, lower), float(result.fun)
    for _ in range(10):
        # the gradient to the criterion's rounding; a theta at its bound moves only where the
        # criterion falls inward (Karush-Kuhn-Tucker); the Hessian only steers (one level)
        gradient = _central_gradient(criterion, theta, lower, NEWTON_STEP)
        free = ~((lower == 0) & (theta < 1e-7)) | (gradient < 0)
        largest = np.max(np.abs(gradient[free]), initial=0.0)
        if largest < GRADIENT_TOL:
            break
        hessian = richardson_derivatives(criterion, theta, 1)[2]
        try:
            step = np.linalg.solve(hessian[np.ix_(free, free)], gradient[free])
        except np.linalg.LinAlgError:
            break
        candidate = theta.copy()
        candidate[free] -= step
        candidate = np.maximum(candidate, lower)
        candidate_value = criterion(candidate)
        if not candidate_value < value:
            break
        theta, value = candidate, candidate_value
    tiny = (lower == 0) & (theta < 1e-7) & (theta != 0)
    if tiny.any():
        snapped = np.where(tiny, 0.0, theta)
        snapped_value = criterion(snapped)
        if snapped_value <= value + 1e-10:
            theta, value = snapped, snapped_value
    theta = canonical_theta(gd, theta)
    # converged: L-BFGS-B's own test, or Newton's gradient small where L-BFGS-B gave up on noise
    found = theta, value, bool(result.success or largest < 1e3 * GRADIENT_TOL), str(result.message)
    for start in _inward(theta, lower) if restart else []:
        again = minimise_theta(criterion, gd, start, restart=False)
        if again[1] < found[1] - 1e-10:
            found = again
    return found


def _inward(theta: np.ndarray, lower: np.ndarray) -> list[np.ndarray]:
    """Starts inward of each theta at its bound 0. The criterion is even in a diagonal theta
    (the variance is its square), so 0 is a stationary point whether it is the minimum or a
    maximum, and a gradient method can stop there: a random intercept's variance of 0 where
    lmer's is 0.15^2 (its criterion 0.17 lower), or (1 + conc | plant) at a boundary 19 above
    lmer's optimum, where no move of one theta alone goes down."""
    starts = []
    for i in np.flatnonzero((lower == 0) & (theta < 1e-7)):
        start = theta.copy()
        start[i] = 0.1
        starts.append(start)
    return starts


def _central_gradient(objective, x: np.ndarray, lower: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central differences, one-sided (forward) where a bounded theta sits at its bound."""
    gradient = np.empty(len(x))
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = step * max(1.0, abs(x[i]))
        if x[i] - e[i] < lower[i]:
            gradient[i] = (objective(x + e) - objective(x)) / e[i]
        else:
            gradient[i] = (objective(x + e) - objective(x - e)) / (2 * e[i])
    return gradient


def _richardson_steps(x: np.ndarray, relative: float) -> np.ndarray:
    return relative * np.abs(x) + np.where(np.abs(x) < ZERO_TOL, ZERO_STEP, 0.0)


def richardson_derivatives(objective, x: np.ndarray, count: int = RICHARDSON_LEVELS):
    """Value, gradient and Hessian by central differences at halving steps with Richardson's
    extrapolation (numDeriv's ``hessian``: first step 0.1 relative, four levels)."""
    x = np.asarray(x, dtype=float)
    base = _richardson_steps(x, HESSIAN_STEP)
    f0 = objective(x)
    levels = [_value_differences(objective, x, base / 2**k, f0)[1:] for k in range(count)]
    return f0, _extrapolate([g for g, _ in levels]), _extrapolate([h for _, h in levels])


def richardson_jacobian(function, x: np.ndarray) -> np.ndarray:
    """The Jacobian of a vector function (columns by parameter), as numDeriv's ``jacobian``."""
    x = np.asarray(x, dtype=float)
    base = _richardson_steps(x, JACOBIAN_STEP)
    levels = []
    for k in range(RICHARDSON_LEVELS):
        columns = []
        for i in range(len(x)):
            e = np.zeros(len(x))
            e[i] = base[i] / 2**k
            columns.append((np.ravel(function(x + e)) - np.ravel(function(x - e))) / (2 * e[i]))
        levels.append(np.column_stack(columns))
    return _extrapolate(levels)


def _extrapolate(levels: list[np.ndarray]) -> np.ndarray:
    """Richardson's table for central differences (error in even powers of the step, halved each level)."""
    table = [np.asarray(level, dtype=float) for level in levels]
    for m in range(1, len(table)):
        factor = 4.0**m
        table = [(factor * table[k + 1] - table[k]) / (factor - 1.0) for k in range(len(table) - 1)]
    return table[0]


@dataclass
class LmmFit(GlmmFit):
    """A fitted linear mixed model: lmer's estimates, lmerTest's Satterthwaite tests."""

    reml: bool = True
    criterion: float = float("nan")  # the REML criterion (REML) or -2 logLik (ML)
    df_satterthwaite: np.ndarray | None = None
    vcov_varpar: np.ndarray | None = None
    ml_refit: dict | None = None  # logLik, AIC, BIC, deviance of the ML refit of a REML fit (anova)
    weights: str | None = None  # the configured weights, offset and filter, as summary() names them
    offset: str | None = None
    subset: str | None = None

    @property
    def n_params(self) -> int:
        return len(self.beta) + len(self.theta) + 1

    @property
    def loglik(self) -> float:
        """R's logLik(): the REML log-likelihood for a REML fit."""
        return -self.criterion / 2

    @property
    def aic(self) -> float:
        return self.criterion + 2 * self.n_params

    @property
    def bic(self) -> float:
        return self.criterion + math.log(self.nobs) * self.n_params

    def tidy(self) -> pd.DataFrame:
        """lmerTest's summary() table: t statistics with p-values on Satterthwaite's df; the
        intervals are lme4's ``confint(fit, method = "Wald")`` (normal quantiles)."""
        table = wald_table(self.terms, self.beta, self.vcov)
        if len(self.beta):
            table["p_value"] = wald_table(self.terms, self.beta, self.vcov, self.df_satterthwaite)["p_value"]
        table.insert(4, "df", self.df_satterthwaite if self.df_satterthwaite is not None else np.nan)
        return table

    def glance(self) -> dict:
        values = super().glance()
        for key in ("deviance", "nAGQ", "df_residual"):
            values.pop(key)
        values["REML"] = self.reml
        values["REMLcrit" if self.reml else "deviance"] = self.criterion
        values["df_residual"] = self.nobs - self.n_params
        if self.ml_refit is not None:
            values["ml_refit"] = self.ml_refit
        return values

    def scaled_residuals(self) -> np.ndarray:
        """residuals(fit, "pearson", scaled = TRUE): sqrt(w) (y - fitted) / sigma."""
        return np.sqrt(self.glmm_design.prior) * (self.design.y - self.fitted) / self.sigma


def fit_lmm(gd: GlmmDesign, reml: bool, satterthwaite_df: bool = True) -> LmmFit:
    """lmer's fit of a built design: theta at the criterion's optimum, then lme4's estimates,
    vcov = sigma^2 (RX'RX)^-1, conditional modes and variances, and lmerTest's df."""
    if gd.design.X.shape[1] >= gd.design.X.shape[0]:
        raise GlmflowError(f"{gd.design.X.shape[0]} rows for {gd.design.X.shape[1]} fixed effects: nothing to fit")
    criterion = LmmCriterion(gd, reml)
    theta, value, converged, message = minimise_theta(criterion, gd)
    pls = criterion.solve(theta)
    sigma = criterion.sigma(pls)
    _, gradient, hessian = richardson_derivatives(criterion, theta)
    condval, condvar, position = [], [], 0
    for term, T, blocks in zip(gd.terms, gd.factors(theta), criterion.conditional_blocks(pls), strict=True):
        size = term.k * term.n_levels
        condval.append(pls.u[position : position + size].reshape(term.n_levels, term.k) @ T.T)
        condvar.append(sigma**2 * np.einsum("ab,jbc,dc->jad", T, blocks, T))
        position += size
    vcov = sigma**2 * np.linalg.inv(pls.rx)
    fit = LmmFit(
        name="", formula="", dataset="", family_object=glm_family("gaussian"), nAGQ=1, glmm_design=gd,
        theta=theta, beta=pls.beta, deviance=pls.criterion, gradient=gradient, hessian=hessian, vcov=vcov,
        vcov_rx=vcov, condval=condval, condvar=condvar, eta=pls.eta, fitted=pls.eta, converged=converged,
        optimizer_message=message, sigma=sigma, reml=reml, criterion=pls.criterion,
    )  # fmt: skip
    if satterthwaite_df:
        fit.df_satterthwaite, fit.vcov_varpar = satterthwaite(criterion, theta, sigma, vcov)
    return fit


def satterthwaite(criterion: LmmCriterion, theta: np.ndarray, sigma: float, vcov: np.ndarray):
    """lmerTest's Satterthwaite df for each coefficient (its ``contest1D`` with a unit contrast):
    A = 2 H^-1 with H the Hessian of ``devfun_vp`` in (theta, sigma), J_k the Jacobian of
    Var(beta) in (theta, sigma), df = 2 Var(beta_k)^2 / (g' A g), g = (J_1[k, k], ..., J_m[k, k])."""
    varpar = np.concatenate([theta, [sigma]])
    _, _, hessian = richardson_derivatives(criterion.profiled_deviance, varpar)
    try:
        vcov_varpar = 2.0 * np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.full(len(vcov), np.nan), None
    p = len(vcov)
    jacobian = richardson_jacobian(criterion.beta_covariance, varpar)  # p*p x m
    df = np.empty(p)
    for k in range(p):
        g = jacobian[k * p + k, :]
        df[k] = 2.0 * vcov[k, k] ** 2 / float(g @ vcov_varpar @ g)
    return df, vcov_varpar
