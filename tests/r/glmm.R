# Reference values for glmflow's logistic and Poisson mixed models (R 4.2, lme4 from Debian).
# Run from the repository root:  Rscript tests/r/glmm.R   (writes tests/r/glmm_reference.json)
# lme4's nAGQ > 1 fits are exact (adaptive Gauss-Hermite, fixed effects in the outer
# optimisation); its default Laplace fit stops early (see the GLMM issue), so Laplace targets
# come from the issue's exact optimum instead.
# PIRLS to tolPwrss = 1e-10 (lme4's 1e-7 moves the optimum by 1e-5 between machines), and SEs from
# numDeriv's Hessian of lme4's own objective at its optimum (vcov's finite differences change in
# the fifth digit when the optimum moves by 1e-9): both reproduce to the last printed digit.
suppressMessages({library(lme4); library(jsonlite); library(numDeriv)})
options(useFancyQuotes = FALSE)
exact <- function(x) sprintf("%.17g", x)

bdf <- read.csv("resources/bdf.csv")
bdf <- bdf[bdf$repeatgr != 2, ]
names(bdf)[names(bdf) == "schoolNR"] <- "school_nr"
names(bdf)[names(bdf) == "Minority"] <- "minority"
names(bdf)[names(bdf) == "IQ.verb"] <- "iq_verb"
bdf$minority <- factor(bdf$minority)

set.seed(11)
groups <- 40
sim <- data.frame(group = rep(seq_len(groups), times = sample(5:25, groups, replace = TRUE)))
sim$x <- rnorm(nrow(sim))
sim$count <- rpois(nrow(sim), exp(0.3 + 0.5 * sim$x + rnorm(groups, sd = 0.6)[sim$group]))
write.csv(sim, "tests/r/poisson_glmm_data.csv", row.names = FALSE)

# The fixed effects' SEs as lme4's vcov defines them (2 H^-1 of the deviance in (theta, beta)),
# with H from Richardson extrapolation of lme4's deviance function instead of its own
# finite differences.
hessian_se <- function(fit) {
  deviance <- update(fit, devFunOnly = TRUE)
  theta <- getME(fit, "theta")
  h <- hessian(deviance, c(theta, fixef(fit)))
  beta <- -seq_along(theta)
  sqrt(diag(2 * solve(h))[beta])
}
control <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10), tolPwrss = 1e-10)

describe <- function(fit, formula, family, nAGQ, data_name) {
  vc <- as.data.frame(VarCorr(fit))
  re <- ranef(fit, condVar = TRUE)[[1]]
  list(
    formula = formula, family = family, nAGQ = nAGQ, data = data_name,
    term = names(fixef(fit)), beta = exact(fixef(fit)), theta = exact(getME(fit, "theta")),
    se = exact(hessian_se(fit)),
    se_rx = exact(sqrt(diag(as.matrix(vcov(fit, use.hessian = FALSE))))),
    deviance = exact(-2 * as.numeric(logLik(fit))), logLik = exact(as.numeric(logLik(fit))),
    AIC = exact(AIC(fit)), BIC = exact(BIC(fit)), variance = exact(vc$vcov[1]),
    nobs = nobs(fit), n_groups = as.integer(ngrps(fit)),
    ranef = exact(re[, 1]), ranef_sd = exact(sqrt(attr(re, "postVar")[1, 1, ])),
    summary = paste(capture.output(print(summary(fit))), collapse = "\n")
  )
}

fits <- list(
  chapter_agq10 = list("repeatgr ~ 1 + ses * minority + (1 | school_nr)", "binomial", 10, "bdf"),
  chapter_agq25 = list("repeatgr ~ 1 + ses * minority + (1 | school_nr)", "binomial", 25, "bdf"),
  iq_agq10 = list("repeatgr ~ iq_verb + sex + (1 | school_nr)", "binomial", 10, "bdf"),
  poisson_agq10 = list("count ~ x + (1 | group)", "poisson", 10, "poisson_glmm_data")
)
out <- list()
for (name in names(fits)) {
  spec <- fits[[name]]
  data <- if (spec[[4]] == "bdf") bdf else sim
  fit <- glmer(as.formula(spec[[1]]), data = data, family = spec[[2]], nAGQ = spec[[3]],
               control = control)
  out[[name]] <- describe(fit, spec[[1]], spec[[2]], spec[[3]], spec[[4]])
}
out$r_version <- R.version.string
out$lme4_version <- as.character(packageVersion("lme4"))
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/r/glmm_reference.json")

# Binomial proportions with weights: y = successes / trials, weights = trials.
set.seed(12)
groups <- 30
trials_data <- data.frame(group = rep(seq_len(groups), each = 6))
trials_data$x <- rnorm(nrow(trials_data))
trials_data$trials <- sample(1:12, nrow(trials_data), replace = TRUE)
eta <- -0.4 + 0.8 * trials_data$x + rnorm(groups, sd = 0.7)[trials_data$group]
trials_data$successes <- rbinom(nrow(trials_data), trials_data$trials, plogis(eta))
trials_data$proportion <- trials_data$successes / trials_data$trials
write.csv(trials_data, "tests/r/binomial_weights_data.csv", row.names = FALSE)
weighted <- glmer(proportion ~ x + (1 | group), data = trials_data, family = binomial, weights = trials,
                  nAGQ = 10, control = control)
out$weights_agq10 <- describe(weighted, "proportion ~ x + (1 | group)", "binomial", 10, "binomial_weights_data")
out$weights_agq10$weights <- "trials"
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/r/glmm_reference.json")
