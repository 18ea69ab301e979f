"""Interpreting fitted models: predictions on a grid (as ``effects::Effect``) and count tables."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from glmflow.errors import GlmflowError
from glmflow.formula import build_design, design_for
from glmflow.models import model_data, predict_from


def prediction_grid(data: pd.DataFrame, variables: list[str], at: dict, where: str) -> pd.DataFrame:
    """All combinations of the given values. A variable not given takes, as ``effects`` does,
    its mean if numeric, or every level if a factor."""
    unknown = [v for v in at if v not in variables]
    if unknown:
        raise GlmflowError(f"{where}: {', '.join(map(repr, unknown))} not among the model's variables {variables}")
    axes = {}
    for variable in variables:
        column = data[variable]
        if variable in at:
            values = at[variable]
            if isinstance(column.dtype, pd.CategoricalDtype):
                bad = [v for v in values if v not in column.cat.categories]
                if bad:
                    raise GlmflowError(
                        f"{where}: {variable} has no level {', '.join(map(repr, bad))} "
                        f"(levels: {', '.join(map(str, column.cat.categories))})"
                    )
            axes[variable] = list(values)
        elif isinstance(column.dtype, pd.CategoricalDtype):
            axes[variable] = list(column.cat.categories)
        else:
            axes[variable] = [float(column.mean())]
    # As effects::Effect, the variable first in the formula varies fastest.
    combos = itertools.product(*(axes[v] for v in reversed(variables)))
    grid = pd.DataFrame([dict(zip(reversed(variables), combo, strict=True)) for combo in combos])[variables]
    for variable in variables:
        if isinstance(data[variable].dtype, pd.CategoricalDtype):
            grid[variable] = pd.Categorical(grid[variable], categories=data[variable].cat.categories)
    return grid


def predictions(
    data: pd.DataFrame, model_spec: dict, model: str, tidy: pd.DataFrame, vcov: pd.DataFrame, at: dict
) -> pd.DataFrame:
    """Predictions of a fitted model (its coefficients and covariance as written) on a grid."""
    where = f"predictions of model {model!r}"
    design = build_design(model_spec["formula"], model_data(data, model_spec, model), where)
    if list(tidy["term"]) != design.terms:
        raise GlmflowError(f"{where}: the model's terms {list(tidy['term'])} do not match its formula's {design.terms}")
    predictors = [v for v in design.variables if v != design.response]
    grid = prediction_grid(data.loc[design.rows], predictors, at or {}, where)
    X = design_for(design, grid)
    vcov_matrix = vcov.loc[design.terms, design.terms].to_numpy()
    df_residual = design.X.shape[0] - design.X.shape[1] if model_spec["family"] == "gaussian" else None
    return predict_from(
        X, tidy["estimate"].to_numpy(), vcov_matrix, model_spec["family"], grid, df_residual=df_residual
    )


def fitted_curve(
    data: pd.DataFrame, model_spec: dict, model: str, tidy: pd.DataFrame, vcov: pd.DataFrame, x: str, points: int = 200
) -> pd.DataFrame:
    """Predictions with 95% bands along ``x`` over its observed range, for every level of the
    model's factors (what ``geom_smooth`` draws)."""
    rows = model_data(data, model_spec, model)[x].dropna()
    grid = np.linspace(rows.min(), rows.max(), points)
    return predictions(data, model_spec, model, tidy, vcov, {x: grid.tolist()})


def count_table(data: pd.DataFrame, by: list[str], where: str) -> pd.DataFrame:
    """``count(a, b) %>% mutate(p = n / sum(n)) %>% group_by(a) %>% mutate(p(b|a) = p / sum(p))``."""
    missing = [v for v in by if v not in data.columns]
    if missing:
        raise GlmflowError(f"{where}: {', '.join(map(repr, missing))} not a column of the data")
    counts = data.groupby(by, observed=True, dropna=False).size().reset_index(name="n")
    counts["p"] = counts["n"] / counts["n"].sum()
    last = by[-1]
    if len(by) > 1:
        group_total = counts.groupby(by[:-1], observed=True)["p"].transform("sum")
        counts[f"p({last}|{','.join(by[:-1])})"] = counts["p"] / group_total
    for column in by:
        if isinstance(counts[column].dtype, pd.CategoricalDtype):
            counts[column] = counts[column].astype(str)
    return counts.sort_values(by).reset_index(drop=True)
