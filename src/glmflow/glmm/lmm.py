"""Linear mixed models as ``lme4::lmer`` fits them (gaussian, identity link), with lmerTest's
Satterthwaite degrees of freedom.

For a given theta, lme4's penalised least squares (its ``pls.R`` / ``mkLmerDevfun``) solves
for (u, beta) together,

    [H  B; B' X'WX] [u; beta] = [c; X'W(y - offset)],  H = Lambda'Z'WZ Lambda + I,
    B = Lambda'Z'WX,  c = Lambda'Z'W(y - offset),

with H in the general engine's block factor (``glmflow.glmm.pirls``) and beta from the Schur
complement RX'RX = X'WX - B'H^-1 B. sigma is profiled out, leaving (lme4's ``lmerResp::Laplace``)

    ML:   log|H| - log|W| + n (1 + log(2 pi pwrss / n)),
    REML: log|H| - log|W| + log|RX'RX| + (n - p)(1 + log(2 pi pwrss / (n - p))),

pwrss = sum w (y - offset - X beta - Z Lambda u)^2 + |u|^2. Only ``LmmCriterion._factor_h``
(the factor, its solves and log-determinant) and ``LmmCriterion.conditional_blocks`` (H^-1's
blocks for the conditional variances) touch the factorisation's kernels, so a new
factorisation changes those two alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from glmflow.compiled_links import FAMILY_GAUSSIAN, LINK_IDENTITY
from glmflow.errors import GlmflowError
from glmflow.families import family as glm_family
from glmflow.glmm import pirls
from glmflow.glmm.design import GlmmDesign
from glmflow.glmm.deviance import LaplaceDeviance
from glmflow.glmm.optimize import canonical_theta
from glmflow.glmm.result import GlmmFit
from glmflow.models import wald_table

# Newton's stopping rule on the analytic gradient of the criterion in theta (L-BFGS-B on
# the same gradient gets there in 10-30 iterations; Newton finishes what its line search leaves).
GRADIENT_TOL = 1e-7
# The Hessians (the convergence check's, and lmerTest's in (theta, sigma)) are central
# differences of the analytic gradient, with steps of DIFFERENCE_STEP max(|theta|, 0.1): a
# Richardson table of function values (numDeriv, as lmerTest) needs 4 (2m^2 + 1) criterion
# evaluations where this needs 2m gradients, and agrees to 1e-7 relative on lmm.R's fits.
DIFFERENCE_STEP = 1e-4
# L-BFGS-B hands over to Newton where a step gains under SEARCH_FTOL of the criterion (its
# relative reduction test): on InstEval the gradient is then 0.01-0.2 and one Newton step takes
# it to 5e-5 (theta within 1e-9), where L-BFGS-B's own 6 further steps reached the same point.
# ROUNDING_FTOL lets L-BFGS-B go on to the criterion's rounding where Newton did not finish.
SEARCH_FTOL, ROUNDING_FTOL = 1e-11, 1e-15
INWARD = 10.0 ** np.arange(-6, 1)  # where a search may restart a theta stopped at 0
# below this diagonal entry of a term's factor its traces are summed over the rows
BLOCK_TRACE_MIN = 1e-3
# numDeriv's defaults, as lmerTest calls numDeriv::hessian: a first step of 0.1 |x| (1e-4 where
# |x| is below zero.tol), four Richardson halvings
HESSIAN_STEP, ZERO_STEP, RICHARDSON_LEVELS = 0.1, 1e-4, 4
ZERO_TOL = math.sqrt(np.finfo(float).eps / 7e-7)


@dataclass
class ThetaDerivatives:
    """At one theta, (u, beta) at their optimum: each piece of the criterion differentiated in
    theta (the envelope theorem: u and beta's own changes do not count in pwrss)."""

    logdet: np.ndarray  # d/d theta_m of log|H| (ML) or log|H| + log|RX'RX| (REML)
    pwrss: np.ndarray  # d pwrss / d theta_m
    rx: np.ndarray  # d RX'RX / d theta_m, m x p x p


@dataclass
class Pls:
    """The penalised least squares solution at one theta."""

    theta: np.ndarray
    criterion: float  # the REML criterion or -2 logLik (ML), sigma profiled out
    beta: np.ndarray
    u: np.ndarray  # spherical random effects
    pwrss: float
    rx: np.ndarray  # RX'RX, the Schur complement (X'V^-1X sigma^2)
    eta: np.ndarray  # X beta + offset + Z Lambda u
    h_b: np.ndarray = field(repr=False, default=None)  # H^-1 Lambda'Z'WX (q x p)
    rows: tuple = field(repr=False, default=())  # Z Lambda's (values, index)
    state: tuple = field(repr=False, default=())  # the factor, for the conditional variances
    derivatives: ThetaDerivatives | None = field(repr=False, default=None)  # once computed


class LmmCriterion:
    """``theta -> `` lme4's profiled deviance (ML) or REML criterion, and what it solved."""

    def __init__(self, gd: GlmmDesign, reml: bool):
        # the general engine's layout of Z's rows (terms, columns, Lambda's template)
        self.layout = LaplaceDeviance(gd, glm_family("gaussian"))
        self.gd, self.reml = gd, reml
        self.positions = gd.theta_positions()  # each theta's (term, row, column)
        self.y, self.X, self.offset = self.layout.y, self.layout.X, self.layout.offset
        self.w = self.layout.prior
        self.n, self.p = self.X.shape
        self.log_w = float(np.sum(np.log(self.w)))
        self.XtWX = self.X.T @ (self.w[:, None] * self.X)
        self.XtWy = self.X.T @ (self.w * (self.y - self.offset))
        # Z'WX in u's layout (Lambda = I, lme4's start): Lambda'Z'WX at any theta is a k x k
        # product per level, not a pass over the rows
        values, index = self.layout._rows(gd.theta_start())
        self.ZtWX = np.zeros((self.layout.q, self.p))
        for a in range(values.shape[1]):
            for j in range(self.p):
                self.ZtWX[:, j] += np.bincount(index[:, a], values[:, a] * self.w * self.X[:, j], self.layout.q)
        self._last: tuple | None = None

    def __call__(self, theta: np.ndarray) -> float:
        return self.solve(theta).criterion

    def _factor_h(self, theta: np.ndarray):
        """H = Lambda'Z'WZ Lambda + I factored at theta: (solve, log|H|, c, B, Z Lambda's rows).
        The one place that calls the factorisation's kernels."""
        layout = self.layout
        values, index = layout._rows(np.asarray(theta, dtype=float))
        levels0, k0, q_rest, q = layout.levels0, layout.k0, layout.q_rest, layout.q
        D, A21, A22 = np.empty((levels0, k0, k0)), np.empty((len(layout.rows), k0)), np.empty((q_rest, q_rest))
        c, eta = np.empty(q), np.empty(self.n)
        # gaussian identity at u = 0: the weights are the prior weights, rhs = Lambda'Z'W(y - offset)
        pirls._assemble(FAMILY_GAUSSIAN, LINK_IDENTITY, self.y, self.w, np.zeros(self.n), self.offset,
                        values, index, layout.pos, k0, levels0 * k0, np.zeros(q), D, A21, A22, c, eta)  # fmt: skip
        logdet, L22 = pirls._factor(D, A21, A22, k0, layout.ptr, layout.rows)
        B = np.empty((q, self.p))
        for term, T, start in zip(self.gd.terms, self.gd.factors(theta), layout.uoff, strict=False):
            size = term.k * term.n_levels
            block = self.ZtWX[start : start + size].reshape(term.n_levels, term.k, self.p)
            B[start : start + size] = np.einsum("mc,lmj->lcj", T, block).reshape(size, self.p)
        factor = (D, A21, L22, k0, layout.ptr, layout.rows)

        def solve(rhs: np.ndarray) -> np.ndarray:
            return pirls.solve_factored(*factor, np.ascontiguousarray(rhs))

        return solve, float(logdet), c, B, values, index, factor

    def solve(self, theta: np.ndarray) -> Pls:
        theta = np.asarray(theta, dtype=float)
        if self._last is not None and np.array_equal(self._last[0], theta):
            return self._last[1]  # L-BFGS-B's last point, solved again by the Newton steps
        pls = self._solve(theta)
        self._last = (theta.copy(), pls)
        return pls

    def _solve(self, theta: np.ndarray) -> Pls:
        solve, logdet, c, B, values, index, state = self._factor_h(theta)
        h_c = solve(c)
        h_b = np.column_stack([solve(B[:, j]) for j in range(self.p)]) if self.p else np.zeros((len(c), 0))
        rx = self.XtWX - B.T @ h_b
        rx = (rx + rx.T) / 2
        try:
            chol = np.linalg.cholesky(rx)
        except np.linalg.LinAlgError:
            offset = self.offset.copy()
            return Pls(theta, np.inf, np.zeros(self.p), h_c, np.inf, rx, offset, h_b, (values, index), state)
        beta = np.linalg.solve(rx, self.XtWy - B.T @ h_c)
        u = h_c - h_b @ beta
        eta = self.X @ beta + self.offset + np.einsum("ia,ia->i", values, u[index])
        pwrss = float(np.sum(self.w * (self.y - eta) ** 2) + u @ u)
        dof = self.n - self.p if self.reml else self.n
        criterion = logdet - self.log_w + dof * (1.0 + math.log(2.0 * math.pi * pwrss / dof))
        if self.reml:
            criterion += 2.0 * float(np.sum(np.log(np.diag(chol))))
        return Pls(theta, criterion, beta, u, pwrss, rx, eta, h_b, (values, index), state)

    def sigma(self, pls: Pls) -> float:
        return math.sqrt(pls.pwrss / (self.n - self.p if self.reml else self.n))

    def conditional_blocks(self, pls: Pls) -> list[np.ndarray]:
        """Per term, the levels' k x k blocks of H^-1 (lme4's condVar is sigma^2 Lambda H^-1 Lambda')."""
        P0, _, P11 = pirls.inverse_pieces(*pls.state)
        blocks, position = [P0], 0
        for term in self.gd.terms[1:]:
            size = term.k * term.n_levels
            rest = P11[position : position + size, position : position + size]
            blocks.append(np.einsum("jajb->jab", rest.reshape(term.n_levels, term.k, term.n_levels, term.k)))
            position += size
        return blocks

    def derivatives(self, pls: Pls) -> ThetaDerivatives:
        """The criterion's pieces differentiated in theta at ``pls``'s theta. With Z_m = Z
        dLambda/dtheta_m (one entry per row), C = H^-1 Lambda'Z'WX, G = Z Lambda C, E = X - G:
        d log|H| = 2 sum_i w_i (Z_m)_i H^-1 (Z Lambda)_i', d pwrss = -2 r'W Z_m u,
        d RX'RX = -(Q_m + Q_m') with Q_m = E'W Z_m C, and d log|RX'RX| = tr(RX'RX^-1 d RX'RX)."""
        if pls.derivatives is None:
            pls.derivatives = self._derivatives(pls)
        return pls.derivatives

    def _derivatives(self, pls: Pls) -> ThetaDerivatives:
        layout, (values, index) = self.layout, pls.rows
        factors = self.gd.factors(pls.theta)
        by_rows = self._by_rows(factors)
        # the rows' sums read P11 anywhere; the block traces its lower triangle only
        inverse = pirls.inverse_pieces(*pls.state, mirror=bool(by_rows.any()))
        traces = self._block_traces(factors, inverse, by_rows)
        logdet, pwrss, R = pirls.linear_theta_sums(
            self.w, self.y - pls.eta, pls.u, values, index, layout.Zv, self.X, pls.h_b, *inverse, layout.pos,
            layout.k0, layout.theta_map, by_rows,
        )  # fmt: skip
        logdet[~by_rows] = traces[~by_rows]
        Q = np.matmul(R.transpose(0, 2, 1), pls.h_b)
        rx = -(Q + Q.transpose(0, 2, 1))
        if self.reml and self.p:
            logdet += np.einsum("jk,mkj->m", np.linalg.inv(pls.rx), rx)
        return ThetaDerivatives(logdet, pwrss, rx)

    def _by_rows(self, factors: list[np.ndarray]) -> np.ndarray:
        """The thetas whose traces ``_block_traces`` leaves to the rows: those of a term whose
        factor's diagonal has an entry below BLOCK_TRACE_MIN."""
        small = [np.min(np.abs(np.diag(T))) < BLOCK_TRACE_MIN for T in factors]
        return np.array([small[owner] for owner, _, _ in self.positions], dtype=bool)

    def _block_traces(self, factors: list[np.ndarray], inverse, by_rows: np.ndarray) -> np.ndarray:
        """tr(H^-1 dH_m) from H^-1's within-level blocks, for the thetas of a term whose factor
        T is invertible: Lambda'Z'WZ = (H - I) Lambda^-1 on that term's columns, so
        tr(H^-1 dH_m) = 2 tr((I - H^-1) Lambda^-1 dLambda_m) = 2 (levels T^-1[b, a] - (S T^-1)[b, a])
        for theta_m = T[a, b], S the sum over the term's levels of H^-1's k x k blocks: no pass
        over the rows and no scattered reads of H^-1. Where T's diagonal is below
        BLOCK_TRACE_MIN, (I - H^-1) is too near 0 to divide by T: those thetas (``by_rows``)
        are summed over the rows (their traces are left 0). P11 is read in its lower triangle."""
        # the rows' scattered reads of H^-1 were 70% of the rows' sums on InstEval
        P0, _, P11 = inverse
        traces = np.zeros(len(by_rows))
        positions, start = self.positions, 0  # start: the term's first column in P11
        for t, (term, T) in enumerate(zip(self.gd.terms, factors, strict=True)):
            if t == 0:
                blocks = P0
            else:
                columns = start + np.arange(term.n_levels * term.k).reshape(term.n_levels, term.k)
                r, c = columns[:, :, None], columns[:, None, :]
                blocks = P11[np.maximum(r, c), np.minimum(r, c)]
                start += term.n_levels * term.k
            owned = [j for j, (owner, _, _) in enumerate(positions) if owner == t and not by_rows[j]]
            if not owned:
                continue
            inverse_t = np.linalg.inv(T)
            S = blocks.sum(axis=0)
            for j in owned:
                _, a, b = positions[j]
                traces[j] = 2.0 * (term.n_levels * inverse_t[b, a] - (S @ inverse_t)[b, a])
        return traces

    def dof(self) -> int:
        return self.n - self.p if self.reml else self.n

    def gradient(self, pls: Pls) -> np.ndarray:
        """The profiled criterion's analytic gradient in theta, at ``pls``'s theta."""
        d = self.derivatives(pls)
        return d.logdet + self.dof() / pls.pwrss * d.pwrss

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        pls = self.solve(theta)
        if not np.isfinite(pls.criterion):
            return np.inf, np.zeros(len(theta))
        return pls.criterion, self.gradient(pls)


@dataclass
class ThetaOptimum:
    theta: np.ndarray
    pls: Pls  # the solution there
    gradient: np.ndarray  # the criterion's, analytic
    hessian: np.ndarray  # the criterion's (``theta_hessians``)
    held: np.ndarray  # devfun_vp's theta block at the optimum's sigma (``theta_hessians``)
    converged: bool
    message: str


def minimise_theta(criterion: LmmCriterion, gd: GlmmDesign) -> ThetaOptimum:
    """lme4's optimum of the profiled criterion over theta (diagonal entries bounded below by 0):
    L-BFGS-B on the analytic gradient from lme4's start, stopped where a step gains SEARCH_FTOL
    of the criterion; then Newton's steps with the Hessians there (``_newton_finish``). Where
    those leave the gradient above 1e3 GRADIENT_TOL, L-BFGS-B goes on from their point to the
    criterion's rounding and Newton finishes again. Then thetas within 1e-7 of 0 are set to 0
    where that is no worse, as bobyqa reports a boundary, and the Hessians are taken again where
    theta moved further than their steps or a column's sign flipped."""
    lower = gd.theta_lower()
    result = _search(criterion, gd.theta_start(), lower, SEARCH_FTOL)
    newton = _newton_finish(criterion, np.maximum(result.x, lower), lower)
    if newton.largest >= 1e3 * GRADIENT_TOL:
        result = _search(criterion, newton.theta, lower, ROUNDING_FTOL)
        newton = _newton_finish(criterion, np.maximum(result.x, lower), lower)
    theta, pls, gradient = newton.theta, newton.pls, newton.gradient
    tiny = (lower == 0) & (theta < 1e-7) & (theta != 0)
    if tiny.any():
        snapped = np.where(tiny, 0.0, theta)
        snapped_pls = criterion.solve(snapped)
        if snapped_pls.criterion <= pls.criterion + 1e-10:
            theta, pls = snapped, snapped_pls
            gradient = criterion.gradient(pls)
    canonical = canonical_theta(gd, theta)
    if not np.array_equal(canonical, theta):  # a column's sign: the same model, u's signs flip
        theta, pls = canonical, criterion.solve(canonical)
        gradient = criterion.gradient(pls)
    hessian, held = newton.hessian, newton.held
    moved = np.abs(theta - newton.at_hessians) / np.maximum(np.abs(theta), 0.1)
    if np.max(moved) > DIFFERENCE_STEP:  # further than the Hessians' own steps: take them again
        hessian, held = theta_hessians(criterion, theta, criterion.sigma(pls))
    # converged: L-BFGS-B's own test, or Newton's gradient small where L-BFGS-B stopped on rounding
    converged = bool(result.success or newton.largest < 1e3 * GRADIENT_TOL)
    return ThetaOptimum(theta, pls, gradient, hessian, held, converged, str(result.message))


@dataclass
class _NewtonFinish:
    theta: np.ndarray
    pls: Pls
    gradient: np.ndarray
    largest: float  # the gradient's largest entry on the free thetas
    hessian: np.ndarray
    held: np.ndarray
    at_hessians: np.ndarray  # where the Hessians were taken


def _newton_finish(criterion: LmmCriterion, theta: np.ndarray, lower: np.ndarray) -> _NewtonFinish:
    """Newton's steps from ``theta`` on the free thetas (a theta at its bound moves only where
    the criterion falls inward: Karush-Kuhn-Tucker), with the Hessians taken there, while the
    gradient is above GRADIENT_TOL and the criterion falls. Where L-BFGS-B stopped, its steps
    are of the size of Newton's, far below the Hessians' own steps, so one set serves all."""
    pls = criterion.solve(theta)
    gradient = criterion.gradient(pls)
    hessian, held = theta_hessians(criterion, theta, criterion.sigma(pls))
    at_hessians, largest = theta.copy(), np.inf
    for _ in range(10):
        free = ~((lower == 0) & (theta < 1e-7)) | (gradient < 0)
        largest = np.max(np.abs(gradient[free]), initial=0.0)
        if largest < GRADIENT_TOL:
            break
        try:
            step = np.linalg.solve(hessian[np.ix_(free, free)], gradient[free])
        except np.linalg.LinAlgError:
            break
        candidate = theta.copy()
        candidate[free] -= step
        candidate = np.maximum(candidate, lower)
        candidate_pls = criterion.solve(candidate)
        if not candidate_pls.criterion < pls.criterion:
            break
        theta, pls = candidate, candidate_pls
        gradient = criterion.gradient(pls)
    return _NewtonFinish(theta, pls, gradient, float(largest), hessian, held, at_hessians)


def _search(criterion: LmmCriterion, start: np.ndarray, lower: np.ndarray, ftol: float):
    """L-BFGS-B on the analytic gradient; then, for each diagonal theta stopped at 0, again from
    INWARD there, the lower optimum kept. The criterion is even in a diagonal theta (the variance
    is its square), so its gradient at 0 is 0 whether 0 is the minimum or a maximum: L-BFGS-B
    stops there either way (sleepstudy's weighted fit: REML criterion 1772.50 at a slope's theta
    of 0, 1759.39 inside; Penicillin's (1 | plate) at 0, 0.17 above lmer; a (1 + conc | plant)
    at a boundary 19 above lmer's optimum, where no move of one theta alone goes down). The
    restarts are from 0.1 and from the lowest of INWARD's decades along that theta: a slope on
    CO2's conc (95 to 1000) has its optimum at 6.7e-4, and from 0.1 the search fell back to 0,
    0.62 above; the (1 + conc | plant) above is lowest along its axis at 0, and 0.1 finds it."""
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]

    def search(x0):
        watched = _StallWatch(criterion.value_and_gradient)
        try:
            return optimize.minimize(
                watched, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                options={"ftol": ftol, "gtol": GRADIENT_TOL, "maxiter": 2000},
            )  # fmt: skip
        except _Stalled:
            return optimize.OptimizeResult(x=watched.best_x, fun=watched.best, success=False, message=_Stalled.MESSAGE)

    result = search(start)
    for i in np.flatnonzero((lower == 0) & (result.x < 1e-7)):
        inward = np.maximum(result.x, lower)
        values = []
        for size in INWARD:
            inward[i] = size
            values.append(criterion(inward))
        # from 0.1 (lme4's scale) and from the lowest of the decades along the axis
        for size in sorted({0.1, float(INWARD[int(np.argmin(values))])}):
            inward[i] = size
            again = search(inward.copy())
            if again.fun < result.fun - 1e-10:
                result = again
    return result


class _Stalled(Exception):
    MESSAGE = "stopped at the criterion's rounding: trials within 1e-8 of the best point were no lower"


class _StallWatch:
    """The criterion for L-BFGS-B, stopping it (``_Stalled``) at the second trial within
    STALL_STEP (relative) of the best point so far that is no lower: the line search then probes
    the criterion's rounding, and Newton's steps (minimise_theta) finish from the best point."""

    # InstEval's ML fit spent 5-8 of its 29 evaluations so, each a factorisation and an inverse
    STALL_STEP = 1e-8

    def __init__(self, function):
        self.function, self.best, self.best_x, self.stalls = function, math.inf, None, 0

    def __call__(self, theta):
        value, gradient = self.function(theta)
        if value < self.best:
            self.best, self.best_x = value, np.array(theta, dtype=float)
        elif self.best_x is not None and np.all(
            np.abs(theta - self.best_x) <= self.STALL_STEP * np.maximum(np.abs(self.best_x), 1.0)
        ):  # (no best yet where every value so far was inf: a singular RX'RX)
            self.stalls += 1
            if self.stalls == 2:
                raise _Stalled
        return value, gradient


def theta_hessians(criterion: LmmCriterion, theta: np.ndarray, sigma: float | None = None):
    """The profiled criterion's Hessian in theta and, at a given sigma, the theta block of
    lmerTest's ``devfun_vp`` (sigma held, not profiled): central differences of the analytic
    gradients, steps DIFFERENCE_STEP max(|theta|, 0.1). Where a theta is within numDeriv's
    ZERO_TOL of 0 (a boundary fit), lmerTest's Hessian depends on numDeriv's steps (an absolute
    1e-4 there, large beside a slope's theta of 5e-5 on CO2's conc: df 12.43 from small steps,
    12.10 from lmerTest), so numDeriv's steps are taken: 0.1 |theta| (+ 1e-4 near 0), halved
    RICHARDSON_LEVELS times, with Richardson's extrapolation (the df then agree to 1e-6)."""
    if np.all(np.abs(theta) >= ZERO_TOL):
        return _gradient_differences(criterion, theta, sigma, DIFFERENCE_STEP * np.maximum(np.abs(theta), 0.1))
    base = HESSIAN_STEP * np.abs(theta) + np.where(np.abs(theta) < ZERO_TOL, ZERO_STEP, 0.0)
    table = [_gradient_differences(criterion, theta, sigma, base / 2**k) for k in range(RICHARDSON_LEVELS)]
    for level in range(1, RICHARDSON_LEVELS):
        factor = 4.0**level
        table = [tuple((factor * fine - coarse) / (factor - 1.0) for coarse, fine in zip(table[k], table[k + 1],
                 strict=True)) for k in range(len(table) - 1)]  # fmt: skip
    return table[0]


def _gradient_differences(criterion: LmmCriterion, theta: np.ndarray, sigma: float | None, steps: np.ndarray):
    """``theta_hessians`` at one set of steps (the criterion is even in each diagonal theta, so
    a step may cross 0)."""
    m = len(theta)
    profiled, held = np.empty((m, m)), np.empty((m, m))
    for j in range(m):
        sides = []
        for sign in (1.0, -1.0):
            point = theta.copy()
            point[j] += sign * steps[j]
            pls = criterion.solve(point)
            d = criterion.derivatives(pls)
            sides.append((d.logdet + criterion.dof() / pls.pwrss * d.pwrss,
                          d.logdet + d.pwrss / sigma**2 if sigma else d.logdet))  # fmt: skip
        profiled[:, j] = (sides[0][0] - sides[1][0]) / (2 * steps[j])
        held[:, j] = (sides[0][1] - sides[1][1]) / (2 * steps[j])
    return (profiled + profiled.T) / 2, (held + held.T) / 2


@dataclass
class LmmFit(GlmmFit):
    """A fitted linear mixed model: lmer's estimates, lmerTest's Satterthwaite tests."""

    reml: bool = True
    criterion: float = float("nan")  # the REML criterion (REML) or -2 logLik (ML)
    df_satterthwaite: np.ndarray | None = None
    vcov_varpar: np.ndarray | None = None
    ml_refit: dict | None = None  # logLik, AIC, BIC, deviance of the ML refit of a REML fit (anova)
    weights: str | None = None  # the configured weights, offset and filter, as summary() names them
    offset: str | None = None
    subset: str | None = None

    @property
    def n_params(self) -> int:
        return len(self.beta) + len(self.theta) + 1

    @property
    def loglik(self) -> float:
        """R's logLik(): the REML log-likelihood for a REML fit."""
        return -self.criterion / 2

    @property
    def aic(self) -> float:
        return self.criterion + 2 * self.n_params

    @property
    def bic(self) -> float:
        return self.criterion + math.log(self.nobs) * self.n_params

    def tidy(self) -> pd.DataFrame:
        """lmerTest's summary() table: t statistics with p-values on Satterthwaite's df; the
        intervals are lme4's ``confint(fit, method = "Wald")`` (normal quantiles)."""
        table = wald_table(self.terms, self.beta, self.vcov)
        if len(self.beta):
            table["p_value"] = wald_table(self.terms, self.beta, self.vcov, self.df_satterthwaite)["p_value"]
        table.insert(4, "df", self.df_satterthwaite if self.df_satterthwaite is not None else np.nan)
        return table

    def glance(self) -> dict:
        values = super().glance()
        for key in ("deviance", "nAGQ", "df_residual"):
            values.pop(key)
        values["REML"] = self.reml
        values["REMLcrit" if self.reml else "deviance"] = self.criterion
        values["df_residual"] = self.nobs - self.n_params
        if self.ml_refit is not None:
            values["ml_refit"] = self.ml_refit
        return values

    def scaled_residuals(self) -> np.ndarray:
        """residuals(fit, "pearson", scaled = TRUE): sqrt(w) (y - fitted) / sigma."""
        return np.sqrt(self.glmm_design.prior) * (self.design.y - self.fitted) / self.sigma


def fit_lmm(gd: GlmmDesign, reml: bool, satterthwaite_df: bool = True) -> LmmFit:
    """lmer's fit of a built design: theta at the criterion's optimum, then lme4's estimates,
    vcov = sigma^2 (RX'RX)^-1, conditional modes and variances, and lmerTest's df."""
    if gd.design.X.shape[1] >= gd.design.X.shape[0]:
        raise GlmflowError(f"{gd.design.X.shape[0]} rows for {gd.design.X.shape[1]} fixed effects: nothing to fit")
    criterion = LmmCriterion(gd, reml)
    optimum = minimise_theta(criterion, gd)
    theta, pls = optimum.theta, optimum.pls
    sigma = criterion.sigma(pls)
    condval, condvar, position = [], [], 0
    for term, T, blocks in zip(gd.terms, gd.factors(theta), criterion.conditional_blocks(pls), strict=True):
        size = term.k * term.n_levels
        condval.append(pls.u[position : position + size].reshape(term.n_levels, term.k) @ T.T)
        condvar.append(sigma**2 * np.einsum("ab,jbc,dc->jad", T, blocks, T))
        position += size
    vcov = sigma**2 * np.linalg.inv(pls.rx)
    fit = LmmFit(
        name="", formula="", dataset="", family_object=glm_family("gaussian"), nAGQ=1, glmm_design=gd,
        theta=theta, beta=pls.beta, deviance=pls.criterion, gradient=optimum.gradient, hessian=optimum.hessian,
        vcov=vcov, vcov_rx=vcov, condval=condval, condvar=condvar, eta=pls.eta, fitted=pls.eta,
        converged=optimum.converged, optimizer_message=optimum.message, sigma=sigma, reml=reml,
        criterion=pls.criterion,
    )  # fmt: skip
    if satterthwaite_df:
        fit.df_satterthwaite, fit.vcov_varpar = satterthwaite(criterion, pls, optimum.held, sigma)
    return fit


def satterthwaite(criterion: LmmCriterion, pls: Pls, held: np.ndarray, sigma: float):
    """lmerTest's Satterthwaite df for each coefficient (its ``contest1D`` with a unit contrast):
    A = 2 H^-1 with H the Hessian of ``devfun_vp`` in (theta, sigma), J_k the Jacobian of
    Var(beta) = sigma^2 RX'RX^-1 in (theta, sigma), df = 2 Var(beta_k)^2 / (g' A g),
    g = (J_1[k, k], ..., J_m[k, k]). ``held`` is H's theta block (``theta_hessians``); the
    rest is exact: devfun_vp = ... + pwrss / sigma^2 + (n - p [REML]) log(2 pi sigma^2)."""
    d = criterion.derivatives(pls)
    m, dof = len(held), criterion.dof()
    hessian = np.empty((m + 1, m + 1))
    hessian[:m, :m] = held
    hessian[:m, m] = hessian[m, :m] = -2.0 * d.pwrss / sigma**3
    hessian[m, m] = 6.0 * pls.pwrss / sigma**4 - 2.0 * dof / sigma**2
    try:
        vcov_varpar = 2.0 * np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.full(criterion.p, np.nan), None
    unscaled = np.linalg.inv(pls.rx)
    # d Var(beta) / d theta_m = -sigma^2 S^-1 dS_m S^-1; d / d sigma = 2 sigma S^-1 (diagonals only)
    jacobian = np.column_stack(
        [-(sigma**2) * np.einsum("kj,mji,ik->mk", unscaled, d.rx, unscaled).T, 2.0 * sigma * np.diag(unscaled)]
    )
    variance = sigma**2 * np.diag(unscaled)
    df = 2.0 * variance**2 / np.einsum("km,mn,kn->k", jacobian, vcov_varpar, jacobian)
    return df, vcov_varpar
