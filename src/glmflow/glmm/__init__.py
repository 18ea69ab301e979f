"""Generalized linear mixed models by maximum likelihood, as ``lme4::glmer``, at the exact
optimum of the approximation, in lme4's four stages (its ``modular.R``):

- ``design`` (glFormula): fixed and random model matrices, Lambda's template, theta's bounds;
- ``deviance`` (mkGlmerDevfun): PIRLS and the Laplace objective, with the compiled kernels
  (``pirls`` for any structure, ``scalar`` for one random intercept, Laplace or AGQ);
- ``optimize`` (optimizeGlmer): start values, the outer optimisation, the Hessian;
- ``result`` (mkMerMod): estimates, vcov, VarCorr, modes, the convergence check;

and ``fit.fit_glmm`` as the front door. Why by hand: statsmodels has no maximum-likelihood
GLMM (its ``BinomialBayesMixedGLM`` is variational Bayes), and no other maintained Python
package fits glmer's models with glmer's standard errors.
"""

from glmflow.glmm.design import GlmmDesign, build_glmm_design
from glmflow.glmm.fit import fit_glmm
from glmflow.glmm.result import GlmmFit
from glmflow.glmm.scalar import ScalarDeviance

__all__ = ["GlmmDesign", "GlmmFit", "ScalarDeviance", "build_glmm_design", "fit_glmm"]
