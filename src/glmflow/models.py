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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, special

from glmflow.constants import LARGE_ROWS
from glmflow.data import apply_filter, r_label, r_sorted
from glmflow.errors import GlmflowError
from glmflow.families import Family, family
from glmflow.formula import Design, build_design
from glmflow.formula_syntax import factor_call_variables
from glmflow.rank import CLEAR_MARGIN, r_qr_rank
from glmflow.separation import detect_separation


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
    working_weights: np.ndarray  # w^2 of the last weighted least-squares step (0 where not used)
    working_residuals: np.ndarray  # (y - mu) / mu.eta(eta)
    warnings: list[str] = field(default_factory=list)
    path: str = "qr"  # "blocked" where glmflow.glm_large fitted it (tests check which path ran)


def _valid_start(family: Family, mustart: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """glm.fit's eta and mu from mustart, which it refuses where they leave the family's range."""
    eta = family.linkfun(mustart)
    mu = family.linkinv(eta)
    if not (family.validmu(mu) and family.link.valideta(eta)):
        raise GlmflowError("cannot find valid starting values: please specify some")
    return eta, mu


def glm_fit(
    X: np.ndarray,
    y: np.ndarray,
    family: Family,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    mustart: np.ndarray | None = None,
    epsilon: float = 1e-8,
    maxit: int = 25,
) -> IrlsResult:
    """R 4.2's ``glm.fit``: IRLS from the family's starting values, the observations with a
    positive prior weight and a non-zero d mu / d eta, step-halving when the deviance is not
    finite or eta/mu leave their valid range, and R's convergence rule. ``y`` is the response
    after the family's ``initialize`` (proportions for binomial), ``weights`` the prior
    weights after it (trials for binomial proportions). Columns aliased in the last step's
    weighted QR have NaN (R's NA) coefficients and covariances."""
    n = len(y)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    offset = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    if mustart is None:
        mustart = family.initialize(y, weights).mustart
    large = _large_fit(X, y, family, weights, offset, mustart, epsilon, maxit)
    if large is not None:
        return large
    eta, mu = _valid_start(family, mustart)
    dev_old = float(np.sum(family.dev_resids(y, mu, weights)))
    step = _Step(family, X, y, weights, offset)
    coef = coef_old = None
    converged = boundary = False
    warnings: list[str] = []
    iterations = 0
    for iterations in range(1, maxit + 1):
        variance = family.variance(mu)
        if np.any(variance[weights > 0] == 0):
            raise GlmflowError("0s in V(mu)")
        mu_eta = family.mu_eta(eta)
        good = (weights > 0) & (mu_eta != 0)
        if not good.any():
            warnings.append(f"glm.fit: no observations informative at iteration {iterations}")
            break
        z = (eta - offset)[good] + (y - mu)[good] / mu_eta[good]
        w = np.sqrt(weights[good] * mu_eta[good] ** 2 / variance[good])
        start, r, kept = weighted_least_squares(X[good], z, w, min(1e-7, epsilon / 1000))
        if not np.all(np.isfinite(start)):
            warnings.append(f"glm.fit: non-finite coefficients at iteration {iterations}")
            break
        start, eta, mu, dev, boundary = step.valid(start, coef_old, maxit, warnings)
        coef = start
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            break
        dev_old, coef_old = dev, start
    r_inv = linalg.solve_triangular(r, np.eye(r.shape[0]))
    working_weights = np.zeros(n)
    working_weights[good] = w**2
    coef, cov = _expand(kept, coef[kept], r_inv @ r_inv.T)
    return IrlsResult(
        coef, cov, eta, mu, dev, iterations, converged, boundary, working_weights,
        (y - mu) / family.mu_eta(eta), warnings,
    )  # fmt: skip


def _large_fit(X, y, family, weights, offset, mustart, epsilon, maxit) -> IrlsResult | None:
    """The compiled path for 200,000 rows or more, where it applies (``glmflow.glm_large``)."""
    if len(y) < LARGE_ROWS:
        return None
    # Imported here, not at the top: numba's import costs every GLM job 0.4-0.6 s of start-up
    # on this machine, and only fits of 200,000 rows or more use it.
    from glmflow import glm_large  # noqa: PLC0415

    if not glm_large.applies(X, family):
        return None
    try:
        coef, cov, eta, mu, mu_eta, dev, iterations, converged, working = glm_large.glm_fit_large(
            X, y, family, weights, offset, mustart, epsilon, maxit
        )
    except glm_large.NotForLargePath:
        return None  # glm.fit's own path, with its step-halving and messages
    return IrlsResult(coef, cov, eta, mu, dev, iterations, converged, False, working, (y - mu) / mu_eta, path="blocked")


def weighted_least_squares(X: np.ndarray, z: np.ndarray, w: np.ndarray, tol: float):
    """One step of glm.fit, as R's ``Cdqrls``: the least-squares coefficients of ``w z`` on
    ``w X`` (0 for a column aliased in R's pivoted QR at ``tol``), the R factor of the kept
    columns and which columns were kept."""
    Xw = X * w[:, None]
    # R of [sqrt(w) X | sqrt(w) z]: its last column is Q'z, so Q is never formed (forming it
    # was 74-86% of a fit's time at n = 1e6, and a second copy of X)
    augmented = np.linalg.qr(np.column_stack([Xw, z * w]), mode="r")
    p = X.shape[1]
    kept = np.ones(p, dtype=bool)
    norms = np.linalg.norm(Xw, axis=0)
    residuals = np.abs(np.diag(augmented)[:p]) if augmented.shape[0] >= p else np.zeros(p)
    if not (np.all(norms > 0) and np.all(residuals >= CLEAR_MARGIN * tol * norms)):
        # near a dependence: dqrdc2's pivoting decides, as R's
        rank, pivot = r_qr_rank(Xw, tol)
        kept[:] = False
        kept[pivot[:rank]] = True
        augmented = np.linalg.qr(np.column_stack([Xw[:, kept], z * w]), mode="r")
    q = int(kept.sum())
    coef = np.zeros(p)
    coef[kept] = linalg.solve_triangular(augmented[:q, :q], augmented[:q, -1])
    return coef, augmented[:q, :q], kept


@dataclass
class _Step:
    """glm.fit's checks of a new coefficient vector: a non-finite deviance, then an eta or mu
    outside the family's range, each halves the step towards the previous coefficients."""

    family: Family
    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray

    def at(self, coef):
        eta = self.X @ coef + self.offset
        mu = self.family.linkinv(eta)
        return eta, mu, float(np.sum(self.family.dev_resids(self.y, mu, self.weights)))

    def valid(self, start, coef_old, maxit: int, warnings: list[str]):
        eta, mu, dev = self.at(start)
        boundary = False
        if not math.isfinite(dev):
            start, eta, mu, dev = self._halve(start, coef_old, maxit, lambda e, m, d: math.isfinite(d), 1)
            warnings.append("step size truncated due to divergence")
            boundary = True
        if not (self.family.link.valideta(eta) and self.family.validmu(mu)):
            inside = lambda e, m, d: self.family.link.valideta(e) and self.family.validmu(m)  # noqa: E731
            start, eta, mu, dev = self._halve(start, coef_old, maxit, inside, 2)
            warnings.append("step size truncated: out of bounds")
            boundary = True
        return start, eta, mu, dev, boundary

    def _halve(self, start, coef_old, maxit: int, ok, loop: int):
        if coef_old is None:
            raise GlmflowError("no valid set of coefficients has been found: please supply starting values")
        for _ in range(maxit + 1):
            eta, mu, dev = self.at(start)
            if ok(eta, mu, dev):
                return start, eta, mu, dev
            start = (start + coef_old) / 2
        raise GlmflowError(f"inner loop {loop}; cannot correct step size")


def wald_table(terms, estimate, vcov, df_residual: int | None = None, conf_level: float = 0.95) -> pd.DataFrame:
    """Estimates, SEs, Wald statistics, p-values and intervals: normal, or t on ``df_residual``,
    from scipy.special's distribution functions."""
    # not scipy.stats: its import added 0.8 s to every job's start
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
    link: str | None = None  # None: the family's default link
    dispersion: float = 1.0  # summary.glm's: 1 for binomial and poisson, else Pearson's estimate
    weights: str | None = None  # the column of prior weights, as the config names it
    fit_weights: np.ndarray | None = None  # the prior weights glm.fit used, where not all 1
    fit_y: np.ndarray | None = None  # the response glm.fit used (proportions for binomial, 0/1 for a factor)
    offset: str | None = None  # the config's offset expression (formula offsets are in the formula)
    working_weights: np.ndarray | None = None  # glm: the last IRLS step's weights (R's fit$weights)
    xlevels: dict[str, list[str]] = field(default_factory=dict)  # R's fit$xlevels: each factor's levels used

    @property
    def family_object(self) -> Family:
        return family(self.family, self.link)

    @property
    def uses_t(self) -> bool:
        """t tests where the dispersion is estimated (lm, gaussian, Gamma, inverse.gaussian, quasi)."""
        return self.family_object.dispersion_estimated

    @property
    def nobs(self) -> int:
        """R's ``nobs()``: the rows with a non-zero prior weight."""
        return len(self.design.y) if self.fit_weights is None else int(np.count_nonzero(self.fit_weights))

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.df_loglik

    @property
    def bic(self) -> float:
        # R's BIC takes n from logLik.glm, which counts every row used, zero weights too
        return -2 * self.loglik + math.log(len(self.design.y)) * self.df_loglik

    def tidy(self, conf_level: float = 0.95) -> pd.DataFrame:
        """``broom::tidy(conf.int = TRUE)``: Wald intervals, t-based for lm as ``confint.lm``."""
        return wald_table(self.terms, self.coef, self.vcov, self.df_residual if self.uses_t else None, conf_level)

    def glance(self) -> dict:
        values = {
            "model": self.name,
            "family": self.family,
            "link": self.family_object.link.name,
            "dispersion": self.dispersion,
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
        if self.xlevels:
            values["reference_levels"] = {variable: levels[0] for variable, levels in self.xlevels.items()}
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
        if self.working_weights is not None:  # R's fit$weights: of the last IRLS step (the Rao test uses them)
            frame[".working_weight"] = self.working_weights
        if self.fit_weights is not None:  # prior weights (binomial: times the trials)
            frame[".weights"] = self.fit_weights
        if self.fit_y is not None:  # the response as fitted, where the column is not it (proportions, factors)
            frame[".y"] = self.fit_y
        return frame.reset_index(drop=True)


def model_data(data: pd.DataFrame, spec: dict, name: str) -> pd.DataFrame:
    """The rows a model is fitted to: the dataset, then the model's own ``filter`` (index kept);
    R's model frame holds the weights too, so a row with a missing weight is dropped (na.omit)."""
    if spec.get("filter"):
        data = apply_filter(data, spec["filter"], f"models.{name}.filter")
    if spec.get("weights"):
        if spec["weights"] not in data.columns:
            raise GlmflowError(f"model {name!r}: weights column {spec['weights']!r} is not in the data")
        data = data[data[spec["weights"]].notna()]
    return data


def aliased_columns(X: np.ndarray, tol: float) -> np.ndarray:
    """The columns R's QR (``glmflow.rank``: dqrdc2 and its limited pivoting) sets aside as
    aliased with earlier ones; R reports their coefficients as NA."""
    rank, pivot = r_qr_rank(X, tol)
    aliased = np.zeros(X.shape[1], dtype=bool)
    aliased[pivot[rank:]] = True
    return aliased


def _expand(kept: np.ndarray, coef: np.ndarray, vcov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and covariance over every column, NA (NaN) where aliased, as R's coef()
    and vcov()."""
    full = np.full(kept.size, np.nan)
    full[kept] = coef
    cov = np.full((kept.size, kept.size), np.nan)
    cov[np.ix_(kept, kept)] = vcov
    return full, cov


def model_xlevels(design: Design, data: pd.DataFrame, formula: str) -> dict[str, list[str]]:
    """R's ``fit$xlevels``: the levels of each factor (or text) variable of the model frame in
    the rows used, in the factor's order (the model frame drops unused levels), under the
    frame's name for it: ``x``, or ``factor(x)`` for a call in the formula."""
    xlevels = {}
    calls = factor_call_variables(formula)
    for variable in design.variables:
        values = data.loc[design.rows, variable]
        if variable in design.response_columns:
            continue
        if isinstance(values.dtype, pd.CategoricalDtype):
            used = set(values.dropna())
            levels = [level for level in values.cat.categories if level in used]
        elif variable in calls or not pd.api.types.is_numeric_dtype(values.dtype):
            levels = [r_label(v) for v in r_sorted(pd.unique(values.dropna()))]
        else:
            continue
        xlevels[f"factor({variable})" if variable in calls else variable] = levels
    return xlevels


def residual_df(design: Design, spec: dict, data: pd.DataFrame, rank: int | None = None) -> int:
    """R's ``df.residual``: the rows with a positive prior weight (and trials, for a cbind()
    response) less the rank (the columns of the model matrix less the aliased ones)."""
    used = np.ones(len(design.rows), dtype=bool)
    if spec.get("weights"):
        used &= data.loc[design.rows, spec["weights"]].to_numpy(dtype=float) > 0
    if design.trials is not None:
        used &= design.trials > 0
    return int(used.sum()) - (design.X.shape[1] if rank is None else rank)


def fit_model(data: pd.DataFrame, spec: dict, name: str) -> ModelFit:
    """Fit one configured model (``dataset``, ``formula``, ``family``, optional ``link``,
    ``weights``, ``filter``): ``lm`` for gaussian with the identity link and no weights (as R's
    users call it), R's ``glm`` otherwise."""
    where = f"model {name!r} (dataset {spec.get('dataset')!r})"
    try:
        chosen = family(spec["family"], spec.get("link"))
    except GlmflowError as error:
        raise GlmflowError(f"{where}: {error}") from None
    rows = model_data(data, spec, name)
    design = build_design(spec["formula"], rows, where, spec.get("offset"))
    if len(design.y) == 0:
        raise GlmflowError(f"{where}: no rows left after dropping missing values")
    lm = is_lm(spec)
    if lm and isinstance(design.frame[design.response].dtype, pd.CategoricalDtype):
        raise GlmflowError(
            f"{where}: the response {design.response!r} is a factor; R's lm needs a number "
            "(use family: binomial for a two-level response)"
        )
    if lm:  # lm.fit's qr(tol = 1e-7); glm.fit pivots in each step (weighted_least_squares)
        return _fit_lm(design, spec, name, rows, ~aliased_columns(design.X, 1e-7))
    return _fit_glm(design, spec, name, chosen, rows)


def _common(design: Design, spec: dict, name: str, rows: pd.DataFrame) -> dict:
    return {
        "xlevels": model_xlevels(design, rows, spec["formula"]),
        "name": name,
        "formula": spec["formula"],
        "family": spec["family"],
        "dataset": spec.get("dataset", "data"),
        "filter": spec.get("filter"),
        "design": design,
        "link": spec.get("link"),
        "weights": spec.get("weights"),
    }


def _fit_lm(design: Design, spec: dict, name: str, rows: pd.DataFrame, kept: np.ndarray) -> ModelFit:
    # Imported here: statsmodels takes 2.5 s to import, which only lm jobs should pay.
    from statsmodels.regression.linear_model import OLS

    result = OLS(design.y, design.X[:, kept]).fit()
    n, p = len(design.y), int(kept.sum())
    residuals = np.asarray(result.resid)
    rss = float(residuals @ residuals)
    centre = design.y.mean() if design.has_intercept else 0.0
    tss = float(np.sum((design.y - centre) ** 2))
    # logLik.lm: the ML estimate of sigma, and sigma counts as a parameter.
    loglik = -n / 2 * (math.log(2 * math.pi) + 1 - math.log(n) + math.log(rss))
    # summary.lm's, from the formula's intercept: statsmodels would centre R^2 whenever the
    # columns span a constant (y ~ 0 + flag), where R does not.
    fitted = np.asarray(result.fittedvalues)
    explained = float(np.sum((fitted - fitted.mean()) ** 2) if design.has_intercept else fitted @ fitted)
    r_squared = explained / (explained + rss)
    numerator_df = p - int(design.has_intercept)
    statistics = {
        "r_squared": r_squared,
        "adj_r_squared": 1 - (1 - r_squared) * (n - int(design.has_intercept)) / (n - p),
        "sigma": math.sqrt(rss / (n - p)),
    }
    if numerator_df > 0 and n > p:
        f_value = explained / numerator_df / (rss / (n - p))
        statistics["fstatistic"] = [f_value, numerator_df, n - p]
        statistics["f_p_value"] = float(special.fdtrc(numerator_df, n - p, f_value))
    coef, vcov = _expand(kept, np.asarray(result.params), np.asarray(result.cov_params()))
    return ModelFit(
        **_common(design, spec, name, rows),
        coef=coef,
        vcov=vcov,
        fitted_link=fitted,
        fitted=fitted,
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
        dispersion=rss / (n - p),  # sigma^2, as summary.lm's sigma squared (glance's `dispersion`)
    )


def _fit_glm(design: Design, spec: dict, name: str, chosen: Family, rows: pd.DataFrame) -> ModelFit:
    n = len(design.y)
    start = _glm_start(design, spec, name, chosen, rows)
    y, weights = start.y, start.weights
    offset = design.offset if design.offset is not None else np.zeros(n)
    try:
        fit = glm_fit(design.X, y, chosen, weights, offset, mustart=start.mustart)
    except GlmflowError as error:
        raise GlmflowError(
            f"model {name!r} ({chosen.name}, {chosen.link.name} link): R's glm.fit stops here too: {error}; "
            "glmflow takes no starting values, so choose another link (or family) for these data"
        ) from None
    mu = fit.mu
    kept = ~np.isnan(fit.coef)
    p = int(kept.sum())  # the rank
    n_ok = int(n - np.sum(weights == 0))
    df_residual = n_ok - p
    warnings, separation = _glm_warnings(design, chosen, start, fit, kept)
    dispersion = _glm_dispersion(chosen, fit, df_residual)
    rank_df = p + int(chosen.dispersion_in_loglik)
    aic = chosen.aic(y, start.n, mu, weights, fit.deviance) + 2 * p
    return ModelFit(
        **_common(design, spec, name, rows),
        coef=fit.coef,
        vcov=fit.cov_unscaled * dispersion,
        fitted_link=fit.eta,
        fitted=mu,
        # + 0.0: a zero-weight row's residual is 0, not -0 (which would print as -0.000)
        deviance_residuals=np.sign(y - mu) * np.sqrt(np.maximum(chosen.dev_resids(y, mu, weights), 0)) + 0.0,
        loglik=rank_df - aic / 2,  # logLik.glm
        df_loglik=rank_df,
        deviance=fit.deviance,
        null_deviance=float(np.sum(chosen.dev_resids(y, _null_means(design, chosen, y, weights, offset, mu), weights))),
        df_residual=df_residual,
        df_null=n_ok - int(design.has_intercept),
        iterations=fit.iterations,
        converged=fit.converged,
        warnings=warnings,
        separation={t: ("Inf" if s > 0 else "-Inf") for t, s in separation.infinite.items()} if separation else None,
        dispersion=dispersion,
        fit_weights=None if np.all(weights == 1) else weights,
        fit_y=None if np.all(weights == 1) and not design.coded_response else y,
        offset=spec.get("offset"),
        working_weights=fit.working_weights,
    )


def _glm_start(design: Design, spec: dict, name: str, chosen: Family, rows: pd.DataFrame):
    """The family's initialize(): the response, prior weights and starting means, as glm()."""
    n = len(design.y)
    prior = np.ones(n) if not spec.get("weights") else rows.loc[design.rows, spec["weights"]].to_numpy(dtype=float)
    if np.any(prior < 0):
        raise GlmflowError(f"model {name!r}: weights {spec['weights']!r}: negative weights not allowed")
    if design.trials is not None and not chosen.is_binomial:
        raise GlmflowError(f"model {name!r}: a cbind(successes, failures) response needs a binomial family")
    try:
        return chosen.initialize(design.y, prior, design.trials)
    except GlmflowError as error:
        raise GlmflowError(f"model {name!r}: response {design.response!r}: {error}") from None


def _null_means(design: Design, chosen: Family, y, weights, offset, mu) -> np.ndarray:
    """The null model's means, as glm(): with an intercept and an offset, refitted (intercept
    and offset); with an intercept alone, the weighted mean; without, the offset's."""
    if design.has_intercept and design.offset is not None:
        return glm_fit(np.ones((len(y), 1)), y, chosen, weights, offset, mustart=mu).mu
    if design.has_intercept:
        return np.full(len(y), np.sum(weights * y) / np.sum(weights))
    return chosen.linkinv(offset)


def _glm_warnings(design: Design, chosen: Family, start, fit, kept: np.ndarray):
    """R's warnings for the fit (glm.fit's, the family's) and, for a binomial family, separation."""
    warnings = list(start.warnings) + list(fit.warnings)
    if not fit.converged:
        warnings.append("glm.fit: algorithm did not converge")
    if fit.boundary:
        warnings.append("glm.fit: algorithm stopped at boundary value")
    warnings.extend(chosen.fit_warnings(start.y, fit.mu))
    terms = [term for term, keep in zip(design.terms, kept, strict=True) if keep]
    separation = detect_separation(design.X[:, kept], start.y, terms, start.weights) if chosen.is_binomial else None
    if separation and separation.separated:
        warnings.append(separation.message())
    return warnings, separation


def _glm_dispersion(chosen: Family, fit, df_residual: int) -> float:
    """summary.glm's dispersion: 1 where the family fixes it; else Pearson's chi-squared over the
    residual df, from the working weights and residuals."""
    if not chosen.dispersion_estimated:
        return 1.0
    if df_residual <= 0:
        return float("nan")
    used = fit.working_weights > 0
    return float(np.sum((fit.working_weights * fit.working_residuals**2)[used]) / df_residual)


def is_lm(spec: dict) -> bool:
    """Fitted as R's ``lm``: gaussian with the identity link and no prior weights."""
    plain = not spec.get("weights") and not spec.get("offset") and "offset(" not in spec["formula"]
    return family(spec["family"], spec.get("link")).is_linear and plain


def predict_from(
    X,
    coef,
    vcov,
    chosen: Family,
    newdata: pd.DataFrame,
    conf_level: float = 0.95,
    df_residual: int | None = None,
    offset: np.ndarray | None = None,
) -> pd.DataFrame:
    """Link-scale predictions with Wald intervals, transformed to the response scale. For lm
    (``df_residual`` given) the intervals use t quantiles, as ``predict.lm`` and ``geom_smooth``."""
    # aliased coefficients (NA) take no part, as effects' and predict.lm's columns in use
    coef, vcov = np.nan_to_num(np.asarray(coef, dtype=float)), np.nan_to_num(np.asarray(vcov, dtype=float))
    link = X @ coef + (0.0 if offset is None else offset)
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, vcov, X))
    level = 0.5 + conf_level / 2
    z = special.stdtrit(df_residual, level) if df_residual else special.ndtri(level)
    inverse = chosen.linkinv
    out = newdata.reset_index(drop=True).copy()
    out["link"] = link
    out["se_link"] = se
    out["prob"] = inverse(link)
    out["conf_low"] = inverse(link - z * se)
    out["conf_high"] = inverse(link + z * se)
    return out
