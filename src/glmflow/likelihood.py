"""The log-likelihood by hand from fitted values, and likelihood-ratio tests between models.

Both work from a model's written results (``augment.csv``, ``glance.json``), not from
the fitting code, so that they check it independently.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import special

from glmflow.errors import GlmflowError

LIKELIHOOD_TOLERANCE = 1e-8


def loglik_by_hand(family: str, y, fitted, weights=None) -> np.ndarray:
    """Per-row log-likelihood contributions, written out from the densities (not the fitting
    code): binomial (``weights`` = trials for proportions), Poisson, and for the families with a
    dispersion the maximum-likelihood-style estimate R's logLik uses (deviance / sum of weights)."""
    y = np.asarray(y, dtype=float)
    mu = np.asarray(fitted, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    if family == "binomial":
        m = np.round(w)
        k = np.round(w * y)
        log_choose = special.gammaln(m + 1) - special.gammaln(k + 1) - special.gammaln(m - k + 1)
        return np.where(w > 0, log_choose + special.xlogy(k, mu) + special.xlog1py(m - k, -mu), 0.0)
    if family == "poisson":
        return w * (special.xlogy(y, mu) - mu - special.gammaln(y + 1))
    if family == "gaussian":
        sigma2 = np.sum(w * (y - mu) ** 2) / len(y)  # maximum-likelihood variance, as logLik.lm/glm use
        with np.errstate(divide="ignore"):
            return -0.5 * (np.log(2 * np.pi * sigma2) - np.log(w) + w * (y - mu) ** 2 / sigma2)
    if family == "Gamma":
        deviance = np.sum(-2 * w * (np.log(np.where(y == 0, 1.0, y / mu)) - (y - mu) / mu))
        shape = np.sum(w) / deviance  # 1 / dispersion
        scale = mu / shape
        return w * (special.xlogy(shape - 1, y) - y / scale - special.gammaln(shape) - shape * np.log(scale))
    if family == "inverse.gaussian":
        dispersion = np.sum(w * (y - mu) ** 2 / (y * mu**2)) / np.sum(w)
        return w * (-0.5 * np.log(2 * np.pi * dispersion * y**3) - (y - mu) ** 2 / (2 * dispersion * mu**2 * y))
    raise GlmflowError(f"no by-hand log-likelihood for family {family!r}")


def likelihood_table(y: np.ndarray, fitted: np.ndarray) -> pd.DataFrame:
    """The chapter's per-row table for a logistic model: p(Y = 1), p(Y = response), its log."""
    p_response = np.where(np.asarray(y) == 1, fitted, 1 - np.asarray(fitted))
    return pd.DataFrame(
        {
            "response": np.asarray(y).astype(int),
            "p(Y = 1)": fitted,
            "p(Y = response)": p_response,
            "log(p(Y = response))": np.log(p_response),
        }
    )


def likelihood_check(model: str, family: str, augment: pd.DataFrame, response: str, glance: dict) -> dict:
    """logLik, AIC and BIC from the fitted values against the model's own; ``ok`` within 1e-8.
    The quasi families have no likelihood (R's logLik is NA): nothing to check."""
    n, k = len(augment), glance["df"]
    if family.startswith("quasi"):
        return {"model": model, "family": family, "nobs": n, "df": k, "applicable": False,
                "by_hand": {"logLik": float("nan")}, "model_values": {"logLik": glance["logLik"]},
                "max_abs_difference": 0.0, "tolerance": LIKELIHOOD_TOLERANCE, "ok": True,
                "note": "quasi-likelihood: R's logLik, AIC and BIC are NA"}  # fmt: skip
    weights = augment[".weights"] if ".weights" in augment else None
    loglik = float(np.sum(loglik_by_hand(family, augment[".y"] if ".y" in augment else augment[response],
                                         augment[".prob"], weights)))  # fmt: skip
    by_hand = {"logLik": loglik, "AIC": -2 * loglik + 2 * k, "BIC": -2 * loglik + math.log(n) * k}
    differences = {key: by_hand[key] - glance[key] for key in by_hand}
    worst = max(abs(v) for v in differences.values())
    return {
        "model": model,
        "family": family,
        "nobs": n,
        "df": k,
        "applicable": True,
        "by_hand": by_hand,
        "model_values": {key: glance[key] for key in by_hand},
        "differences": differences,
        "max_abs_difference": worst,
        "tolerance": LIKELIHOOD_TOLERANCE,
        "ok": worst <= LIKELIHOOD_TOLERANCE,
    }
