"""Comparisons of nested models: R's ``anova(m1, m2, ..., test = ...)`` (``anova.glmlist``, and
``anova.lmlist`` for lm fits), and lme4's ``anova.merMod`` where a mixed model is among them,
from the models' written results."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import special

from glmflow.errors import GlmflowError
from glmflow.families import family, family_class
from glmflow.frame import ModelFrame, model_frame
from glmflow.plan import is_mixed

TESTS = ("LRT", "Chisq", "F", "Rao")


def anova_table(models: list[tuple[str, dict, pd.DataFrame]], test: str = "LRT", rao: list | None = None) -> dict:
    """``anova(m1, m2, ..., test = test)`` for nested models (R's ``anova.glmlist``, and
    ``anova.lmlist`` for lm fits), from each model's glance and augment outputs: residual df
    and deviance per model, and per step the df, the deviance and the test; the first step's
    entries are None (R's NA). The scale is the dispersion of the model with the fewest
    residual df (1 for binomial and Poisson); F tests use its residual df. ``rao`` gives the
    score statistics (``rao_scores``) for ``test = "Rao"``."""
    if test not in TESTS:
        raise GlmflowError(f"test {test!r} is not one of {', '.join(TESTS)}")
    names = [name for name, _, _ in models]
    _check_same_rows(models)
    families = {(g["family"], g.get("link")) for _, g, _ in models}
    if len(families) > 1:
        raise GlmflowError(f"models {', '.join(map(repr, names))} have different families or links")
    resid_df = [g["df_residual"] for _, g, _ in models]
    resid_dev = [g["deviance"] for _, g, _ in models]
    biggest = models[int(np.argmin(resid_df))][1]
    lm = "sigma" in biggest
    # R's stat.anova: lm fits have no Rao column, so "Rao" tests their sums of squares as Chisq
    score = test == "Rao" and not lm
    scale = biggest["sigma"] ** 2 if lm else biggest.get("dispersion", 1.0)
    fixed = not family_class(biggest["family"]).dispersion_estimated and not lm
    df_scale = math.inf if fixed else min(resid_df)
    warnings = []
    if test == "F" and fixed:
        warnings.append(f"using F test with a '{biggest['family']}' family is inappropriate")
    df = [None] + [resid_df[i - 1] - resid_df[i] for i in range(1, len(models))]
    deviance = [None] + [resid_dev[i - 1] - resid_dev[i] for i in range(1, len(models))]
    p_value: list[float | None] = [None]
    statistic: list[float | None] = [None]
    for i in range(1, len(models)):
        d, dev = df[i], deviance[i]
        if test == "F":
            value = None if d == 0 else (dev / d) / scale
            ok = value is not None and value >= 0
            statistic.append(value if ok else None)
            p = special.fdtrc(abs(d), df_scale, value) if ok and math.isfinite(df_scale) else (
                special.chdtrc(abs(d), value * abs(d)) if ok else None)  # fmt: skip
        else:
            base = rao[i] if score else dev
            value = None if d == 0 else base / scale * np.sign(d)
            ok = value is not None and value >= 0
            statistic.append(base if score else None)
            p = special.chdtrc(abs(d), value) if ok else None
        p_value.append(None if p is None else float(p))
    table = {
        "models": names,
        "test": test,
        "resid_df": resid_df,
        "resid_dev": resid_dev,
        "df": df,
        "deviance": deviance,
        "p_value": p_value,
        "scale": scale,
        "warnings": warnings,
    }
    if test == "F" or score:
        table[test] = statistic
    return table


def _check_same_rows(models: list[tuple[str, dict, pd.DataFrame]]) -> None:
    names = [name for name, _, _ in models]
    first_rows = models[0][2][".row"].to_numpy()
    for name, _, rows in models[1:]:
        if len(rows) != len(first_rows) or not np.array_equal(rows[".row"].to_numpy(), first_rows):
            raise GlmflowError(
                f"models {names[0]!r} ({len(first_rows)} rows) and {name!r} ({len(rows)} rows) were not fitted to "
                "the same rows (as R's anova: 'models were not all fitted to the same size of dataset')"
            )


def mixed_anova_table(models: list[tuple[str, dict, pd.DataFrame]]) -> dict:
    """lme4's ``anova.merMod`` of mixed models (and glm fits among them), from each model's
    glance and augment: per model ``npar`` (logLik's df), AIC, BIC, logLik and deviance
    (-2 logLik), the models ordered by npar (stably, as R's order()); per step ``Chisq`` =
    2 max(0, diff(logLik)), ``Df`` = diff(npar) and ``p_value`` (R's Pr(>Chisq); NA where
    Df is 0). The first entries are None (R's NA). glmer fits are ML fits already; lmer fits by
    REML are compared by their ML refits, with lme4's message (``messages``). As lme4,
    models fitted to different rows are refused, and so are glm fits with a quadrature
    (nAGQ > 1) fit, whose log-likelihoods are on another scale."""
    _check_same_rows(models)
    names = [name for name, _, _ in models]
    glm_fits = [name for name, glance, _ in models if "theta" not in glance]
    quadrature = [name for name, glance, _ in models if glance.get("nAGQ", 1) > 1]
    if glm_fits and quadrature:
        raise GlmflowError(
            f"models {', '.join(map(repr, quadrature))} (nAGQ > 1) and the glm fits {', '.join(map(repr, glm_fits))} "
            "cannot be compared (lme4: 'GLMMs with nAGQ>1 have log-likelihoods incommensurate with glm() objects'); "
            "fit the mixed models with nAGQ: 1"
        )
    # lme4 compares linear mixed models by their ML fits: REML ones are refitted (glmflow did so
    # when it fitted them; their glance keeps the refit's logLik, AIC and BIC)
    refitted = [name for name, glance, _ in models if glance.get("REML")]
    models = [(name, {**glance, **glance["ml_refit"]} if glance.get("REML") else glance, rows)
              for name, glance, rows in models]  # fmt: skip
    order = sorted(range(len(models)), key=lambda i: models[i][1]["df"])
    glances = [models[i][1] for i in order]
    npar = [g["df"] for g in glances]
    loglik = [g["logLik"] for g in glances]
    chisq: list[float | None] = [None] + [2 * max(0.0, loglik[i] - loglik[i - 1]) for i in range(1, len(order))]
    df: list[int | None] = [None] + [npar[i] - npar[i - 1] for i in range(1, len(order))]
    p_value: list[float | None] = [None]
    for i in range(1, len(order)):
        # pchisq(chisq, df, lower.tail = FALSE); a negative df (never after the ordering) is NaN in R
        p_value.append(None if df[i] == 0 else float(special.chdtrc(df[i], chisq[i])))
    return {
        "models": [names[i] for i in order],
        "test": "Chisq",
        "npar": npar,
        "AIC": [g["AIC"] for g in glances],
        "BIC": [g["BIC"] for g in glances],
        "logLik": loglik,
        "deviance": [-2 * value for value in loglik],
        "Chisq": chisq,
        "Df": df,
        "p_value": p_value,
        "warnings": [],
        "messages": ["refitting model(s) with ML (instead of REML)"] if refitted else [],
    }


def rao_scores(steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[float | None]:
    """R's score statistics for anova(test = "Rao"): for each step, the smaller model's working
    residuals ``r`` and weights ``w`` regressed (weighted least squares, with an intercept) on
    the larger model's matrix ``X``: the null deviance minus the deviance of that fit."""
    scores: list[float | None] = [None]
    for r, w, X in steps:
        keep = w > 0
        r, w, X = r[keep], w[keep], X[keep]
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(X * sw[:, None], r * sw, rcond=None)
        deviance = float(np.sum(w * (r - X @ coef) ** 2))
        centre = np.sum(w * r) / np.sum(w)
        scores.append(float(np.sum(w * (r - centre) ** 2)) - deviance)
    return scores


def compare_models(
    spec: dict, models: dict, glances: list[dict], augments: list, data: pd.DataFrame | dict[str, ModelFrame]
) -> dict:
    """A configured comparison (``compact``/``augmented`` or ``models``) from the models' glance
    and augment files, in the comparison's order. The two-model form keeps its scalar fields
    (``df``, ``deviance``, ``p_value`` of the one step). With a mixed model among them, lme4's
    ``anova.merMod`` table (``mixed_anova_table``), in both forms. ``data``: each model's frame
    by name (the workflow's jobs read those their fits wrote), or the dataset to take them from;
    the Rao test reads the larger models' model matrices from them."""
    names = list(spec["models"]) if "models" in spec else [spec["compact"], spec["augmented"]]
    frames = [pd.read_csv(path) if not isinstance(path, pd.DataFrame) else path for path in augments]
    if any(is_mixed(models[name]) for name in names):
        # lme4's table in both forms: it has no test argument, and orders the models itself.
        return mixed_anova_table(list(zip(names, glances, frames, strict=True)))
    test = spec.get("test", "LRT")
    rao = None
    if test == "Rao" and not all("sigma" in glance for glance in glances):  # lm: R's Chisq (anova_table)
        steps = []
        for i in range(1, len(names)):
            smaller, larger = models[names[i - 1]], models[names[i]]
            chosen = family(smaller["family"], smaller.get("link"))
            rows = frames[i - 1]
            response = rows[".y"] if ".y" in rows else rows[rows.columns[1]]
            eta, mu = rows[".fitted"].to_numpy(), rows[".prob"].to_numpy()
            mu_eta = chosen.mu_eta(eta)
            working_residuals = (response.to_numpy(dtype=float) - mu) / mu_eta
            working_weights = rows[".working_weight"].to_numpy()  # R's m$weights: the last IRLS step's
            frame = data[names[i]] if isinstance(data, dict) else model_frame(data, larger, names[i])
            steps.append((working_residuals, working_weights, frame.design().X))
        rao = rao_scores(steps)
    table = anova_table(list(zip(names, glances, frames, strict=True)), test, rao)
    if "models" in spec:
        return table
    return {
        "compact": names[0],
        "augmented": names[1],
        **{key: table[key] for key in ["test", "resid_df", "resid_dev"]},
        "df": table["df"][1],
        "deviance": table["deviance"][1],
        "p_value": table["p_value"][1],
        **({test: table[test][1]} if test in table else {}),
        "warnings": table["warnings"],
    }
