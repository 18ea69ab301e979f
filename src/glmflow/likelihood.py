"""The log-likelihood by hand from fitted values, and likelihood-ratio tests between models.

Both work from a model's written results (``augment.csv``, ``glance.json``), not from
the fitting code, so that they check it independently.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from glmflow.errors import GlmflowError
from glmflow.families import family, family_class

LIKELIHOOD_TOLERANCE = 1e-8


def loglik_by_hand(family_name: str, y, fitted, weights=None) -> np.ndarray:
    """Per-row log-likelihood contributions from the fitted values, through the family's density
    (``glmflow.families``), not the fitting code."""
    try:
        return family(family_name).log_density(y, fitted, weights)
    except GlmflowError:
        raise
    except KeyError:
        raise GlmflowError(f"no log-likelihood for family {family_name!r}") from None


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
    if not family_class(family).has_likelihood:
        return {"model": model, "family": family, "nobs": n, "df": k, "applicable": False,
                "by_hand": {"logLik": float("nan")}, "model_values": {"logLik": glance["logLik"]},
                "max_abs_difference": 0.0, "tolerance": LIKELIHOOD_TOLERANCE, "ok": True,
                "note": "quasi-likelihood: R's logLik, AIC and BIC are NA"}  # fmt: skip
    weights = augment[".weights"] if ".weights" in augment else None
    # .y is the response as the fit used it, where the column is not that (a factor's 0/1, proportions).
    y = augment[".y"] if ".y" in augment else augment[response]
    if not pd.api.types.is_numeric_dtype(y.dtype):
        raise GlmflowError(
            f"model {model!r}: the response {response!r} in the augment table is not numeric and it has no .y "
            "column (the response as fitted); refit the model to write it"
        )
    loglik = float(np.sum(loglik_by_hand(family, y, augment[".prob"], weights)))
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
