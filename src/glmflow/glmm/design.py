"""Stage 1, lme4's ``glFormula``: the fixed-effect design, the random-effect terms with their
model matrices and grouping factors, Lambda's template and theta's lower bounds.

As lme4's ``mkReTrms``: ``(x || g)`` is expanded to ``(1 | g) + (0 + x | g)``; ``(1 | a/b)``
to ``(1 | b:a) + (1 | a)``; an interaction ``a:b`` groups by the combinations present, with
levels ``"<a>:<b>"`` in the order of a's levels, then b's; the terms are then sorted by
decreasing number of levels (stable), which is the order of theta, VarCorr and ranef. Each
term's relative covariance factor is lower triangular with theta its lower triangle, column
by column, diagonal entries bounded below by 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from formulaic import model_matrix

from glmflow.data import r_sorted
from glmflow.errors import GlmflowError
from glmflow.formula import CONTEXT, Design, build_design, r_columns, r_label
from glmflow.formula_syntax import RandomTerm, check_random_terms, split_formula, to_formulaic
from glmflow.rank import r_qr_rank

RANK_TOL = 1e-7  # lme4's chkRank.drop.cols: qr(X, tol = 1e-7)


@dataclass
class ReTerm:
    """One random-effect term after expansion: its grouping factor and model matrix."""

    name: str  # the grouping factor's name as lme4 prints it (b:a), made unique (a.1) for VarCorr
    factor: str  # the grouping factor's name (what n_groups counts)
    columns: list[str]  # R's labels of the term's model matrix
    levels: np.ndarray  # level labels (str)
    codes: np.ndarray  # level of each row used, 0..len(levels)-1
    matrix: np.ndarray  # rows used x len(columns)

    @property
    def k(self) -> int:
        return len(self.columns)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2


@dataclass
class GlmmDesign:
    design: Design  # the fixed effects, response and rows used
    terms: list[ReTerm]  # sorted by decreasing number of levels, as lme4
    prior: np.ndarray  # prior weights: binomial trials per row (1 for 0/1 data)
    offset: np.ndarray  # the offset on every row used (0 without one)
    dropped: list[str] = field(default_factory=list)  # aliased fixed-effect columns, not fitted
    messages: list[str] = field(default_factory=list)  # lme4's messages from building the design

    @property
    def n_theta(self) -> int:
        return sum(term.n_theta for term in self.terms)

    @property
    def is_scalar_intercept(self) -> bool:
        """One ``(1 | g)`` term: the case nAGQ > 1 allows and the scalar engine fits."""
        return len(self.terms) == 1 and self.terms[0].columns == ["(Intercept)"]

    @property
    def n_groups(self) -> dict[str, int]:
        return {term.factor: term.n_levels for term in self.terms}

    def theta_lower(self) -> np.ndarray:
        """0 for the diagonal entries of each factor, -inf below the diagonal."""
        return np.array([0.0 if a == b else -np.inf for _, a, b in self.theta_positions()])

    def theta_start(self) -> np.ndarray:
        """lme4's start: each term's factor the identity."""
        return np.array([1.0 if a == b else 0.0 for _, a, b in self.theta_positions()])

    def theta_positions(self) -> list[tuple[int, int, int]]:
        """Each theta's (term, row, column) in its term's factor: lme4's order, the lower
        triangle column by column."""
        return [(t, a, b) for t, term in enumerate(self.terms) for b in range(term.k) for a in range(b, term.k)]

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """Each term's k x k lower-triangular factor T (Sigma = T T') from theta."""
        out = [np.zeros((term.k, term.k)) for term in self.terms]
        for value, (t, a, b) in zip(theta, self.theta_positions(), strict=True):
            out[t][a, b] = value
        return out

    def theta_of(self, factors: list[np.ndarray]) -> np.ndarray:
        """theta from the terms' factors (``factors``'s inverse)."""
        return np.array([factors[t][a, b] for t, a, b in self.theta_positions()])


def expand_terms(terms: list[RandomTerm]) -> list[tuple[str, list[str]]]:
    """(expression, grouping columns) per term after lme4's ``||`` and ``/`` expansion."""
    expanded = []
    for term in terms:
        groups = _nesting(term.group)
        if term.uncorrelated:
            parts = [p.strip() for p in term.expression.split("+") if p.strip()]
            no_intercept = any(p in ("0", "-1") for p in parts)
            expressions = [] if no_intercept else ["1"]
            expressions += [f"0 + {p}" for p in parts if p not in ("0", "1", "-1")]
        else:
            expressions = [term.expression]
        expanded += [(expression, group) for group in groups for expression in expressions]
    return expanded


def _nesting(group: str) -> list[list[str]]:
    """``a/b/c`` -> [c:b:a... as lme4: (1 | c:b:a) + (1 | b:a) + (1 | a)]; ``a:b`` -> [[a, b]]."""
    parts = [part.strip() for part in group.split("/")]
    nested = []
    for depth in range(len(parts), 0, -1):
        columns = [c.strip() for part in reversed(parts[:depth]) for c in part.split(":")]
        nested.append(columns)
    return nested


def _grouping_factor(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Level labels and codes of a grouping factor (an interaction of ``columns``), as R's
    ``factor(a:b)``: the combinations present, ordered by the first column's levels, then the next."""
    code_columns, label_columns = [], []
    for column in columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes, labels = values.cat.codes.to_numpy(), np.asarray(values.cat.categories.astype(str))
        else:
            levels = r_sorted(pd.unique(values))  # R's factor(): text in R's collation
            codes = pd.Categorical(values, categories=levels).codes
            labels = np.array([_level_text(v) for v in levels])
        code_columns.append(codes.astype(np.int64))
        label_columns.append(labels)
    key = np.zeros(len(frame), dtype=np.int64)  # the combination's rank, the first column outermost
    for codes, labels in zip(code_columns, label_columns, strict=True):
        key = key * len(labels) + codes
    present, codes = np.unique(key, return_inverse=True)
    digits = []
    for labels in reversed(label_columns):
        digits.append(present % len(labels))
        present = present // len(labels)
    digits.reverse()
    names = [":".join(label_columns[c][digits[c][j]] for c in range(len(columns))) for j in range(len(digits[0]))]
    return np.array(names), codes.reshape(-1).astype(np.int64)


def _level_text(value) -> str:
    """A level as R's factor() labels it: 3 not 3.0."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _term_matrix(expression: str, frame: pd.DataFrame, where: str) -> tuple[list[str], np.ndarray]:
    """A random term's model matrix and R's column labels; ``1`` without formulaic (a column of
    ones)."""
    # formulaic's overhead for an intercept term on verbagg's 7584 rows was 30 ms
    if expression.replace(" ", "") == "1":
        return ["(Intercept)"], np.ones((len(frame), 1))
    rhs = to_formulaic(expression)
    try:
        matrix = model_matrix(rhs, frame, context=CONTEXT, na_action="raise")
        columns = r_columns(matrix.model_spec, rhs)
    except Exception as error:
        raise GlmflowError(f"{where}: {error}") from error
    order = [index for index, _ in columns]
    return [r_label(parts) for _, parts in columns], np.asarray(matrix, dtype=float)[:, order]


def build_glmm_design(formula: str, data: pd.DataFrame, where: str, weights: str | None = None,
                      offset: str | None = None) -> GlmmDesign:  # fmt: skip
    """The model frame (rows with a missing value in any variable dropped, as na.omit), the
    fixed-effect design and each random-effect term's model matrix and grouping factor."""
    written = check_random_terms(formula, where)
    if not written:
        raise GlmflowError(f"{where}: formula {formula!r} has no random-effect term such as (1 | group)")
    split_formula(formula, where)
    if weights is not None and weights not in data.columns:
        raise GlmflowError(f"{where}: weights column {weights!r} is not in the data")
    if weights is not None:
        data = data[data[weights].notna()]
    design, dropped, messages = drop_aliased_columns(build_design(formula, data, where, offset), where)
    frame = design.frame  # unused levels dropped, as lme4's model frame
    terms = []
    for expression, columns in expand_terms(written):
        names, matrix = _term_matrix(expression, frame, f"{where}: random term ({expression} | {':'.join(columns)})")
        labels, codes = _grouping_factor(frame, columns)
        if len(labels) < 2:
            raise GlmflowError(
                f"{where}: grouping factor {':'.join(columns)!r} has {len(labels)} level; lme4 needs more than one"
            )
        terms.append(
            ReTerm(
                name=":".join(columns),
                factor=":".join(columns),
                columns=names,
                levels=labels,
                codes=codes,
                matrix=matrix,
            )
        )
    terms = sorted(terms, key=lambda term: -term.n_levels)  # stable, as lme4's reorder.terms
    seen: dict[str, int] = {}
    for term in terms:  # VarCorr's names: a, a.1, a.2 for the terms of (x || a)
        count = seen.get(term.factor, 0)
        term.name = term.factor if count == 0 else f"{term.factor}.{count}"
        seen[term.factor] = count + 1
    if design.trials is not None:  # cbind(successes, failures): proportions of the trials
        trials = design.trials
        if np.any(trials <= 0):
            raise GlmflowError(f"{where}: {design.response}: every row needs at least one trial")
        design.y = design.y / trials
        prior = trials.astype(float)
    elif weights is not None:
        prior = frame[weights].to_numpy(dtype=float)
    else:
        prior = np.ones(len(design.y))
    offset_values = np.zeros(len(design.y)) if design.offset is None else design.offset
    return GlmmDesign(design=design, terms=terms, prior=prior, offset=offset_values, dropped=dropped, messages=messages)


def drop_aliased_columns(design: Design, where: str) -> tuple[Design, list[str], list[str]]:
    """lme4's ``chkRank.drop.cols`` (glmer's default ``check.rankX = "message+drop.cols"``):
    where the fixed-effect matrix is rank deficient, keep the columns R's ``qr(X, tol = 1e-7)``
    keeps (the earliest independent ones) and say so with lme4's message. Fitting all of them
    leaves a flat direction the optimiser wanders along (estimates of 1e14, or NaN)."""
    rank, pivot = r_qr_rank(design.X, RANK_TOL)
    p = design.X.shape[1]
    if rank == p:
        return design, [], []
    keep = pivot[:rank]  # in their order: dqrdc2 moves only the dropped columns
    dropped = [design.terms[j] for j in sorted(pivot[rank:])]
    X = design.X[:, keep]
    if r_qr_rank(X, RANK_TOL)[0] < rank:  # lme4 checks the kept columns again (rankMatrix)
        raise GlmflowError(f"{where}: the fixed effects will be jointly unidentifiable; simplify the formula")
    count = p - rank
    noun = "column / coefficient" if count == 1 else "columns / coefficients"
    message = f"fixed-effect model matrix is rank deficient so dropping {count} {noun}"
    return replace(design, X=X, terms=[design.terms[j] for j in keep]), dropped, [message]
