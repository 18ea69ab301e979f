# Reference fits for the general mixed-model engine (tests/test_glmm_engine.py), on data sets
# of the differential test (tests/r/differential/*.csv).
# R 4.2, lme4 from Debian. Run from the repository root:  Rscript tests/r/glmm_engine.R
# (writes tests/r/glmm_engine_reference.json)
# "tight" is glmer with bobyqa (rhoend 1e-10, maxfun 1e5) and tolPwrss 1e-12; "default" is the
# differential test's control (bobyqa, maxfun 1e5, lme4's tolPwrss 1e-7). lme4's PIRLS stops at
# a relative change of 1e-7 in the penalised deviance, so its default objective is off the
# Laplace value by up to 1e-3 (more than its optimiser's error): "default" fits can lie below
# the exact optimum, and "tight" ones are the exact optimum.
suppressMessages({library(lme4); library(jsonlite)})
options(useFancyQuotes = FALSE)
exact <- function(x) sprintf("%.17g", x)
default <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
tight <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5), tolPwrss = 1e-12)

load <- function(name, factors = character()) {
  d <- read.csv(file.path("tests/r/differential", paste0(name, ".csv")))
  for (column in factors) d[[column]] <- factor(d[[column]])
  d
}

cases <- list(
  # a random slope of a covariate in the hundreds (height): from lme4's start a joint search
  # over (theta, beta) stalls; lme4's first stage (nAGQ = 0) moves theta first
  slope_scale = list(data = "grouseticks", factors = character(), family = "poisson", link = "log",
                     formula = "ticks ~ sqrt(height) + factor(year) + sqrt(height):factor(year) + (height || location)"),
  cloglog = list(data = "contraception", factors = c("livch", "use"), family = "binomial", link = "cloglog",
                 formula = "use ~ age * livch + (age || district)"),
  inverse_gaussian = list(data = "co2", factors = "treatment", family = "inverse.gaussian", link = "log",
                          formula = "uptake ~ log10(conc) + treatment + (1 | plant)"),
  crossed = list(data = "penicillin", factors = character(), family = "inverse.gaussian", link = "log",
                 formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  gamma_identity = list(data = "sleepstudy", factors = character(), family = "Gamma", link = "identity",
                        formula = "reaction ~ days + (1 | subject)")
)

numbers <- function(fit) {
  list(deviance = exact(-2 * as.numeric(logLik(fit))), theta = exact(getME(fit, "theta")),
       beta = exact(fixef(fit)), se = exact(sqrt(diag(as.matrix(vcov(fit))))), term = names(fixef(fit)))
}

# The SEs from an accurate Hessian of lme4's own objective (devfun, tolPwrss 1e-12) at the
# tight optimum: numDeriv's Richardson extrapolation, where lme4's vcov() takes deriv12's
# differences with a step of 1e-4, which on parameters in the hundreds (Gamma(identity):
# theta 191, intercept 260) leaves the Hessian to PIRLS's rounding.
richardson_se <- function(fit, formula, d, fam) {
  devfun <- glmer(formula, data = d, family = fam, control = tight, devFunOnly = TRUE)
  at <- c(getME(fit, "theta"), fixef(fit))
  H <- numDeriv::hessian(devfun, at)
  exact(sqrt(diag(2 * solve(H)))[-seq_along(getME(fit, "theta"))])
}

out <- list()
for (name in names(cases)) {
  spec <- cases[[name]]
  d <- load(spec$data, spec$factors)
  fam <- get(spec$family)(link = spec$link)
  fits <- lapply(list(tight = tight, default = default), function(control)
    suppressWarnings(glmer(as.formula(spec$formula), data = d, family = fam, control = control)))
  out[[name]] <- c(spec, list(tight = numbers(fits$tight), default = numbers(fits$default)))
  if (name == "gamma_identity")
    out[[name]]$tight$se_richardson <- richardson_se(fits$tight, as.formula(spec$formula), d, fam)
}

# nAGQ > 1 with a non-canonical link (one scalar random intercept): lme4's glmerAGQ. lme4's
# -2 logLik at nAGQ > 1 sums deviance residuals, so it leaves out -2 x the saturated
# log-likelihood (glmflow reports -2 logLik itself).
agq <- list(
  probit = list(data = "contraception", factors = c("livch", "urban"), family = "binomial", link = "probit",
                formula = "urban ~ I(age^2) + livch + (1 | district)", filter = "livch != '0'", nAGQ = 5),
  poisson_sqrt = list(data = "penicillin", factors = character(), family = "poisson", link = "sqrt",
                      formula = "diameter ~ 1 + (1 | sample)", nAGQ = 3),
  cloglog_weights = list(data = "esoph", factors = "alcgp", family = "binomial", link = "cloglog",
                         formula = "cbind(ncases, ncontrols) ~ alcgp + tobgp + (1 | agegp)", nAGQ = 7)
)
for (name in names(agq)) {
  spec <- agq[[name]]
  d <- load(spec$data, spec$factors)
  if (!is.null(spec$filter)) d <- droplevels(d[d$livch != "0", ])
  fam <- get(spec$family)(link = spec$link)
  fit <- suppressWarnings(glmer(as.formula(spec$formula), data = d, family = fam, control = tight, nAGQ = spec$nAGQ))
  out[[paste0("agq_", name)]] <- c(spec, list(tight = numbers(fit)))
}

# infert's age is constant within each matched stratum: with a Gamma family the random
# intercepts fit it exactly and lme4's objective (its own devfun) keeps falling as theta grows
# past where its fit stopped ('unable to evaluate scaled gradient'): there is no optimum.
d <- load("infert", "education")
formula <- age ~ education + factor(spontaneous) + (1 | stratum)
fit <- suppressWarnings(glmer(formula, data = d, family = Gamma(link = "log"), control = default))
devfun <- glmer(formula, data = d, family = Gamma(link = "log"), control = default, devFunOnly = TRUE)
theta <- getME(fit, "theta")
out$exact_fit <- list(data = "infert", factors = "education", family = "Gamma", link = "log",
                      formula = deparse(formula), theta = exact(theta), deviance = exact(-2 * as.numeric(logLik(fit))),
                      devfun_at_theta_times = c(1, 1.5, 2),
                      devfun = exact(sapply(c(1, 1.5, 2), function(m)
                        tryCatch(devfun(c(m * theta, fixef(fit))), error = function(e) NA))))
# penicillin's gaussian(log) model with (1 | sample/plate): plate:sample has one row per level,
# so the same exact fit; lme4 stops in PIRLS
d <- load("penicillin")
out$exact_fit_nested <- list(data = "penicillin", factors = character(), family = "gaussian", link = "log",
                             formula = "diameter ~ 1 + (1 | sample/plate)",
                             lme4_error = tryCatch({glmer(diameter ~ 1 + (1 | sample/plate), data = d,
                               family = gaussian(link = "log"), control = default); "fitted"}, error = conditionMessage))

# co2's gaussian(log) model with conc^2 (a column up to 1e6): lme4 stops with "Downdated VtV
# is not positive definite"; its objective is lowest at theta = 0 with the GLM's estimates
# (higher at small theta > 0): a boundary optimum glmflow reaches.
d <- load("co2", c("type", "treatment"))
formula <- uptake ~ I(conc^2) + type + treatment + (1 | plant)
stopped <- tryCatch({glmer(formula, data = d, family = gaussian(link = "log"), control = default); "fitted"},
                    error = conditionMessage)
g <- glm(uptake ~ I(conc^2) + type + treatment, data = d, family = gaussian(link = "log"))
devfun <- glmer(formula, data = d, family = gaussian(link = "log"), control = tight, devFunOnly = TRUE)
out$boundary_optimum <- list(data = "co2", factors = c("type", "treatment"), family = "gaussian", link = "log",
                             formula = deparse(formula), lme4_error = stopped, glm_beta = exact(coef(g)),
                             theta = c(0, 1e-4, 1e-3), devfun = exact(sapply(c(0, 1e-4, 1e-3),
                               function(t) devfun(c(t, coef(g))))))

# airquality's gaussian(log) model, singular (theta 0): its fixed effects are 0.99 correlated,
# so the SEs amplify the Hessian's errors 50-fold, and deriv12's step of 1e-4 puts lme4's vcov()
# 2% below the curvature of its own objective. At theta = 0 the objective is even in theta
# (no theta-beta cross terms), so the beta block's curvature is that of devfun(c(0, beta)):
# deriv12 with steps of 1e-5 and 1e-6 agree on it to 1e-4.
d <- load("airquality")
formula <- wind ~ abs(temp) + (1 | month)
fit <- suppressWarnings(glmer(formula, data = d, family = gaussian(link = "log"), control = tight))
devfun <- glmer(formula, data = d, family = gaussian(link = "log"), control = tight, devFunOnly = TRUE)
beta_se <- function(delta) {
  H <- lme4:::deriv12(function(beta) devfun(c(0, beta)), fixef(fit), delta = delta)$Hessian
  exact(sqrt(diag(2 * solve(H))))
}
out$singular_correlated <- list(data = "airquality", factors = character(), family = "gaussian", link = "log",
                                formula = deparse(formula), tight = numbers(fit),
                                se_delta_1e5 = beta_se(1e-5), se_delta_1e6 = beta_se(1e-6))

# glmm_general.R's Gamma(inverse) model on bdf: its fixed effects have SEs of 1e-5 to 6e-4,
# below deriv12's step of 1e-4, so lme4's vcov() is 3% off the curvature of its own objective
bdf <- read.csv("resources/bdf.csv")
bdf <- bdf[bdf$repeatgr != 2, ]
names(bdf)[names(bdf) == "schoolNR"] <- "school_nr"
names(bdf)[names(bdf) == "langPOST"] <- "lang_post"
names(bdf)[names(bdf) == "IQ.verb"] <- "iq_verb"
formula <- lang_post ~ ses + iq_verb + (1 | school_nr)
fit <- suppressWarnings(glmer(formula, data = bdf, family = Gamma(link = "inverse"), control = tight))
out$bdf_gamma_inverse <- list(se = exact(sqrt(diag(as.matrix(vcov(fit))))),
                              se_richardson = richardson_se(fit, formula, bdf, Gamma(link = "inverse")))
out$r_version <- R.version.string
out$lme4_version <- as.character(packageVersion("lme4"))
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = NA), "tests/r/glmm_engine_reference.json")
