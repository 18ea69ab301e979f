"""R model formulas: design matrices through formulaic, with R's column labels and NA handling
(the formula as text, allow-list included, is ``glmflow.formula_syntax``).

formulaic implements R's term algebra and contrast rules (terms ordered by degree, full
dummy coding where a main effect is missing). What R users write that Python does not
parse is translated first: ``factor(x)`` is formulaic's ``C(x)`` and ``^`` inside a call
(``I(fare^2)``) is ``**``. Columns are then renamed to R's labels (``sexmale``,
``factor(pclass)2``, ``I(fare^2)``, ``(Intercept)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import Formula, model_matrix
from formulaic.model_spec import ModelSpec

from glmflow import formula_syntax as syntax
from glmflow.errors import GlmflowError
from glmflow.filters import evaluate_expression, expression_columns

_LEVEL = re.compile(r"^(?P<base>.*)\[(?:T\.)?(?P<level>[^\[\]]*)\]$")


def r_label(column: str) -> str:
    """formulaic's column name as R labels it."""
    if column == "Intercept":
        return "(Intercept)"
    parts = []
    for part in _split_interaction(column):
        match = _LEVEL.match(part)
        base, level = (match["base"], match["level"]) if match else (part, "")
        base = re.sub(r"^C\((.*)\)$", r"factor(\1)", base)
        base = base.replace(" ** ", "^")
        parts.append(base + level)
    return ":".join(parts)


def _split_interaction(column: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in column:
        depth += char in "(["
        depth -= char in ")]"
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


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
    frame = data.loc[complete]
    rhs_with_offsets = syntax.fixed_part(syntax.split_formula(formula, where)[1])
    rhs_without, offsets = syntax.split_offsets(rhs_with_offsets)
    rhs = syntax.to_formulaic(rhs_without)
    try:
        matrix = model_matrix(rhs, frame, context=syntax.FORMULA_FUNCTIONS, na_action="raise")
    except Exception as error:
        raise GlmflowError(f"{where}: formula {formula!r} cannot be evaluated: {error}") from error
    X = np.asarray(matrix, dtype=float)
    rows = frame.index.to_numpy()
    _refuse_nonfinite(f"{where}: formula {formula!r}", "x", X, [r_label(str(c)) for c in matrix.columns], rows)
    offsets = offsets + ([offset] if offset else [])
    offset_values = np.sum([evaluate_expression(frame, text) for text in offsets], axis=0) if offsets else None
    if offset_values is not None and not np.all(np.isfinite(offset_values)):
        raise GlmflowError(f"{where}: the offset {' + '.join(offsets)} is not finite on every row")
    parts = syntax.cbind_parts(response)
    trials = None
    if parts is None:
        y = _numeric_response(frame[response], where, response)
    else:
        successes, failures = (evaluate_expression(frame, part) for part in parts)
        if np.any(successes < 0) or np.any(failures < 0):
            raise GlmflowError(f"{where}: {response}: successes and failures must be non-negative")
        y, trials = successes, successes + failures
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
        terms=[r_label(str(c)) for c in matrix.columns],
        rows=rows,
        n_dropped=int((~complete).sum()),
        variables=variables,
        spec=matrix.model_spec,
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


def _numeric_response(values: pd.Series, where: str, response: str) -> np.ndarray:
    if isinstance(values.dtype, pd.CategoricalDtype):
        # As R's binomial(): the first level is failure, every other level success.
        return (values.cat.codes.to_numpy() > 0).astype(float)
    if values.dtype == bool:
        return values.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(values.dtype):
        raise GlmflowError(f"{where}: response column {response!r} is not numeric")
    return values.to_numpy(dtype=float)


def design_for(design: Design, newdata: pd.DataFrame) -> np.ndarray:
    """The model matrix of new rows, with the factor levels of the fitted data."""
    return np.asarray(design.spec.get_model_matrix(newdata, na_action="raise"), dtype=float)
