"""R's links compiled with numba (make.link's C code, thresholds included), by integer codes:
shared by the mixed models' PIRLS (glmflow.glmm.pirls: every family lme4 fits) and the large-n
GLM path (glmflow.glm_large: binomial and Poisson)."""

from __future__ import annotations

import math

import numba

from glmflow.constants import DOUBLE_EPS
from glmflow.families import (
    LOGIT_THRESHOLD,
    Binomial,
    CauchitLink,
    CloglogLink,
    Gamma,
    Gaussian,
    IdentityLink,
    InverseGaussian,
    InverseLink,
    InverseSquareLink,
    LogitLink,
    LogLink,
    Poisson,
    ProbitLink,
    SqrtLink,
)

# The kernels switch on the classes' codes; numba compiles these module globals as constants.
FAMILY_BINOMIAL, FAMILY_POISSON, FAMILY_GAMMA = Binomial.code, Poisson.code, Gamma.code
FAMILY_INVERSE_GAUSSIAN, FAMILY_GAUSSIAN = InverseGaussian.code, Gaussian.code
LINK_LOGIT, LINK_PROBIT, LINK_CAUCHIT = LogitLink.code, ProbitLink.code, CauchitLink.code
LINK_CLOGLOG = CloglogLink.code
LINK_LOG, LINK_IDENTITY, LINK_SQRT, LINK_INVERSE, LINK_INVERSE_SQUARE = (
    LogLink.code, IdentityLink.code, SqrtLink.code, InverseLink.code, InverseSquareLink.code)  # fmt: skip

_EPS = DOUBLE_EPS
_PROBIT_THRESH = 8.125890664701906  # -qnorm(.Machine$double.eps)
_CAUCHIT_THRESH = 1433540284805664.8  # -qcauchy(.Machine$double.eps)


_KERNEL = {"cache": True, "error_model": "numpy"}


@numba.njit(inline="always", **_KERNEL)
def mean_and_slope(link, eta):
    """R's linkinv and mu.eta."""
    if link == LINK_LOGIT:
        if eta < -LOGIT_THRESHOLD:
            tmp = _EPS
        elif eta > LOGIT_THRESHOLD:
            tmp = 1.0 / _EPS
        else:
            tmp = math.exp(eta)
        mu = tmp / (1.0 + tmp)
        if eta > LOGIT_THRESHOLD or eta < -LOGIT_THRESHOLD:
            return mu, _EPS
        return mu, tmp / ((1.0 + tmp) * (1.0 + tmp))
    if link == LINK_PROBIT:
        clamped = min(max(eta, -_PROBIT_THRESH), _PROBIT_THRESH)
        density = math.exp(-0.5 * eta * eta) / math.sqrt(2.0 * math.pi)
        return 0.5 * math.erfc(-clamped / math.sqrt(2.0)), max(density, _EPS)
    if link == LINK_CAUCHIT:
        clamped = min(max(eta, -_CAUCHIT_THRESH), _CAUCHIT_THRESH)
        if abs(clamped) > 1.0:  # R's pcauchy: the tails from atan(1 / x), which keeps their digits
            tail = math.atan(1.0 / clamped) / math.pi
            mu = 0.5 - tail + 0.5 if clamped > 0.0 else -tail
        else:
            mu = 0.5 + math.atan(clamped) / math.pi
        return mu, max(1.0 / (math.pi * (1.0 + eta * eta)), _EPS)
    if link == LINK_CLOGLOG:
        mu = max(min(-math.expm1(-math.exp(eta)), 1.0 - _EPS), _EPS)
        e = min(eta, 700.0)
        return mu, max(math.exp(e) * math.exp(-math.exp(e)), _EPS)
    if link == LINK_LOG:
        value = max(math.exp(eta), _EPS)
        return value, value
    if link == LINK_IDENTITY:
        return eta, 1.0
    if link == LINK_INVERSE:
        return 1.0 / eta, -1.0 / (eta * eta)
    if link == LINK_INVERSE_SQUARE:
        return 1.0 / math.sqrt(eta), -1.0 / (2.0 * eta**1.5)
    return eta * eta, 2.0 * eta  # sqrt
