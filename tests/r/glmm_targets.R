# The chapter's mixed model at its exact optima, the targets glmflow's fits must reach.
# Run from the repository root:  Rscript tests/r/glmm_targets.R
#   (writes tests/r/glmm_targets_reference.json)
# lme4's default Laplace fit stops early (about 0.0055 deviance above the optimum), so both fits
# here run bobyqa to a tight end (rhoend 1e-10, maxfun 1e5) with PIRLS to tolPwrss = 1e-10: the
# Laplace optimum and the nAGQ = 10 fit (exact, adaptive Gauss-Hermite) then reproduce to the
# last printed digit. SEs from numDeriv's Hessian of lme4's own deviance (as tests/r/glmm.R).
suppressMessages({library(lme4); library(jsonlite); library(numDeriv)})
exact <- function(x) sprintf("%.17g", x)

bdf <- read.csv("resources/bdf.csv")
bdf <- bdf[bdf$repeatgr != 2, ]
names(bdf)[names(bdf) == "schoolNR"] <- "school_nr"
names(bdf)[names(bdf) == "Minority"] <- "minority"
bdf$minority <- factor(bdf$minority)
formula <- repeatgr ~ 1 + ses * minority + (1 | school_nr)
control <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10),
                        tolPwrss = 1e-10)

hessian_se <- function(fit) {
  deviance <- update(fit, devFunOnly = TRUE)
  theta <- getME(fit, "theta")
  h <- hessian(deviance, c(theta, fixef(fit)))
  sqrt(diag(2 * solve(h))[-seq_along(theta)])
}

target <- function(nAGQ) {
  fit <- glmer(formula, data = bdf, family = binomial, nAGQ = nAGQ, control = control)
  # lme4's nAGQ > 1 deviance leaves out the saturated log-likelihood, 0 for 0/1 responses: so
  # -2 logLik is the deviance glmflow reports at every nAGQ.
  list(nAGQ = nAGQ, term = names(fixef(fit)), theta = exact(getME(fit, "theta")),
       beta = exact(fixef(fit)), deviance = exact(-2 * as.numeric(logLik(fit))),
       se = exact(hessian_se(fit)), optimizer_messages = fit@optinfo$conv$lme4$messages)
}

# The quadrature's own error at each optimum: -2 logLik there against lme4's nAGQ = 25 deviance
# function (exact to ~1e-10 on these groups) at the same (theta, beta).
agq25 <- glmer(formula, data = bdf, family = binomial, nAGQ = 25, control = control, devFunOnly = TRUE)
approximation_error <- function(t) {
  exact_deviance <- agq25(as.numeric(c(t$theta, t$beta)))
  exact((as.numeric(exact_deviance) - as.numeric(t$deviance)) / 2)  # logLik less the exact one
}
laplace <- target(1)
agq10 <- target(10)
laplace$approximation_error <- approximation_error(laplace)
agq10$approximation_error <- approximation_error(agq10)
out <- list(formula = deparse(formula), laplace = laplace, agq10 = agq10,
            r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, null = "null"),
           "tests/r/glmm_targets_reference.json")
