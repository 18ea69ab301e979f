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


def r_qr_rank(X: np.ndarray, tol: float = 1e-7) -> tuple[int, np.ndarray]:
    """R's ``qr(X, tol)``: its rank and its pivot (0-based), the kept columns first."""
    x = np.array(X, dtype=float, order="F")  # reduced in place
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
    for j in range(col + 1, x.shape[1]):
        x[col:, j] -= (head @ x[col:, j]) / head[0] * head
        if norms[j] == 0.0:
            continue
        shrink = max(1.0 - (abs(x[col, j]) / norms[j]) ** 2, 0.0)
        norms[j] = norms[j] * np.sqrt(shrink) if shrink >= 1e-6 else np.linalg.norm(x[col + 1 :, j])
