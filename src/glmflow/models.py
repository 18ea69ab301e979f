"""Fitting linear and generalized linear models with R's numbers.

``lm`` goes through statsmodels' OLS, which matches R exactly. GLMs are fitted by
R's own ``glm.fit`` loop, written here by hand: statsmodels' IRLS starts and stops
differently (one more iteration on the chapter's models) and so reports standard errors
from other weights. R returns the covariance of the last weighted least-squares step,
whose weights come from the previous iterate; with the deviance criterion
|dev - dev_old| / (|dev| + 0.1) < 1e-8 that leaves R's SEs 1e-4 (relative) away from
statsmodels', far outside the 1e-6 that glmflow holds itself to.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, special

from glmflow.data import apply_filter
from glmflow.errors import GlmflowError
from glmflow.formula import Design, build_design, design_for
from glmflow.separation import detect_separation

DOUBLE_EPS = float(np.finfo(float).eps)
FAMILIES = ("gaussian", "binomial", "poisson")


@dataclass(frozen=True)
class Family:
    """The parts of an R ``family`` object that ``glm.fit`` uses (canonical links)."""

    name: str
    link: str
    linkfun: Callable[[np.ndarray], np.ndarray]
    linkinv: Callable[[np.ndarray], np.ndarray]
    mu_eta: Callable[[np.ndarray], np.ndarray]
    variance: Callable[[np.ndarray], np.ndarray]
    dev_resids: Callable[[np.ndarray, np.ndarray], np.ndarray]
    loglik: Callable[[np.ndarray, np.ndarray], float]
    mustart: Callable[[np.ndarray], np.ndarray]
    valid_mu: Callable[[np.ndarray], bool]
    check_y: Callable[[np.ndarray], str | None]


def _logit_linkinv(eta):
    # R's C code clamps eta at +-30 so that mu stays strictly inside (0, 1).
    tmp = np.where(eta < -30, DOUBLE_EPS, np.where(eta > 30, 1 / DOUBLE_EPS, np.exp(np.clip(eta, -30, 30))))
    return tmp / (1 + tmp)


def _logit_mu_eta(eta):
    e = np.exp(np.clip(eta, -30, 30))
    return np.where((eta > 30) | (eta < -30), DOUBLE_EPS, e / (1 + e) ** 2)


def _binomial_deviance(y, mu):
    return 2 * (special.xlogy(y, y / mu) + special.xlogy(1 - y, (1 - y) / (1 - mu)))


def _poisson_deviance(y, mu):
    return 2 * np.where(y > 0, special.xlogy(y, y / mu) - (y - mu), mu)


def _binary_check(y):
    if np.any((y != 0) & (y != 1)):
        return "binomial family needs a 0/1 response (or a two-level factor)"
    return None


def _count_check(y):
    if np.any(y < 0):
        return "poisson family needs a non-negative response"
    return None


BINOMIAL = Family(
    name="binomial",
    link="logit",
    linkfun=lambda mu: np.log(mu / (1 - mu)),
    linkinv=_logit_linkinv,
    mu_eta=_logit_mu_eta,
    variance=lambda mu: mu * (1 - mu),
    dev_resids=_binomial_deviance,
    # With 0/1 data the saturated model's log-likelihood is 0, so logLik = -deviance / 2.
    loglik=lambda y, mu: float(-np.sum(_binomial_deviance(y, mu)) / 2),
    mustart=lambda y: (y + 0.5) / 2,
    valid_mu=lambda mu: bool(np.all(np.isfinite(mu)) and np.all((mu > 0) & (mu < 1))),
    check_y=_binary_check,
)

POISSON = Family(
    name="poisson",
    link="log",
    linkfun=np.log,
    linkinv=lambda eta: np.maximum(np.exp(eta), DOUBLE_EPS),
    mu_eta=lambda eta: np.maximum(np.exp(eta), DOUBLE_EPS),
    variance=lambda mu: mu,
    dev_resids=_poisson_deviance,
    # logLik = -deviance / 2 + the saturated model's log-likelihood, sum(dpois(y, y, log = TRUE)).
    loglik=lambda y, mu: float(
        -np.sum(_poisson_deviance(y, mu)) / 2 + np.sum(special.xlogy(y, y) - y - special.gammaln(y + 1))
    ),
    mustart=lambda y: y + 0.1,
    valid_mu=lambda mu: bool(np.all(np.isfinite(mu)) and np.all(mu > 0)),
    check_y=_count_check,
)

GLM_FAMILIES = {"binomial": BINOMIAL, "poisson": POISSON}


@dataclass
class IrlsResult:
    coef: np.ndarray
    cov_unscaled: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    deviance: float
    iterations: int
    converged: bool
    boundary: bool


def glm_fit(X: np.ndarray, y: np.ndarray, family: Family, epsilon: float = 1e-8, maxit: int = 25) -> IrlsResult:
    """R's ``glm.fit`` (unit prior weights, no offset), step-halving included."""
    eta = family.linkfun(family.mustart(y))
    mu = family.linkinv(eta)
    dev_old = float(np.sum(family.dev_resids(y, mu)))
    coef_old = None
    converged = boundary = False
    iterations = 0
    while iterations < maxit:
        iterations += 1
        mu_eta = family.mu_eta(eta)
        good = mu_eta != 0
        z = eta[good] + (y[good] - mu[good]) / mu_eta[good]
        w = np.sqrt(mu_eta[good] ** 2 / family.variance(mu[good]))
        q, r = np.linalg.qr(X[good] * w[:, None])
        coef = linalg.solve_triangular(r, q.T @ (z * w))
        eta = X @ coef
        mu = family.linkinv(eta)
        dev = float(np.sum(family.dev_resids(y, mu)))
        halvings = 0
        while (not math.isfinite(dev) or not family.valid_mu(mu)) and coef_old is not None:
            halvings += 1
            if halvings > maxit:
                raise GlmflowError("inner loop: cannot correct step size (R's glm.fit error)")
            coef = (coef + coef_old) / 2
            eta = X @ coef
            mu = family.linkinv(eta)
            dev = float(np.sum(family.dev_resids(y, mu)))
            boundary = True
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            break
        dev_old, coef_old = dev, coef
    r_inv = linalg.solve_triangular(r, np.eye(r.shape[0]))
    return IrlsResult(coef, r_inv @ r_inv.T, eta, mu, dev, iterations, converged, boundary)


def wald_table(terms, estimate, vcov, df_residual: int | None = None, conf_level: float = 0.95) -> pd.DataFrame:
    """Estimates, SEs, Wald statistics, p-values and intervals: normal, or t on ``df_residual``.

    scipy.special's distribution functions: scipy.stats would add 0.8 s to every job's start."""
    estimate = np.asarray(estimate, dtype=float)
    se = np.sqrt(np.diag(vcov))
    statistic = estimate / se
    level = 0.5 + conf_level / 2
    if df_residual is not None:
        p_value = 2 * special.stdtr(df_residual, -np.abs(statistic))
        quantile = special.stdtrit(df_residual, level)
    else:
        p_value = 2 * special.ndtr(-np.abs(statistic))
        quantile = special.ndtri(level)
    return pd.DataFrame(
        {
            "term": terms,
            "estimate": estimate,
            "std_error": se,
            "statistic": statistic,
            "p_value": p_value,
            "conf_low": estimate - quantile * se,
            "conf_high": estimate + quantile * se,
        }
    )


class FittedModel:
    """What every fit offers through its ``design``: R's term labels, the number of rows used,
    and the covariance of the coefficients as a labelled table."""

    design: Design
    vcov: np.ndarray

    @property
    def terms(self) -> list[str]:
        return self.design.terms

    @property
    def nobs(self) -> int:
        return len(self.design.y)

    def vcov_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.vcov, index=self.terms, columns=self.terms).rename_axis("term")


@dataclass
class ModelFit(FittedModel):
    """A fitted lm or glm with what R's summary, broom's tidy/glance/augment and logLik give."""

    name: str
    formula: str
    family: str
    dataset: str
    filter: str | None
    design: Design
    coef: np.ndarray
    vcov: np.ndarray
    fitted_link: np.ndarray
    fitted: np.ndarray
    deviance_residuals: np.ndarray
    loglik: float
    df_loglik: int
    deviance: float
    null_deviance: float
    df_residual: int
    df_null: int
    iterations: int | None
    converged: bool
    warnings: list[str] = field(default_factory=list)
    lm_statistics: dict | None = None
    separation: dict | None = None  # binomial: term -> "Inf"/"-Inf" where the MLE does not exist

    @property
    def uses_t(self) -> bool:
        return self.family == "gaussian"

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.df_loglik

    @property
    def bic(self) -> float:
        return -2 * self.loglik + math.log(self.nobs) * self.df_loglik

    def tidy(self, conf_level: float = 0.95) -> pd.DataFrame:
        """``broom::tidy(conf.int = TRUE)``: Wald intervals, t-based for lm as ``confint.lm``."""
        return wald_table(self.terms, self.coef, self.vcov, self.df_residual if self.uses_t else None, conf_level)

    def glance(self) -> dict:
        values = {
            "model": self.name,
            "family": self.family,
            "nobs": self.nobs,
            "n_dropped": self.design.n_dropped,
            "df": self.df_loglik,
            "logLik": self.loglik,
            "AIC": self.aic,
            "BIC": self.bic,
            "deviance": self.deviance,
            "null_deviance": self.null_deviance,
            "df_residual": self.df_residual,
            "df_null": self.df_null,
            "iterations": self.iterations,
            "converged": self.converged,
            "warnings": list(self.warnings),
        }
        if self.separation is not None:
            values["separation"] = self.separation
        if self.lm_statistics:
            values.update(self.lm_statistics)
        return values

    def augment(self, data: pd.DataFrame) -> pd.DataFrame:
        """Per row used: the model's variables, ``.fitted`` (link scale), ``.prob`` (response scale)
        and ``.resid`` (deviance residual); ``.row`` is the row's number in the dataset."""
        frame = data.loc[self.design.rows, self.design.variables]
        frame.insert(0, ".row", self.design.rows + 1)
        frame[".fitted"] = self.fitted_link
        frame[".prob"] = self.fitted
        frame[".resid"] = self.deviance_residuals
        return frame.reset_index(drop=True)


def linkinv(family: str):
    return GLM_FAMILIES[family].linkinv if family in GLM_FAMILIES else (lambda eta: eta)


def model_data(data: pd.DataFrame, spec: dict, name: str) -> pd.DataFrame:
    """The rows a model is fitted to: the dataset, then the model's own ``filter`` (index kept)."""
    if spec.get("filter"):
        return apply_filter(data, spec["filter"], f"models.{name}.filter")
    return data


def fit_model(data: pd.DataFrame, spec: dict, name: str) -> ModelFit:
    """Fit one configured model (``dataset``, ``formula``, ``family``, optional ``filter``)."""
    family = spec["family"]
    if family not in FAMILIES:
        raise GlmflowError(f"model {name!r}: family {family!r} is not one of {', '.join(FAMILIES)}")
    where = f"model {name!r} (dataset {spec.get('dataset')!r})"
    design = build_design(spec["formula"], model_data(data, spec, name), where)
    if len(design.y) == 0:
        raise GlmflowError(f"{where}: no rows left after dropping missing values")
    rank = np.linalg.matrix_rank(design.X)
    if rank < design.X.shape[1]:
        raise GlmflowError(
            f"{where}: the model matrix has rank {rank} < {design.X.shape[1]} columns "
            f"({', '.join(design.terms)}): some terms are linear combinations of others"
        )
    fitter = _fit_lm if family == "gaussian" else _fit_glm
    return fitter(design, spec, name)


def _common(design: Design, spec: dict, name: str) -> dict:
    return {
        "name": name,
        "formula": spec["formula"],
        "family": spec["family"],
        "dataset": spec.get("dataset", "data"),
        "filter": spec.get("filter"),
        "design": design,
    }


def _fit_lm(design: Design, spec: dict, name: str) -> ModelFit:
    # Imported here: statsmodels takes 2.5 s to import, which only lm jobs should pay.
    from statsmodels.regression.linear_model import OLS

    result = OLS(design.y, design.X).fit()
    n, p = design.X.shape
    residuals = np.asarray(result.resid)
    rss = float(residuals @ residuals)
    centre = design.y.mean() if design.has_intercept else 0.0
    tss = float(np.sum((design.y - centre) ** 2))
    # logLik.lm: the ML estimate of sigma, and sigma counts as a parameter.
    loglik = -n / 2 * (math.log(2 * math.pi) + 1 - math.log(n) + math.log(rss))
    statistics = {
        "r_squared": float(result.rsquared),
        "adj_r_squared": float(result.rsquared_adj),
        "sigma": math.sqrt(rss / (n - p)),
    }
    numerator_df = p - int(design.has_intercept)
    if numerator_df > 0:
        statistics["fstatistic"] = [float(result.fvalue), numerator_df, n - p]
        statistics["f_p_value"] = float(result.f_pvalue)
    return ModelFit(
        **_common(design, spec, name),
        coef=np.asarray(result.params),
        vcov=np.asarray(result.cov_params()),
        fitted_link=np.asarray(result.fittedvalues),
        fitted=np.asarray(result.fittedvalues),
        deviance_residuals=residuals,
        loglik=loglik,
        df_loglik=p + 1,
        deviance=rss,
        null_deviance=tss,
        df_residual=n - p,
        df_null=n - int(design.has_intercept),
        iterations=None,
        converged=True,
        lm_statistics=statistics,
    )


def _fit_glm(design: Design, spec: dict, name: str) -> ModelFit:
    family = GLM_FAMILIES[spec["family"]]
    problem = family.check_y(design.y)
    if problem:
        raise GlmflowError(f"model {name!r}: response {design.response!r}: {problem}")
    fit = glm_fit(design.X, design.y, family)
    y, mu = design.y, fit.mu
    n, p = design.X.shape
    null_mu = np.full(n, y.mean()) if design.has_intercept else family.linkinv(np.zeros(n))
    warnings = []
    if not fit.converged:
        warnings.append("glm.fit: algorithm did not converge")
    if fit.boundary:
        warnings.append("glm.fit: algorithm stopped at boundary value")
    if family is BINOMIAL and np.any((mu > 1 - 10 * DOUBLE_EPS) | (mu < 10 * DOUBLE_EPS)):
        warnings.append("glm.fit: fitted probabilities numerically 0 or 1 occurred")
    separation = detect_separation(design.X, y, design.terms) if family is BINOMIAL else None
    if separation and separation.separated:
        warnings.append(separation.message())
    if family is POISSON and np.any(y != np.round(y)):
        first = y[y != np.round(y)][0]
        warnings.append(f"In dpois(y, mu, log = TRUE) : non-integer x = {first:.6f}")
    return ModelFit(
        **_common(design, spec, name),
        coef=fit.coef,
        vcov=fit.cov_unscaled,  # dispersion is 1 for binomial and poisson
        fitted_link=fit.eta,
        fitted=mu,
        deviance_residuals=np.sign(y - mu) * np.sqrt(np.maximum(family.dev_resids(y, mu), 0)),
        loglik=family.loglik(y, mu),
        df_loglik=p,
        deviance=fit.deviance,
        null_deviance=float(np.sum(family.dev_resids(y, null_mu))),
        df_residual=n - p,
        df_null=n - int(design.has_intercept),
        iterations=fit.iterations,
        converged=fit.converged,
        warnings=warnings,
        separation={t: ("Inf" if s > 0 else "-Inf") for t, s in separation.infinite.items()} if separation else None,
    )


def predict(fit: ModelFit, newdata: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """Predictions with Wald intervals on the link scale, then transformed (as ``effects`` does)."""
    X = design_for(fit.design, newdata)
    df = fit.df_residual if fit.family == "gaussian" else None
    return predict_from(X, fit.coef, fit.vcov, fit.family, newdata, conf_level, df)


def predict_from(
    X, coef, vcov, family: str, newdata: pd.DataFrame, conf_level: float = 0.95, df_residual: int | None = None
) -> pd.DataFrame:
    """Link-scale predictions with Wald intervals, transformed to the response scale. For lm
    (``df_residual`` given) the intervals use t quantiles, as ``predict.lm`` and ``geom_smooth``."""
    link = X @ coef
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, vcov, X))
    level = 0.5 + conf_level / 2
    z = special.stdtrit(df_residual, level) if df_residual else special.ndtri(level)
    inverse = linkinv(family)
    out = newdata.reset_index(drop=True).copy()
    out["link"] = link
    out["se_link"] = se
    out["prob"] = inverse(link)
    out["conf_low"] = inverse(link - z * se)
    out["conf_high"] = inverse(link + z * se)
    return out
