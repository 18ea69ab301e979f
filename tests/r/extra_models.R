# Reference values for glmflow's own models beyond the chapter (R 4.2 from Debian).
# Run from the repository root:  Rscript tests/r/extra_models.R
# Writes tests/r/extra_reference.json; the tests compare glmflow against it.
library(jsonlite)
options(useFancyQuotes = FALSE)  # the chapter prints plain quotes in the significance legend

titanic <- read.csv("resources/titanic_train.csv")
names(titanic) <- c("passenger_id", "survived", "pclass", "name", "sex", "age",
                    "sib_sp", "parch", "ticket", "fare", "cabin", "embarked")
titanic$sex <- factor(titanic$sex)

models <- list(
  glm_class_age = list(formula = survived ~ factor(pclass) + age, family = "binomial"),
  glm_class = list(formula = survived ~ factor(pclass), family = "binomial"),
  glm_age_only = list(formula = survived ~ age, family = "binomial"),
  glm_quadratic = list(formula = survived ~ fare + I(fare^2) + sex:age, family = "binomial"),
  glm_no_intercept = list(formula = survived ~ sex - 1, family = "binomial"),
  lm_fare_age_class = list(formula = fare ~ age + factor(pclass), family = "gaussian"),
  poisson_sib_sp = list(formula = sib_sp ~ sex + age + log(fare + 1), family = "poisson")
)

out <- list()
for (name in names(models)) {
  m <- models[[name]]
  fit <- if (m$family == "gaussian") {
    eval(bquote(lm(.(m$formula), data = titanic)))
  } else {
    eval(bquote(glm(.(m$formula), family = .(m$family), data = titanic)))
  }
  s <- summary(fit)
  cf <- coef(s)
  ci <- if (m$family == "gaussian") confint(fit) else confint.default(fit)
  entry <- list(
    formula = paste(deparse(m$formula), collapse = ""),
    family = m$family,
    tidy = list(term = rownames(cf), estimate = unname(cf[, 1]), std_error = unname(cf[, 2]),
                statistic = unname(cf[, 3]), p_value = unname(cf[, 4]),
                conf_low = unname(ci[, 1]), conf_high = unname(ci[, 2])),
    nobs = nobs(fit), n_dropped = length(fit$na.action),
    logLik = as.numeric(logLik(fit)), AIC = AIC(fit), BIC = BIC(fit),
    deviance = deviance(fit), df_residual = df.residual(fit),
    summary = paste(capture.output(print(s)), collapse = "\n")
  )
  if (m$family != "gaussian") {
    entry$null_deviance <- fit$null.deviance
    entry$df_null <- fit$df.null
    entry$iter <- fit$iter
  } else {
    entry$r_squared <- s$r.squared
    entry$adj_r_squared <- s$adj.r.squared
    entry$sigma <- s$sigma
    entry$fstatistic <- unname(s$fstatistic)
  }
  out[[name]] <- entry
}

lrt <- anova(glm(survived ~ age, binomial, titanic), glm(survived ~ factor(pclass) + age, binomial, titanic),
             test = "LRT")
out$lrt_class_given_age <- list(compact = "glm_age_only", augmented = "glm_class_age",
  resid_df = lrt[["Resid. Df"]], resid_dev = lrt[["Resid. Dev"]], df = lrt$Df[2],
  deviance = lrt$Deviance[2], p_value = lrt[["Pr(>Chi)"]][2])

lm_small <- lm(fare ~ age, titanic)
lm_big <- lm(fare ~ age + factor(pclass), titanic)
lrt_lm <- anova(lm_small, lm_big, test = "LRT")
out$lrt_lm_class <- list(compact = "lm_fare_age", augmented = "lm_fare_age_class",
  resid_df = lrt_lm$Res.Df, resid_dev = lrt_lm$RSS, df = lrt_lm$Df[2],
  deviance = lrt_lm[["Sum of Sq"]][2], p_value = lrt_lm[["Pr(>Chi)"]][2])

out$r_version <- R.version.string
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/r/extra_reference.json")
