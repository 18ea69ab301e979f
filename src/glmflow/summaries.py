"""``summary()`` text laid out as R 4.2 prints it for ``lm`` and ``glm`` fits."""

from __future__ import annotations

import math

import numpy as np

from glmflow.io import write_csv, write_json, write_text
from glmflow.models import ModelFit
from glmflow.rdeparse import deparse_call, deparse_formula
from glmflow.rformat import (
    abbreviate,
    coefficient_table,
    format_c,
    format_number,
    format_pval,
    format_real,
    print_matrix,
    print_named_vector,
    r_round,
    strwrap,
    zapsmall,
)

QUANTILE_NAMES = ["Min", "1Q", "Median", "3Q", "Max"]
DIGITS = 4  # max(3, getOption("digits") - 3), as print.summary.glm and print.summary.lm use


def call_text(fit: ModelFit) -> str:
    """The call as R prints it: ``glm(formula = ..., family = binomial(link = "probit"), data = d,
    weights = w)``; ``lm(...)`` for the models fitted as lm."""
    lm = fit.lm_statistics is not None
    arguments = [("formula", deparse_formula(fit.formula))]
    if not lm:
        arguments.append(("family", fit.family_object.r_call()))
    arguments.append(("data", fit.dataset))
    if fit.weights:
        arguments.append(("weights", fit.weights))
    if fit.offset:
        arguments.append(("offset", deparse_formula(fit.offset)))
    if fit.filter:
        arguments.append(("subset", fit.filter))
    return deparse_call("lm" if lm else "glm", arguments)


def _missing_note(fit: ModelFit) -> str:
    n = fit.design.n_dropped
    if not n:
        return ""
    return f"  ({n} observation{'s' if n > 1 else ''} deleted due to missingness)\n"


def summary_text(fit) -> str:
    """R's summary of an lm, glm or glmer fit."""
    if not isinstance(fit, ModelFit):
        return glmm_summary_text(fit)
    text = _lm_summary(fit) if fit.lm_statistics is not None else _glm_summary(fit)
    return text + warnings_text(fit.warnings)


def warnings_text(warnings: list[str]) -> str:
    """The warnings as R's console prints them after the call that raised them: glm.fit's
    own (``call. = FALSE``) end in a space, those with a call (``In dpois(...) :``) do not."""
    if not warnings:
        return ""
    lines = [w if w.startswith("In ") else w + " " for w in warnings]
    if len(lines) == 1:
        return "Warning message:\n" + lines[0] + "\n"
    # R's console lists at most 10 warnings and keeps at most 50
    if len(lines) >= 50:
        return "There were 50 or more warnings (use warnings() to see the first 50)\n"
    if len(lines) > 10:
        return f"There were {len(lines)} warnings (use warnings() to see them)\n"
    return "Warning messages:\n" + "".join(f"{i}: {line}\n" for i, line in enumerate(lines, 1))


def _quantiles(fit: ModelFit) -> np.ndarray:
    return zapsmall(np.quantile(fit.deviance_residuals, [0, 0.25, 0.5, 0.75, 1]), DIGITS + 1)


def _coefficients(fit: ModelFit) -> str:
    tidy = fit.tidy()
    return coefficient_table(
        tidy["estimate"],
        tidy["std_error"],
        tidy["statistic"],
        tidy["p_value"],
        list(tidy["term"]),
        "t" if fit.uses_t else "z",
        DIGITS,
    )


def _coefficients_heading(fit: ModelFit) -> str:
    aliased = int(np.isnan(fit.coef).sum())
    return f"\nCoefficients: ({aliased} not defined because of singularities)\n" if aliased else "\nCoefficients:\n"


def _glm_summary(fit: ModelFit) -> str:
    text = f"\nCall:\n{call_text(fit)}\n\nDeviance Residuals: \n"
    text += print_named_vector(_quantiles(fit), QUANTILE_NAMES, DIGITS, gap=2)
    text += _coefficients_heading(fit) + _coefficients(fit)
    dispersion = format_number(fit.dispersion, 7).strip() if fit.family_object.dispersion_estimated else "1"
    text += f"\n(Dispersion parameter for {fit.family} family taken to be {dispersion})\n\n"
    deviances = format_real([fit.null_deviance, fit.deviance], max(5, DIGITS + 1))
    dfs = format_real([fit.df_null, fit.df_residual])
    for label, dev, df in zip(["    Null", "Residual"], deviances, dfs, strict=True):
        text += f"{label} deviance: {dev}  on {df}  degrees of freedom\n"
    text += _missing_note(fit)
    aic = "NA" if math.isnan(fit.aic) else format_real([fit.aic], max(4, DIGITS + 1))[0]
    text += f"AIC: {aic}\n\n"
    text += f"Number of Fisher Scoring iterations: {fit.iterations}\n\n"
    return text


def _lm_summary(fit: ModelFit) -> str:
    stats = fit.lm_statistics or {}
    text = f"\nCall:\n{call_text(fit)}\n\nResiduals:\n"
    text += print_named_vector(_quantiles(fit), QUANTILE_NAMES, DIGITS, gap=1)
    text += _coefficients_heading(fit) + _coefficients(fit)
    sigma = float(f"{stats['sigma']:.{DIGITS}g}")
    text += f"\nResidual standard error: {format_real([sigma])[0]} on {fit.df_residual} degrees of freedom\n"
    text += _missing_note(fit)
    if "fstatistic" in stats:
        f_value, df1, df2 = stats["fstatistic"]
        p_text = format_pval([stats["f_p_value"]], DIGITS)[0]
        text += (
            f"Multiple R-squared:  {format_c(stats['r_squared'], DIGITS)},\t"
            f"Adjusted R-squared:  {format_c(stats['adj_r_squared'], DIGITS)} \n"
            f"F-statistic: {format_c(f_value, DIGITS)} on {df1} and {df2} DF,  p-value: {p_text}\n"
        )
    return text + "\n"


def glmm_summary_text(fit) -> str:
    """``summary()`` of a glmer fit as lme4 1.1-31 prints it (``print.summary.merMod``); of an
    lmer fit as lmerTest prints it."""
    if hasattr(fit, "df_satterthwaite"):
        return lmm_summary_text(fit)
    method = "Laplace Approximation" if fit.nAGQ == 1 else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {fit.nAGQ}"
    title = strwrap(f"Generalized linear mixed model fit by maximum likelihood ({method})", 78, exdent=2)
    text = "\n".join(title) + " [glmerMod]\n"
    text += f" Family: {fit.family}  ( {fit.link} )\n"
    text += f"Formula: {deparse_formula(fit.formula)}\n   Data: {fit.dataset}\n\n"
    text += _information_criteria(fit) + _random_part(fit)
    tidy = fit.tidy()
    # with a dispersion lme4 heads the statistic "t value" but its p-values stay normal ones
    text += "\nFixed effects:\n" + coefficient_table(
        tidy["estimate"], tidy["std_error"], tidy["statistic"], tidy["p_value"], fit.terms,
        "t" if fit.has_dispersion else "z", DIGITS, p_name="z",
    )  # fmt: skip
    if len(fit.terms) > 1:
        text += "\nCorrelation of Fixed Effects:\n" + _correlation_text(fit.correlation(), fit.terms)
    design_messages = fit.glmm_design.messages  # lme4 keeps these apart, under "fit warnings:"
    if design_messages:
        text += "fit warnings:\n" + "".join(f"{message}\n" for message in design_messages)
    for warning in fit.warnings:
        if warning not in design_messages:
            text += f"{warning}\n"
    return text


def lmm_summary_text(fit) -> str:
    """``summary()`` of an lmer fit as lmerTest 3.1 prints it (lme4's ``print.summary.merMod``
    with Satterthwaite's df in the fixed-effects table)."""
    method = "REML" if fit.reml else "maximum likelihood "  # lme4's methTitle has that space
    text = _method_title(f"Linear mixed model fit by {method}. t-tests use Satterthwaite's method", "lmerModLmerTest")
    text += f"Formula: {deparse_formula(fit.formula)}\n   Data: {fit.dataset}\n"
    for label, value in (("Weights:", fit.weights), (" Offset:", fit.offset), (" Subset:", fit.subset)):
        if value:
            text += f"{label} {deparse_formula(value)}\n"
    if fit.reml:
        text += f"\nREML criterion at convergence: {format_number(r_round(fit.criterion, 1), 7).strip()}\n\n"
    else:
        text += "\n" + _information_criteria(fit)
    text += _random_part(fit)
    tidy = fit.tidy()
    if len(fit.terms):  # lme4 prints no table without fixed effects
        text += "\nFixed effects:\n" + coefficient_table(
            tidy["estimate"], tidy["std_error"], tidy["statistic"], tidy["p_value"], fit.terms, "t", DIGITS,
            df=tidy["df"],
        )  # fmt: skip
    if len(fit.terms) > 1:
        text += "\nCorrelation of Fixed Effects:\n" + _correlation_text(fit.correlation(), fit.terms)
    design_messages = fit.glmm_design.messages
    if design_messages:
        text += "fit warnings:\n" + "".join(f"{message}\n" for message in design_messages)
    messages = [warning for warning in fit.warnings if warning not in design_messages]
    if messages:  # lme4's .prt.warn, which names lmer's default optimizer
        text += "optimizer (nloptwrap) convergence code: 0 (OK)\n" + "".join(f"{m}\n" for m in messages) + "\n"
    return text


def _method_title(title: str, class_name: str, width: int = 80) -> str:
    """lme4's ``.prt.methTit``: the title wrapped (strwrap, width - 2, exdent 2) when it and the
    class are too long for one line, then ``cat(..., " [", class, "]", sep = "", fill = TRUE)``,
    which breaks the line before an item that would pass the width."""
    if len(title) + 5 + len(class_name) <= width:
        return f"{title} ['{class_name}']\n"
    text, column = "", 0
    for item in [*strwrap(title, width - 2, exdent=2), " [", class_name, "]"]:
        if column and column + len(item) > width:
            text, column = text + "\n", 0
        text, column = text + item, column + len(item)
    return text + "\n"


def _information_criteria(fit) -> str:
    """lme4's ``.prt.aictab``: AIC, BIC, logLik, deviance (rounded to 1 decimal) and df.resid."""
    rounded = [round(v, 1) for v in (fit.aic, fit.bic, fit.loglik, -2 * fit.loglik)]
    aic_table = format_real(rounded) + [str(fit.nobs - fit.n_params)]
    return print_named_vector(aic_table, ["AIC", "BIC", "logLik", "deviance", "df.resid"]) + "\n"


def _random_part(fit) -> str:
    """Scaled residuals' quantiles, the random effects' table and the numbers of groups."""
    quantiles = zapsmall(np.quantile(fit.scaled_residuals(), [0, 0.25, 0.5, 0.75, 1]), DIGITS + 1)
    text = "Scaled residuals: \n" + print_named_vector(quantiles, QUANTILE_NAMES, DIGITS) + "\n"
    text += "Random effects:\n" + _random_effects_table(fit)
    groups = "; ".join(f"{name}, {count}" for name, count in fit.glmm_design.n_groups.items())
    return text + f"Number of obs: {fit.nobs}, groups:  {groups}\n"


def _random_effects_table(fit) -> str:
    """lme4's ``formatVC`` as ``print.summary.merMod`` calls it (digits 4): Groups, Name,
    Variance and Std.Dev. (each column formatted together), and each term's correlations
    (rounded to 2 decimals) in its lower triangle under "Corr"."""
    terms, covariances = fit.glmm_design.terms, fit.covariances()
    sds = [np.sqrt(np.diag(sigma)) for sigma in covariances]
    flat = np.concatenate(sds + ([np.array([fit.sigma])] if fit.has_dispersion else []))
    variances, deviations = format_real(list(flat**2), DIGITS), format_real(list(flat), DIGITS)
    widest = max(term.k for term in terms)
    rows, position = [], 0
    for term, sd, sigma in zip(terms, sds, covariances, strict=True):
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = sigma / np.outer(sd, sd)
        texts = format_real(list(r_round(correlation.ravel(), 2)), 7, nsmall=2)
        for i, column in enumerate(term.columns):
            corr = [texts[i * term.k + j] if j < i else "" for j in range(widest - 1)]
            rows.append([term.name if i == 0 else "", column, variances[position], deviations[position], *corr])
            position += 1
    if fit.has_dispersion:  # lme4's "Residual" row: sigma
        rows.append(["Residual", "", variances[position], deviations[position], *[""] * (widest - 1)])
    columns = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (widest - 2) if widest > 1 else [])
    return print_matrix(rows, columns, [""] * len(rows), right=False)


def _correlation_text(correlation: np.ndarray, terms: list[str]) -> str:
    """lme4's lower-triangle correlation table: values to 3 decimals, names abbreviated."""
    p = len(terms)
    values = format_real(r_round(correlation.ravel(), 3), DIGITS, nsmall=3)
    cells = [[values[i * p + j] if i > j else "" for j in range(p - 1)] for i in range(1, p)]
    rows = [abbreviate(t, 11) for t in terms[1:]]
    columns = [abbreviate(t, 6) for t in terms[: p - 1]]
    return print_matrix(cells, columns, rows, right=False)


def reference_levels_text(fit) -> str:
    """A line under R's summary naming each factor's reference level (R's coefficients are
    contrasts against it, but summary() does not say which it is)."""
    references = fit.glance().get("reference_levels")
    if not references:
        return ""
    return "Reference levels: " + ", ".join(f"{variable} = {level}" for variable, level in references.items()) + "\n"


def write_model_outputs(fit, data, outputs) -> None:
    """A fitted model's tidy, glance, summary, augment and vcov files, where ``outputs`` names them."""
    write_csv(outputs.tidy, fit.tidy())
    write_json(outputs.glance, fit.glance())
    write_text(outputs.summary, summary_text(fit) + reference_levels_text(fit))
    write_csv(outputs.augment, fit.augment(data))
    write_csv(outputs.vcov, fit.vcov_frame(), index=True)
