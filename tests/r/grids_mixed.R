# Reference values for prediction grids (effects::Effect) of transformed predictors, offsets,
# text predictors and mixed models, and for anova() of mixed models (lme4's anova.merMod).
# R 4.2, effects 4.2.2, lme4 1.1.31 from Debian. Run from the repository root:
#   Rscript tests/r/grids_mixed.R   (writes tests/r/grids_mixed_reference.json)
# tests/test_grids_mixed.py compares glmflow with it.
suppressMessages({library(jsonlite); library(effects); library(lme4)})

cbpp <- read.csv("resources/cbpp.csv")
cbpp_f <- transform(cbpp, period = factor(period), herd = factor(herd))
ticks <- read.csv("resources/grouseticks.csv")
ticks_f <- transform(ticks, year = factor(year), brood = factor(brood), location = factor(location))
# livch ("0", "1", "2", "3+") and urban ("N", "Y") stay text: R's model frame makes them factors.
contraception <- read.csv("resources/contraception.csv")
contraception$use <- factor(contraception$use)
tight <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))

source("tests/r/effects_common.R")  # effect_of()
# lme4's fixed effects and their covariance: glmflow's grid code is checked on these exactly,
# and glmflow's own fit (the exact Laplace optimum) against them within lme4's accuracy.
fixed_of <- function(fit) list(term = names(fixef(fit)), estimate = unname(fixef(fit)),
                               std_error = unname(sqrt(diag(as.matrix(vcov(fit))))),
                               vcov = unname(as.matrix(vcov(fit))), theta = unname(getME(fit, "theta")),
                               logLik = as.numeric(logLik(fit)))

out <- list()
# --- The formula's functions: the focal predictor's values go through the function -----------
sizes <- list(size = c(4, 9, 16, 25))
for (f in c("sqrt", "log1p", "log2", "log10")) {
  fit <- glm(as.formula(sprintf("incidence ~ period + %s(size)", f)), family = poisson, data = cbpp_f)
  out[[paste0("function_", f)]] <- effect_of("size", fit, sizes)
}
heights <- list(height_z = c(-1.5, -0.2, 0.4, 1.6))
for (f in c("exp", "abs")) {
  fit <- glm(as.formula(sprintf("ticks ~ year + %s(height_z)", f)), family = poisson, data = ticks_f)
  out[[paste0("function_", f)]] <- effect_of("height_z", fit, heights)
}
# Non-focal: held at the function of its mean (the mean goes through the function).
fit <- glm(incidence ~ period + sqrt(size), family = poisson, data = cbpp_f)
out$function_nonfocal <- effect_of("period", fit)

# --- Offsets: held at the mean of the offset over the rows used, whatever the grid ----------
fit <- glm(incidence ~ period, family = poisson, data = cbpp_f, offset = log(size))
out$offset_argument_period <- effect_of("period", fit)
# The same model written with offset() in the formula: effects 4.2.2 fails on it (its
# Fixup.model.matrix cannot take a one-term model with an offset), so the test compares
# glmflow's formula spelling with the argument spelling's numbers, the same fit.
fit <- glm(incidence ~ period + size, family = poisson, data = cbpp_f, offset = log(size))
out$offset_argument_size <- effect_of("size", fit, list(size = c(5, 20)))
fit <- glm(incidence ~ period + size + offset(log(size)), family = poisson, data = cbpp_f)
out$offset_formula_size <- effect_of("size", fit, list(size = c(5, 20)))
out$offset_mean <- mean(log(cbpp$size))

# --- Text predictors: factors in R's model frame ---------------------------------------------
fit <- glm(use ~ livch + age + urban, family = binomial, data = contraception)
out$text_focal <- effect_of("livch", fit)
out$text_nonfocal <- effect_of("age", fit, list(age = c(-10, 0, 10)))
out$text_two_focal <- effect_of(c("urban", "livch"), fit, list(livch = c("0", "3+")))

# --- Mixed models: effects on the fixed part with vcov(fit), normal quantiles ---------------
cbpp_binomial <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial,
                       data = cbpp_f, control = tight)
out$glmm_cbpp_fixed <- fixed_of(cbpp_binomial)
out$glmm_cbpp_period <- effect_of("period", cbpp_binomial)
ticks_poisson <- glmer(ticks ~ year + height_z + (1 | brood), family = poisson, data = ticks_f, control = tight)
out$glmm_ticks_fixed <- fixed_of(ticks_poisson)
out$glmm_ticks_height <- effect_of("height_z", ticks_poisson, heights)
out$glmm_ticks_year <- effect_of("year", ticks_poisson)
# A row without its grouping factor: glmer drops it, effects' fixed-part refit (Effect.default)
# keeps it, so height_z is held at its mean over every row with the fixed part's columns.
ticks_na <- ticks_f
ticks_na$brood[c(1, 50, 100)] <- NA
ticks_na_fit <- glmer(ticks ~ year + height_z + (1 | brood), family = poisson, data = ticks_na, control = tight)
out$glmm_na_group_fixed <- fixed_of(ticks_na_fit)
out$glmm_na_group_year <- effect_of("year", ticks_na_fit)
cbpp_offset <- glmer(incidence ~ period + (1 | herd), family = poisson, data = cbpp_f, offset = log(size),
                     control = tight)
out$glmm_offset_fixed <- fixed_of(cbpp_offset)
out$glmm_offset_period <- effect_of("period", cbpp_offset)
contraception_binomial <- glmer(use ~ age + livch + urban + (1 | district), family = binomial,
                                data = contraception, control = tight)
out$glmm_text_fixed <- fixed_of(contraception_binomial)
out$glmm_text_livch <- effect_of("livch", contraception_binomial)

# A family with a dispersion: effects' t quantiles on the fixed-part refit's residual df. lme4
# warns that this fit has not converged; the test uses its fixef and vcov as they are.
bdf <- read.csv("resources/bdf.csv")
bdf <- bdf[bdf$repeatgr != 2, ]
names(bdf)[names(bdf) == "schoolNR"] <- "school_nr"
names(bdf)[names(bdf) == "langPOST"] <- "lang_post"
names(bdf)[names(bdf) == "IQ.verb"] <- "iq_verb"
bdf_gamma <- glmer(lang_post ~ ses + iq_verb + (1 | school_nr), family = Gamma(link = "log"), data = bdf,
                   control = tight)
out$glmm_gamma_fixed <- fixed_of(bdf_gamma)
out$glmm_gamma_ses <- effect_of("ses", bdf_gamma, list(ses = c(10, 30, 50)))

# --- anova() of mixed models: lme4's anova.merMod --------------------------------------------
anova_of <- function(table) {
  list(models = rownames(table), npar = table$npar, AIC = table$AIC, BIC = table$BIC,
       logLik = table$logLik, deviance = table$deviance, Chisq = table$Chisq, Df = table$Df,
       p_value = table[["Pr(>Chisq)"]])
}
cbpp_null <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), family = binomial, data = cbpp_f,
                   control = tight)
out$anova_cbpp <- anova_of(anova(cbpp_null, cbpp_binomial, model.names = c("null", "period")))
# A glm and a glmer (Laplace): lme4 compares them (the glm has no random effects).
cbpp_glm <- glm(cbind(incidence, size - incidence) ~ period, family = binomial, data = cbpp_f)
out$anova_glm_glmer <- anova_of(anova(cbpp_binomial, cbpp_glm, model.names = c("period", "glm")))
ticks_year <- glmer(ticks ~ year + (1 | brood), family = poisson, data = ticks_f, control = tight)
ticks_location <- glmer(ticks ~ year + height_z + (1 | brood) + (1 | location), family = poisson,
                        data = ticks_f, control = tight)
ticks_anova <- anova(ticks_year, ticks_poisson, ticks_location, model.names = c("year", "height", "location"))
out$anova_ticks <- anova_of(ticks_anova)
out$anova_ticks_print <- capture.output(print(ticks_anova, signif.legend = FALSE))
# What lme4 refuses: a glm with a quadrature (nAGQ > 1) fit, and models fitted to different rows.
cbpp_agq <- update(cbpp_binomial, nAGQ = 5)
out$refused_agq_glm <- conditionMessage(tryCatch(anova(cbpp_agq, cbpp_glm), error = identity))
cbpp_subset <- update(cbpp_null, data = cbpp_f[cbpp_f$period != "4", ])
out$refused_rows <- conditionMessage(tryCatch(anova(cbpp_subset, cbpp_binomial), error = identity))

writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/r/grids_mixed_reference.json")
