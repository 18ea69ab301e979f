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


def glmm_likelihood_check(
    model: str, glmm_design, family_name: str, nAGQ: int, theta: float, beta, loglik: float, tolerance: float = 1e-6
) -> dict:
    """A mixed model's log-likelihood at its written (theta, beta), recomputed without the
    fitting code: each group's mode by scipy's bounded scalar minimiser, then the same Laplace
    or Gauss-Hermite formula; and the exact marginal log-likelihood by brute force (the
    trapezoid rule over u within 12 conditional SDs of the mode, spectrally accurate for these
    smooth integrands), whose distance from the fitted value is the approximation's error
    (about 2e-3 for Laplace on the chapter's model, 2e-7 for nAGQ = 10)."""
    from numpy.polynomial.hermite_e import hermegauss
    from scipy import optimize

    from glmflow.glmm import FAMILIES

    family = FAMILIES[family_name]
    design, groups = glmm_design.design, glmm_design
    eta0 = design.X @ np.asarray(beta, dtype=float)
    if nAGQ == 1:
        nodes, weights = np.array([0.0]), np.array([np.sqrt(2 * np.pi)])
    else:
        nodes, weights = hermegauss(nAGQ)
    grid = np.linspace(-12.0, 12.0, 4001)
    approximation = exact = 0.0
    for j in range(groups.n_groups):
        rows = groups.group == j
        y, eta, prior = design.y[rows], eta0[rows], groups.prior[rows]

        def log_joint(u, y=y, eta=eta, prior=prior):
            """log p(y_j | u) + log phi(u), for an array of u."""
            u = np.atleast_1d(u)
            logp = family.logp(y[:, None], eta[:, None] + theta * u[None, :], prior[:, None]).sum(axis=0)
            return logp - u**2 / 2 - 0.5 * np.log(2 * np.pi)

        found = optimize.minimize_scalar(lambda u: -log_joint(u)[0], bounds=(-30, 30), method="bounded",
                                         options={"xatol": 1e-12})  # fmt: skip
        mode = found.x
        w, _ = family.weight_and_slope(family.mean(eta + theta * mode))
        scale = 1 / np.sqrt(1 + theta**2 * np.sum(prior * w))
        terms = np.log(weights) + nodes**2 / 2 + log_joint(mode + scale * nodes)
        approximation += np.log(scale) + special.logsumexp(terms)
        u = mode + scale * grid
        values = log_joint(u)
        peak = values.max()
        exact += peak + np.log(np.trapezoid(np.exp(values - peak), dx=u[1] - u[0]))
    return {
        "model": model,
        "family": family_name,
        "nAGQ": nAGQ,
        "logLik_fitted": loglik,
        "logLik_recomputed": float(approximation),
        "difference": float(approximation - loglik),
        "tolerance": tolerance,
        "ok": bool(abs(approximation - loglik) <= tolerance),
        "logLik_exact_marginal": float(exact),
        "approximation_error": float(loglik - exact),
    }
