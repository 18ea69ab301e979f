"""Stage 2, lme4's ``mkGlmerDevfun``: the Laplace deviance as a function of (theta, beta).

Each call runs PIRLS (``glmflow.glmm.pirls``, compiled) for the conditional modes u from a
start predicted from the previous call's modes (``_predict_modes``), to a step below 1e-10 (the
last point's value, state and gradient are kept: a repeat costs nothing), then returns
-2 log p(y | u) + |u|^2 + log|H| with everything at that u. lme4 stops PIRLS at a relative change of
1e-7 in the penalised deviance and takes log|H| at the previous iteration's weights: its
default fits lie up to 0.006 of -2 logLik above the optimum (glmm_general_reference.json); the
tight tolerance also keeps the function smooth enough for the finite differences of the
optimiser and the Hessian.

Families with a dispersion (Gamma, inverse.gaussian, gaussian with a link other than the
identity) are fitted as lme4 fits them: PIRLS minimises the deviance + |u|^2 (the dispersion
taken as 1), and the objective is ``ldL2 + |u|^2 + family$aic(y, n, mu, wt, dev)``, whose
density uses the ad-hoc dispersion dev / sum(wt) (n for gaussian): lme4's ``glmResp::Laplace``.
The reported sigma is then sqrt(pwrss / n) and VarCorr scales theta by it, as lme4's.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from numpy.polynomial.hermite_e import hermegauss

from glmflow.errors import GlmflowError
from glmflow.families import MIXED_MODEL_FAMILIES, Family
from glmflow.glmm.design import GlmmDesign
from glmflow.glmm.pirls import (
    cross_pattern,
    effective_values,
    inverse_pieces,
    laplace,
    laplace_gradient,
    predicted_modes,
    row_index,
    solve_factored,
)
from glmflow.glmm_memory import memory_problem

PIRLS_TOLERANCE = 1e-10  # largest step in u at which PIRLS stops
PIRLS_MAX_ITERATIONS = 200
# With the analytic gradient, a full Newton step below 1e-6 ends PIRLS (the modes are then
# within about 1e-12); the finite differences of the non-canonical links need the 1e-10 check.
PIRLS_ACCEPT = 1e-6
# the largest change of a mode that _predict_modes takes (u is on the standard normal scale);
# beyond it the first-order step overshoots (verbagg's first BFGS step: 16 PIRLS steps against
# 11 from the last modes). PIRLS steps a fit (verbagg, contraception, bdf), measured with the
# last modes as the fallback: 128, 114, 47 from the last modes; with predictions up to 0.1: 89,
# 83, 28; 1: 79, 81, 28; 2: 77, 81, 28; any: 84, 83, 28. With the effects kept as the fallback
# (``_keep_effects``): 64, 71, 27
PREDICTION_LIMIT = 2.0
NO_MEMO = (None, None, None, None, None)


class LaplaceDeviance:
    """``params = (theta, beta) -> -2 logLik`` (Laplace) for any random-effect structure."""

    def __init__(self, glmm_design: GlmmDesign, family: Family):
        if family.code is None or not family.glmer:
            supported = ", ".join(MIXED_MODEL_FAMILIES)
            raise GlmflowError(f"mixed models support the families {supported}, not {family.name!r}")
        self.gd = glmm_design
        self.has_dispersion = family.dispersion_in_loglik  # gaussian, Gamma, inverse.gaussian
        design = glmm_design.design
        self.family_code, self.link_code = family.code, family.link.code
        # own writable C-order copies: a read-only array (a column pandas shares) is another
        # numba type, which would compile the kernels again for data read another way
        self.y = np.array(design.y, dtype=float, order="C")
        self.prior = np.array(glmm_design.prior, dtype=float, order="C")
        # what R's family$aic counts beyond mu: log choose(m, m y) for binomial, -w log(y!) for Poisson
        if self.has_dispersion:
            constant = np.zeros_like(self.y)  # the kernel sums deviance residuals; aic() is added here
        else:
            constant = family.canonical_log_constant(self.y, self.prior)
        self.constant = np.ascontiguousarray(constant if family.is_binomial else self.prior * constant)
        self.X = np.array(design.X, dtype=float, order="C")
        self.offset = np.array(glmm_design.offset, dtype=float, order="C")
        terms = glmm_design.terms
        self.k = np.array([t.k for t in terms], dtype=np.int64)
        self.col = np.concatenate([[0], np.cumsum(self.k)]).astype(np.int64)
        sizes = np.array([t.k * t.n_levels for t in terms], dtype=np.int64)
        self.uoff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.q = int(self.uoff[-1])
        self.Zv = np.ascontiguousarray(np.concatenate([t.matrix for t in terms], axis=1))
        self.codes = np.ascontiguousarray(np.stack([t.codes for t in terms], axis=1).astype(np.int64))
        self.kmax = int(self.k.max())
        self.levels0, self.k0 = terms[0].n_levels, terms[0].k
        self.q_rest = self.q - self.levels0 * self.k0
        self._check_memory(terms)
        self.index = row_index(self.codes, self.k, self.uoff)
        q0 = self.levels0 * self.k0
        self.ptr, self.rows, self.pos = cross_pattern(self.index, self.k0, q0, self.q_rest, self.levels0)
        self._values = (None, None)  # the last theta's key and Z Lambda's values (``_rows``)
        self.n_theta = glmm_design.n_theta
        self.diagonal = glmm_design.theta_lower() == 0.0  # the thetas on the factors' diagonals
        self.u = np.zeros(self.q)
        self._last = None  # the last evaluation's theta, rows, eta0, factor, eta and modes (_predict_modes)
        self._memo = NO_MEMO  # the last point's (key, deviance, state, modes, gradient)
        self.evaluations = 0
        # each theta's (first column of its term in Zv, row a, column b) of the term's factor
        positions = np.array(glmm_design.theta_positions(), dtype=np.int64)
        self.theta_term = positions[:, 0]
        self.theta_map = np.column_stack([self.col[self.theta_term], positions[:, 1:]])
        self.family = family
        # logit binomial, log Poisson: the analytic gradient (the others: differences)
        self.canonical = family.is_default_link and not self.has_dispersion

    def _check_memory(self, terms) -> None:
        """Refuse a design whose factorisation cannot fit in this machine's memory, with the estimate."""
        problem = memory_problem(len(self.y), {t.name: (t.n_levels, t.k) for t in terms})
        if problem:
            raise GlmflowError(problem)

    def _rows(self, theta):
        """Z Lambda's values at theta (those of the last theta again: a step in beta alone) and
        their index in u."""
        key = np.asarray(theta, dtype=float).tobytes()
        if self._values[0] != key:
            T = np.zeros((len(self.k), self.kmax, self.kmax))
            T[self.theta_term, self.theta_map[:, 1], self.theta_map[:, 2]] = theta
            self._values = (key, effective_values(self.Zv, T, self.k, self.col))
        return self._values[1], self.index

    def _eta0(self, beta):
        return self.X @ beta + self.offset

    def __call__(self, params: np.ndarray) -> float:
        return self._evaluate(params)[0]

    def _evaluate(self, params: np.ndarray, accept: float | None = None):
        params = np.asarray(params, dtype=float)
        key = params.tobytes() if accept is None else None
        if key is not None and self._memo[0] == key:  # the last point again: its modes, no PIRLS
            self.u[:] = self._memo[3]
            return self._memo[1], self._memo[2]
        theta, beta = params[: self.n_theta], params[self.n_theta :]
        values, index = self._rows(theta)
        eta0 = self._eta0(beta)
        self.evaluations += 1
        self._predict_modes(theta, values, index, eta0)
        accept = (PIRLS_ACCEPT if self.canonical else 0.0) if accept is None else accept
        deviance, converged, L0, L21, L22, eta = self._laplace(values, index, beta, PIRLS_MAX_ITERATIONS, accept, eta0)
        if converged and self.has_dispersion:
            deviance = self.dispersion_objective(deviance, eta)
        if not converged or not np.isfinite(deviance):
            self.u[:] = 0.0  # start the next call afresh
            self._last = None
            self._memo = NO_MEMO
            return np.inf, None
        u = self.u.copy()
        self._last = (theta.copy(), values, eta0, L0, L21, L22, eta, u)
        state = (values, index, L0, L21, L22, eta)
        self._memo = (key, float(deviance), state, u, None)
        return float(deviance), state

    def _predict_modes(self, theta, values, index, eta0) -> None:
        """PIRLS's start: the modes at these (theta, beta) to first order from the last
        evaluation's (``predicted_modes``), where that moves no mode by more than
        PREDICTION_LIMIT; else, and where a factor's diagonal entry changed sign (the
        linearisation then runs through a singular factor), the last effects kept
        (``_keep_effects``)."""
        if self._last is None:
            return
        last_theta, last_values, last_eta0, L0, L21, L22, eta, u = self._last
        if np.any(theta[self.diagonal] * last_theta[self.diagonal] < 0):
            self._keep_effects(last_theta, theta, u)
            return
        start = predicted_modes(
            self.family_code, self.link_code, self.y, self.prior, self.constant, eta, last_values, values, index,
            eta0 - last_eta0, u, L0, L21, L22, self.k0, self.ptr, self.rows,
        )  # fmt: skip
        change = np.max(np.abs(start - u), initial=0.0)
        if change <= PREDICTION_LIMIT:  # NaN too: a far prediction is worse than the effects kept
            self.u[:] = start
        else:
            self._keep_effects(last_theta, theta, u)

    def _keep_effects(self, last_theta: np.ndarray, theta: np.ndarray, u: np.ndarray) -> None:
        """self.u set so that each term's effects b_j = T u_j stay those of the modes ``u`` at
        ``last_theta`` (u_j = T^-1 T_last u_j): a start far from the last point is on the modes'
        own scale, and a column's sign flipped (``canonical_theta``) is undone exactly. A term
        whose new factor is singular keeps its u."""
        # verbagg's first BFGS step (theta 1 -> -5.5): 11 PIRLS steps from the last modes, 4 from
        # the effects kept; the flip after BFGS: 5 -> 0. PIRLS steps a fit (verbagg, contraception):
        # 77, 81 -> 64, 71
        for t, (last, new) in enumerate(zip(self.gd.factors(last_theta), self.gd.factors(theta), strict=True)):
            block = u[self.uoff[t] : self.uoff[t + 1]].reshape(-1, self.k[t])
            if np.any(np.diag(new) == 0.0) or np.array_equal(last, new):
                self.u[self.uoff[t] : self.uoff[t + 1]] = block.ravel()
                continue
            kept = scipy.linalg.solve_triangular(new, last @ block.T, lower=True).T
            self.u[self.uoff[t] : self.uoff[t + 1]] = kept.ravel()

    def _laplace(self, values, index, beta: np.ndarray, iterations: int, accept: float, eta0=None):
        """The compiled PIRLS from self.u (``iterations`` 0: H assembled and factored there only):
        (value, converged, L0, L21, L22, eta)."""
        deviance, _, converged, L0, L21, L22, eta = laplace(
            self.family_code, self.link_code, self.y, self.prior, self.constant,
            self._eta0(beta) if eta0 is None else eta0, values, index, self.pos, self.ptr, self.rows, self.levels0,
            self.k0, self.q_rest, self.u, PIRLS_TOLERANCE, iterations, accept,
        )  # fmt: skip
        return deviance, converged, L0, L21, L22, eta

    def dispersion_objective(self, penalised: float, eta: np.ndarray) -> float:
        """lme4's objective for a family with a dispersion: the kernel's deviance + |u|^2 +
        log|H| with the deviance replaced by family$aic(y, n, mu, wt, dev)."""
        mu = self.family.linkinv(eta)
        if not self.family.validmu(mu):
            return np.inf
        residual_deviance = float(np.sum(self.family.dev_resids(self.y, mu, self.prior)))
        aic = self.family.aic(self.y, None, mu, self.prior, residual_deviance)
        return penalised - residual_deviance + aic

    def sigma(self, mu: np.ndarray) -> float:
        """lme4's sigma for a family with a dispersion: sqrt(pwrss / n), pwrss the prior-weighted
        Pearson sum of squares plus |u|^2 at the modes (1 for binomial and Poisson)."""
        if not self.has_dispersion:
            return 1.0
        pearson = float(np.sum(self.prior * (self.y - mu) ** 2 / self.family.variance(mu)))
        return float(np.sqrt((pearson + self.u @ self.u) / len(self.y)))

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """The deviance and its analytic gradient (canonical links; ``laplace_gradient``); the
        last point's again without PIRLS (BFGS ends where it last evaluated, and the seed's
        Hessian and the Newton steps start from a point just evaluated)."""
        deviance, state = self._evaluate(params)
        if state is None:
            return deviance, np.full(len(params), np.nan)
        key, _, _, u, gradient = self._memo
        if gradient is None:
            values, index, L0, L21, L22, eta = state
            factor = (L0, L21, L22, self.k0, self.ptr, self.rows)
            gradient = laplace_gradient(
                self.family_code, self.link_code, self.y, self.prior, eta, values, index, self.pos, self.Zv, self.X,
                u, factor, inverse_pieces(*factor), self.theta_map,
            )  # fmt: skip
            self._memo = (key, deviance, state, u, gradient)
        return deviance, gradient.copy()

    def beta_information(self, params: np.ndarray) -> np.ndarray:
        """-2 logLik's curvature in beta with u profiled out, 2 (X'WX - C'H^-1 C) at (theta, beta)
        (``_schur``; the Laplace term's change with beta left out): a first Hessian for beta."""
        _, state = self._evaluate(params)
        if state is None:
            return np.eye(len(params) - self.n_theta)
        return 2.0 * self._schur(state)

    def conditional(self, params: np.ndarray) -> dict:
        """At (theta, beta), PIRLS to its strict tolerance: the deviance, the modes u, the
        conditional means and linear predictor, the blocks of H^-1 per term and level (for the
        conditional variances) and lme4's RX covariance (X'WX - X'W Z Lambda H^-1 Lambda'Z'WX)^-1."""
        deviance, state = self._evaluate(params, accept=0.0)
        if state is None:
            raise GlmflowError("PIRLS did not converge at the optimum")
        values, index, L0, L21, L22, eta = state
        P0, _, P11 = inverse_pieces(L0, L21, L22, self.k0, self.ptr, self.rows)
        blocks, position = [P0], 0
        for term in self.gd.terms[1:]:  # the rest's diagonal blocks, level by level
            size = term.k * term.n_levels
            rest = P11[position : position + size, position : position + size].reshape(
                term.n_levels, term.k, term.n_levels, term.k
            )
            blocks.append(np.einsum("jajb->jab", rest))
            position += size
        mu = self.family.linkinv(eta)
        rx = self._schur(state)
        sigma = self.sigma(mu)
        return {"deviance": deviance, "u": self.u.copy(), "eta": eta, "mu": mu, "blocks": blocks,
                "vcov_rx": sigma**2 * np.linalg.inv(rx), "sigma": sigma}  # fmt: skip

    def _schur(self, state, w: np.ndarray | None = None, parts: bool = False):
        """X'WX - C'H^-1 C with C = Lambda'Z'WX: lme4's RX'RX, the Fisher information of beta
        with u profiled out (H factored in ``state``; W the Fisher weights at its eta unless
        given); with ``parts``, also C and H^-1 C."""
        values, index, L0, L21, L22, eta = state
        if w is None:
            w = self.prior * self.family.mu_eta(eta) ** 2 / self.family.variance(self.family.linkinv(eta))
        C = np.zeros((self.q, self.X.shape[1]))
        for a in range(values.shape[1]):
            for c in range(self.X.shape[1]):
                C[:, c] += np.bincount(index[:, a], weights=values[:, a] * w * self.X[:, c], minlength=self.q)
        # contiguous copies of C's columns: a strided one compiled a second solve_factored
        columns = [np.ascontiguousarray(C[:, c]) for c in range(self.X.shape[1])]
        solved = np.column_stack([solve_factored(L0, L21, L22, self.k0, self.ptr, self.rows, col) for col in columns])
        schur = self.X.T @ (w[:, None] * self.X) - C.T @ solved
        return (schur, C, solved) if parts else schur

    def _penalised(self, params: np.ndarray):
        """PIRLS for u at (theta, beta): (objective, penalised deviance, state)."""
        value, state = self._evaluate(params)
        if state is None:
            return np.inf, np.inf, None
        return value, self._penalised_part(value, state), state

    def _penalised_part(self, value: float, state) -> float:
        """The penalised deviance in ``value``: the kernel's -2 log p (the deviance for a family
        with a dispersion, whose ``value`` has aic() in its place) + |u|^2, without log|H|."""
        _, _, L0, _, L22, eta = state
        logdet = 2.0 * (np.sum(np.log(np.diagonal(L0, axis1=1, axis2=2))) + np.sum(np.log(np.diag(L22))))
        if not self.has_dispersion:
            return value - logdet
        mu = self.family.linkinv(eta)
        residual = float(np.sum(self.family.dev_resids(self.y, mu, self.prior)))
        return value - logdet - self.family.aic(self.y, None, mu, self.prior, residual) + residual

    def _joint_at(self, values, index, beta: np.ndarray):
        """H assembled and factored at (self.u, beta) without PIRLS: (objective, penalised, state)."""
        deviance, _, L0, L21, L22, eta = self._laplace(values, index, beta, 0, 0.0)
        if not np.isfinite(deviance):
            return np.inf, np.inf, None
        state = (values, index, L0, L21, L22, eta)
        if self.has_dispersion:
            deviance = self.dispersion_objective(deviance, eta)
            if not np.isfinite(deviance):
                return np.inf, np.inf, None
        return float(deviance), self._penalised_part(float(deviance), state), state

    def _joint_step(self, state) -> tuple[np.ndarray, np.ndarray] | None:
        """Fisher scoring's step in (u, beta) together: with C = Lambda'Z'WX, the system
        [H C; C' X'WX] (du, dbeta) = (Lambda'Z's - u, X's), solved through H's factor and the
        Schur complement X'WX - C'H^-1 C (``_schur``)."""
        values, index, L0, L21, L22, eta = state
        mu = self.family.linkinv(eta)
        mu_eta = self.family.mu_eta(eta)
        variance = self.family.variance(mu)
        score = self.prior * (self.y - mu) * mu_eta / variance
        w = self.prior * mu_eta**2 / variance
        r_u = -self.u.copy()
        for a in range(values.shape[1]):
            r_u += np.bincount(index[:, a], weights=values[:, a] * score, minlength=self.q)
        schur, C, solved = self._schur(state, w, parts=True)
        h_ru = solve_factored(L0, L21, L22, self.k0, self.ptr, self.rows, r_u)
        try:
            dbeta = np.linalg.solve(schur, self.X.T @ score - C.T @ h_ru)
        except np.linalg.LinAlgError:
            return None
        return h_ru - solved @ dbeta, dbeta

    def profiled(self, theta: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray]:
        """lme4's nAGQ = 0 objective at theta: PIRLS over u and beta together (Fisher scoring
        on both, one factorisation of H a step, with step-halving on the penalised deviance),
        the Laplace formula at the joint optimum. Returns (objective, beta). Nested (beta's
        Newton steps, each with PIRLS for u to its end) took 2.6 times the factorisations on
        InstEval."""
        values, index = self._rows(theta)
        self._last, self._memo = None, NO_MEMO  # the modes move here without _evaluate
        value, penalised, state = self._joint_at(values, index, beta)
        for _ in range(PIRLS_MAX_ITERATIONS):
            step = None if state is None else self._joint_step(state)
            if step is None:
                break
            du, dbeta = step
            if np.max(np.abs(du), initial=0.0) < PIRLS_ACCEPT and np.max(np.abs(dbeta)) < 1e-8 * (
                1.0 + np.max(np.abs(beta))
            ):
                return value, beta
            saved_u, fraction = self.u.copy(), 1.0
            for _ in range(30):
                self.u[:] = saved_u + fraction * du
                trial = self._joint_at(values, index, beta + fraction * dbeta)
                if trial[1] <= penalised + 1e-10 * abs(penalised):
                    break
                fraction /= 2.0
            else:
                self.u[:] = saved_u
                break
            beta = beta + fraction * dbeta
            value, penalised, state = trial
        if state is None:
            self.u[:] = 0.0
            return np.inf, beta
        return value, beta


class QuadratureDeviance(LaplaceDeviance):
    """lme4's ``glmerAGQ`` for one scalar random intercept with any link of binomial or Poisson:
    adaptive Gauss-Hermite quadrature around the PIRLS modes u_j, each group's nodes spread by
    its conditional SD s_j = 1 / L_jj from the Fisher weights (as lme4's factor L), so

        -2 logLik = Laplace(theta, beta) - 2 sum_j log sum_k w_k exp(z_k^2 / 2 - D_jk / 2),

    with D_jk the change in u_j^2 + sum over the group's rows of -2 log p(y | eta) when u_j
    moves to u_j + z_k s_j (w_k the normal-density weights, summing to 1). lme4 reports the
    same with deviance residuals in place of -2 log p (the saturated log-likelihood left out);
    glmflow reports -2 logLik itself, at every nAGQ, as for the canonical links."""

    def __init__(self, glmm_design: GlmmDesign, family: Family, nAGQ: int):
        super().__init__(glmm_design, family)
        if self.has_dispersion or not glmm_design.is_scalar_intercept:
            raise GlmflowError("adaptive quadrature needs binomial or Poisson and one scalar random intercept")
        nodes, weights = hermegauss(nAGQ)  # for the weight exp(-z^2 / 2), as lme4's GHrule
        self.nodes, self.log_weights = nodes, np.log(weights / weights.sum()) + nodes**2 / 2
        self.group_codes = glmm_design.terms[0].codes
        self.canonical = False  # no analytic gradient: differences of values

    def __call__(self, params: np.ndarray) -> float:
        value, state = self._evaluate(params)
        if state is None:
            return np.inf
        theta = float(params[0])
        sd = 1.0 / np.diagonal(state[2], axis1=1, axis2=2)[:, 0]  # the factor's blocks are 1 x 1
        eta = state[5]
        base = self._minus2_log_p(eta)
        per_group = np.empty((len(self.nodes), len(sd)))
        for k, z in enumerate(self.nodes):
            shift = z * sd
            rows = self._minus2_log_p(eta + theta * shift[self.group_codes]) - base
            change = np.bincount(self.group_codes, weights=rows, minlength=len(sd)) + (self.u + shift) ** 2 - self.u**2
            per_group[k] = self.log_weights[k] - change / 2
        peak = per_group.max(axis=0)
        log_mult = peak + np.log(np.exp(per_group - peak).sum(axis=0))
        return float(value - 2.0 * log_mult.sum())

    def _minus2_log_p(self, eta: np.ndarray) -> np.ndarray:
        """Per row, -2 log p(y | eta) up to a constant per row (the deviance residual)."""
        mu = self.family.linkinv(eta)
        return self.family.dev_resids(self.y, mu, self.prior)

    def conditional(self, params: np.ndarray) -> dict:
        state = super().conditional(params)
        state["deviance"] = self(params)
        return state
