# Reference values for every family x link glmflow offers, and prior weights (R 4.2 from Debian).
# Run from the repository root:  Rscript tests/r/glm_families.R
# Writes tests/r/glm_families_reference.json; tests/test_families.py compares glmflow with it.
library(jsonlite)
options(useFancyQuotes = FALSE)

titanic <- read.csv("resources/titanic_train.csv")
names(titanic) <- c("passenger_id", "survived", "pclass", "name", "sex", "age",
                    "sib_sp", "parch", "ticket", "fare", "cabin", "embarked")
titanic$sex <- factor(titanic$sex)
bdf <- read.csv("resources/bdf.csv")
names(bdf) <- c("school_nr", "pupil_nr", "iq_verb", "iq_perf", "sex", "minority", "repeatgr",
                "arit_pret", "class_nr", "arit_post", "lang_pret", "lang_post", "ses", "denomina",
                "school_ses", "satiprin", "natitest", "meetings", "currmeet", "mixedgra", "percmino",
                "aritdiff", "homework", "classsiz", "groupsiz", "iq_ver_cen", "avg_iq_ver_cen",
                "grp_siz_cen")
cbpp <- read.csv("resources/cbpp.csv")
cbpp$period <- factor(cbpp$period)
proportions <- read.csv("tests/r/binomial_weights_data.csv")
# Counts whose Poisson identity-link fit steps out of bounds (mu < 0), halved by glm.fit; drawn
# with numpy's default_rng(68): x = round(uniform(0, 10, 30), 1), y = poisson(max(0.05 + 0.4 x, 0.01))
halving <- read.csv("tests/r/poisson_halving_data.csv")
data_sets <- list(titanic = titanic, bdf = bdf, cbpp = cbpp, proportions = proportions, halving = halving)

# name = list(dataset, formula, family, link (NULL: default), weights (NULL: none))
models <- list(
  binomial_probit = list("titanic", survived ~ sex + fare, "binomial", "probit"),
  binomial_cauchit = list("titanic", survived ~ sex + fare, "binomial", "cauchit"),
  binomial_cloglog = list("titanic", survived ~ sex + fare, "binomial", "cloglog"),
  binomial_log = list("titanic", survived ~ sex, "binomial", "log"),
  poisson_identity = list("cbpp", incidence ~ period, "poisson", "identity"),
  poisson_sqrt = list("cbpp", incidence ~ period, "poisson", "sqrt"),
  # glm.fit's step-halving: steps that leave mu > 0 are halved towards the previous coefficients
  poisson_identity_halving = list("halving", y ~ x, "poisson", "identity"),
  gaussian_log = list("bdf", lang_post ~ ses + iq_verb, "gaussian", "log"),
  gaussian_inverse = list("bdf", lang_post ~ ses + iq_verb, "gaussian", "inverse"),
  gamma_inverse = list("bdf", lang_post ~ ses + iq_verb, "Gamma", NULL),
  gamma_log = list("bdf", lang_post ~ ses + iq_verb, "Gamma", "log"),
  gamma_identity = list("bdf", lang_post ~ ses + iq_verb, "Gamma", "identity"),
  inverse_gaussian = list("bdf", lang_post ~ ses + iq_verb, "inverse.gaussian", NULL),
  inverse_gaussian_log = list("bdf", lang_post ~ ses + iq_verb, "inverse.gaussian", "log"),
  inverse_gaussian_inverse = list("bdf", lang_post ~ ses + iq_verb, "inverse.gaussian", "inverse"),
  inverse_gaussian_identity = list("bdf", lang_post ~ ses + iq_verb, "inverse.gaussian", "identity"),
  quasibinomial = list("titanic", survived ~ sex + fare, "quasibinomial", NULL),
  quasipoisson = list("titanic", sib_sp ~ sex + age, "quasipoisson", NULL),
  binomial_weights_with_zeros = list("titanic", survived ~ fare, "binomial", NULL, "parch"),
  poisson_weights = list("titanic", sib_sp ~ sex + age, "poisson", NULL, "pclass"),
  gaussian_weights = list("bdf", lang_post ~ ses + iq_verb, "gaussian", NULL, "iq_perf"),
  gamma_weights = list("bdf", lang_post ~ ses, "Gamma", "log", "iq_perf"),
  cbind_response = list("cbpp", cbind(incidence, size - incidence) ~ period, "binomial", NULL),
  cbind_cloglog = list("cbpp", cbind(incidence, size - incidence) ~ period, "binomial", "cloglog"),
  proportion_weights = list("proportions", proportion ~ x, "binomial", NULL, "trials"),
  offset_in_formula = list("cbpp", incidence ~ period + offset(log(size)), "poisson", NULL),
  offset_in_config = list("cbpp", incidence ~ period, "poisson", NULL, NULL, "log(size)"),
  quasipoisson_offset = list("cbpp", incidence ~ period + offset(log(size)), "quasipoisson", NULL)
)

out <- list()
for (name in names(models)) {
  m <- models[[name]]
  link <- if (length(m) >= 4) m[[4]] else NULL
  weights <- if (length(m) >= 5) m[[5]] else NULL
  offset <- if (length(m) >= 6) m[[6]] else NULL
  family_arg <- if (is.null(link)) m[[3]] else call(m[[3]], link = link)
  call <- bquote(glm(.(m[[2]]), family = .(family_arg), data = .(as.name(m[[1]]))))
  if (!is.null(weights)) call$weights <- as.name(weights)
  if (!is.null(offset)) call$offset <- str2lang(offset)
  warned <- character()
  fit <- withCallingHandlers(eval(call, data_sets), warning = function(w) {
    warned <<- c(warned, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  s <- summary(fit)
  cf <- coef(s)
  out[[name]] <- list(
    dataset = m[[1]], formula = paste(deparse(m[[2]]), collapse = ""), family = m[[3]],
    link = if (is.null(link)) NA else link, weights = if (is.null(weights)) NA else weights,
    offset = if (is.null(offset)) NA else offset,
    tidy = list(term = rownames(cf), estimate = unname(cf[, 1]), std_error = unname(cf[, 2]),
                statistic = unname(cf[, 3]), p_value = unname(cf[, 4])),
    logLik = as.numeric(logLik(fit)), AIC = AIC(fit), BIC = BIC(fit), deviance = deviance(fit),
    null_deviance = fit$null.deviance, df_residual = df.residual(fit), df_null = fit$df.null,
    iter = fit$iter, dispersion = s$dispersion, warnings = I(warned),
    summary = paste(capture.output(print(s)), collapse = "\n")
  )
}
# Predictions of models with an offset (formula and config), link scale with SEs, and the
# response scale: predict(type = "link", se.fit = TRUE) at period 1 and 3, size 10 and 20.
grid <- expand.grid(period = factor(c("1", "3"), levels = levels(cbpp$period)), size = c(10, 20))
for (name in c("offset_in_formula", "offset_in_config")) {
  fit <- if (name == "offset_in_formula") glm(incidence ~ period + offset(log(size)), poisson, cbpp) else
    glm(incidence ~ period, poisson, cbpp, offset = log(size))
  p <- predict(fit, newdata = grid, type = "link", se.fit = TRUE)
  out[[paste0("predict_", name)]] <- list(period = as.character(grid$period), size = grid$size,
                                         link = unname(p$fit), se_link = unname(p$se.fit),
                                         response = unname(exp(p$fit)))
}
# Predictions on other links, as effects::Effect (every predictor focal): the link with its SE,
# the inverse link, and the Wald interval with effects' quantile: t on df.residual where the
# dispersion is estimated (Gamma, inverse.gaussian), normal for binomial.
suppressMessages(library(effects))
for (case in list(list("binomial_probit", "titanic", survived ~ sex + fare, binomial(link = "probit")),
                  list("binomial_cloglog", "titanic", survived ~ sex + fare, binomial(link = "cloglog")),
                  list("gamma_log", "bdf", lang_post ~ ses + iq_verb, Gamma(link = "log")),
                  list("inverse_gaussian", "bdf", lang_post ~ ses + iq_verb, inverse.gaussian()))) {
  d <- data_sets[[case[[2]]]]
  fit <- eval(bquote(glm(.(case[[3]]), family = .(case[[4]]), data = d)))
  e <- if (case[[2]] == "titanic") Effect(c("sex", "fare"), fit, xlevels = list(fare = c(10, 100))) else
    Effect(c("ses", "iq_verb"), fit, xlevels = list(ses = c(10, 30), iq_verb = c(8, 14)))
  inv <- e$transformation$inverse
  out[[paste0("predict_", case[[1]])]] <- list(link = as.vector(e$fit), se_link = as.vector(e$se),
    response = as.vector(inv(e$fit)), conf_low = as.vector(inv(e$lower)), conf_high = as.vector(inv(e$upper)))
}

# anova(m1, m2, m3, test = ...) of nested models.
anovas <- list(
  anova_binomial_lrt = list("titanic", c("survived ~ fare", "survived ~ fare + sex", "survived ~ fare * sex"),
                            "binomial", "LRT"),
  anova_binomial_chisq = list("titanic", c("survived ~ fare", "survived ~ fare + sex"), "binomial", "Chisq"),
  anova_binomial_rao = list("titanic", c("survived ~ fare", "survived ~ fare + sex", "survived ~ fare * sex"),
                            "binomial", "Rao"),
  anova_binomial_f = list("titanic", c("survived ~ fare", "survived ~ fare + sex"), "binomial", "F"),
  anova_gamma_f = list("bdf", c("lang_post ~ ses", "lang_post ~ ses + iq_verb", "lang_post ~ ses * iq_verb"),
                       "Gamma", "F"),
  anova_quasipoisson_f = list("titanic", c("sib_sp ~ sex", "sib_sp ~ sex + parch"), "quasipoisson", "F"),
  anova_gamma_rao = list("bdf", c("lang_post ~ ses", "lang_post ~ ses + iq_verb"), "Gamma", "Rao"),
  anova_lm_f = list("bdf", c("lang_post ~ ses", "lang_post ~ ses + iq_verb"), "gaussian", "F")
)
for (name in names(anovas)) {
  a <- anovas[[name]]
  d <- data_sets[[a[[1]]]]
  fits <- lapply(a[[2]], function(f) if (a[[3]] == "gaussian") lm(as.formula(f), d) else
    glm(as.formula(f), family = a[[3]], data = d))
  tab <- suppressWarnings(do.call(anova, c(fits, list(test = a[[4]]))))
  entry <- list(dataset = a[[1]], formulas = a[[2]], family = a[[3]], test = a[[4]],
                resid_df = if (a[[3]] == "gaussian") tab$Res.Df else tab[["Resid. Df"]],
                resid_dev = if (a[[3]] == "gaussian") tab$RSS else tab[["Resid. Dev"]],
                df = tab$Df, deviance = if (a[[3]] == "gaussian") tab[["Sum of Sq"]] else tab$Deviance,
                p_value = tab[[ncol(tab)]])
  if (a[[4]] == "F") entry$F <- tab$F
  if (a[[4]] == "Rao") entry$Rao <- tab$Rao
  out[[name]] <- entry
}
out$r_version <- R.version.string
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "tests/r/glm_families_reference.json")
