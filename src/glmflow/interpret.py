"""Interpreting fitted models: predictions on a grid (as ``effects::Effect``) and count tables."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from glmflow.data import factor_level, r_label, r_sorted
from glmflow.errors import GlmflowError
from glmflow.families import family
from glmflow.formula import Design, build_design, design_for, predictor_variables
from glmflow.formula_syntax import fixed_part, split_formula
from glmflow.frame import ModelFrame, model_frame
from glmflow.models import model_data, predict_from, residual_df
from glmflow.plan import is_mixed


def factor_predictors(design: Design, data: pd.DataFrame) -> set[str]:
    """The predictors R treats as factors: declared (categorical columns) or wrapped in
    ``factor()``/``C()`` in the formula (a term encoded with contrasts)."""
    factors = {v for v in design.variables if isinstance(data[v].dtype, pd.CategoricalDtype)}
    for term, variables in design.spec.term_variables.items():
        if len(term.factors) == 1 and term.factors[0] in design.spec.factor_contrasts:
            factors |= set(variables) & set(design.variables)
    return factors


def _levels(column: pd.Series) -> list:
    """A factor's levels in R's order, as the values that the column holds."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return list(column.cat.categories)
    return r_sorted(pd.unique(column.dropna()))


def _focal_values(variable: str, values: list, column: pd.Series, is_factor: bool, where: str) -> list:
    if not is_factor:
        bad = [v for v in values if isinstance(v, str) or isinstance(v, bool)]
        if bad:
            raise GlmflowError(
                f"{where}.at.{variable}: {variable} is numeric; {', '.join(map(repr, bad))} is not a number"
            )
        return [float(v) for v in values]
    levels = _levels(column)
    if not values:
        return levels
    labels = [r_label(level) for level in levels]
    chosen, unknown = [], []
    for value in values:
        label = factor_level(value, labels)
        if label is None:
            unknown.append(value)
        else:
            chosen.append(levels[labels.index(label)])
    if unknown:
        raise GlmflowError(
            f"{where}.at.{variable}: no level {', '.join(map(repr, unknown))} (levels: {', '.join(labels)})"
        )
    return chosen


def effect_grid(
    design: Design, frame: pd.DataFrame, at: dict, where: str, predictors: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The grid and model matrix of ``effects::Effect(names(at), fit, xlevels = at)``.

    The variables named in ``at`` are crossed (the first varies fastest); every other numeric
    predictor is held at its mean over the model frame, every other factor at the
    proportional distribution of its levels there (the means of its columns in the model
    matrix), and interaction columns of such terms are the products of their parts, exactly
    as effects' ``Fixup.model.matrix``. A focal value goes through the formula's functions
    (``sqrt(size)`` at ``size = 4`` is 2), a held one too (``sqrt`` of the mean). ``frame``
    holds the model frame's rows; ``predictors`` are the fixed part's columns."""
    if not at:
        raise GlmflowError(f"{where}.at: name at least one predictor (the focal predictors of the effect)")
    unknown = [v for v in at if v not in predictors]
    if unknown:
        raise GlmflowError(f"{where}.at: {', '.join(map(repr, unknown))} not among the model's predictors {predictors}")
    factors = factor_predictors(design, frame)
    axes = {v: _focal_values(v, list(at[v]), frame[v], v in factors, where) for v in at}
    focal = list(at)
    # As effects' subscripts(): the first focal predictor varies fastest.
    combos = itertools.product(*(axes[v] for v in reversed(focal)))
    grid = pd.DataFrame([dict(zip(reversed(focal), combo, strict=True)) for combo in combos])[focal]
    excluded = [v for v in predictors if v not in at]
    for variable in excluded:
        grid[variable] = _levels(frame[variable])[0] if variable in factors else float(frame[variable].mean())
    for variable in predictors:
        if isinstance(frame[variable].dtype, pd.CategoricalDtype):
            grid[variable] = pd.Categorical(grid[variable], categories=frame[variable].cat.categories)
    X = _grid_matrix(design, grid, where)
    # Fixup.model.matrix: columns of the terms that involve a non-focal predictor.
    for term, variables in design.spec.term_variables.items():
        involved = set(variables) & set(excluded)
        # formulaic's column indices, as placed in R's column order
        columns = [int(np.flatnonzero(design.column_order == c)[0]) for c in design.spec.term_indices[term]]
        if involved and len(term.factors) == 1 and set(variables) & factors:
            X[:, columns] = design.X[:, columns].mean(axis=0)
    single = {parts[0]: index for index, parts in enumerate(design.column_parts) if len(parts) == 1}
    for index, parts in enumerate(design.column_parts):
        components = [single[part] for part in parts if part in single]
        if len(components) > 1:
            X[:, index] = np.prod(X[:, components], axis=1)
    return grid[focal], X


def _grid_matrix(design: Design, grid: pd.DataFrame, where: str) -> np.ndarray:
    """The grid's model matrix; a value the formula's functions cannot take (``sqrt`` of a
    negative number, where R gives NaN with a warning) is refused."""
    problem = "a value is outside the domain of the formula's functions (NaN or Inf in the model matrix)"
    try:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            X = design_for(design, grid)
    except ValueError as error:  # formulaic refuses a NaN it computed
        raise GlmflowError(f"{where}.at: {problem}: {error}") from None
    if not np.isfinite(X).all():
        raise GlmflowError(f"{where}.at: {problem}")
    return X


def _fixed_effects_model(model_spec: dict, where: str) -> dict:
    """What ``effects::Effect`` refits for a glmer fit (``Effect.default``): the fixed part of
    the formula with the data, subset and offset of the call, and no weights (the refit's
    call does not carry them; they do not change a mean). Its rows are those complete in the
    fixed part's columns, so a row missing only its grouping factor counts in the means."""
    response, rhs = split_formula(model_spec["formula"], where)
    spec = {key: value for key, value in model_spec.items() if key != "weights"}
    return {**spec, "formula": f"{response} ~ {fixed_part(rhs)}"}


def predictions(
    data: pd.DataFrame,
    model_spec: dict,
    model: str,
    tidy: pd.DataFrame,
    vcov: pd.DataFrame,
    at: dict,
    where: str = "interpretation.predictions",
) -> pd.DataFrame:
    """``frame_predictions`` on the model's frame taken from ``data`` (its dataset)."""
    return frame_predictions(model_frame(data, model_spec, model), tidy, vcov, at, where)


def frame_predictions(
    frame: ModelFrame, tidy: pd.DataFrame, vcov: pd.DataFrame, at: dict, where: str = "interpretation.predictions"
) -> pd.DataFrame:
    """A fitted model's effect (its coefficients and covariance as written) on a grid, as
    ``effects::Effect``, from the model's frame (the rows its fit was given): the link with its
    SE, and the 95% interval transformed. A mixed model's effect is that of its fixed part with
    ``vcov(fit)``. An offset (``offset()`` in the formula or the ``offset`` key alike) is held at
    its mean over the rows used, as effects' default ``offset = mean``; a column only in the
    offset is not a predictor of the grid."""
    model_spec = frame.spec
    mixed = is_mixed(model_spec)
    spec = _fixed_effects_model(model_spec, where) if mixed else model_spec
    # the frame is after the model's filter: model_data drops the rows with a missing weight
    rows = model_data(frame.data, spec, frame.name)
    design = build_design(spec["formula"], rows, where, spec.get("offset"))
    if list(tidy["term"]) != design.terms:
        raise GlmflowError(f"{where}: the model's terms {list(tidy['term'])} do not match its formula's {design.terms}")
    predictors = predictor_variables(spec["formula"], where)
    offset_only = [v for v in at or {} if v not in predictors and v in design.variables
                   and v not in design.response_columns]  # fmt: skip
    if offset_only:
        raise GlmflowError(
            f"{where}.at: {', '.join(map(repr, offset_only))} is only in the offset {' + '.join(design.offsets)}, "
            "which a grid holds at its mean over the rows used (as effects::Effect); it is not a predictor"
        )
    grid, X = effect_grid(design, design.frame, at or {}, where, predictors)
    offset = None if design.offset is None else np.full(len(grid), design.offset.mean())
    vcov_matrix = vcov.loc[design.terms, design.terms].to_numpy()
    chosen = family(model_spec["family"], model_spec.get("link"))
    # effects::Effect: t quantiles on df.residual wherever the dispersion is estimated (lm,
    # gaussian, Gamma, inverse.gaussian, the quasi families; for a mixed model those of its
    # fixed-part refit); normal ones for binomial and Poisson.
    estimate = tidy["estimate"].to_numpy(dtype=float)
    rank = int(np.sum(~np.isnan(estimate)))
    df_residual = residual_df(design, spec, rows, rank) if chosen.dispersion_estimated else None
    table = predict_from(X, estimate, vcov_matrix, chosen, grid, df_residual=df_residual, offset=offset)
    unknown = ~estimable(design.X, np.isnan(estimate), X)
    table.loc[unknown, ["link", "se_link", "prob", "conf_low", "conf_high"]] = np.nan
    return table


def estimable(X: np.ndarray, aliased: np.ndarray, rows: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """Which rows' linear predictors a rank-deficient fit determines, as effects (through the
    estimability package) decides them: a row is estimable when its part in the null space of
    the model matrix (the directions of the aliased columns) is below ``tol`` of its square norm;
    effects gives NA for the others."""
    if not aliased.any():
        return np.ones(len(rows), dtype=bool)
    # each aliased column is a combination of the kept ones: (-b, 1) spans the null space
    b = np.linalg.lstsq(X[:, ~aliased], X[:, aliased], rcond=None)[0]
    basis = np.zeros((X.shape[1], int(aliased.sum())))
    basis[~aliased] = -b
    basis[aliased] = np.eye(int(aliased.sum()))
    basis = np.linalg.qr(basis)[0]
    check = rows @ basis
    size = np.sum(rows**2, axis=1)
    return np.sum(check**2, axis=1) < tol * np.where(size < tol, 1.0, size)


def fitted_curve(
    frame: ModelFrame,
    tidy: pd.DataFrame,
    vcov: pd.DataFrame,
    x: str,
    by: str | None = None,
    points: int = 200,
) -> pd.DataFrame:
    """Predictions with 95% bands along ``x`` over its observed range in the model's frame, one
    curve per level of ``by`` (what ``geom_smooth`` draws); other predictors held as ``effects``
    holds them."""
    values = frame.model_rows()[x].dropna()
    grid = np.linspace(values.min(), values.max(), points)
    at = {by: []} if by else {}
    at[x] = grid.tolist()
    return frame_predictions(frame, tidy, vcov, at, f"figure of model {frame.name!r}")


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
