"""R's GLM families as objects: a family (variance, deviance residuals, AIC, starting values,
the response it accepts) with a link (link function, inverse, derivative, valid range), as
statsmodels' ``genmod/families`` and R's ``family`` objects are built.

Every function is R 4.2's (``stats/R/family.R``, ``make.link``, the C code of the logit
link and binomial deviance), clamps and all, because IRLS's path, and so R's iteration
counts and standard errors, depend on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from glmflow.constants import DOUBLE_EPS
from glmflow.errors import GlmflowError


def _always_valid(values) -> bool:
    return True


def _positive_finite(values) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values > 0))


@dataclass(frozen=True)
class Link:
    """``make.link(name)``."""

    name: str
    linkfun: Callable[[np.ndarray], np.ndarray]
    linkinv: Callable[[np.ndarray], np.ndarray]
    mu_eta: Callable[[np.ndarray], np.ndarray]
    valideta: Callable[[np.ndarray], bool] = _always_valid


# R's C code for the logit link: beyond |eta| = 30, exp(eta) is replaced by eps or 1/eps (so mu
# stays in (0, 1)) and d mu / d eta by eps. The simulation's compiled IRLS uses the same threshold.
LOGIT_THRESHOLD = 30.0


def _logit_linkinv(eta):
    t = LOGIT_THRESHOLD
    tmp = np.where(eta < -t, DOUBLE_EPS, np.where(eta > t, 1 / DOUBLE_EPS, np.exp(np.clip(eta, -t, t))))
    return tmp / (1 + tmp)


def _logit_mu_eta(eta):
    t = LOGIT_THRESHOLD
    e = np.exp(np.clip(eta, -t, t))
    return np.where((eta > t) | (eta < -t), DOUBLE_EPS, e / (1 + e) ** 2)


_PROBIT_THRESH = -float(special.ndtri(DOUBLE_EPS))
_CAUCHIT_THRESH = -math.tan(math.pi * (DOUBLE_EPS - 0.5))


def _pcauchy(x):
    return 0.5 + np.arctan(x) / math.pi


def _dcauchy(x):
    return 1 / (math.pi * (1 + x * x))


def _qcauchy(p):
    return np.tan(math.pi * (p - 0.5))


LINKS = {
    "logit": Link("logit", lambda mu: np.log(mu / (1 - mu)), _logit_linkinv, _logit_mu_eta),
    "probit": Link(
        "probit",
        special.ndtri,
        lambda eta: special.ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH)),
        lambda eta: np.maximum(np.exp(-0.5 * eta * eta) / math.sqrt(2 * math.pi), DOUBLE_EPS),
    ),
    "cauchit": Link(
        "cauchit",
        _qcauchy,
        lambda eta: _pcauchy(np.clip(eta, -_CAUCHIT_THRESH, _CAUCHIT_THRESH)),
        lambda eta: np.maximum(_dcauchy(eta), DOUBLE_EPS),
    ),
    "cloglog": Link(
        "cloglog",
        lambda mu: np.log(-np.log1p(-mu)),
        lambda eta: np.maximum(np.minimum(-np.expm1(-np.exp(eta)), 1 - DOUBLE_EPS), DOUBLE_EPS),
        lambda eta: np.maximum(np.exp(np.minimum(eta, 700)) * np.exp(-np.exp(np.minimum(eta, 700))), DOUBLE_EPS),
    ),
    "identity": Link("identity", lambda mu: mu, lambda eta: eta, np.ones_like),
    "log": Link(
        "log",
        np.log,
        lambda eta: np.maximum(np.exp(eta), DOUBLE_EPS),
        lambda eta: np.maximum(np.exp(eta), DOUBLE_EPS),
    ),
    "sqrt": Link("sqrt", np.sqrt, lambda eta: eta**2, lambda eta: 2 * eta, _positive_finite),
    "1/mu^2": Link(
        "1/mu^2", lambda mu: 1 / mu**2, lambda eta: 1 / np.sqrt(eta), lambda eta: -1 / (2 * eta**1.5), _positive_finite
    ),
    "inverse": Link(
        "inverse",
        lambda mu: 1 / mu,
        lambda eta: 1 / eta,
        lambda eta: -1 / eta**2,
        lambda eta: bool(np.all(np.isfinite(eta)) and np.all(eta != 0)),
    ),
}


def _y_log_y(y, mu):
    return special.xlogy(y, y / np.where(y > 0, mu, 1.0))


def _binomial_dev_resids(y, mu, wt):
    return 2 * wt * (_y_log_y(y, mu) + _y_log_y(1 - y, 1 - mu))


def _poisson_dev_resids(y, mu, wt):
    r = mu * wt
    positive = y > 0
    return 2 * np.where(positive, wt * (special.xlogy(y, y / np.where(positive, mu, 1.0)) - (y - mu)), r)


def _gamma_dev_resids(y, mu, wt):
    return -2 * wt * (np.log(np.where(y == 0, 1.0, y / mu)) - (y - mu) / mu)


def _log_dbinom(k, size, p):
    return (
        special.gammaln(size + 1)
        - special.gammaln(k + 1)
        - special.gammaln(size - k + 1)
        + (special.xlogy(k, p) + special.xlog1py(size - k, -p))
    )


def _binomial_aic(y, n, mu, wt, dev):
    m = n if np.any(n > 1) else wt
    share = np.where(m > 0, wt / np.where(m > 0, m, 1.0), 0.0)
    return float(-2 * np.sum(share * _log_dbinom(np.round(m * y), np.round(m), mu)))


def _poisson_aic(y, n, mu, wt, dev):
    return float(-2 * np.sum((special.xlogy(y, mu) - mu - special.gammaln(y + 1)) * wt))


def _gaussian_aic(y, n, mu, wt, dev):
    nobs = len(y)
    with np.errstate(divide="ignore"):
        return float(nobs * (math.log(dev / nobs * 2 * math.pi) + 1) + 2 - np.sum(np.log(wt)))


def _log_dgamma(y, shape, scale):
    return special.xlogy(shape - 1, y) - y / scale - special.gammaln(shape) - shape * np.log(scale)


def _gamma_aic(y, n, mu, wt, dev):
    disp = dev / np.sum(wt)
    return float(-2 * np.sum(_log_dgamma(y, 1 / disp, mu * disp) * wt) + 2)


def _inverse_gaussian_aic(y, n, mu, wt, dev):
    total = np.sum(wt)
    return float(total * (1 + math.log(dev / total * 2 * math.pi)) + 3 * np.sum(np.log(y) * wt) + 2)


def _no_aic(y, n, mu, wt, dev):
    return float("nan")


@dataclass(frozen=True)
class Start:
    """What a family's ``initialize`` makes of the response and the prior weights."""

    y: np.ndarray
    n: np.ndarray  # binomial trials (1 elsewhere)
    weights: np.ndarray
    mustart: np.ndarray
    warnings: tuple[str, ...] = ()


def _binomial_start(family_name: str):
    def start(y, weights, trials=None):
        warnings = []
        if trials is None:  # a 0/1 or proportion response
            y = np.where(weights == 0, 0.0, y)
            if np.any((y < 0) | (y > 1)):
                raise GlmflowError(
                    "y values must be 0 <= y <= 1 (R's message): binomial needs a 0/1 response, a factor, "
                    "or proportions with `weights`"
                )
            mustart = (weights * y + 0.5) / (weights + 1)
            m = weights * y
            if family_name == "binomial" and np.any(np.abs(m - np.round(m)) > 1e-3):
                warnings.append("In eval(family$initialize) : non-integer #successes in a binomial glm!")
            return Start(y, np.ones(len(y)), weights, mustart, tuple(warnings))
        successes, n = y, trials
        if family_name == "binomial" and np.any(np.abs(np.r_[successes, n - successes] - np.round(
                np.r_[successes, n - successes])) > 1e-3):  # fmt: skip
            warnings.append("In eval(family$initialize) : non-integer counts in a binomial glm!")
        proportion = np.where(n == 0, 0.0, successes / np.where(n == 0, 1.0, n))
        return Start(proportion, n, weights * n, (n * proportion + 0.5) / (n + 1), tuple(warnings))

    return start


def _poisson_start(y, weights, trials=None):
    if np.any(y < 0):
        raise GlmflowError("negative values not allowed for the 'Poisson' family")
    return Start(y, np.ones(len(y)), weights, y + 0.1)


def _gaussian_start(link_name: str):
    def start(y, weights, trials=None):
        if (link_name == "inverse" and np.any(y == 0)) or (link_name == "log" and np.any(y <= 0)):
            raise GlmflowError("cannot find valid starting values: please specify some")
        return Start(y, np.ones(len(y)), weights, y.astype(float))

    return start


def _positive_start(message: str):
    def start(y, weights, trials=None):
        if np.any(y <= 0):
            raise GlmflowError(message)
        return Start(y, np.ones(len(y)), weights, y.astype(float))

    return start


@dataclass(frozen=True)
class Family:
    """An R family with its link: what ``glm.fit``, ``summary.glm``, ``logLik.glm`` and the
    prediction intervals use."""

    name: str  # as R spells family$family: binomial, quasibinomial, poisson, Gamma, ...
    link: Link
    variance: Callable[[np.ndarray], np.ndarray]
    dev_resids: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    aic: Callable[..., float]
    initialize: Callable[..., Start]
    validmu: Callable[[np.ndarray], bool]
    fixed_dispersion: bool  # binomial and poisson: 1; the others estimate it
    dispersion_in_loglik: bool  # gaussian, Gamma, inverse.gaussian count it as a parameter

    @property
    def linkinv(self):
        return self.link.linkinv

    @property
    def linkfun(self):
        return self.link.linkfun

    @property
    def mu_eta(self):
        return self.link.mu_eta

    @property
    def is_binomial(self) -> bool:
        return self.name in ("binomial", "quasibinomial")

    @property
    def is_default_link(self) -> bool:
        return self.link.name == DEFAULT_LINKS[self.name]

    def log_density(self, y, mu, wt=None, deviance: float | None = None) -> np.ndarray:
        """Each row's log-likelihood contribution, as R's ``logLik.glm`` counts it (the family's
        ``aic``): binomial ``y`` is a proportion of ``wt`` trials; gaussian, Gamma and
        inverse.gaussian use the dispersion R's AIC uses (deviance / the sum of the weights, or
        the mean squared residual for gaussian), computed here from ``y`` and ``mu`` unless
        ``deviance`` is given. The quasi families have no density: NaN."""
        y = np.asarray(y, dtype=float)
        mu = np.asarray(mu, dtype=float)
        w = np.ones_like(y) if wt is None else np.asarray(wt, dtype=float)
        name = self.name
        if name.startswith("quasi"):
            return np.full_like(y, np.nan)
        if name == "binomial":
            m, k = np.round(w), np.round(w * y)
            return np.where(w > 0, _log_dbinom(k, m, mu), 0.0)
        if name == "poisson":
            return w * (special.xlogy(y, mu) - mu - special.gammaln(y + 1))
        total = float(np.sum(self.dev_resids(y, mu, w))) if deviance is None else deviance
        if name == "gaussian":
            sigma2 = total / len(y)  # maximum-likelihood variance, as logLik.lm and gaussian()$aic
            with np.errstate(divide="ignore"):
                return -0.5 * (np.log(2 * np.pi * sigma2) - np.log(w) + w * (y - mu) ** 2 / sigma2)
        dispersion = total / np.sum(w)
        if name == "Gamma":
            return w * _log_dgamma(y, 1 / dispersion, mu * dispersion)
        return w * (-0.5 * np.log(2 * np.pi * dispersion * y**3) - (y - mu) ** 2 / (2 * dispersion * mu**2 * y))

    def canonical_log_density(self, y, eta, prior=1.0) -> np.ndarray:
        """log p(y | eta) for the canonical binomial (logit) and Poisson (log) links, written in
        eta so that it stays exact in the tails (what the mixed-model engine integrates);
        binomial ``y`` is a proportion of ``prior`` trials."""
        constant = self.canonical_log_constant(y, prior)
        if self.name == "binomial" and self.link.name == "logit":
            return prior * (y * eta - np.logaddexp(0.0, eta)) + constant
        if self.name == "poisson" and self.link.name == "log":
            return y * eta - np.exp(eta) + constant
        raise GlmflowError(f"{self.name}({self.link.name}) is not a canonical binomial or Poisson family")

    def canonical_log_constant(self, y, prior=1.0) -> np.ndarray:
        """The part of log p(y) free of eta: log choose(m, m y) for binomial proportions of m
        trials (0 for 0/1 data), -log(y!) for counts."""
        y = np.asarray(y, dtype=float)
        if self.name == "binomial":
            m = np.broadcast_to(np.asarray(prior, dtype=float), y.shape)
            k = m * y
            return special.gammaln(m + 1) - special.gammaln(k + 1) - special.gammaln(m - k + 1)
        return -special.gammaln(y + 1.0)

    def canonical_weight_and_slope(self, mu):
        """For a canonical link, d mu / d eta (the IRLS weight) and its derivative in eta."""
        if self.name == "binomial" and self.link.name == "logit":
            w = mu * (1.0 - mu)
            return w, w * (1.0 - 2.0 * mu)
        if self.name == "poisson" and self.link.name == "log":
            return mu, mu
        raise GlmflowError(f"{self.name}({self.link.name}) is not a canonical binomial or Poisson family")

    def r_call(self) -> str:
        """The family as the R call names it: ``"binomial"``, ``binomial(link = "probit")``."""
        return f'"{self.name}"' if self.is_default_link else f'{self.name}(link = "{self.link.name}")'


def _binomial_validmu(mu) -> bool:
    return bool(np.all(np.isfinite(mu)) and np.all((mu > 0) & (mu < 1)))


DEFAULT_LINKS = {
    "binomial": "logit",
    "quasibinomial": "logit",
    "poisson": "log",
    "quasipoisson": "log",
    "gaussian": "identity",
    "Gamma": "inverse",
    "inverse.gaussian": "1/mu^2",
}
ALLOWED_LINKS = {
    "binomial": ["logit", "probit", "cauchit", "cloglog", "log"],
    "quasibinomial": ["logit", "probit", "cauchit", "cloglog", "log"],
    "poisson": ["log", "identity", "sqrt"],
    "quasipoisson": ["log", "identity", "sqrt"],
    "gaussian": ["identity", "log", "inverse"],
    "Gamma": ["inverse", "log", "identity"],
    "inverse.gaussian": ["1/mu^2", "log", "inverse", "identity"],
}
FAMILY_NAMES = list(DEFAULT_LINKS)
# lme4's glmer families (glmer refuses the quasi families); gaussian with the identity link is
# lmer's linear mixed model (glmflow.glmm.lmm)
MIXED_MODEL_FAMILIES = ("binomial", "poisson", "Gamma", "inverse.gaussian", "gaussian")


def mixed_model_family_problem(name: str, link: str | None, nAGQ: int) -> tuple[str, str] | None:
    """What a mixed model may not have, by family, link and nAGQ alone: (the setting at fault,
    the message), or None. Used by the config check (before any job) and by ``fit_glmm``."""
    if name not in MIXED_MODEL_FAMILIES:
        return "family", (f"mixed models are fitted for the families {', '.join(MIXED_MODEL_FAMILIES)} (any of "
                          f"their links), not {name!r}")  # fmt: skip
    if name == "gaussian" and (link or DEFAULT_LINKS[name]) == "identity" and nAGQ != 1:
        return "nAGQ", ("a gaussian mixed model with the identity link is a linear mixed model, fitted as lme4's "
                        "lmer, which has no nAGQ (its likelihood is exact); remove nAGQ")  # fmt: skip
    if nAGQ > 1 and name not in ("binomial", "poisson"):
        # lme4 runs its quadrature for these families but on another scale: the bdf Gamma(log)
        # model of tests/r/glmm_general.R gives logLik -41.65 at nAGQ = 5, -7731.7 at nAGQ = 1
        return "nAGQ", (f"nAGQ = {nAGQ} is not available for the {name} family (lme4's quadrature for families "
                        "with a dispersion does not give the log-likelihood); use nAGQ: 1 (Laplace)")  # fmt: skip
    return None


def family(name: str, link: str | None = None) -> Family:
    """R's ``name(link = link)``; the family's default link when ``link`` is None."""
    if name not in DEFAULT_LINKS:
        raise GlmflowError(f"family {name!r} is not one of {', '.join(FAMILY_NAMES)}")
    link = link or DEFAULT_LINKS[name]
    if link not in ALLOWED_LINKS[name]:
        raise GlmflowError(
            f"link {link!r} is not available for the {name} family (available: {', '.join(ALLOWED_LINKS[name])})"
        )
    chosen = LINKS[link]
    if name in ("binomial", "quasibinomial"):
        return Family(name, chosen, lambda mu: mu * (1 - mu), _binomial_dev_resids,
                      _binomial_aic if name == "binomial" else _no_aic, _binomial_start(name), _binomial_validmu,
                      name == "binomial", False)  # fmt: skip
    if name in ("poisson", "quasipoisson"):
        return Family(name, chosen, lambda mu: mu, _poisson_dev_resids, _poisson_aic if name == "poisson" else _no_aic,
                      _poisson_start, _positive_finite, name == "poisson", False)  # fmt: skip
    if name == "gaussian":
        return Family(name, chosen, np.ones_like, lambda y, mu, wt: wt * (y - mu) ** 2, _gaussian_aic,
                      _gaussian_start(link), _always_valid, False, True)  # fmt: skip
    if name == "Gamma":
        return Family(name, chosen, lambda mu: mu**2, _gamma_dev_resids, _gamma_aic,
                      _positive_start("non-positive values not allowed for the 'Gamma' family"), _positive_finite,
                      False, True)  # fmt: skip
    return Family(name, chosen, lambda mu: mu**3, lambda y, mu, wt: wt * (y - mu) ** 2 / (y * mu**2),
                  _inverse_gaussian_aic,
                  _positive_start("positive values only are allowed for the 'inverse.gaussian' family"),
                  _always_valid, False, True)  # fmt: skip
