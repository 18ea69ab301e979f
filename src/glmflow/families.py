"""R's GLM families as objects: a family (variance, deviance residuals, AIC, starting values,
the response it accepts) with a link (link function, inverse, derivative, valid range), as
statsmodels' ``genmod/families`` and R's ``family`` objects are built.

Every function is R 4.2's (``stats/R/family.R``, ``make.link``, the C code of the logit
link and binomial deviance), clamps and all, because IRLS's path, and so R's iteration
counts and standard errors, depend on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import special

from glmflow.constants import DOUBLE_EPS
from glmflow.errors import GlmflowError
from glmflow.rformat import r_label


def _positive_finite(values) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values > 0))


class Link:
    """``make.link(name)``: the link function, its inverse, d mu / d eta and the valid range of
    eta. ``code`` is the integer the compiled kernels (``glmflow.compiled_links``) switch on."""

    name: ClassVar[str]
    code: ClassVar[int]

    def linkfun(self, mu):
        raise NotImplementedError

    def linkinv(self, eta):
        raise NotImplementedError

    def mu_eta(self, eta):
        raise NotImplementedError

    def valideta(self, eta) -> bool:
        return True

    def valid_start(self, mu) -> bool:
        """Whether eta = linkfun(mu) exists where gaussian's ``initialize`` starts (mu = y): R's
        check names the inverse (mu = 0) and log (mu <= 0) links."""
        return True

    def __repr__(self) -> str:
        return f"make.link({self.name!r})"


# R's C code for the logit link: beyond |eta| = 30, exp(eta) is replaced by eps or 1/eps (so mu
# stays in (0, 1)) and d mu / d eta by eps. The simulation's compiled IRLS uses the same threshold.
LOGIT_THRESHOLD = 30.0
_PROBIT_THRESH = -float(special.ndtri(DOUBLE_EPS))


class LogitLink(Link):
    name, code = "logit", 0

    def linkfun(self, mu):
        return np.log(mu / (1 - mu))

    def linkinv(self, eta):
        t = LOGIT_THRESHOLD
        tmp = np.where(eta < -t, DOUBLE_EPS, np.where(eta > t, 1 / DOUBLE_EPS, np.exp(np.clip(eta, -t, t))))
        return tmp / (1 + tmp)

    def mu_eta(self, eta):
        t = LOGIT_THRESHOLD
        e = np.exp(np.clip(eta, -t, t))
        return np.where((eta > t) | (eta < -t), DOUBLE_EPS, e / (1 + e) ** 2)


class ProbitLink(Link):
    name, code = "probit", 1

    def linkfun(self, mu):
        return special.ndtri(mu)

    def linkinv(self, eta):
        return special.ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH))

    def mu_eta(self, eta):
        return np.maximum(np.exp(-0.5 * eta * eta) / math.sqrt(2 * math.pi), DOUBLE_EPS)


def _qcauchy(p):
    """R's qcauchy(p): -1 / tanpi(p) from the nearer tail, exact where tan(pi (p - 1/2)) rounds
    p - 1/2 (5e-7 relative at p = 1e-10)."""
    p = np.asarray(p, dtype=float)
    upper = p > 0.5
    tail = np.where(upper, 1 - p, p)
    with np.errstate(divide="ignore"):
        value = np.where(tail == 0.5, 0.0, 1 / np.where(tail == 0.25, 1.0, np.tan(math.pi * tail)))
    return np.where(upper, value, -value) + 0.0  # p = 1/2: 0, not -0


def _pcauchy(x):
    """R's pcauchy(x): beyond |x| = 1 from atan(1 / x), which keeps the tails' digits."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        tail = np.arctan(1 / x) / math.pi
    return np.where(np.abs(x) > 1, np.where(x > 0, 0.5 - tail + 0.5, -tail), 0.5 + np.arctan(x) / math.pi)


_CAUCHIT_THRESH = -float(_qcauchy(DOUBLE_EPS))


class CauchitLink(Link):
    name, code = "cauchit", 2

    def linkfun(self, mu):
        return _qcauchy(mu)

    def linkinv(self, eta):
        return _pcauchy(np.clip(eta, -_CAUCHIT_THRESH, _CAUCHIT_THRESH))

    def mu_eta(self, eta):
        return np.maximum(1 / (math.pi * (1 + eta * eta)), DOUBLE_EPS)  # dcauchy


class CloglogLink(Link):
    name, code = "cloglog", 3

    def linkfun(self, mu):
        return np.log(-np.log(1 - mu))  # R's, whose 1 - mu rounds for mu near 0

    def linkinv(self, eta):
        return np.maximum(np.minimum(-np.expm1(-np.exp(eta)), 1 - DOUBLE_EPS), DOUBLE_EPS)

    def mu_eta(self, eta):
        return np.maximum(np.exp(np.minimum(eta, 700)) * np.exp(-np.exp(np.minimum(eta, 700))), DOUBLE_EPS)


class LogLink(Link):
    name, code = "log", 4

    def linkfun(self, mu):
        return np.log(mu)

    def linkinv(self, eta):
        return np.maximum(np.exp(eta), DOUBLE_EPS)

    def mu_eta(self, eta):
        return np.maximum(np.exp(eta), DOUBLE_EPS)

    def valid_start(self, mu) -> bool:
        return not np.any(mu <= 0)


class IdentityLink(Link):
    name, code = "identity", 5

    def linkfun(self, mu):
        return mu

    def linkinv(self, eta):
        return eta

    def mu_eta(self, eta):
        return np.ones_like(eta)


class SqrtLink(Link):
    name, code = "sqrt", 6

    def linkfun(self, mu):
        return np.sqrt(mu)

    def linkinv(self, eta):
        return eta**2

    def mu_eta(self, eta):
        return 2 * eta

    def valideta(self, eta) -> bool:
        return _positive_finite(eta)


class InverseLink(Link):
    name, code = "inverse", 7

    def linkfun(self, mu):
        return 1 / mu

    def linkinv(self, eta):
        return 1 / eta

    def mu_eta(self, eta):
        return -1 / eta**2

    def valideta(self, eta) -> bool:
        return bool(np.all(np.isfinite(eta)) and np.all(eta != 0))

    def valid_start(self, mu) -> bool:
        return not np.any(mu == 0)


class InverseSquareLink(Link):
    name, code = "1/mu^2", 8

    def linkfun(self, mu):
        return 1 / mu**2

    def linkinv(self, eta):
        return 1 / np.sqrt(eta)

    def mu_eta(self, eta):
        return -1 / (2 * eta**1.5)

    def valideta(self, eta) -> bool:
        return _positive_finite(eta)


LINKS: dict[str, Link] = {
    link.name: link
    for link in (LogitLink(), ProbitLink(), CauchitLink(), CloglogLink(), IdentityLink(), LogLink(), SqrtLink(),
                 InverseSquareLink(), InverseLink())
}  # fmt: skip


def _y_log_y(y, mu):
    return special.xlogy(y, y / np.where(y > 0, mu, 1.0))


def _log_dbinom(k, size, p):
    return (
        special.gammaln(size + 1)
        - special.gammaln(k + 1)
        - special.gammaln(size - k + 1)
        + (special.xlogy(k, p) + special.xlog1py(size - k, -p))
    )


def _log_dgamma(y, shape, scale):
    return special.xlogy(shape - 1, y) - y / scale - special.gammaln(shape) - shape * np.log(scale)


@dataclass(frozen=True)
class Start:
    """What a family's ``initialize`` makes of the response and the prior weights."""

    y: np.ndarray
    n: np.ndarray  # binomial trials (1 elsewhere)
    weights: np.ndarray
    mustart: np.ndarray
    warnings: tuple[str, ...] = ()


class Family:
    """An R family with its link: what ``glm.fit``, ``summary.glm``, ``logLik.glm``, glmer and
    the prediction intervals use. Each subclass is one of R's families; callers ask it
    (``dispersion_estimated``, ``code``, ``has_likelihood``, ...) rather than compare names."""

    name: ClassVar[str]  # as R spells family$family: binomial, quasibinomial, poisson, Gamma, ...
    links: ClassVar[tuple[str, ...]]  # the links R's family accepts; the first is its default
    # the compiled kernels' code (glmflow.compiled_links); None: no compiled path serves it
    code: ClassVar[int | None] = None
    # summary.glm's est.disp: t tests, F tests and a Pearson dispersion; binomial and poisson: 1
    dispersion_estimated: ClassVar[bool] = True
    dispersion_in_loglik: ClassVar[bool] = False  # gaussian, Gamma, inverse.gaussian count it as a parameter
    has_likelihood: ClassVar[bool] = True  # the quasi families: logLik, AIC and BIC are NA
    is_binomial: ClassVar[bool] = False  # a 0/1, proportion or cbind() response
    positive_mean: ClassVar[bool] = True  # every mean is positive (all but gaussian)
    glmer: ClassVar[bool] = True  # lme4's glmer fits it (it refuses the quasi families)
    # nAGQ > 1 gives the log-likelihood: lme4 runs its quadrature for the families with a
    # dispersion too, but on another scale (the bdf Gamma(log) model of tests/r/glmm_general.R
    # gives logLik -41.65 at nAGQ = 5, -7731.7 at nAGQ = 1)
    quadrature: ClassVar[bool] = False

    def __init__(self, link: Link | None = None):
        self.link = LINKS[self.links[0]] if link is None else link

    def __repr__(self) -> str:
        return f"{self.name}(link = {self.link.name!r})"

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
    def is_default_link(self) -> bool:
        return self.link.name == self.links[0]

    @property
    def is_linear(self) -> bool:
        """Gaussian with the identity link: R's ``lm``."""
        return False

    def variance(self, mu):
        raise NotImplementedError

    def dev_resids(self, y, mu, wt):
        raise NotImplementedError

    def validmu(self, mu) -> bool:
        return True

    def aic(self, y, n, mu, wt, dev) -> float:
        """R's ``family$aic``: -2 log-likelihood (+ 2 for a dispersion); the quasi families' is NA."""
        raise NotImplementedError

    def initialize(self, y, weights, trials=None) -> Start:
        """R's ``family$initialize`` (its error messages): the response, the weights and mustart."""
        return Start(y, np.ones(len(y)), weights, y.astype(float))

    def fit_warnings(self, y, mu) -> list[str]:
        """What ``glm.fit`` and the family's ``aic`` warn of at the fitted means."""
        return []

    def log_density(self, y, mu, wt=None, deviance: float | None = None) -> np.ndarray:
        """Each row's log-likelihood contribution, as R's ``logLik.glm`` counts it (the family's
        ``aic``): binomial ``y`` is a proportion of ``wt`` trials; gaussian, Gamma and
        inverse.gaussian use the dispersion R's AIC uses (deviance / the sum of the weights, or
        the mean squared residual for gaussian), computed here from ``y`` and ``mu`` unless
        ``deviance`` is given. The quasi families have no density: NaN."""
        y = np.asarray(y, dtype=float)
        mu = np.asarray(mu, dtype=float)
        w = np.ones_like(y) if wt is None else np.asarray(wt, dtype=float)
        if deviance is None and self.dispersion_in_loglik:
            deviance = float(np.sum(self.dev_resids(y, mu, w)))
        return self._log_density(y, mu, w, deviance)

    def _log_density(self, y, mu, w, deviance):
        raise NotImplementedError

    @classmethod
    def response_problem(cls, response: pd.Series, weighted: bool) -> str | None:
        """What the config check finds wrong with the response column before any fit (completes
        ``response <name> ...``), or None."""
        return None

    def mixed_response_problem(self, y: np.ndarray, prior: np.ndarray) -> str | None:
        """What a mixed model's response (after its design) may not be, or None."""
        return None

    def check_canonical(self) -> None:
        """Raise unless this is binomial(logit) or poisson(log), the canonical-link engines' families."""
        if self.dispersion_estimated or not self.is_default_link:
            raise GlmflowError(f"{self.name}({self.link.name}) is not a canonical binomial or Poisson family")

    def canonical_log_density(self, y, eta, prior=1.0) -> np.ndarray:
        """log p(y | eta) for the canonical binomial (logit) and Poisson (log) links, written in
        eta so that it stays exact in the tails (what the mixed-model engine integrates);
        binomial ``y`` is a proportion of ``prior`` trials."""
        self.check_canonical()
        raise NotImplementedError

    def canonical_log_constant(self, y, prior=1.0) -> np.ndarray:
        """The part of log p(y) free of eta (any link): log choose(m, m y) for binomial
        proportions of m trials (0 for 0/1 data), -log(y!) for counts."""
        raise GlmflowError(f"{self.name} has no constant of a binomial or Poisson density")

    def canonical_weight_and_slope(self, mu):
        """For a canonical link, d mu / d eta (the IRLS weight) and its derivative in eta."""
        self.check_canonical()
        raise NotImplementedError

    def r_call(self) -> str:
        """The family as the R call names it: ``"binomial"``, ``binomial(link = "probit")``."""
        return f'"{self.name}"' if self.is_default_link else f'{self.name}(link = "{self.link.name}")'


# glm.fit's threshold for fitted probabilities (rates) numerically 0 or 1
_FITTED_EPS = 10 * DOUBLE_EPS


class Binomial(Family):
    name, code, is_binomial, quadrature = "binomial", 0, True, True
    links = ("logit", "probit", "cauchit", "cloglog", "log")
    dispersion_estimated = False

    def variance(self, mu):
        return mu * (1 - mu)

    def dev_resids(self, y, mu, wt):
        return 2 * wt * (_y_log_y(y, mu) + _y_log_y(1 - y, 1 - mu))

    def validmu(self, mu) -> bool:
        return bool(np.all(np.isfinite(mu)) and np.all((mu > 0) & (mu < 1)))

    def aic(self, y, n, mu, wt, dev) -> float:
        m = n if np.any(n > 1) else wt
        share = np.where(m > 0, wt / np.where(m > 0, m, 1.0), 0.0)
        return float(-2 * np.sum(share * _log_dbinom(np.round(m * y), np.round(m), mu)))

    def initialize(self, y, weights, trials=None) -> Start:
        # binomial()'s initialize warns of non-whole counts, which its likelihood needs;
        # quasibinomial()'s does not
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
            if self.has_likelihood and np.any(np.abs(m - np.round(m)) > 1e-3):
                warnings.append("In eval(family$initialize) : non-integer #successes in a binomial glm!")
            return Start(y, np.ones(len(y)), weights, mustart, tuple(warnings))
        successes, n = y, trials
        if self.has_likelihood and np.any(np.abs(np.r_[successes, n - successes] - np.round(
                np.r_[successes, n - successes])) > 1e-3):  # fmt: skip
            warnings.append("In eval(family$initialize) : non-integer counts in a binomial glm!")
        proportion = np.where(n == 0, 0.0, successes / np.where(n == 0, 1.0, n))
        return Start(proportion, n, weights * n, (n * proportion + 0.5) / (n + 1), tuple(warnings))

    def fit_warnings(self, y, mu) -> list[str]:
        if np.any((mu > 1 - _FITTED_EPS) | (mu < _FITTED_EPS)):
            return ["glm.fit: fitted probabilities numerically 0 or 1 occurred"]
        return []

    def _log_density(self, y, mu, w, deviance):
        m, k = np.round(w), np.round(w * y)
        return np.where(w > 0, _log_dbinom(k, m, mu), 0.0)

    @classmethod
    def response_problem(cls, response: pd.Series, weighted: bool) -> str | None:
        return None if weighted else binary_response_problem(response)

    def mixed_response_problem(self, y, prior):
        if np.all(prior == 1.0):
            binary = not np.any((y != 0) & (y != 1))
            return None if binary else "binomial family needs a 0/1 response (or a two-level factor)"
        if np.any((y < 0) | (y > 1)) or np.any(prior <= 0):
            return "binomial proportions must lie in [0, 1], with positive weights (the numbers of trials)"
        if np.any(np.abs(y * prior - np.round(y * prior)) > 1e-8):
            return "proportion x weight must be a whole number of successes"
        return None

    def canonical_log_density(self, y, eta, prior=1.0):
        self.check_canonical()
        return prior * (y * eta - np.logaddexp(0.0, eta)) + self.canonical_log_constant(y, prior)

    def canonical_log_constant(self, y, prior=1.0):
        y = np.asarray(y, dtype=float)
        m = np.broadcast_to(np.asarray(prior, dtype=float), y.shape)
        k = m * y
        return special.gammaln(m + 1) - special.gammaln(k + 1) - special.gammaln(m - k + 1)

    def canonical_weight_and_slope(self, mu):
        self.check_canonical()
        w = mu * (1.0 - mu)
        return w, w * (1.0 - 2.0 * mu)


class Poisson(Family):
    name, code, quadrature = "poisson", 1, True
    links = ("log", "identity", "sqrt")
    dispersion_estimated = False
    _r_title = "Poisson"  # as initialize's message spells the family

    def variance(self, mu):
        return mu

    def dev_resids(self, y, mu, wt):
        r = mu * wt
        positive = y > 0
        return 2 * np.where(positive, wt * (special.xlogy(y, y / np.where(positive, mu, 1.0)) - (y - mu)), r)

    def validmu(self, mu) -> bool:
        return _positive_finite(mu)

    def aic(self, y, n, mu, wt, dev) -> float:
        return float(-2 * np.sum((special.xlogy(y, mu) - mu - special.gammaln(y + 1)) * wt))

    def initialize(self, y, weights, trials=None) -> Start:
        if np.any(y < 0):
            raise GlmflowError(f"negative values not allowed for the '{self._r_title}' family")
        return Start(y, np.ones(len(y)), weights, y + 0.1)

    def fit_warnings(self, y, mu) -> list[str]:
        warnings = ["glm.fit: fitted rates numerically 0 occurred"] if np.any(mu < _FITTED_EPS) else []
        # R's dpois (in the family's aic) warns once per non-integer count, in row order
        return warnings + [f"In dpois(y, mu, log = TRUE) : non-integer x = {v:.6f}" for v in y[y != np.round(y)]]

    def _log_density(self, y, mu, w, deviance):
        return w * (special.xlogy(y, mu) - mu - special.gammaln(y + 1))

    @classmethod
    def response_problem(cls, response: pd.Series, weighted: bool) -> str | None:
        if pd.api.types.is_numeric_dtype(response) and (response < 0).any():
            return f"has negative values; {cls.name} needs counts"
        return None

    def mixed_response_problem(self, y, prior):
        return "poisson family needs a non-negative response" if np.any(y < 0) else None

    def canonical_log_density(self, y, eta, prior=1.0):
        self.check_canonical()
        return y * eta - np.exp(eta) + self.canonical_log_constant(y, prior)

    def canonical_log_constant(self, y, prior=1.0):
        return -special.gammaln(np.asarray(y, dtype=float) + 1.0)

    def canonical_weight_and_slope(self, mu):
        self.check_canonical()
        return mu, mu


class _Quasi:
    """A quasi family: the mean and variance of its base family, no likelihood (AIC NA), an
    estimated dispersion, and no compiled or mixed-model path."""

    code = None
    dispersion_estimated, has_likelihood, glmer, quadrature = True, False, False, False

    def aic(self, y, n, mu, wt, dev) -> float:
        return float("nan")

    def fit_warnings(self, y, mu) -> list[str]:
        return []  # glm.fit's checks name binomial and poisson only; no dpois in aic

    def _log_density(self, y, mu, w, deviance):
        return np.full_like(y, np.nan)


class QuasiBinomial(_Quasi, Binomial):
    name = "quasibinomial"


class QuasiPoisson(_Quasi, Poisson):
    name, _r_title = "quasipoisson", "quasiPoisson"


class _DispersionFamily(Family):
    """gaussian, Gamma, inverse.gaussian: the dispersion is estimated and counted in logLik."""

    dispersion_in_loglik = True


class _PositiveFamily(_DispersionFamily):
    """Gamma and inverse.gaussian: a positive response."""

    _positive_response_message: ClassVar[str]  # initialize's, R's words

    def initialize(self, y, weights, trials=None) -> Start:
        if np.any(y <= 0):
            raise GlmflowError(self._positive_response_message)
        return super().initialize(y, weights, trials)

    @classmethod
    def response_problem(cls, response: pd.Series, weighted: bool) -> str | None:
        if pd.api.types.is_numeric_dtype(response) and (response.dropna() <= 0).any():
            return f"has values <= 0; {cls.name} needs positive values (filter them out, or choose another family)"
        return None

    def mixed_response_problem(self, y, prior):
        return f"the {self.name} family needs a positive response" if np.any(y <= 0) else None


class Gaussian(_DispersionFamily):
    name, code, positive_mean = "gaussian", 4, False
    links = ("identity", "log", "inverse")

    @property
    def is_linear(self) -> bool:
        return isinstance(self.link, IdentityLink)

    def variance(self, mu):
        return np.ones_like(mu)

    def dev_resids(self, y, mu, wt):
        return wt * (y - mu) ** 2

    def aic(self, y, n, mu, wt, dev) -> float:
        nobs = len(y)
        with np.errstate(divide="ignore"):
            return float(nobs * (math.log(dev / nobs * 2 * math.pi) + 1) + 2 - np.sum(np.log(wt)))

    def initialize(self, y, weights, trials=None) -> Start:
        if not self.link.valid_start(y):
            raise GlmflowError("cannot find valid starting values: please specify some")
        return super().initialize(y, weights, trials)

    def _log_density(self, y, mu, w, deviance):
        sigma2 = deviance / len(y)  # maximum-likelihood variance, as logLik.lm and gaussian()$aic
        with np.errstate(divide="ignore"):
            return -0.5 * (np.log(2 * np.pi * sigma2) - np.log(w) + w * (y - mu) ** 2 / sigma2)


class Gamma(_PositiveFamily):
    name, code = "Gamma", 2
    links = ("inverse", "log", "identity")
    _positive_response_message = "non-positive values not allowed for the 'Gamma' family"

    def variance(self, mu):
        return mu**2

    def dev_resids(self, y, mu, wt):
        return -2 * wt * (np.log(np.where(y == 0, 1.0, y / mu)) - (y - mu) / mu)

    def validmu(self, mu) -> bool:
        return _positive_finite(mu)

    def aic(self, y, n, mu, wt, dev) -> float:
        disp = dev / np.sum(wt)
        return float(-2 * np.sum(_log_dgamma(y, 1 / disp, mu * disp) * wt) + 2)

    def _log_density(self, y, mu, w, deviance):
        dispersion = deviance / np.sum(w)
        return w * _log_dgamma(y, 1 / dispersion, mu * dispersion)


class InverseGaussian(_PositiveFamily):
    name, code = "inverse.gaussian", 3
    links = ("1/mu^2", "log", "inverse", "identity")
    _positive_response_message = "positive values only are allowed for the 'inverse.gaussian' family"

    def variance(self, mu):
        return mu**3

    def dev_resids(self, y, mu, wt):
        return wt * (y - mu) ** 2 / (y * mu**2)

    def aic(self, y, n, mu, wt, dev) -> float:
        total = np.sum(wt)
        return float(total * (1 + math.log(dev / total * 2 * math.pi)) + 3 * np.sum(np.log(y) * wt) + 2)

    def _log_density(self, y, mu, w, deviance):
        dispersion = deviance / np.sum(w)
        return w * (-0.5 * np.log(2 * np.pi * dispersion * y**3) - (y - mu) ** 2 / (2 * dispersion * mu**2 * y))


FAMILIES: dict[str, type[Family]] = {
    cls.name: cls for cls in (Binomial, QuasiBinomial, Poisson, QuasiPoisson, Gaussian, Gamma, InverseGaussian)
}
# lme4's glmer families, in the order of their compiled codes (as the messages list them)
MIXED_MODEL_FAMILIES = tuple(c.name for c in sorted(FAMILIES.values(), key=lambda c: c.code or 0) if c.glmer)


def binary_response_problem(response: pd.Series) -> str | None:
    """A binomial response without weights: a factor with two or more levels, or 0/1."""
    if isinstance(response.dtype, pd.CategoricalDtype):
        return None if len(response.cat.categories) >= 2 else "is a factor with one level"
    if not pd.api.types.is_numeric_dtype(response) and not pd.api.types.is_bool_dtype(response):
        return "is text: declare it under datasets.*.factors to fit the first level against the others"
    values = set(pd.unique(response.dropna()))
    outside = sorted(v for v in values if v not in (0, 1))
    if outside:
        shown = ", ".join(r_label(v) for v in outside[:5])
        return (
            f"has values other than 0 and 1 ({shown}); binomial needs 0/1 (or a factor, or proportions with `weights`)"
        )
    return None


def family_class(name: str) -> type[Family]:
    """R's family ``name`` (as the config spells it), without a link."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise GlmflowError(f"family {name!r} is not one of {', '.join(FAMILIES)}") from None


def family(name: str, link: str | None = None) -> Family:
    """R's ``name(link = link)``; the family's default link when ``link`` is None."""
    cls = family_class(name)
    link = link or cls.links[0]
    if link not in cls.links:
        raise GlmflowError(f"link {link!r} is not available for the {name} family (available: {', '.join(cls.links)})")
    return cls(LINKS[link])


def mixed_model_family_problem(name: str, link: str | None, nAGQ: int) -> tuple[str, str] | None:
    """What a mixed model may not have, by family, link and nAGQ alone: (the setting at fault,
    the message), or None. Used by the config check (before any job) and by ``fit_glmm``."""
    cls = FAMILIES.get(name)
    if cls is None or not cls.glmer:
        return "family", (f"mixed models are fitted for the families {', '.join(MIXED_MODEL_FAMILIES)} (any of "
                          f"their links), not {name!r}")  # fmt: skip
    if (link or cls.links[0]) in cls.links and cls(LINKS[link or cls.links[0]]).is_linear and nAGQ != 1:
        return "nAGQ", ("a gaussian mixed model with the identity link is a linear mixed model, fitted as lme4's "
                        "lmer, which has no nAGQ (its likelihood is exact); remove nAGQ")  # fmt: skip
    if nAGQ > 1 and not cls.quadrature:
        return "nAGQ", (f"nAGQ = {nAGQ} is not available for the {name} family (lme4's quadrature for families "
                        "with a dispersion does not give the log-likelihood); use nAGQ: 1 (Laplace)")  # fmt: skip
    return None
