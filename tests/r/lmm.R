# Reference fits for glmflow's linear mixed models (lme4::lmer, lmerTest's Satterthwaite df) and
# the data sets they use. R 4.2, lme4 and lmerTest from Debian. Run from the repository root:
#   Rscript tests/r/lmm.R   (writes tests/r/lmm/<name>.csv and tests/r/lmm_reference.json)
# Data: column names as janitor::clean_names() leaves them, factors as their labels, NA as NA
# (as tests/r/differential_data.R writes its data). "exact" fits are lmer with bobyqa run to
# rhoend 1e-12 or nloptwrap at zero relative tolerances, whichever is lower, lme4's optimum to
# the last digits; "default_criterion" is lmer's default fit's
# objective, which glmflow's must not exceed.
suppressMessages({library(lme4); library(lmerTest); library(effects); library(jsonlite)})
options(useFancyQuotes = FALSE)
exact <- function(x) sprintf("%.17g", x)
dir.create("tests/r/lmm", showWarnings = FALSE)
write_data <- function(d, name) {
  names(d) <- gsub("_+", "_", gsub("^_|_$", "", tolower(gsub("[^A-Za-z0-9]+", "_", names(d)))))
  for (column in names(d)) if (is.factor(d[[column]])) d[[column]] <- as.character(d[[column]])
  write.csv(d, file.path("tests/r/lmm", paste0(name, ".csv")), row.names = FALSE, na = "NA")
}
sleep <- sleepstudy
sleep$w <- 1 + (seq_len(nrow(sleep)) %% 4) / 2          # prior weights 1, 1.5, 2, 2.5
sleep$off <- round(sin(seq_len(nrow(sleep))), 4) * 10   # an offset
sleep$phase <- ifelse(sleep$Days < 5, "early", "late")  # a factor for a random slope
sleep_na <- sleep
sleep_na$Reaction[c(5, 37, 111)] <- NA                  # NA rows, in the response and a predictor
sleep_na$Days[c(60, 150)] <- NA
write_data(sleep, "sleepstudy")
write_data(sleep_na, "sleepstudy_na")
write_data(Penicillin, "penicillin")
write_data(Pastes, "pastes")
write_data(Dyestuff2, "dyestuff2")
data(Machines, package = "nlme")
write_data(as.data.frame(Machines), "machines")

read <- function(name, factors) {
  d <- read.csv(file.path("tests/r/lmm", paste0(name, ".csv")))
  for (column in factors) d[[column]] <- factor(d[[column]])
  d
}
data_sets <- list(
  sleepstudy = read("sleepstudy", c("subject", "phase")),
  sleepstudy_na = read("sleepstudy_na", c("subject", "phase")),
  penicillin = read("penicillin", c("plate", "sample")),
  pastes = read("pastes", c("batch", "cask", "sample")),
  dyestuff2 = read("dyestuff2", c("batch")),
  machines = read("machines", c("worker", "machine"))
)
# bdf (resources/bdf.csv, vendored for the GLMMs), names as clean_names gives them
bdf <- read.csv("resources/bdf.csv")
data_sets$bdf <- data.frame(school_nr = factor(bdf$schoolNR), lang_post = bdf$langPOST, iq_verb = bdf$IQ.verb,
                            ses = bdf$ses)
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
# bobyqa stops 1e-9 above the optimum on a flat singular fit (bdf's correlation at -1), with
# theta 2e-5 off; nloptwrap at zero relative tolerances reaches it there
tight_nlopt <- lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 0,
                                                                    ftol_rel = 0, maxeval = 1e5))

# name, data, formula, REML, weights, offset column, subset
cases <- list(
  list("sleep_reml", "sleepstudy", "reaction ~ days + (days | subject)", TRUE),
  list("sleep_ml", "sleepstudy", "reaction ~ days + (days | subject)", FALSE),
  list("sleep_uncorrelated", "sleepstudy", "reaction ~ days + (days || subject)", TRUE),
  list("sleep_intercept", "sleepstudy", "reaction ~ days + (1 | subject)", TRUE),
  list("penicillin", "penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", TRUE),
  list("pastes", "pastes", "strength ~ 1 + (1 | batch/cask)", TRUE),
  list("machines", "machines", "score ~ machine + (machine | worker)", TRUE),
  list("phase_slope", "sleepstudy", "reaction ~ phase + days + (0 + phase | subject)", FALSE),
  list("singular", "dyestuff2", "yield ~ 1 + (1 | batch)", TRUE),
  list("singular_slope", "bdf", "lang_post ~ iq_verb + ses + (ses | school_nr)", TRUE),
  list("na_rows", "sleepstudy_na", "reaction ~ days + (days | subject)", TRUE),
  list("weights_offset", "sleepstudy", "reaction ~ days + (days | subject)", TRUE, "w", "off"),
  list("subset", "sleepstudy", "reaction ~ days + (days | subject)", TRUE, NULL, NULL, "days >= 2"),
  list("interaction_group", "sleepstudy", "reaction ~ days + (1 | subject) + (1 | phase:subject)", TRUE),
  list("no_fixed_effects", "sleepstudy", "reaction ~ 0 + (1 | subject)", TRUE),  # lmer fits it by ML
  list("aliased", "sleepstudy", "reaction ~ days + I(2 * days) + (1 | subject)", TRUE)  # a column dropped
)

# The call written out as a user writes it, so that summary() prints Formula, Data, Weights,
# Offset and Subset as for a user's fit (the data sets are bound to their names); the tight
# control's "Control:" line is left out of the summary kept.
for (name in names(data_sets)) assign(name, data_sets[[name]])
fit_case <- function(case, control = NULL) {
  arguments <- c(case[[3]], paste("data =", case[[2]]), if (!case[[4]]) "REML = FALSE",
                 if (length(case) >= 5 && !is.null(case[[5]])) paste("weights =", case[[5]]),
                 if (length(case) >= 6 && !is.null(case[[6]])) paste("offset =", case[[6]]),
                 if (length(case) >= 7 && !is.null(case[[7]])) paste("subset =", case[[7]]),
                 if (!is.null(control)) "control = control")
  suppressMessages(eval(parse(text = sprintf("lmerTest::lmer(%s)", paste(arguments, collapse = ", ")))))
}

criterion <- function(fit) if (isREML(fit)) REMLcrit(fit) else deviance(fit)
tightest <- function(case) {
  fits <- list(fit_case(case, tight), fit_case(case, tight_nlopt))
  fits[[which.min(vapply(fits, criterion, 0))]]
}

describe <- function(case) {
  fit <- tightest(case)
  default <- fit_case(case)
  coefs <- summary(fit)$coefficients
  vc <- as.data.frame(VarCorr(fit))
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  ll <- logLik(fit)
  list(
    name = case[[1]], data = case[[2]], formula = case[[3]], REML_requested = case[[4]], REML = isREML(fit),
    weights = if (length(case) >= 5) case[[5]] else NULL, offset = if (length(case) >= 6) case[[6]] else NULL,
    subset = if (length(case) >= 7) case[[7]] else NULL,
    term = rownames(coefs), beta = exact(coefs[, "Estimate"]), se = exact(coefs[, "Std. Error"]),
    t = exact(coefs[, "t value"]), df = exact(coefs[, "df"]), p = exact(coefs[, "Pr(>|t|)"]),
    theta = exact(getME(fit, "theta")), sigma = exact(sigma(fit)),
    criterion = exact(criterion(fit)), default_criterion = exact(criterion(default)),
    logLik = exact(as.numeric(ll)), df_logLik = attr(ll, "df"), AIC = exact(AIC(fit)), BIC = exact(BIC(fit)),
    nobs = nobs(fit), singular = isSingular(fit),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = exact(vc$vcov), sdcor = exact(vc$sdcor)),
    ranef = list(grp = as.character(re$grpvar), term = as.character(re$term), level = as.character(re$grp),
                 condval = exact(re$condval), condsd = exact(re$condsd)),
    vcov = exact(as.vector(as.matrix(vcov(fit)))),
    wald = if (length(fixef(fit))) exact(as.vector(confint(fit, parm = "beta_", method = "Wald"))) else NULL,
    fitted = exact(unname(fitted(fit))),
    summary = grep("^Control:", capture.output(print(summary(fit))), value = TRUE, invert = TRUE)
  )
}
fits <- lapply(cases, describe)
names(fits) <- vapply(cases, `[[`, "", 1)

# anova.merMod of nested fits: REML fits refitted by ML, with lme4's message
comparison <- function(small, large) {
  a <- tightest(cases[[which(names(fits) == small)]])
  b <- tightest(cases[[which(names(fits) == large)]])
  message <- NULL
  table <- withCallingHandlers(anova(a, b), message = function(m) {
    message <<- conditionMessage(m); invokeRestart("muffleMessage")
  })
  list(models = c(small, large), message = trimws(message), npar = table$npar, AIC = exact(table$AIC),
       BIC = exact(table$BIC), logLik = exact(table$logLik), deviance = exact(table$deviance),
       Chisq = exact(table$Chisq), Df = table$Df, p = exact(table[["Pr(>Chisq)"]]))
}
anovas <- list(
  reml = comparison("sleep_intercept", "sleep_reml"),
  ml = comparison("sleep_ml", "phase_slope")
)
# effects::Effect on lmer fits: the fixed part's grid with vcov(fit), t on the refit's residual df
effect_grid <- function(name, focal, xlevels) {
  e <- as.data.frame(Effect(focal, tightest(cases[[which(names(fits) == name)]]), xlevels = xlevels))
  list(model = name, at = xlevels, grid = lapply(e[focal], as.character), fit = exact(e$fit), se = exact(e$se),
       lower = exact(e$lower), upper = exact(e$upper))
}
grids <- list(
  phase_days = effect_grid("phase_slope", c("phase", "days"), list(days = c(0, 4.5, 9))),
  days_weighted = effect_grid("weights_offset", "days", list(days = c(0, 3, 9)))
)
writeLines(toJSON(list(r_version = R.version.string, lme4 = as.character(packageVersion("lme4")),
                       lmerTest = as.character(packageVersion("lmerTest")), fits = fits, anova = anovas,
                       effects = grids),
                  auto_unbox = TRUE, pretty = TRUE, null = "null", digits = NA),
           "tests/r/lmm_reference.json")
