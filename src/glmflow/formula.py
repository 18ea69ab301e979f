"""R model formulas: design matrices through formulaic, with R's column labels, column order
and model frame (the formula as text, allow-list included, is ``glmflow.formula_syntax``).

formulaic implements R's term algebra and contrast rules (terms ordered by degree, full
dummy coding where a main effect is missing). What R users write that Python does not
parse is translated first: ``factor(x)`` is formulaic's ``C(x)`` and ``^`` inside a call
(``I(fare^2)``) is ``**``. R's labels (``sexmale``, ``factor(pclass)2``, ``I(fare^2)``,
``tensionM:woolB``, ``(Intercept)``) are then built from the model spec's terms and levels,
and interaction columns put in R's order. As R's model.frame, rows with an NA are dropped
and so are the levels of a factor that no row left uses.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.model_spec import ModelSpec
from formulaic.transforms.contrasts import TreatmentContrasts
from formulaic.utils.sentinels import UNSET

from glmflow import formula_syntax as syntax
from glmflow.data import as_factor
from glmflow.data import r_label as r_value_label
from glmflow.errors import GlmflowError
from glmflow.filters import evaluate_expression, expression_columns
from glmflow.formula_syntax import is_name, tokenize
from glmflow.rdeparse import r_deparse


def _r_identity(values):
    """R's ``I()``: a logical result (``I(x > 4)``) is a factor in R's model matrix, labelled
    ``I(x > 4)TRUE``; anything else passes through."""
    if isinstance(values, pd.Series) and values.dtype == bool:
        return values.astype("category")
    return values


# What formulas are evaluated with: the allowed functions, and I() as R's model matrix reads it.
CONTEXT = {**syntax.FORMULA_FUNCTIONS, "I": _r_identity}


def _variable_order(rhs: str, expressions: list[str]) -> dict[str, int]:
    """Where each variable (formulaic's factor expression) first appears in ``rhs`` (formulaic's
    syntax), as the rows of R's ``terms()`` factors matrix order them. Only appearances outside
    a call count: the ``x`` of ``log(x)`` is part of the variable ``log(x)``, not ``x``."""
    tokens = tokenize(rhs)
    wanted = {e: tokenize(e) for e in expressions}
    order: dict[str, int] = {}
    call_stack: list[bool] = []
    for position, token in enumerate(tokens):
        if not any(call_stack):
            for expression, pattern in wanted.items():
                end = position + len(pattern)
                if (
                    expression not in order
                    and tokens[position:end] == pattern
                    and (end == len(tokens) or tokens[end] != "(")
                ):
                    order[expression] = position
        if token == "(":
            call_stack.append(position > 0 and is_name(tokens[position - 1]))
        elif token == ")" and call_stack:
            call_stack.pop()
    return order


def _factor_columns(spec: ModelSpec, scoped) -> list[tuple[int, str]]:
    """The columns one factor of a term contributes: (level index, R's suffix), as formulaic
    encodes it (a number: one column, no suffix; a factor: its levels, the first one left out
    where the factor is coded by contrasts)."""
    _, state = spec.encoder_state.get(scoped.factor.expr, (None, {}))
    if "categories" not in state:
        return [(0, "")]
    contrasts = state.get("contrasts")
    if contrasts is not None and not (
        isinstance(contrasts.contrasts, TreatmentContrasts) and contrasts.contrasts.base is UNSET
    ):
        raise GlmflowError(f"{scoped.factor.expr}: only R's default treatment contrasts are supported")
    levels = list(state["categories"])
    first = 1 if scoped.reduced else 0
    return [(i, r_value_label(levels[i])) for i in range(first, len(levels))]


def r_columns(spec: ModelSpec, rhs: str) -> list[tuple[int, tuple[str, ...]]]:
    """R's model matrix columns from formulaic's: for each, in R's order, the index of
    formulaic's column and R's label parts (``("tensionM", "woolB")``; none for the intercept).

    Built from the model spec's terms and levels, never by parsing column names, so levels
    such as ``a[1]``, ``b:2`` or ``d 4`` are labelled whole. R names an interaction's variables
    in their order of first appearance in the formula, the first varying fastest; formulaic
    keeps the order written, so ``wool:tension`` is turned around when tension came first."""
    expressions = [f.factor.expr for s in spec.structure for t in s.scoped_terms for f in t.factors]
    order = _variable_order(rhs, list(dict.fromkeys(expressions)))
    columns, start = [], 0
    for structure in spec.structure:
        block = []
        for scoped_term in structure.scoped_terms:
            factors = list(scoped_term.factors)
            encoded = [_factor_columns(spec, f) for f in factors]
            names = [r_deparse(_r_call(f.factor.expr)) for f in factors]
            r_order = sorted(range(len(factors)), key=lambda i: order.get(factors[i].factor.expr, len(order)))
            # formulaic's product: the first factor varies fastest
            combos = [c[::-1] for c in itertools.product(*reversed(encoded))]
            keyed = []
            for offset, combo in enumerate(combos):
                parts = tuple(names[i] + combo[i][1] for i in r_order)
                key = tuple(combo[i][0] for i in reversed(r_order))  # R's first factor fastest
                keyed.append((key, start + len(block) + offset, parts))
            block += [(index, parts) for _, index, parts in sorted(keyed, key=lambda k: k[0])]
        if len(block) != len(structure.columns):
            raise GlmflowError(
                f"term {structure.term}: formulaic gives the columns {structure.columns}, which glmflow cannot "
                "label as R does; write the term another way (factor(x), I(...), a:b)"
            )
        columns += block
        start += len(block)
    return columns


def _r_call(expression: str) -> str:
    """formulaic's ``C(x)`` is R's ``factor(x)``."""
    return re.sub(r"^C\((.*)\)$", r"factor(\1)", expression)


def r_name(expression: str) -> str:
    """A variable of formulaic's model spec under R's name for it (``factor(pclass)``, ``I(fare^2)``)."""
    return r_deparse(_r_call(expression))


def r_label(parts: tuple[str, ...]) -> str:
    """An R column label from its parts: ``tensionM:woolB``, ``(Intercept)``."""
    return ":".join(parts) if parts else "(Intercept)"


@dataclass
class Design:
    """A model frame as R builds it: response, model matrix, labels and the rows used."""

    response: str
    y: np.ndarray
    X: np.ndarray
    terms: list[str]
    rows: np.ndarray  # index labels of the rows used (row positions in the full dataset)
    n_dropped: int
    variables: list[str]
    spec: ModelSpec
    frame: pd.DataFrame  # the rows used, unused levels of the variables' factors dropped (R's model frame)
    column_order: np.ndarray  # formulaic's column of each of R's columns
    column_parts: list[tuple[str, ...]]  # each column's label, one part per variable (R's interaction order)
    coded_response: bool = False  # y coded from a factor or logical response (failure: its first level)
    trials: np.ndarray | None = None  # cbind(successes, failures): y holds the successes
    offset: np.ndarray | None = None  # the sum of the offsets, on every row used
    offsets: list[str] = field(default_factory=list)  # their expressions
    response_columns: list[str] = field(default_factory=list)

    @property
    def has_intercept(self) -> bool:
        return "(Intercept)" in self.terms


def required_variables(formula: str, where: str) -> tuple[str, list[str]]:
    """The response and the data columns a formula reads (the response's columns first)."""
    syntax.check_formula_text(formula, where)
    response, rhs = syntax.split_formula(formula, where)
    try:
        rhs, offsets = syntax.split_offsets(rhs)
        offset_columns = [c for text in offsets for c in expression_columns(text)]
        responses = syntax.response_columns(response)
    except GlmflowError as error:
        raise GlmflowError(f"{where}: formula {formula!r}: {error}") from None
    try:
        needed = Formula(syntax.to_formulaic(syntax.fixed_part(rhs))).required_variables
    except GlmflowError:
        raise
    except Exception as error:
        raise GlmflowError(f"{where}: formula {formula!r} cannot be parsed: {error}") from error
    needed_names = {str(v) for v in needed}
    for term in syntax.random_effect_terms(rhs):
        try:
            needed_names |= {str(v) for v in Formula(syntax.to_formulaic(term.expression)).required_variables}
        except Exception as error:
            raise GlmflowError(f"{where}: formula {formula!r}: random term {term} cannot be parsed: {error}") from error
        needed_names |= set(term.group_columns)
    needed_names -= set(syntax.FORMULA_FUNCTIONS) | {"C"}
    in_formula_order = [t for t in dict.fromkeys(syntax.tokenize(rhs)) if t in needed_names] + offset_columns
    return response, list(dict.fromkeys(responses + [n for n in in_formula_order if n not in responses]))


def build_design(formula: str, data: pd.DataFrame, where: str, offset: str | None = None) -> Design:
    """Model frame and matrix for the fixed part of ``formula``; rows with NAs dropped as na.omit.
    ``offset`` is the config's offset expression, added to the formula's ``offset()`` terms."""
    response, variables = required_variables(formula, where)
    if offset:
        variables = list(dict.fromkeys(variables + expression_columns(offset)))
    missing = [v for v in variables if v not in data.columns]
    if missing:
        raise GlmflowError(
            f"{where}: formula {formula!r} uses {', '.join(map(repr, missing))}, "
            f"not a column of the data (columns: {', '.join(data.columns)})"
        )
    complete = data[variables].notna().all(axis=1).to_numpy()
    rhs_with_offsets = syntax.fixed_part(syntax.split_formula(formula, where)[1])
    rhs_without, offsets = syntax.split_offsets(rhs_with_offsets)
    rhs = syntax.to_formulaic(rhs_without)
    predictors = [v for v in variables if v not in syntax.response_columns(response)]
    rows_kept = data if complete.all() else data.loc[complete]  # copy-on-write: data is not changed
    frame = _model_frame(rows_kept, variables, list(_variable_order(rhs, predictors)))
    try:
        matrix = model_matrix(rhs, frame, context=CONTEXT, na_action="raise")
    except Exception as error:
        raise GlmflowError(f"{where}: formula {formula!r} cannot be evaluated: {error}") from error
    _check_levels(matrix.model_spec, f"{where}: formula {formula!r}")
    try:
        columns = r_columns(matrix.model_spec, rhs)
    except GlmflowError as error:
        raise GlmflowError(f"{where}: formula {formula!r}: {error}") from None
    order = np.array([index for index, _ in columns], dtype=int)
    X = np.asarray(matrix, dtype=float)[:, order]
    terms = [r_label(parts) for _, parts in columns]
    rows = frame.index.to_numpy()
    _refuse_nonfinite(f"{where}: formula {formula!r}", "x", X, terms, rows)
    offsets = offsets + ([offset] if offset else [])
    offset_values = np.sum([evaluate_expression(frame, text) for text in offsets], axis=0) if offsets else None
    if offset_values is not None and not np.all(np.isfinite(offset_values)):
        raise GlmflowError(f"{where}: the offset {' + '.join(offsets)} is not finite on every row")
    y, trials = _response(frame, response, where)
    _refuse_nonfinite(f"{where}: formula {formula!r}", "y", y if trials is None else np.column_stack([y, trials]),
                      [response] * (1 if trials is None else 2), rows)  # fmt: skip
    return Design(
        response=response,
        y=y,
        trials=trials,
        offset=offset_values,
        offsets=offsets,
        response_columns=syntax.response_columns(response),
        X=X,
        terms=terms,
        rows=rows,
        n_dropped=int((~complete).sum()),
        variables=variables,
        spec=matrix.model_spec,
        frame=frame,
        column_order=order,
        column_parts=[parts for _, parts in columns],
        coded_response=response in frame and _is_coded(frame[response]),
    )


def _refuse_nonfinite(where: str, what: str, values: np.ndarray, names: list[str], rows: np.ndarray) -> None:
    """R's lm.fit and glm.fit stop on a response (``what`` = "y") or model-matrix entry ("x")
    that is Inf or NaN, which na.omit keeps: so does the fit, naming the columns and data rows
    (``rows``: each row's position in the dataset)."""
    bad = ~np.isfinite(values.reshape(len(rows), -1))
    if not bad.any():
        return
    columns = list(dict.fromkeys(name for name, any_bad in zip(names, bad.any(axis=0), strict=True) if any_bad))
    raise GlmflowError(
        f"{where}: NA/NaN/Inf in '{what}' (R's lm.fit and glm.fit stop here too): {', '.join(map(repr, columns))} "
        f"not finite in data rows {data_rows(rows[bad.any(axis=1)])}; filter those rows out or correct the data"
    )


def data_rows(rows: np.ndarray, shown: int = 5) -> str:
    """Row positions as the data rows a user counts (1 = the first row after the header)."""
    text = ", ".join(str(int(row) + 1) for row in rows[:shown])
    return text + (f" and {len(rows) - shown} more" if len(rows) > shown else "")


def _response(frame: pd.DataFrame, response: str, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The response as glm.fit takes it, and the trials of a cbind(successes, failures) one."""
    parts = syntax.cbind_parts(response)
    if parts is None:
        if not (_is_coded(frame[response]) or pd.api.types.is_numeric_dtype(frame[response].dtype)):
            raise GlmflowError(f"{where}: response column {response!r} is not numeric")
        return response_values(frame[response]), None
    successes, failures = (evaluate_expression(frame, part) for part in parts)
    if np.any(successes < 0) or np.any(failures < 0):
        raise GlmflowError(f"{where}: {response}: successes and failures must be non-negative")
    return successes, successes + failures


def _has_unused_level(values: pd.Series) -> bool:
    codes = values.cat.codes.to_numpy()
    return bool(np.any(np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)) == 0))


def _model_frame(frame: pd.DataFrame, variables: list[str], terms: list[str]) -> pd.DataFrame:
    """R's model frame: unused levels of factors dropped (``drop.unused.levels = TRUE``: a level
    no row uses has no coefficient, and the first level left is the reference); a logical
    variable written as a term (``terms``) is a factor, as R's model matrix codes it (``flagTRUE``)."""
    changed = {v: frame[v].astype("category") for v in terms if frame[v].dtype == bool}
    # a text predictor is a factor, its levels in R's sort order (formulaic would sort them by
    # code point, and so choose another reference level)
    changed |= {v: as_factor(frame[v]) for v in terms if _is_text(frame[v])}
    for variable in variables:
        values = frame[variable]
        if isinstance(values.dtype, pd.CategoricalDtype) and _has_unused_level(values):
            changed[variable] = values.cat.remove_unused_categories()
    # assign: the other columns are not copied (pandas' copy-on-write)
    return frame.assign(**changed) if changed else frame


def _check_levels(spec: ModelSpec, where: str) -> None:
    """R's model.matrix refuses a factor with one level ("contrasts can be applied only to
    factors with 2 or more levels"); here that happens after a filter or NA rows leave one."""
    for expression, (_, state) in spec.encoder_state.items():
        if "categories" in state and len(state["categories"]) < 2:
            left = ", ".join(r_value_label(v) for v in state["categories"])
            raise GlmflowError(
                f"{where}: {r_deparse(_r_call(expression))} has one level ({left}) in the rows used (after the "
                "filters and dropping rows with NA); R's model.matrix refuses a factor with fewer than 2 levels: "
                "take it out of the formula or change the filter"
            )


def _is_text(values: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype)


def _is_coded(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == bool


def response_values(values: pd.Series) -> np.ndarray:
    """A response column as the fit uses it: a factor as R's binomial() codes it (the first
    level failure, every other level success), a logical as 0/1; NA stays NaN."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        return np.where(codes < 0, np.nan, (codes > 0).astype(float))
    return values.to_numpy(dtype=float, na_value=np.nan)


def design_for(design: Design, newdata: pd.DataFrame) -> np.ndarray:
    """The model matrix of new rows, with the factor levels of the fitted data (and the
    formula's functions, ``sqrt()``, ``log1p()`` and the rest, as the fit evaluated them)."""
    matrix = design.spec.get_model_matrix(newdata, context=CONTEXT, na_action="raise")
    return np.asarray(matrix, dtype=float)[:, design.column_order]


def predictor_variables(formula: str, where: str) -> list[str]:
    """The columns the fixed part's model matrix reads, in the formula's order: not the
    response, not a column only in an offset, not a grouping factor or a variable only in a
    random-effect term (what ``effects::Effect`` takes as predictors)."""
    rhs = syntax.split_offsets(syntax.fixed_part(syntax.split_formula(formula, where)[1]))[0]
    try:
        needed = {str(v) for v in Formula(syntax.to_formulaic(rhs)).required_variables}
    except Exception as error:
        raise GlmflowError(f"{where}: formula {formula!r} cannot be parsed: {error}") from error
    needed -= set(syntax.FORMULA_FUNCTIONS) | {"C"}
    return [t for t in dict.fromkeys(syntax.tokenize(rhs)) if t in needed]
