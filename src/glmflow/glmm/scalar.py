"""Stage 2 for one scalar random intercept ``(1 | group)`` with a canonical link (logit
binomial, log Poisson): the Laplace or adaptive Gauss-Hermite deviance (``nAGQ >= 1``) with
its analytic gradient, one compiled pass per call. ``glmflow.glmm.pirls`` is the general
Laplace deviance; this one is the only one lme4 allows nAGQ > 1 for, and on the chapter's
model it is about 10x faster than the general path (analytic gradient, no factorisation).

The model: ``eta = X beta + theta u[group]``, ``u ~ N(0, 1)`` (lme4's spherical random
effects; theta is the random intercept's SD). For given (theta, beta) each group's
conditional mode u_j is found by Newton's method to full precision (vectorised over
groups with ``bincount``); the deviance (-2 log-likelihood) is then

    -2 sum_j log( s_j sum_k w_k exp(x_k^2 / 2) phi(v_jk) p(y_j | v_jk) ),  v_jk = u_j + s_j x_k,

with s_j = (1 + theta^2 sum_i W_i)^(-1/2) at the mode and Gauss-Hermite nodes x_k and
weights w_k (one node at 0 for Laplace). Its gradient in (theta, beta) is analytic: the
derivatives of the modes and of s_j come from the implicit function theorem. The optimum
is found by BFGS and polished by Newton steps, so it is the exact optimum of the
approximation (lme4's default Laplace fit stops about 0.0055 deviance short of it).
Standard errors are lme4's default: V = 2 H^-1 over (theta, beta), H the Hessian of the
deviance at the optimum (here by central differences of the analytic gradient), restricted
to beta; the conditional ones (lme4's ``use.hessian = FALSE``) come from the
Schur complement of the penalised weighted cross-product at the modes.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from glmflow.elementary import exp_neg
from glmflow.errors import GlmflowError
from glmflow.families import Family

# Kernel families: 0/1 binomial (the vectorised path), binomial proportions with weights, Poisson.
_BINOMIAL, _BINOMIAL_WEIGHTED, _POISSON = 0, 1, 2


# fastmath without "reassoc": with it, LLVM vectorised the row sums and peeled the loops to
# the alignment of the kernel's scratch arrays, which differs between processes, so the
# gradient's last bits (and the optimum's: deviance 839.6472274853008 or ...3011 on the small
# config's model) changed from run to run in 1 of 2 workflow jobs. No reassociation, no such
# dependence. numpy's error model drops zero-division checks.
_KERNEL = {"cache": True, "fastmath": {"nnan", "ninf", "nsz", "contract"}, "error_model": "numpy"}


@numba.njit(inline="always", **_KERNEL)
def _row(family, y, eta, constant, prior):
    """Per row: the score prior (y - mu), the weight prior d mu / d eta, its slope in eta,
    and log p(y | eta)."""
    if family == _POISSON:
        mu = math.exp(eta)
        return y - mu, mu, mu, y * eta - mu + constant
    a = math.exp(-abs(eta))
    mu = 1.0 / (1.0 + a) if eta >= 0 else a / (1.0 + a)
    w = prior * mu * (1.0 - mu)
    return prior * (y - mu), w, w * (1.0 - 2.0 * mu), prior * (y * eta - max(eta, 0.0) - math.log1p(a)) + constant


@numba.njit(inline="always", **_KERNEL)
def _binomial_mean(eta):
    """expit(eta) and exp(-|eta|), with the polynomial exp so that row loops vectorise
    (beyond |eta| = 30 the clamp changes log p and mu by less than 1e-13)."""
    a = exp_neg(min(abs(eta), 30.0))
    inverse = 1.0 / (1.0 + a)
    return (inverse if eta >= 0 else a * inverse), a


@numba.njit(inline="always", **_KERNEL)
def _mode_sums(family, y, eta0, constant, prior, lo, hi, theta, uj):
    """The sums of the scores and of the weights over a group's rows at its intercept u_j."""
    sum_resid = 0.0
    sum_w = 0.0
    if family == _BINOMIAL:
        for i in range(lo, hi):
            mu, _ = _binomial_mean(eta0[i] + theta * uj)
            sum_resid += y[i] - mu
            sum_w += mu * (1.0 - mu)
    else:
        for i in range(lo, hi):
            resid, w, _, _ = _row(family, y[i], eta0[i] + theta * uj, constant[i], prior[i])
            sum_resid += resid
            sum_w += w
    return sum_resid, sum_w


@numba.njit(inline="always", **_KERNEL)
def _node_pass(family, y, eta0, constant, prior, lo, hi, theta, v, resid, k):
    """sum(log p(y | eta)) and the sum of the scores over a group's rows at node position v;
    the scores go to resid[:, k]. 0/1 binomial: log p = y eta - max(eta, 0) - log(1 + a),
    whose logs are taken once, of the product of the (1 + a)."""
    total = 0.0
    r_sum = 0.0
    if family == _BINOMIAL:
        product = 1.0
        for i in range(lo, hi):
            eta = eta0[i] + theta * v
            mu, a = _binomial_mean(eta)
            total += y[i] * eta - max(eta, 0.0)
            product *= 1.0 + a
            r = y[i] - mu
            resid[i - lo, k] = r
            r_sum += r
        total -= math.log(product)
    else:
        for i in range(lo, hi):
            r, _, _, logp = _row(family, y[i], eta0[i] + theta * v, constant[i], prior[i])
            total += logp
            resid[i - lo, k] = r
            r_sum += r
    return total, r_sum


@numba.njit(inline="always", **_KERNEL)
def _group_mode(family, y, eta0, constant, prior, lo, hi, theta, uj):
    """The group's mode from ``uj``: Newton on u - theta sum(y - mu) = 0, steps clipped to 2."""
    for _ in range(100):
        sum_resid, sum_w = _mode_sums(family, y, eta0, constant, prior, lo, hi, theta, uj)
        step = (uj - theta * sum_resid) / (1.0 + theta * theta * sum_w)
        step = min(max(step, -2.0), 2.0)
        uj -= step
        if abs(step) < 1e-12:
            break
    return uj


@numba.njit(inline="always", **_KERNEL)
def _group_sums(family, y, X, eta0, constant, prior, lo, hi, theta, uj, Xw, Xws):
    """At the group's mode: the sums of the weights (S), of their slopes and of the residuals,
    and X's columns weighted by each (into Xw, Xws)."""
    S = S_slope = sum_resid = 0.0
    for c in range(X.shape[1]):
        Xw[c] = 0.0
        Xws[c] = 0.0
    for i in range(lo, hi):
        resid_i, w, w_slope, _ = _row(family, y[i], eta0[i] + theta * uj, constant[i], prior[i])
        S += w
        S_slope += w_slope
        sum_resid += resid_i
        for c in range(X.shape[1]):
            Xw[c] += X[i, c] * w
            Xws[c] += X[i, c] * w_slope
    return S, S_slope, sum_resid


@numba.njit(inline="always", **_KERNEL)
def _group_nodes(family, y, eta0, constant, prior, lo, hi, theta, uj, s, nodes, node_constant, resid, v, R, A):
    """The group's quadrature: the nodes v = uj + s * nodes, each node's log-likelihood plus
    its constant and prior (A) and residual sum (R); returns log sum exp(A)."""
    peak = -np.inf
    for k in range(nodes.shape[0]):
        v[k] = uj + s * nodes[k]
        total, R[k] = _node_pass(family, y, eta0, constant, prior, lo, hi, theta, v[k], resid, k)
        total += node_constant[k] - v[k] * v[k] / 2.0
        A[k] = total
        peak = max(peak, total)
    acc = 0.0
    for k in range(nodes.shape[0]):
        acc += math.exp(A[k] - peak)
    return peak + math.log(acc)


@numba.njit(**_KERNEL)
def _deviance_and_gradient(y, X, eta0, constant, prior, starts, family, nodes, node_constant, theta, u, gradient):
    """The deviance at (theta, beta) (beta enters through eta0 = X beta) and its gradient,
    written to ``gradient`` as (d theta, d beta). ``u`` holds each group's mode: the starting
    point of its Newton iteration on entry, the mode on exit. See the module docstring."""
    n_groups = starts.shape[0] - 1
    p = X.shape[1]
    K = nodes.shape[0]
    max_rows = 0
    for j in range(n_groups):
        max_rows = max(max_rows, starts[j + 1] - starts[j])
    resid = np.empty((max_rows, K))
    A = np.empty(K)
    R = np.empty(K)
    v = np.empty(K)
    Xw = np.empty(p)
    Xws = np.empty(p)
    d_beta = np.zeros(p)
    d_theta = 0.0
    deviance = 0.0
    for j in range(n_groups):
        lo, hi = starts[j], starts[j + 1]
        uj = _group_mode(family, y, eta0, constant, prior, lo, hi, theta, u[j])
        u[j] = uj
        S, S_slope, sum_resid = _group_sums(family, y, X, eta0, constant, prior, lo, hi, theta, uj, Xw, Xws)
        h = 1.0 + theta * theta * S
        s = 1.0 / math.sqrt(h)
        lse = _group_nodes(family, y, eta0, constant, prior, lo, hi, theta, uj, s, nodes, node_constant, resid, v, R, A)
        deviance += -2.0 * (math.log(s) + lse)
        c_u = 0.0
        c_s = 1.0 / s
        for k in range(K):
            A[k] = math.exp(A[k] - lse)  # now the node's share of the group's likelihood
            slope = -v[k] + theta * R[k]
            c_u += A[k] * slope
            c_s += A[k] * slope * nodes[k]
        for i in range(lo, hi):
            weighted = 0.0
            for k in range(K):
                weighted += A[k] * resid[i - lo, k]
                d_theta += A[k] * resid[i - lo, k] * v[k]
            for c in range(p):
                d_beta[c] += X[i, c] * weighted
        # the mode's and s's derivatives (implicit function theorem; s = h^-1/2, h = 1 + theta^2 S)
        du_dtheta = -(-sum_resid + theta * uj * S) / h
        factor = -0.5 * h**-1.5
        d_theta += c_u * du_dtheta + c_s * factor * (
            2.0 * theta * S + theta * theta * S_slope * (uj + theta * du_dtheta)
        )
        for c in range(p):
            du_dbeta = -theta * Xw[c] / h
            dS_dbeta = Xws[c] + theta * S_slope * du_dbeta
            d_beta[c] += c_u * du_dbeta + c_s * factor * theta * theta * dS_dbeta
    gradient[0] = -2.0 * d_theta
    for c in range(p):
        gradient[c + 1] = -2.0 * d_beta[c]
    return deviance


class ScalarDeviance:
    """The Laplace or adaptive Gauss-Hermite deviance of a random-intercept GLMM, with its
    gradient, as a callable for scipy's optimisers. The work is one compiled pass per call
    (numba); rows are kept sorted by group so that each group is a contiguous slice."""

    def __init__(self, y, X, group, n_groups, family: Family, nAGQ: int, prior=None, offset=None):
        family.check_canonical()
        if nAGQ < 1:
            raise GlmflowError("nAGQ must be at least 1 (nAGQ = 0 is not an approximation of the likelihood)")
        order = np.argsort(group, kind="stable")
        self.y = np.ascontiguousarray(y[order], dtype=np.float64)
        self.X = np.ascontiguousarray(X[order], dtype=np.float64)
        self.offset = np.zeros(len(y)) if offset is None else np.asarray(offset, dtype=float)[order]
        self.group = group[order]
        counts = np.bincount(self.group, minlength=n_groups)
        if np.any(counts == 0):
            raise GlmflowError("every group needs at least one row")
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.n_groups = n_groups
        self.family = family
        prior = np.ones_like(y, dtype=float) if prior is None else np.asarray(prior, dtype=float)
        self.prior = np.ascontiguousarray(prior[order])
        unit = bool(np.all(self.prior == 1.0))
        if family.is_binomial:
            self.family_code = _BINOMIAL if unit else _BINOMIAL_WEIGHTED
        else:
            self.family_code = _POISSON
        self.constant = np.ascontiguousarray(family.canonical_log_constant(self.y, self.prior))
        self.nAGQ = nAGQ
        if nAGQ == 1:
            nodes, weights = np.array([0.0]), np.array([math.sqrt(2 * math.pi)])
        else:
            nodes, weights = hermegauss(nAGQ)  # for weight exp(-x^2 / 2), as lme4's GHrule
        self.nodes = nodes
        # log(w_k) + x_k^2 / 2 - log(sqrt(2 pi)): the constant part of each node's log term
        self.node_constant = np.log(weights) + nodes**2 / 2 - 0.5 * math.log(2 * math.pi)
        self.u = np.zeros(n_groups)

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """Deviance and its gradient in (theta, beta)."""
        gradient = np.empty(len(params))
        deviance = _deviance_and_gradient(
            self.y,
            self.X,
            self.X @ params[1:] + self.offset,
            self.constant,
            self.prior,
            self.starts,
            self.family_code,
            self.nodes,
            self.node_constant,
            float(params[0]),
            self.u,
            gradient,
        )
        return deviance, gradient

    def conditional(self, theta: float, beta: np.ndarray):
        """Modes and their conditional SDs (u scale), per group, at (theta, beta)."""
        self(np.concatenate([[theta], beta]))
        mu = self.family.linkinv(self.X @ beta + self.offset + theta * self.u[self.group])
        w, _ = self.family.canonical_weight_and_slope(mu)
        S = np.add.reduceat(self.prior * w, self.starts[:-1])
        return self.u.copy(), 1.0 / np.sqrt(1.0 + theta**2 * S)


def conditional_vcov(X, group, n_groups, theta, w) -> np.ndarray:
    """(X'WX - sum_j theta^2 s_j s_j' / (1 + theta^2 S_j))^-1: lme4's RX-based covariance."""
    Xw = X * w[:, None]
    per_group = np.stack([np.bincount(group, weights=Xw[:, c], minlength=n_groups) for c in range(X.shape[1])], 1)
    S = np.bincount(group, weights=w, minlength=n_groups)
    schur = X.T @ Xw - (theta**2 * per_group / (1.0 + theta**2 * S)[:, None]).T @ per_group
    return np.linalg.inv(schur)
