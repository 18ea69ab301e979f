# R's answers to the differential test's cases (tests/r/differential_cases.json, drawn by
# tests/differential.py): glm / lm, lme4::glmer (bobyqa to 1e5 evaluations and PIRLS to 1e-10: at
# its default 1e-7, lme4 reports a -2 logLik up to 1e-3 above the Laplace value at its own
# estimates), effects::Effect and anova.
# Linear mixed models (kinds lmm and lmm_anova): lmerTest::lmer at its tightest optimum (bobyqa to
# rhoend 1e-12 or nloptwrap at zero relative tolerances, whichever is lower, as tests/r/lmm.R),
# with the default fit's criterion, and anova.merMod of two such fits.
# Run from the repository root:  Rscript tests/r/differential.R [lmm]
# Writes tests/r/differential_reference.json (the glm, grid, anova and glmm cases) and
# tests/r/differential_lmm_reference.json (the lmm and lmm_anova cases): per case R's numbers,
# or the error R stops with. With the argument lmm, only the second (a minute, not minutes).
suppressMessages({library(jsonlite); library(lme4); library(lmerTest); library(effects); library(glmmTMB)})
options(useFancyQuotes = FALSE, warn = 1)
icuSetCollate(locale = "en_US")  # the level order of an en_US.UTF-8 session
cases <- fromJSON("tests/r/differential_cases.json", simplifyVector = FALSE)

case_data <- function(case) {
  d <- read.csv(file.path("tests/r/differential", paste0(case$dataset, ".csv")))
  for (column in unlist(case$factors)) {
    given <- case$levels[[column]]
    d[[column]] <- if (is.null(given)) factor(d[[column]]) else
      factor(as.character(d[[column]]), levels = as.character(unlist(given)))
  }
  d
}

# A call of glm (lm for gaussian identity without weights or offset, as glmflow) or glmer.
model_call <- function(model, formula, mixed) {
  text <- formula
  formula <- as.formula(text, env = globalenv())
  link <- if (is.null(model$link)) NULL else model$link
  fam <- if (is.null(link)) get(model$family)() else get(model$family)(link = link)
  plain <- is.null(model$weights) && is.null(model$offset) && !grepl("offset(", text, fixed = TRUE)
  lm_like <- !mixed && model$family == "gaussian" && identical(link, "identity") && plain
  call <- if (mixed) {
    bquote(glmer(.(formula), family = .(fam), data = d,
                 control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5), tolPwrss = 1e-10)))
  } else if (lm_like) bquote(lm(.(formula), data = d)) else
    bquote(glm(.(formula), family = .(fam), data = d))
  if (!is.null(model$weights)) call$weights <- as.name(model$weights)
  if (!is.null(model$offset)) call$offset <- str2lang(model$offset)
  if (!is.null(model$nAGQ)) call$nAGQ <- model$nAGQ
  call
}

# Run a call, keeping R's warnings and messages; list(value, warnings, messages) or list(error).
quietly <- function(expr) {
  warned <- character(); said <- character()
  value <- tryCatch(withCallingHandlers(expr,
    warning = function(w) { warned <<- c(warned, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(m) { said <<- c(said, trimws(conditionMessage(m))); invokeRestart("muffleMessage") }),
    error = function(e) structure(conditionMessage(e), class = "failed"))
  if (inherits(value, "failed")) return(list(error = as.character(value), warnings = I(warned)))
  list(value = value, warnings = I(warned), messages = I(said))
}

glm_numbers <- function(fit) {
  cf <- coef(fit)
  s <- summary(fit)
  table <- coef(s)
  out <- list(term = names(cf), estimate = unname(cf), aliased = names(cf)[is.na(cf)],
              std_error = unname(table[, 2][match(names(cf), rownames(table))]),
              nobs = nobs(fit), df_residual = df.residual(fit), deviance = deviance(fit),
              logLik = as.numeric(logLik(fit)), AIC = AIC(fit), BIC = BIC(fit),
              xlevels = lapply(fit$xlevels, identity))
  if (inherits(fit, "glm")) out$iter <- fit$iter
  out
}

glmm_numbers <- function(fit, case) {
  v <- as.matrix(vcov(fit))
  list(term = names(fixef(fit)), estimate = unname(fixef(fit)), std_error = unname(sqrt(diag(v))),
       std_error_hessian = hessian_se(fit, case), theta = unname(getME(fit, "theta")),
       deviance = unname(-2 * as.numeric(logLik(fit))), logLik = as.numeric(logLik(fit)), nobs = nobs(fit),
       singular = isSingular(fit), sigma = sigma(fit))
}

# The fixed effects' SEs from an accurate Hessian of the Laplace objective, where lme4's vcov()
# takes finite differences with a fixed step that can be 1-10% off. Binomial (logit) and
# Poisson (log): glmmTMB's (automatic differentiation of the same Laplace objective). Other
# links and the families with a dispersion, whose objectives in lme4 are its own (glmmTMB's
# differ by 0.1-0.3% in the SEs on cloglog models): numDeriv's Richardson
# extrapolation of devfun(c(theta, beta)), at two first steps (d = 1e-2, 1e-3) that must agree
# to 1e-3 (either alone was 2-12% off on some of these models); NULL where they do not.
hessian_se <- function(fit, case) {
  if (getME(fit, "devcomp")$dims[["nAGQ"]] > 1) return(NULL)
  canonical <- (case$model$family == "binomial" && case$model$link == "logit") ||
    (case$model$family == "poisson" && case$model$link == "log")
  if (canonical) {  # elsewhere glmmTMB's Laplace takes the observed information, lme4's Fisher's
    # the config's offset as glmer's offset argument; one in the formula is in formula(fit)
    offset <- if (is.null(case$model$offset)) NULL else eval(str2lang(case$model$offset), d)
    tmb <- tryCatch(suppressWarnings(glmmTMB(formula(fit), family = family(fit), data = d, offset = offset)),
                    error = function(e) NULL)
    se <- if (is.null(tmb)) NULL else unname(sqrt(diag(vcov(tmb)$cond)))
    return(if (is.null(se) || any(!is.finite(se)) || length(se) != length(fixef(fit))) NULL else se)
  }
  devfun <- update(fit, devFunOnly = TRUE)
  theta <- getME(fit, "theta")
  beta <- length(theta) + seq_along(fixef(fit))
  at <- function(step) tryCatch({
    h <- numDeriv::hessian(devfun, c(theta, fixef(fit)), method.args = list(d = step))
    unname(sqrt(diag(2 * solve(h))[beta]))
  }, error = function(e) NULL, warning = function(w) NULL)
  coarse <- at(1e-2); fine <- at(1e-3)
  if (is.null(coarse) || is.null(fine) || any(!is.finite(c(coarse, fine)))) return(NULL)
  if (max(abs(coarse - fine) / fine) > 1e-3) return(NULL)
  fine
}

source("tests/r/effects_common.R")  # effect_of()
effect_numbers <- function(fit, at) {
  effect_of(names(at), fit, Filter(function(v) length(v) > 0, lapply(at, unlist)))
}

anova_numbers <- function(fits, test) {
  tab <- do.call(anova, c(fits, list(test = test)))
  lm_like <- inherits(fits[[1]], "lm") && !inherits(fits[[1]], "glm")
  list(resid_df = if (lm_like) tab$Res.Df else tab[["Resid. Df"]],
       resid_dev = if (lm_like) tab$RSS else tab[["Resid. Dev"]],
       df = tab$Df, p_value = tab[[ncol(tab)]], statistic = if (test %in% c("F", "Rao")) tab[[test]] else NULL)
}

fit_case <- function(case) {
  mixed <- case$kind == "glmm"
  if (case$kind == "anova") {
    runs <- lapply(case$formulas, function(f) quietly(eval(model_call(case$model, f, FALSE), globalenv())))
    failed <- Filter(function(r) !is.null(r$error), runs)
    if (length(failed)) return(list(error = failed[[1]]$error))
    table <- quietly(anova_numbers(lapply(runs, `[[`, "value"), case$test))
    if (!is.null(table$error)) return(list(error = table$error))
    return(list(anova = table$value, warnings = table$warnings))
  }
  run <- quietly(eval(model_call(case$model, case$model$formula, mixed), globalenv()))
  if (!is.null(run$error)) return(list(error = run$error, warnings = run$warnings))
  out <- list(fit = if (mixed) glmm_numbers(run$value, case) else glm_numbers(run$value),
              warnings = run$warnings, messages = run$messages)
  if (case$kind == "grid") {
    effect <- quietly(effect_numbers(run$value, case$at))
    if (!is.null(effect$error)) return(c(out, list(effect_error = effect$error)))
    out$effect <- effect$value
  }
  out
}

tight <- list(
  lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)),
  lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 0,
                                                      ftol_rel = 0, maxeval = 1e5)))
criterion <- function(fit) if (isREML(fit)) REMLcrit(fit) else deviance(fit)

# lmerTest::lmer of a case's model (its weights column and offset expression as lmer's
# arguments, evaluated in d), at lmer's default control or the given one.
lmm_call <- function(model, formula, control = NULL) {
  call <- bquote(lmerTest::lmer(.(as.formula(formula, env = globalenv())), data = d,
                                REML = .(if (is.null(model$REML)) TRUE else model$REML)))
  if (!is.null(model$weights)) call$weights <- as.name(model$weights)
  if (!is.null(model$offset)) call$offset <- str2lang(model$offset)
  if (!is.null(control)) call$control <- control
  call
}

# The lower of the two tight fits, or the error (and warnings) of the first.
tightest <- function(model, formula) {
  runs <- lapply(tight, function(control) quietly(eval(lmm_call(model, formula, control), globalenv())))
  fitted <- Filter(function(r) is.null(r$error), runs)
  if (!length(fitted)) return(runs[[1]])
  fitted[[which.min(vapply(fitted, function(r) criterion(r$value), 0))]]
}

# sigma relative to the spread of the response less its offset: about 1e-5 and below where a
# random intercept or the fixed effects fit the response exactly (no optimum; glmflow refuses)
sigma_ratio <- function(fit) sigma(fit) / sd(getME(fit, "y") - getME(fit, "offset"))

lmm_numbers <- function(fit, default) {
  coefs <- summary(fit)$coefficients
  ll <- logLik(fit)
  list(term = rownames(coefs), estimate = unname(coefs[, "Estimate"]), std_error = unname(coefs[, "Std. Error"]),
       df = unname(coefs[, "df"]), p_value = unname(coefs[, "Pr(>|t|)"]), theta = unname(getME(fit, "theta")),
       sigma = sigma(fit), REML = isREML(fit), criterion = criterion(fit), default_criterion = if (is.null(default)) NULL else criterion(default),
       logLik = as.numeric(ll), df_logLik = attr(ll, "df"), nobs = nobs(fit), singular = isSingular(fit),
       sigma_ratio = sigma_ratio(fit))
}

fit_lmm_case <- function(case) {
  if (case$kind == "lmm_anova") {
    runs <- lapply(case$formulas, function(f) tightest(case$model, f))
    failed <- Filter(function(r) !is.null(r$error), runs)
    if (length(failed)) return(list(error = failed[[1]]$error))
    said <- character()
    table <- withCallingHandlers(anova(runs[[1]]$value, runs[[2]]$value),
                                 message = function(m) { said <<- c(said, trimws(conditionMessage(m)))
                                                         invokeRestart("muffleMessage") })
    return(list(anova = list(npar = table$npar, AIC = table$AIC, BIC = table$BIC, logLik = table$logLik,
                             deviance = table$deviance, Chisq = table$Chisq, Df = table$Df,
                             p_value = table[["Pr(>Chisq)"]],
                             sigma_ratio = vapply(runs, function(r) sigma_ratio(r$value), 0)),
                messages = I(said)))
  }
  run <- tightest(case$model, case$model$formula)
  if (!is.null(run$error)) return(list(error = run$error, warnings = run$warnings))
  default <- quietly(eval(lmm_call(case$model, case$model$formula), globalenv()))
  list(fit = lmm_numbers(run$value, default$value), warnings = run$warnings, messages = run$messages,
       default_warnings = default$warnings)
}

# Each case's answer, its data (d) in the global environment, where lme4 and effects look for it.
answer <- function(case) {
  d <- case_data(case)
  if (!is.null(case$r_subset)) {
    keep <- str2lang(case$r_subset)  # evaluated in the data (infert has a column named case)
    d <- d[which(eval(keep, d)), , drop = FALSE]
  }
  assign("d", d, envir = globalenv())
  if (case$kind %in% c("lmm", "lmm_anova")) fit_lmm_case(case) else fit_case(case)
}

only <- commandArgs(trailingOnly = TRUE)
outputs <- list(list(file = "tests/r/differential_reference.json", lmm = FALSE),
                list(file = "tests/r/differential_lmm_reference.json", lmm = TRUE))
for (output in outputs) {
  if (length(only) && !(output$lmm && "lmm" %in% only)) next
  out <- list()
  for (case in cases) if ((case$kind %in% c("lmm", "lmm_anova")) == output$lmm) out[[case$id]] <- answer(case)
  out$r_version <- R.version.string
  if (output$lmm) out$lmerTest <- as.character(packageVersion("lmerTest"))
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "string", null = "null"), output$file)
}
