# Reference fits for glmflow's general mixed models (random slopes, crossed, nested, ||,
# non-canonical links, Poisson, Gamma, inverse.gaussian, gaussian with a log link), at the tightest optimum lme4 reaches, plus the data sets
# they need. R 4.2, lme4 from Debian. Run from the repository root:
#   Rscript tests/r/glmm_general.R   (writes tests/r/glmm_general_reference.json and
#                                     resources/grouseticks.csv)
# "exact" is glmer with bobyqa (rhoend 1e-10) and tolPwrss 1e-12, as
# ../shared/reference/glmm_general_reference.json describes its own "exact" fits.
# Deterministic: a rerun on one machine reproduces the JSON byte for byte; on another build of
# R/lme4/BLAS bobyqa stops elsewhere on these flat optima (bdf: beta 4e-6, vcov's SEs 1e-5 relative,
# a singular fit's ~0 variance 1e-18 vs 6e-18), so tests/test_glmm_general.py's tolerances cover that.
# SEs stay vcov's (lme4's deriv12 Hessian, as glmflow computes them): numDeriv's Richardson Hessian
# differs from it by 3-13% on the singular and Gamma(inverse) fits.
suppressMessages({library(lme4); library(jsonlite)})
options(useFancyQuotes = FALSE)
exact <- function(x) sprintf("%.17g", x)
ctl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5), tolPwrss = 1e-12)

# lme4's grouseticks with a standardised height (the raw height's slope variance is 1e-6 and
# its Hessian degenerate in lme4 too); names as glmflow's clean_names gives them.
data(grouseticks)
g <- data.frame(index = grouseticks$INDEX, ticks = grouseticks$TICKS, brood = grouseticks$BROOD,
                height = grouseticks$HEIGHT, year = grouseticks$YEAR, location = grouseticks$LOCATION)
g$height_z <- round((g$height - mean(g$height)) / sd(g$height), 6)
write.csv(g, "resources/grouseticks.csv", row.names = FALSE)
g <- read.csv("resources/grouseticks.csv")
for (column in c("index", "brood", "year", "location")) g[[column]] <- factor(g[[column]])

bdf <- read.csv("resources/bdf.csv")
bdf <- bdf[bdf$repeatgr != 2, ]
names(bdf)[names(bdf) == "schoolNR"] <- "school_nr"
names(bdf)[names(bdf) == "Minority"] <- "minority"
names(bdf)[names(bdf) == "langPOST"] <- "lang_post"
names(bdf)[names(bdf) == "IQ.verb"] <- "iq_verb"
bdf$minority <- factor(bdf$minority)
contraception <- read.csv("resources/contraception.csv")
for (column in c("district", "use", "livch", "urban")) contraception[[column]] <- factor(contraception[[column]])

# The fixed effects' SEs from an accurate Hessian of lme4's own objective: numDeriv's Richardson
# extrapolation of devfun(c(theta, beta)) from two first steps (d = 1e-2, 1e-3) that must agree
# to 1e-4. vcov() takes deriv12's fixed step of 1e-4, 3% off on gamma_inverse (SEs of 1e-5).
accurate_se <- function(fit) {
  devfun <- update(fit, devFunOnly = TRUE)
  theta <- getME(fit, "theta")
  beta <- length(theta) + seq_along(fixef(fit))
  at <- function(step) {
    h <- numDeriv::hessian(devfun, c(theta, fixef(fit)), method.args = list(d = step))
    sqrt(diag(2 * solve(h))[beta])
  }
  coarse <- at(1e-2); fine <- at(1e-3)
  if (max(abs(coarse - fine) / fine) > 1e-4) return(NULL)
  exact(unname(fine))
}

describe <- function(fit, formula, family, link, data_name, filter = NULL) {
  vc <- as.data.frame(VarCorr(fit))
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  list(
    formula = formula, family = family, link = link, data = data_name, filter = filter,
    term = names(fixef(fit)), beta = exact(fixef(fit)), theta = exact(getME(fit, "theta")),
    se = exact(sqrt(diag(as.matrix(vcov(fit))))), se_accurate = accurate_se(fit),
    deviance = exact(-2 * as.numeric(logLik(fit))), AIC = exact(AIC(fit)), BIC = exact(BIC(fit)),
    sigma = exact(sigma(fit)),
    nobs = nobs(fit), n_groups = as.list(ngrps(fit)), singular = isSingular(fit),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = exact(vc$vcov), sdcor = exact(vc$sdcor)),
    ranef = list(grp = as.character(re$grpvar), level = as.character(re$grp), term = as.character(re$term),
                 condval = exact(re$condval), condsd = exact(re$condsd)),
    summary = paste(capture.output(print(summary(fit))), collapse = "\n")
  )
}

models <- list(
  poisson_slope = list("ticks ~ year + height_z + (1 + height_z | location)", "poisson", "log", g, "grouseticks"),
  three_factors = list("ticks ~ year + height_z + (1 | index) + (1 | brood) + (1 | location)", "poisson", "log", g, "grouseticks"),
  nested = list("ticks ~ year + height_z + (1 | location/brood)", "poisson", "log", g, "grouseticks"),
  uncorrelated = list("repeatgr ~ ses + minority + (ses || school_nr)", "binomial", "logit", bdf, "bdf"),
  probit_intercept = list("use ~ age + urban + livch + (1 | district)", "binomial", "probit", contraception, "contraception"),
  cloglog_slope = list("use ~ age + urban + (urban | district)", "binomial", "cloglog", contraception, "contraception"),
  # families with a dispersion, fitted as lme4 fits them (its aic() with dev / sum(wt))
  gamma_log = list("lang_post ~ ses + iq_verb + (1 | school_nr)", "Gamma", "log", bdf, "bdf"),
  gamma_inverse = list("lang_post ~ ses + iq_verb + (1 | school_nr)", "Gamma", "inverse", bdf, "bdf"),
  gamma_log_slope = list("lang_post ~ ses + iq_verb + (1 + iq_verb | school_nr)", "Gamma", "log", bdf, "bdf"),
  inverse_gaussian_log = list("lang_post ~ ses + iq_verb + (1 | school_nr)", "inverse.gaussian", "log", bdf, "bdf"),
  gaussian_log = list("lang_post ~ ses + iq_verb + (1 | school_nr)", "gaussian", "log", bdf, "bdf")
)
out <- list()
for (name in names(models)) {
  m <- models[[name]]
  fam <- get(m[[2]])(link = m[[3]])
  fit <- glmer(as.formula(m[[1]]), data = m[[4]], family = fam, control = ctl)
  out[[name]] <- describe(fit, m[[1]], m[[2]], m[[3]], m[[5]], if (m[[5]] == "bdf") "repeatgr != 2" else NULL)
}
out$notes <- paste("glmer, bobyqa rhoend 1e-10, tolPwrss 1e-12;", R.version.string, "lme4", as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null"), "tests/r/glmm_general_reference.json")
