"""Generalized linear mixed models by maximum likelihood, as ``lme4::glmer``, done exactly.

What it covers: one random intercept ``(1 | group)``; binomial (logit, 0/1 response) and
Poisson (log) families; the Laplace approximation (``nAGQ = 1``) and adaptive
Gauss-Hermite quadrature (``nAGQ > 1``). What it does not: random slopes, more than one
grouping factor, other links, weights for Poisson models; such formulas get a clear error.
Binomial responses are 0/1, or proportions with ``weights`` (the numbers of trials), as in
``glmer(proportion ~ ..., weights = trials)``.

Why by hand: statsmodels has no maximum-likelihood GLMM (its ``BinomialBayesMixedGLM`` is
Bayesian, with priors, and gives no logLik), and no other maintained Python package fits
glmer's model with glmer's standard errors.

The model: ``eta = X beta + theta u[group]``, ``u ~ N(0, 1)`` (lme4's spherical random
effects; theta is the random intercept's SD). For given (theta, beta) each group's
conditional mode u_j is found by Newton's method to full precision (vectorised over
groups with ``bincount``); the deviance (-2 log-likelihood) is then

    -2 sum_j log( s_j sum_k w_k exp(x_k^2 / 2) phi(v_jk) p(y_j | v_jk) ),  v_jk = u_j + s_j x_k,

with s_j = (1 + theta^2 sum_i W_i)^(-1/2) at the mode and Gauss-Hermite nodes x_k and
weights w_k (one node at 0 for Laplace). Its gradient in (theta, beta) is analytic: the
derivatives of the modes and of s_j come from the implicit function theorem. The optimum
is found by BFGS and polished by Newton steps, so it is the exact optimum of the
approximation (lme4's default Laplace fit stops about 0.0055 deviance short of it).
Standard errors are lme4's default: V = 2 H^-1 over (theta, beta), H the Hessian of the
deviance at the optimum (here by central differences of the analytic gradient), restricted
to beta; the conditional ones (lme4's ``use.hessian = FALSE``) come from the
Schur complement of the penalised weighted cross-product at the modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize

from glmflow.errors import GlmflowError
from glmflow.families import family as glm_family
from glmflow.fastexp import exp_neg
from glmflow.formula import Design, build_design, check_random_terms, split_formula
from glmflow.models import FittedModel, glm_fit, model_data, wald_table

CHECK_CONV_TOL = 2e-3  # lme4's check.conv.grad tolerance
HESSIAN_STEP = 1e-4  # lme4's deriv12 step


# The families a mixed model may have: canonical binomial and Poisson (glmflow.families).
FAMILIES = {"binomial": glm_family("binomial"), "poisson": glm_family("poisson")}


@dataclass
class GlmmDesign:
    design: Design
    group: np.ndarray  # group code of each row, 0..G-1
    group_labels: np.ndarray
    group_name: str
    prior: np.ndarray  # prior weights: binomial trials per row (1 for 0/1 data)

    @property
    def n_groups(self) -> int:
        return len(self.group_labels)


def build_glmm_design(formula: str, data: pd.DataFrame, where: str, weights: str | None = None) -> GlmmDesign:
    _, group_name = check_random_terms(formula, where)
    split_formula(formula, where)
    if weights is not None and weights not in data.columns:
        raise GlmflowError(f"{where}: weights column {weights!r} is not in the data")
    if weights is not None:
        data = data[data[weights].notna()]
    design = build_design(formula, data, where)
    labels, codes = np.unique(data.loc[design.rows, group_name].to_numpy(), return_inverse=True)
    if len(labels) < 2:
        # lme4: "grouping factors must have > 1 sampled level"
        raise GlmflowError(f"{where}: grouping factor {group_name!r} has {len(labels)} level; it needs more than one")
    prior = np.ones(len(design.y)) if weights is None else data.loc[design.rows, weights].to_numpy(dtype=float)
    return GlmmDesign(
        design=design, group=codes.astype(np.int64), group_labels=labels, group_name=group_name, prior=prior
    )


# Kernel families: 0/1 binomial (the vectorised path), binomial proportions with weights, Poisson.
_BINOMIAL, _BINOMIAL_WEIGHTED, _POISSON = 0, 1, 2


# fastmath lets the row loops run on SIMD lanes; numpy's error model drops zero-division checks.
_KERNEL = {"cache": True, "fastmath": True, "error_model": "numpy"}


@numba.njit(inline="always", **_KERNEL)
def _row(family, y, eta, constant, prior):
    """Per row: the score prior (y - mu), the weight prior d mu / d eta, its slope in eta,
    and log p(y | eta)."""
    if family == _POISSON:
        mu = math.exp(eta)
        return y - mu, mu, mu, y * eta - mu + constant
    a = math.exp(-abs(eta))
    mu = 1.0 / (1.0 + a) if eta >= 0 else a / (1.0 + a)
    w = prior * mu * (1.0 - mu)
    return prior * (y - mu), w, w * (1.0 - 2.0 * mu), prior * (y * eta - max(eta, 0.0) - math.log1p(a)) + constant


@numba.njit(inline="always", **_KERNEL)
def _binomial_mean(eta):
    """expit(eta) and exp(-|eta|), with the polynomial exp so that row loops vectorise
    (beyond |eta| = 30 the clamp changes log p and mu by less than 1e-13)."""
    a = exp_neg(min(abs(eta), 30.0))
    inverse = 1.0 / (1.0 + a)
    return (inverse if eta >= 0 else a * inverse), a


@numba.njit(inline="always", **_KERNEL)
def _mode_sums(family, y, eta0, constant, prior, lo, hi, theta, uj):
    """The sums of the scores and of the weights over a group's rows at its intercept u_j."""
    sum_resid = 0.0
    sum_w = 0.0
    if family == _BINOMIAL:
        for i in range(lo, hi):
            mu, _ = _binomial_mean(eta0[i] + theta * uj)
            sum_resid += y[i] - mu
            sum_w += mu * (1.0 - mu)
    else:
        for i in range(lo, hi):
            resid, w, _, _ = _row(family, y[i], eta0[i] + theta * uj, constant[i], prior[i])
            sum_resid += resid
            sum_w += w
    return sum_resid, sum_w


@numba.njit(inline="always", **_KERNEL)
def _node_pass(family, y, eta0, constant, prior, lo, hi, theta, v, resid, k):
    """sum(log p(y | eta)) and the sum of the scores over a group's rows at node position v;
    the scores go to resid[:, k]. 0/1 binomial: log p = y eta - max(eta, 0) - log(1 + a),
    whose logs are taken once, of the product of the (1 + a)."""
    total = 0.0
    r_sum = 0.0
    if family == _BINOMIAL:
        product = 1.0
        for i in range(lo, hi):
            eta = eta0[i] + theta * v
            mu, a = _binomial_mean(eta)
            total += y[i] * eta - max(eta, 0.0)
            product *= 1.0 + a
            r = y[i] - mu
            resid[i - lo, k] = r
            r_sum += r
        total -= math.log(product)
    else:
        for i in range(lo, hi):
            r, _, _, logp = _row(family, y[i], eta0[i] + theta * v, constant[i], prior[i])
            total += logp
            resid[i - lo, k] = r
            r_sum += r
    return total, r_sum


@numba.njit(**_KERNEL)
def _deviance_and_gradient(y, X, eta0, constant, prior, starts, family, nodes, node_constant, theta, u, gradient):
    """The deviance at (theta, beta) (beta enters through eta0 = X beta) and its gradient,
    written to ``gradient`` as (d theta, d beta). ``u`` holds each group's mode: the starting
    point of its Newton iteration on entry, the mode on exit. See the module docstring."""
    n_groups = starts.shape[0] - 1
    p = X.shape[1]
    K = nodes.shape[0]
    max_rows = 0
    for j in range(n_groups):
        max_rows = max(max_rows, starts[j + 1] - starts[j])
    resid = np.empty((max_rows, K))
    A = np.empty(K)
    R = np.empty(K)
    v = np.empty(K)
    Xw = np.empty(p)
    Xws = np.empty(p)
    d_beta = np.zeros(p)
    d_theta = 0.0
    deviance = 0.0
    for j in range(n_groups):
        lo, hi = starts[j], starts[j + 1]
        uj = u[j]
        for _ in range(100):  # Newton for the mode: u - theta sum(y - mu) = 0
            sum_resid, sum_w = _mode_sums(family, y, eta0, constant, prior, lo, hi, theta, uj)
            step = (uj - theta * sum_resid) / (1.0 + theta * theta * sum_w)
            step = min(max(step, -2.0), 2.0)
            uj -= step
            if abs(step) < 1e-12:
                break
        u[j] = uj
        S = S_slope = sum_resid = 0.0
        for c in range(p):
            Xw[c] = 0.0
            Xws[c] = 0.0
        for i in range(lo, hi):
            resid_i, w, w_slope, _ = _row(family, y[i], eta0[i] + theta * uj, constant[i], prior[i])
            S += w
            S_slope += w_slope
            sum_resid += resid_i
            for c in range(p):
                Xw[c] += X[i, c] * w
                Xws[c] += X[i, c] * w_slope
        h = 1.0 + theta * theta * S
        s = 1.0 / math.sqrt(h)
        peak = -np.inf
        for k in range(K):
            v[k] = uj + s * nodes[k]
            total, R[k] = _node_pass(family, y, eta0, constant, prior, lo, hi, theta, v[k], resid, k)
            total += node_constant[k] - v[k] * v[k] / 2.0
            A[k] = total
            peak = max(peak, total)
        acc = 0.0
        for k in range(K):
            acc += math.exp(A[k] - peak)
        lse = peak + math.log(acc)
        deviance += -2.0 * (math.log(s) + lse)
        c_u = 0.0
        c_s = 1.0 / s
        for k in range(K):
            A[k] = math.exp(A[k] - lse)  # now the node's share of the group's likelihood
            slope = -v[k] + theta * R[k]
            c_u += A[k] * slope
            c_s += A[k] * slope * nodes[k]
        for i in range(lo, hi):
            weighted = 0.0
            for k in range(K):
                weighted += A[k] * resid[i - lo, k]
                d_theta += A[k] * resid[i - lo, k] * v[k]
            for c in range(p):
                d_beta[c] += X[i, c] * weighted
        # the mode's and s's derivatives (implicit function theorem; s = h^-1/2, h = 1 + theta^2 S)
        du_dtheta = -(-sum_resid + theta * uj * S) / h
        factor = -0.5 * h**-1.5
        d_theta += c_u * du_dtheta + c_s * factor * (
            2.0 * theta * S + theta * theta * S_slope * (uj + theta * du_dtheta)
        )
        for c in range(p):
            du_dbeta = -theta * Xw[c] / h
            dS_dbeta = Xws[c] + theta * S_slope * du_dbeta
            d_beta[c] += c_u * du_dbeta + c_s * factor * theta * theta * dS_dbeta
    gradient[0] = -2.0 * d_theta
    for c in range(p):
        gradient[c + 1] = -2.0 * d_beta[c]
    return deviance


class GlmmDeviance:
    """The Laplace or adaptive Gauss-Hermite deviance of a random-intercept GLMM, with its
    gradient, as a callable for scipy's optimisers. The work is one compiled pass per call
    (numba); rows are kept sorted by group so that each group is a contiguous slice."""

    def __init__(self, y, X, group, n_groups, family: str, nAGQ: int, prior=None):
        if nAGQ < 1:
            raise GlmflowError("nAGQ must be at least 1 (nAGQ = 0 is not an approximation of the likelihood)")
        order = np.argsort(group, kind="stable")
        self.y = np.ascontiguousarray(y[order], dtype=np.float64)
        self.X = np.ascontiguousarray(X[order], dtype=np.float64)
        self.group = group[order]
        counts = np.bincount(self.group, minlength=n_groups)
        if np.any(counts == 0):
            raise GlmflowError("every group needs at least one row")
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.n_groups = n_groups
        self.family = FAMILIES[family]
        prior = np.ones_like(y, dtype=float) if prior is None else np.asarray(prior, dtype=float)
        self.prior = np.ascontiguousarray(prior[order])
        unit = bool(np.all(self.prior == 1.0))
        if family == "poisson":
            self.family_code = _POISSON
        else:
            self.family_code = _BINOMIAL if unit else _BINOMIAL_WEIGHTED
        self.constant = np.ascontiguousarray(glm_family(family).canonical_log_constant(self.y, self.prior))
        self.nAGQ = nAGQ
        if nAGQ == 1:
            nodes, weights = np.array([0.0]), np.array([math.sqrt(2 * math.pi)])
        else:
            nodes, weights = hermegauss(nAGQ)  # for weight exp(-x^2 / 2), as lme4's GHrule
        self.nodes = nodes
        # log(w_k) + x_k^2 / 2 - log(sqrt(2 pi)): the constant part of each node's log term
        self.node_constant = np.log(weights) + nodes**2 / 2 - 0.5 * math.log(2 * math.pi)
        self.u = np.zeros(n_groups)

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """Deviance and its gradient in (theta, beta)."""
        gradient = np.empty(len(params))
        deviance = _deviance_and_gradient(
            self.y,
            self.X,
            self.X @ params[1:],
            self.constant,
            self.prior,
            self.starts,
            self.family_code,
            self.nodes,
            self.node_constant,
            float(params[0]),
            self.u,
            gradient,
        )
        return deviance, gradient

    def conditional(self, theta: float, beta: np.ndarray):
        """Modes and their conditional SDs (u scale), per group, at (theta, beta)."""
        self(np.concatenate([[theta], beta]))
        mu = self.family.linkinv(self.X @ beta + theta * self.u[self.group])
        w, _ = self.family.canonical_weight_and_slope(mu)
        S = np.add.reduceat(self.prior * w, self.starts[:-1])
        return self.u.copy(), 1.0 / np.sqrt(1.0 + theta**2 * S)


@dataclass
class GlmmFit(FittedModel):
    name: str
    formula: str
    family: str
    dataset: str
    nAGQ: int
    glmm_design: GlmmDesign
    theta: float
    beta: np.ndarray
    deviance: float
    gradient: np.ndarray
    hessian: np.ndarray
    vcov: np.ndarray
    vcov_rx: np.ndarray
    modes: np.ndarray
    mode_sd: np.ndarray
    fitted: np.ndarray
    converged: bool
    optimizer_message: str
    warnings: list[str] = field(default_factory=list)

    @property
    def design(self) -> Design:
        return self.glmm_design.design

    @property
    def n_params(self) -> int:
        return len(self.beta) + 1

    @property
    def loglik(self) -> float:
        return -self.deviance / 2

    @property
    def aic(self) -> float:
        return self.deviance + 2 * self.n_params

    @property
    def bic(self) -> float:
        return self.deviance + math.log(self.nobs) * self.n_params

    def convergence_check(self) -> dict:
        """lme4's checkConv: the gradient scaled by the Hessian's Cholesky factor, against 0.002."""
        try:
            scaled = np.linalg.solve(np.linalg.cholesky(self.hessian).T, self.gradient)
            worst = float(np.max(np.minimum(np.abs(scaled), np.abs(self.gradient))))
        except np.linalg.LinAlgError:
            worst = float("inf")
        return {
            "max_abs_gradient": float(np.max(np.abs(self.gradient))),
            "relative_gradient": worst,
            "check_tolerance": CHECK_CONV_TOL,
            "check_passed": worst <= CHECK_CONV_TOL,
        }

    def tidy(self) -> pd.DataFrame:
        """z-based Wald table (as glmer's summary), plus the conditional (RX) standard errors."""
        table = wald_table(self.terms, self.beta, self.vcov)
        table["std_error_conditional"] = np.sqrt(np.diag(self.vcov_rx))
        return table

    def glance(self) -> dict:
        values = {
            "model": self.name,
            "family": self.family,
            "nobs": self.nobs,
            "n_groups": self.glmm_design.n_groups,
            "n_dropped": self.design.n_dropped,
            "df": self.n_params,
            "logLik": self.loglik,
            "AIC": self.aic,
            "BIC": self.bic,
            "deviance": self.deviance,
            "df_residual": self.nobs - self.n_params,
            "variance": self.theta**2,
            "sd": self.theta,
            "theta": self.theta,
            "nAGQ": self.nAGQ,
            "converged": self.converged,
        }
        values.update(self.convergence_check())
        values["warnings"] = list(self.warnings)
        return values

    def ranef(self) -> pd.DataFrame:
        """Conditional modes of the group intercepts (theta u_j) and their conditional SDs."""
        return pd.DataFrame(
            {
                "group": self.glmm_design.group_labels,
                "condval": self.theta * self.modes,
                "condsd": self.theta * self.mode_sd,
            }
        )

    def scaled_residuals(self) -> np.ndarray:
        y, mu = self.design.y, self.fitted
        variance = mu * (1 - mu) / self.glmm_design.prior if self.family == "binomial" else mu
        return (y - mu) / np.sqrt(variance)

    def augment(self, data: pd.DataFrame) -> pd.DataFrame:
        """Per row used: the model's variables, ``.fitted`` (conditional linear predictor, at the
        modes), ``.prob`` (conditional mean) and ``.resid`` (scaled Pearson residual)."""
        frame = data.loc[self.design.rows, self.design.variables]
        frame.insert(0, ".row", self.design.rows + 1)
        frame[".fitted"] = FAMILIES[self.family].linkfun(self.fitted)
        frame[".prob"] = self.fitted
        frame[".resid"] = self.scaled_residuals()
        return frame.reset_index(drop=True)

    def correlation(self) -> np.ndarray:
        se = np.sqrt(np.diag(self.vcov))
        return self.vcov / np.outer(se, se)


def _check_response(family: str, y: np.ndarray, prior: np.ndarray) -> str | None:
    if family == "poisson":
        return "poisson family needs a non-negative response" if np.any(y < 0) else None
    if np.all(prior == 1.0):
        return "binomial family needs a 0/1 response (or a two-level factor)" if np.any((y != 0) & (y != 1)) else None
    if np.any((y < 0) | (y > 1)) or np.any(prior <= 0):
        return "binomial proportions must lie in [0, 1], with positive weights (the numbers of trials)"
    if np.any(np.abs(y * prior - np.round(y * prior)) > 1e-8):
        return "proportion x weight must be a whole number of successes"
    return None


def _start(design: Design, family: str) -> np.ndarray:
    """Fixed effects of the GLM without the random intercept, theta = 1 (as lme4 starts)."""
    fit = glm_fit(design.X, design.y, glm_family(family))
    return np.concatenate([[1.0], fit.coef])


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


def fit_glmm(data: pd.DataFrame, spec: dict, name: str) -> GlmmFit:
    """Fit a configured mixed model: ``formula`` with one ``(1 | group)``, ``family``, ``nAGQ``."""
    where = f"model {name!r} (dataset {spec.get('dataset')!r})"
    family = spec["family"]
    if family not in FAMILIES:
        raise GlmflowError(f"{where}: mixed models support families binomial and poisson, not {family!r}")
    nAGQ = int(spec.get("nAGQ", 1))
    weights = spec.get("weights")
    if weights is not None and family != "binomial":
        raise GlmflowError(f"{where}: weights are supported for binomial proportions only, not {family!r}")
    gd = build_glmm_design(spec["formula"], model_data(data, spec, name), where, weights)
    design = gd.design
    problem = _check_response(family, design.y, gd.prior)
    if problem:
        raise GlmflowError(f"{where}: response {design.response!r}: {problem}")
    objective = GlmmDeviance(design.y, design.X, gd.group, gd.n_groups, family, nAGQ, gd.prior)
    params, hessian, converged, message = _minimise(objective, _start(design, family))
    deviance, gradient = objective(params)
    theta, beta = float(params[0]), params[1:]
    covariance = 2.0 * np.linalg.inv(hessian)
    u, mode_sd = objective.conditional(theta, beta)
    family_ = FAMILIES[family]
    mu = family_.linkinv(design.X @ beta + theta * u[gd.group])
    w, _ = family_.canonical_weight_and_slope(mu)
    fit = GlmmFit(
        name=name,
        formula=spec["formula"],
        family=family,
        dataset=spec.get("dataset", "data"),
        nAGQ=nAGQ,
        glmm_design=gd,
        theta=theta,
        beta=beta,
        deviance=deviance,
        gradient=gradient,
        hessian=hessian,
        vcov=covariance[1:, 1:],
        vcov_rx=_conditional_vcov(design.X, gd.group, gd.n_groups, theta, gd.prior * w),
        modes=u,
        mode_sd=mode_sd,
        fitted=mu,
        converged=converged,
        optimizer_message=message,
    )
    check = fit.convergence_check()
    if not check["check_passed"]:
        fit.warnings.append(
            f"Model failed to converge with max|grad| = {check['relative_gradient']:.6g} (tol = {CHECK_CONV_TOL:g})"
        )
    if theta == 0.0:
        fit.warnings.append("boundary (singular) fit: the random-intercept SD is 0")
    return fit


def _minimise(objective, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, str]:
    """The optimum and the Hessian there. BFGS from the start, its inverse Hessian seeded with
    a forward-difference Hessian (the parameters' scales differ by 10^4, which otherwise
    costs many iterations); then the central-difference Hessian at BFGS's answer and Newton
    steps with it, to the optimum's last digits. The steps are below 1e-5, so that Hessian
    is the optimum's to the precision the standard errors need."""
    hessian = hessian_by_differences(objective, start, central=False)
    try:
        inverse = np.linalg.inv(hessian)
        inverse = (inverse + inverse.T) / 2
        if np.any(np.linalg.eigvalsh(inverse) <= 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        inverse = np.diag(1.0 / np.maximum(np.abs(np.diag(hessian)), 1e-8))
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
    return params, hessian, converged, str(result.message)


def _conditional_vcov(X, group, n_groups, theta, w) -> np.ndarray:
    """(X'WX - sum_j theta^2 s_j s_j' / (1 + theta^2 S_j))^-1: lme4's RX-based covariance."""
    Xw = X * w[:, None]
    per_group = np.stack([np.bincount(group, weights=Xw[:, c], minlength=n_groups) for c in range(X.shape[1])], 1)
    S = np.bincount(group, weights=w, minlength=n_groups)
    schur = X.T @ Xw - (theta**2 * per_group / (1.0 + theta**2 * S)[:, None]).T @ per_group
    return np.linalg.inv(schur)
