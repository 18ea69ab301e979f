"""Separation in binomial models, found by linear programming as R's ``detectseparation``.

The maximum likelihood estimates of a logistic (or other binomial) regression exist exactly
when no direction ``b`` with ``(2y - 1) * (X b) >= 0`` for every row, and ``> 0`` for some,
exists (Albert & Anderson 1984; the LP of Konis 2007 that ``detectseparation`` solves). R's
``glm`` only says "fitted probabilities numerically 0 or 1 occurred" when the iterations
happen to get there, and says nothing for quasi-complete separation that stops short of it.

The LP maximises ``sum((2y - 1) * X b)`` over that cone with ``b`` in ``[-1, 1]^p``: an
optimum of 0 means the estimates exist. Otherwise every coefficient that some separating
direction moves (a positive max or a negative min of ``b_j`` over the cone) is infinite,
with the sign of the sum of those directions. Before any LP, a logistic fit that converges
proves that no direction separates (``_overlap_proven``, Stiemke's lemma): the LPs run only
where that proof fails, as on separated data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

TOLERANCE = 1e-7  # of the LP's optimum, relative to the design's scale


@dataclass(frozen=True)
class Separation:
    separated: bool
    infinite: dict[str, int]  # term -> +1 or -1

    def message(self) -> str:
        terms = ", ".join(f"{term} ({'+' if sign > 0 else '-'}Inf)" for term, sign in self.infinite.items())
        return (
            f"separation: the maximum likelihood estimates of {terms} do not exist (a combination of the "
            "predictors separates the 0s from the 1s; linear-programming check as R's detectseparation). "
            "The estimates and SEs shown for them are where the iterations stopped."
        )


# rows of the first LP: all of them (distinct) up to this many, else a stride sample of this size
SAMPLE_ROWS = 20_000


def detect_separation(X: np.ndarray, y: np.ndarray, terms: list[str], weights: np.ndarray | None = None) -> Separation:
    """Separation of 0/1 (or proportion) responses ``y`` by the columns of ``X``.

    With proportions, a row with 0 < y < 1 holds both a success and a failure."""
    weights = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    keep = weights > 0
    X, y = X[keep], y[keep]
    rows = [X[y > 0], -X[y < 1]]  # successes need X b >= 0, failures X b <= 0
    signed = np.vstack(rows)
    if _overlap_proven(X, y, weights[keep], signed):
        return Separation(False, {})
    scale = max(float(np.abs(signed).max(initial=0.0)), 1.0)
    p = X.shape[1]
    bounds = [(-1.0, 1.0)] * p

    def extreme(objective: np.ndarray, constraints: np.ndarray = signed) -> tuple[float, np.ndarray]:
        # maximise objective . b  subject to  constraints b >= 0
        result = linprog(-objective, A_ub=-constraints, b_ub=np.zeros(len(constraints)), bounds=bounds, method="highs")
        return -result.fun, result.x

    sampled = len(signed) > SAMPLE_ROWS
    distinct, weight = _first_rows(signed)
    best, _ = extreme(weight @ distinct, distinct)
    if best <= TOLERANCE * scale * weight.sum():
        if not sampled:
            return Separation(False, {})
        # the sample's cone is {0} where its rows span the columns; the whole's lies within it
        if np.linalg.matrix_rank(distinct) == p:
            return Separation(False, {})
    if sampled:
        best, _ = extreme(signed.sum(axis=0))
        if best <= TOLERANCE * scale * len(signed):
            return Separation(False, {})
    direction = np.zeros(p)
    moved = np.zeros(p, dtype=bool)
    for j in range(p):
        for sign in (1.0, -1.0):
            value, b = extreme(sign * np.eye(p)[j])
            if value > TOLERANCE:
                direction += b
                moved[j] = True
    infinite = {terms[j]: int(np.sign(direction[j]) or 1) for j in range(p) if moved[j]}
    return Separation(True, infinite)


# Newton's iterations of the logistic fit behind _overlap_proven: from 0 it converges in 5-8 on
# data that do not separate (a step below STEP_TOLERANCE), and never on data that do
NEWTON_ITERATIONS = 30
STEP_TOLERANCE = 1e-10


def _overlap_proven(X: np.ndarray, y: np.ndarray, weights: np.ndarray, signed: np.ndarray) -> bool:
    """No separation, proven without the LP (Stiemke's lemma): no direction b has
    ``signed @ b >= 0`` with some entry positive exactly when some lambda > 0 (an entry per
    signed row) has ``signed' lambda = 0``. The logistic fit's score is such a sum, with
    lambda = w y (1 - mu) for a row's success and w (1 - y) mu for its failure, so where
    Newton's iterations converge, lambda corrected to an exact zero sum (the least-squares
    correction, ``signed' delta = -score``) that stays above half its smallest entry is the
    proof. On separated data the iterations run off to infinite estimates (some mu to 0 or 1)
    and the LP decides."""
    # verbagg (7,584 x 6): 1.8 ms, where the LPs and their distinct rows took 6.5 ms
    beta = np.zeros(X.shape[1])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(NEWTON_ITERATIONS):
            mu = 1.0 / (1.0 + np.exp(-(X @ beta)))
            information = X.T @ ((weights * mu * (1.0 - mu))[:, None] * X)
            try:
                step = np.linalg.solve(information, X.T @ (weights * (y - mu)))
            except np.linalg.LinAlgError:
                return False
            beta = beta + step
            if not np.all(np.isfinite(beta)):
                return False
            if np.max(np.abs(step), initial=0.0) < STEP_TOLERANCE * (1.0 + np.max(np.abs(beta), initial=0.0)):
                break
        else:
            return False
        mu = 1.0 / (1.0 + np.exp(-(X @ beta)))
        lam = np.concatenate([(weights * y * (1.0 - mu))[y > 0], (weights * (1.0 - y) * mu)[y < 1]])
        try:
            correction = -signed @ np.linalg.solve(signed.T @ signed, signed.T @ lam)
        except np.linalg.LinAlgError:
            return False
    smallest = np.min(lam, initial=np.inf)
    return bool(np.isfinite(smallest) and smallest > 0 and np.min(lam + correction) > smallest / 2)


def _first_rows(signed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first LP's rows and their weights in its objective: up to SAMPLE_ROWS rows, the
    distinct ones, each weighted by its count (the same cone and objective: a factor design
    has few distinct rows); beyond, a stride sample of SAMPLE_ROWS rows, distinct. In the
    data's order, the first occurrence's."""
    # verbagg's 7,584 signed rows have 503 distinct (270 rows of X): the LP took 36 ms on all of
    # them, 16 on these; the scale bench's 10^6 rows took 8.1 s. HiGHS's presolve on those 10^6
    # rows ran for over 9 minutes in np.unique's sorted order, hence the data's order.
    sample = signed[:: -(-len(signed) // SAMPLE_ROWS)]
    # a row's key from its columns' codes, renumbered after each column (so below len(sample)):
    # 1-D sorts, where np.unique(axis=0) sorted the rows as bytes (verbagg: 12 ms -> 4 ms)
    key = np.zeros(len(sample), dtype=np.int64)
    for column in sample.T:
        values, codes = np.unique(column, return_inverse=True)
        _, key = np.unique(key * len(values) + codes, return_inverse=True)
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    order = np.argsort(first)
    return sample[first[order]], counts[order].astype(float)
