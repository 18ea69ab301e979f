"""Stage 4, lme4's ``mkMerMod``: a fitted mixed model's estimates, their covariance, VarCorr,
the conditional modes with their conditional SDs, the convergence check and the tables
(tidy, glance, augment) the workflow writes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from glmflow.families import Family
from glmflow.glmm.design import GlmmDesign
from glmflow.models import FittedModel, wald_table

CHECK_CONV_TOL = 2e-3  # lme4's check.conv.grad tolerance
SINGULAR_TOL = 1e-4  # lme4's isSingular tolerance


@dataclass
class GlmmFit(FittedModel):
    name: str
    formula: str
    family_object: Family
    dataset: str
    nAGQ: int
    glmm_design: GlmmDesign
    theta: np.ndarray
    beta: np.ndarray
    deviance: float  # -2 logLik (Laplace or AGQ)
    gradient: np.ndarray  # over (theta, beta), central differences as lme4's deriv12
    hessian: np.ndarray
    vcov: np.ndarray
    vcov_rx: np.ndarray
    condval: list[np.ndarray]  # per term: levels x k conditional modes b = Lambda u
    condvar: list[np.ndarray]  # per term: levels x k x k conditional covariances
    eta: np.ndarray  # conditional linear predictor at the modes
    fitted: np.ndarray  # conditional mean
    converged: bool
    optimizer_message: str
    warnings: list[str] = field(default_factory=list)
    sigma: float = 1.0  # lme4's sigma(): 1, or sqrt(pwrss / n) for a family with a dispersion
    separation: dict | None = None  # binomial: term -> "Inf"/"-Inf" where the MLE does not exist

    @property
    def design(self):
        return self.glmm_design.design

    @property
    def family(self) -> str:
        return self.family_object.name

    @property
    def link(self) -> str:
        return self.family_object.link.name

    @property
    def has_dispersion(self) -> bool:
        return self.family_object.dispersion_in_loglik

    @property
    def n_params(self) -> int:
        """lme4's df: the fixed effects, theta, and the scale for a family with a dispersion."""
        return len(self.beta) + len(self.theta) + int(self.has_dispersion)

    @property
    def loglik(self) -> float:
        return -self.deviance / 2

    @property
    def aic(self) -> float:
        return self.deviance + 2 * self.n_params

    @property
    def bic(self) -> float:
        return self.deviance + math.log(self.nobs) * self.n_params

    @property
    def singular(self) -> bool:
        """lme4's ``isSingular``: a theta with lower bound 0 below 1e-4."""
        lower = self.glmm_design.theta_lower()
        return bool(np.any(self.theta[lower == 0] < SINGULAR_TOL))

    def covariances(self) -> list[np.ndarray]:
        """Each term's covariance matrix Sigma = sigma^2 T T' (lme4's VarCorr; sigma is 1 for
        binomial and Poisson)."""
        return [self.sigma**2 * (T @ T.T) for T in self.glmm_design.factors(self.theta)]

    def convergence_check(self) -> dict:
        """lme4's checkConv: the gradient scaled by the Hessian's Cholesky factor, against 0.002."""
        try:
            scaled = np.linalg.solve(np.linalg.cholesky(self.hessian).T, self.gradient)
            worst = float(np.max(np.minimum(np.abs(scaled), np.abs(self.gradient))))
        except np.linalg.LinAlgError:
            worst = float(np.max(np.abs(self.gradient)))
        return {
            "max_abs_gradient": float(np.max(np.abs(self.gradient))),
            "relative_gradient": worst,
            "check_tolerance": CHECK_CONV_TOL,
            "check_passed": worst <= CHECK_CONV_TOL,
        }

    def tidy(self) -> pd.DataFrame:
        """z-based Wald table (as glmer's summary), plus the conditional (RX) standard errors."""
        table = wald_table(self.terms, self.beta, self.vcov)
        table["std_error_conditional"] = np.sqrt(np.diag(self.vcov_rx))
        return table

    def varcorr(self) -> pd.DataFrame:
        """``as.data.frame(VarCorr(fit))``: per term the variances, then the covariances in
        lme4's order (column by column), ``sdcor`` the SDs and correlations."""
        rows = []
        for term, sigma in zip(self.glmm_design.terms, self.covariances(), strict=True):
            sd = np.sqrt(np.diag(sigma))
            rows += [(term.name, column, None, sigma[i, i], sd[i]) for i, column in enumerate(term.columns)]
            for j in range(term.k):
                for i in range(j + 1, term.k):
                    correlation = sigma[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else float("nan")
                    rows.append((term.name, term.columns[j], term.columns[i], sigma[i, j], correlation))
        if self.has_dispersion:
            rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    def ranef(self) -> pd.DataFrame:
        """Conditional modes and SDs: ``grp`` (the grouping factor), ``level``, ``term``."""
        frames = []
        for term, values, variance in zip(self.glmm_design.terms, self.condval, self.condvar, strict=True):
            for c, column in enumerate(term.columns):
                frames.append(pd.DataFrame({
                    "grp": term.factor, "level": term.levels, "term": column,
                    "condval": values[:, c], "condsd": np.sqrt(variance[:, c, c]),
                }))  # fmt: skip
        return pd.concat(frames, ignore_index=True)

    def glance(self) -> dict:
        values = {
            "model": self.name,
            "family": self.family,
            "link": self.link,
            "nobs": self.nobs,
            "n_groups": self.glmm_design.n_groups,
            "n_dropped": self.design.n_dropped,
            "df": self.n_params,
            "logLik": self.loglik,
            "AIC": self.aic,
            "BIC": self.bic,
            "deviance": self.deviance,
            "df_residual": self.nobs - self.n_params,
            "theta": [float(t) for t in self.theta],
            "sigma": self.sigma,
            "singular": self.singular,
            "nAGQ": self.nAGQ,
            "converged": self.converged,
        }
        values.update(self.convergence_check())
        values["warnings"] = list(self.warnings)
        if self.separation is not None:  # as a binomial GLM's glance
            values["separation"] = self.separation
        if self.glmm_design.dropped:
            values["dropped_columns"] = list(self.glmm_design.dropped)
        return values

    def scaled_residuals(self) -> np.ndarray:
        mu = self.fitted
        variance = self.family_object.variance(mu) / self.glmm_design.prior
        return (self.design.y - mu) / np.sqrt(variance) / self.sigma  # residuals(fit, "pearson", scaled = TRUE)

    def augment(self, data: pd.DataFrame) -> pd.DataFrame:
        """Per row used: the model's variables, ``.fitted`` (conditional linear predictor, at the
        modes), ``.prob`` (conditional mean) and ``.resid`` (scaled Pearson residual)."""
        frame = data.loc[self.design.rows, self.design.variables]
        frame.insert(0, ".row", self.design.rows + 1)
        frame[".fitted"] = self.eta
        frame[".prob"] = self.fitted
        frame[".resid"] = self.scaled_residuals()
        return frame.reset_index(drop=True)

    def correlation(self) -> np.ndarray:
        se = np.sqrt(np.diag(self.vcov))
        return self.vcov / np.outer(se, se)
