# R's answers for the mixed models at scale, on subsamples small enough for CI
# (tests/test_glmm_scale.py): InstEval as a binary model on its first 300 students, and the
# bench's simulated crossed model with a random slope (glmflow.bench.scale.simulated(400, 60, 20),
# written to tests/r/scale/sim_small.csv). glmer to its exact optimum (bobyqa to 1e5
# evaluations, PIRLS to 1e-10); the SEs from glmmTMB (automatic differentiation of the same
# Laplace objective; logit link), since lme4's finite-difference Hessian is 1e-3 to 1e-2 off.
# Run from the repository root: Rscript tests/r/glmm_scale.R
suppressMessages({library(jsonlite); library(lme4); library(glmmTMB)})

fit_one <- function(formula, d) {
  fit <- glmer(formula, d, binomial,
               control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-10))
  tmb <- glmmTMB(formula, d, binomial)
  list(minus2loglik = -2 * as.numeric(logLik(fit)), theta = unname(getME(fit, "theta")),
       beta = unname(fixef(fit)), names = names(fixef(fit)), lme4_se = unname(sqrt(diag(as.matrix(vcov(fit))))),
       se = unname(sqrt(diag(vcov(tmb)$cond))), tmb_minus2loglik = -2 * as.numeric(logLik(tmb)),
       n = nrow(d), levels = lapply(getME(fit, "flist"), nlevels))
}

inst <- read.csv("resources/insteval.csv")
inst <- inst[inst$s <= 300, ]
for (v in c("s", "d", "service", "dept")) inst[[v]] <- factor(inst[[v]])
sim <- read.csv("tests/r/scale/sim_small.csv")
for (v in c("subject", "item")) sim[[v]] <- factor(sim[[v]])

out <- list(
  insteval_binary = fit_one(I(y > 3) ~ 1 + service + (1 | s) + (1 | d), inst),
  sim_slope = fit_one(y ~ 1 + x + (1 + x | subject) + (1 | item), sim)
)
out$r_version <- R.version.string
out$lme4_version <- as.character(packageVersion("lme4"))
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/glmm_scale_reference.json")
