# Reference values for declared factors and effects::Effect grids (R 4.2, effects 4.2 from Debian).
# Run from the repository root:  Rscript tests/r/factors_effects.R
# Writes tests/r/factors_effects_reference.json; tests/test_factors_effects.py compares against it.
suppressMessages({library(jsonlite); library(effects); library(lme4)})

titanic <- read.csv("resources/titanic_train.csv")
names(titanic) <- c("passenger_id", "survived", "pclass", "name", "sex", "age",
                    "sib_sp", "parch", "ticket", "fare", "cabin", "embarked")
titanic$sex <- factor(titanic$sex)
cbpp <- read.csv("resources/cbpp.csv")

tidy_of <- function(fit) {
  cf <- coef(summary(fit))
  list(term = rownames(cf), estimate = unname(cf[, 1]), std_error = unname(cf[, 2]),
       statistic = unname(cf[, 3]), p_value = unname(cf[, 4]),
       logLik = as.numeric(logLik(fit)), deviance = deviance(fit))
}

source("tests/r/effects_common.R")  # effect_of()

out <- list()
# Declared factors of integer codes: R's factor(period) / factor(pclass).
fit_cbpp <- glm(incidence ~ factor(period), family = poisson, data = cbpp)
out$cbpp_period <- tidy_of(fit_cbpp)
fit_class <- glm(survived ~ sex + factor(pclass), family = binomial, data = titanic)
out$titanic_sex_class <- tidy_of(fit_class)

# Effects: a non-focal factor and a non-focal numeric.
fit <- glm(survived ~ sex + age + fare, family = binomial, data = titanic)
out$effect_fare <- effect_of("fare", fit, list(fare = c(0, 50, 250)))
# glmflow's `sib_sp ~ factor(pclass) + age`: effects 4.2 refuses factor() in a formula, so
# R fits the same model with pclass made a factor first; pclass focal, then non-focal.
titanic_f <- transform(titanic, pclass = factor(pclass))
fit <- glm(sib_sp ~ pclass + age, family = poisson, data = titanic_f)
out$effect_factor_call_focal <- effect_of("pclass", fit, list(pclass = c("1", "3")))
out$effect_factor_nonfocal <- effect_of("age", fit, list(age = c(5, 30, 60)))
# An interaction with a non-focal factor, and a transformed non-focal numeric.
fit <- glm(survived ~ sex * fare + age + I(age^2), family = binomial, data = titanic)
out$effect_interaction <- effect_of("fare", fit, list(fare = c(0, 100, 200)))
# Two focal predictors, the chapter's allEffects grid of sex * fare.
fit <- glm(survived ~ sex * fare, family = binomial, data = titanic)
out$effect_sex_fare <- effect_of(c("sex", "fare"), fit, list(fare = c(0, 250, 500)))
# A declared integer-coded factor, focal, levels named by numbers.
cbpp_f <- transform(cbpp, period = factor(period), herd = factor(herd))
fit <- glm(incidence ~ period + size, family = poisson, data = cbpp_f)
out$effect_cbpp <- effect_of("period", fit, list(period = c("1", "3")))

# The mixed model with the declared factor: lme4 at nAGQ = 10 (Poisson; logLik not compared,
# lme4 reports it relative to the saturated model at nAGQ > 1).
fit <- glmer(incidence ~ period + (1 | herd), family = poisson, data = cbpp_f, nAGQ = 10,
             control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)))
out$glmm_cbpp_period <- list(term = names(fixef(fit)), estimate = unname(fixef(fit)),
                             std_error = unname(sqrt(diag(as.matrix(vcov(fit))))),
                             theta = unname(getME(fit, "theta")))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/r/factors_effects_reference.json")
