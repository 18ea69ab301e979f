"""``summary()`` text laid out as R 4.2 prints it for ``lm`` and ``glm`` fits."""

from __future__ import annotations

import numpy as np

from glmflow.formula import deparse_formula
from glmflow.models import ModelFit
from glmflow.rformat import (
    coefficient_table,
    deparse_call,
    format_c,
    format_pval,
    format_real,
    print_named_vector,
    zapsmall,
)

QUANTILE_NAMES = ["Min", "1Q", "Median", "3Q", "Max"]
DIGITS = 4  # max(3, getOption("digits") - 3), as print.summary.glm and print.summary.lm use


def call_text(fit: ModelFit) -> str:
    arguments = [("formula", deparse_formula(fit.formula))]
    if fit.family != "gaussian":
        arguments.append(("family", f'"{fit.family}"'))
    arguments.append(("data", fit.dataset))
    if fit.filter:
        arguments.append(("subset", fit.filter))
    return deparse_call("lm" if fit.family == "gaussian" else "glm", arguments)


def _missing_note(fit: ModelFit) -> str:
    n = fit.design.n_dropped
    if not n:
        return ""
    return f"  ({n} observation{'s' if n > 1 else ''} deleted due to missingness)\n"


def summary_text(fit: ModelFit) -> str:
    return _lm_summary(fit) if fit.family == "gaussian" else _glm_summary(fit)


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


def _glm_summary(fit: ModelFit) -> str:
    text = f"\nCall:\n{call_text(fit)}\n\nDeviance Residuals: \n"
    text += print_named_vector(_quantiles(fit), QUANTILE_NAMES, DIGITS, gap=2)
    text += "\nCoefficients:\n" + _coefficients(fit)
    text += f"\n(Dispersion parameter for {fit.family} family taken to be 1)\n\n"
    deviances = format_real([fit.null_deviance, fit.deviance], max(5, DIGITS + 1))
    dfs = format_real([fit.df_null, fit.df_residual])
    for label, dev, df in zip(["    Null", "Residual"], deviances, dfs, strict=True):
        text += f"{label} deviance: {dev}  on {df}  degrees of freedom\n"
    text += _missing_note(fit)
    text += f"AIC: {format_real([fit.aic], max(4, DIGITS + 1))[0]}\n\n"
    text += f"Number of Fisher Scoring iterations: {fit.iterations}\n\n"
    return text


def _lm_summary(fit: ModelFit) -> str:
    stats = fit.lm_statistics or {}
    text = f"\nCall:\n{call_text(fit)}\n\nResiduals:\n"
    text += print_named_vector(_quantiles(fit), QUANTILE_NAMES, DIGITS, gap=1)
    text += "\nCoefficients:\n" + _coefficients(fit)
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
