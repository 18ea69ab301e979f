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


def loglik_by_hand(family: str, y: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Per-row log-likelihood contributions, written out from the densities."""
    y = np.asarray(y, dtype=float)
    mu = np.asarray(fitted, dtype=float)
    if family == "binomial":
        return y * np.log(mu) + (1 - y) * np.log(1 - mu)
    if family == "poisson":
        return y * np.log(mu) - mu - special.gammaln(y + 1)
    if family == "gaussian":
        residuals = y - mu
        sigma2 = np.mean(residuals**2)  # maximum-likelihood variance, as logLik.lm uses
        return -0.5 * (np.log(2 * np.pi * sigma2) + residuals**2 / sigma2)
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
    """logLik, AIC and BIC from the fitted values against the model's own; ``ok`` within 1e-8."""
    loglik = float(np.sum(loglik_by_hand(family, augment[response], augment[".prob"])))
    n, k = len(augment), glance["df"]
    by_hand = {"logLik": loglik, "AIC": -2 * loglik + 2 * k, "BIC": -2 * loglik + math.log(n) * k}
    differences = {key: by_hand[key] - glance[key] for key in by_hand}
    worst = max(abs(v) for v in differences.values())
    return {
        "model": model,
        "family": family,
        "nobs": n,
        "df": k,
        "by_hand": by_hand,
        "model_values": {key: glance[key] for key in by_hand},
        "differences": differences,
        "max_abs_difference": worst,
        "tolerance": LIKELIHOOD_TOLERANCE,
        "ok": worst <= LIKELIHOOD_TOLERANCE,
    }


def likelihood_ratio_test(compact: tuple[str, dict, pd.DataFrame], augmented: tuple[str, dict, pd.DataFrame]) -> dict:
    """``anova(compact, augmented, test = "LRT")`` from two models' glance and augment outputs."""
    (name_c, glance_c, rows_c), (name_a, glance_a, rows_a) = compact, augmented
    if len(rows_c) != len(rows_a) or not np.array_equal(rows_c[".row"], rows_a[".row"]):
        raise GlmflowError(
            f"models {name_c!r} ({len(rows_c)} rows) and {name_a!r} ({len(rows_a)} rows) "
            "were not fitted to the same rows; a likelihood-ratio test needs the same data "
            "(as R's anova: 'models were not all fitted to the same size of dataset')"
        )
    if glance_c["family"] != glance_a["family"]:
        raise GlmflowError(f"models {name_c!r} and {name_a!r} have different families")
    df = glance_c["df_residual"] - glance_a["df_residual"]
    deviance = glance_c["deviance"] - glance_a["deviance"]
    # anova.glm scales by the dispersion (1 here); anova.lmlist by the larger model's sigma^2.
    scale = glance_a["sigma"] ** 2 if glance_a["family"] == "gaussian" else 1.0
    if df > 0:
        p_value = float(special.chdtrc(df, deviance / scale))
    elif df < 0:
        p_value = float(special.chdtrc(-df, -deviance / scale))
    else:
        p_value = None
    return {
        "compact": name_c,
        "augmented": name_a,
        "test": "LRT",
        "resid_df": [glance_c["df_residual"], glance_a["df_residual"]],
        "resid_dev": [glance_c["deviance"], glance_a["deviance"]],
        "df": df,
        "deviance": deviance,
        "p_value": p_value,
    }
