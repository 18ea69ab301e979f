"""The rank of a model matrix and the columns R keeps, as R's ``qr(X, tol)`` finds them.

R's default ``qr`` is LINPACK's Householder QR with R's limited column pivoting (``dqrdc2``):
columns are taken left to right, and one whose norm, reduced by the reflections of the columns
kept before it, has fallen below ``tol`` times its original norm is moved to the right-hand
edge. So the columns kept are the earliest independent ones, in their order, which is what
lme4's ``chkRank.drop.cols`` keeps (``qr(X, tol = 1e-7)$pivot[seq_len(rank)]``). LAPACK's
pivoted QR (numpy, scipy) picks columns by norm instead, and keeps other columns.
"""

from __future__ import annotations

import numpy as np

# A column kept with a margin: its residual's norm (on the columns before it) relative to its own
# norm at least this many times the tolerance, so LAPACK's and dqrdc2's rounding cannot disagree
CLEAR_MARGIN = 1e3


def r_qr_rank(X: np.ndarray, tol: float = 1e-7) -> tuple[int, np.ndarray]:
    """R's ``qr(X, tol)``: its rank and its pivot (0-based), the kept columns first."""
    n, p = X.shape
    if n >= p and _clearly_full_rank(X, tol):
        return p, np.arange(p)
    return _dqrdc2(np.array(X, dtype=float, order="F"), tol)


def _clearly_full_rank(X: np.ndarray, tol: float) -> bool:
    """Every column's residual on the columns before it is far above ``tol`` times its norm: the
    common case, found by LAPACK's blocked QR (unpivoted, so R's diagonal holds those residuals)
    faster than the column-by-column port, which then runs only where some column is near it."""
    norms = np.linalg.norm(X, axis=0)
    if np.any(norms == 0.0):
        return False
    residuals = np.abs(np.diag(np.linalg.qr(X, mode="r")))
    return bool(np.all(residuals >= CLEAR_MARGIN * tol * norms))


def _dqrdc2(x: np.ndarray, tol: float) -> tuple[int, np.ndarray]:
    """dqrdc2's Householder reduction with its limited pivoting; ``x`` is reduced in place."""
    n, p = x.shape
    pivot = np.arange(p)
    norms = np.linalg.norm(x, axis=0)  # each column's norm, updated as columns are reduced
    original = np.where(norms == 0.0, 1.0, norms)  # the reference for "negligible"
    last = p  # columns at or after it have been moved to the end
    for col in range(min(n, p)):
        # cycle negligible columns to the end until column ``col`` is not negligible
        while col < last and norms[col] < original[col] * tol:
            order = list(range(col + 1, p)) + [col]
            x[:, col:] = x[:, order]
            pivot[col:], norms[col:], original[col:] = pivot[order], norms[order], original[order]
            last -= 1
        if col == n - 1:
            continue
        _reflect(x, norms, col)
    return min(last, n), pivot


def _reflect(x: np.ndarray, norms: np.ndarray, col: int) -> None:
    """Apply column ``col``'s Householder reflection to the columns after it and update their
    norms (recomputed where the update would lose accuracy, as dqrdc2 does)."""
    head = x[col:, col]
    length = np.linalg.norm(head)
    if length == 0.0:
        return
    if head[0] != 0.0:
        length = np.copysign(length, head[0])
    head /= length
    head[0] += 1.0
    rest = x[col:, col + 1 :]
    rest -= np.outer(head, (head @ rest) / head[0])
    for j in range(col + 1, x.shape[1]):
        if norms[j] == 0.0:
            continue
        shrink = max(1.0 - (abs(x[col, j]) / norms[j]) ** 2, 0.0)
        norms[j] = norms[j] * np.sqrt(shrink) if shrink >= 1e-6 else np.linalg.norm(x[col + 1 :, j])
