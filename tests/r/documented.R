# Reference values for documented features that other scripts leave out: the formula functions
# (sqrt, exp, log2, log10, log1p, abs) in a GLM, anova's F-test warning for Poisson, an `a:b`
# grouping factor written directly, and a mixed model with an offset. R 4.2, lme4 from Debian.
# Run from the repository root:  Rscript tests/r/documented.R   (writes tests/r/documented_reference.json)
# Mixed models as tests/r/glmm_general.R fits them (bobyqa rhoend 1e-10, tolPwrss 1e-12).
suppressMessages({library(lme4); library(jsonlite)})
options(useFancyQuotes = FALSE)
exact <- function(x) sprintf("%.17g", x)
ctl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5), tolPwrss = 1e-12)

bdf <- read.csv("resources/bdf.csv")
bdf <- bdf[bdf$repeatgr != 2, ]
names(bdf)[names(bdf) == "IQ.verb"] <- "iq_verb"
names(bdf)[names(bdf) == "langPOST"] <- "lang_post"
names(bdf)[names(bdf) == "aritPOST"] <- "arit_post"
cbpp <- read.csv("resources/cbpp.csv")
cbpp$herd <- factor(cbpp$herd); cbpp$period <- factor(cbpp$period)
contraception <- read.csv("resources/contraception.csv")
for (column in c("district", "use", "livch", "urban")) contraception[[column]] <- factor(contraception[[column]])

out <- list()
functions <- "repeatgr ~ sqrt(ses) + exp(iq_verb / 10) + log2(lang_post) + log10(arit_post + 1) + log1p(sex) + abs(iq_verb - 12)"
fit <- glm(as.formula(functions), family = binomial, data = bdf)
out$functions <- list(formula = functions, family = "binomial", data = "bdf", filter = "repeatgr != 2",
                      term = names(coef(fit)), estimate = exact(coef(fit)),
                      std_error = exact(sqrt(diag(vcov(fit)))), deviance = exact(deviance(fit)), iter = fit$iter)

# anova with test = "F" on Poisson fits: R computes it and warns
warned <- character()
small <- glm(incidence ~ 1, family = poisson, data = cbpp)
big <- glm(incidence ~ period, family = poisson, data = cbpp)
table <- withCallingHandlers(anova(small, big, test = "F"), warning = function(w) {
  warned <<- c(warned, conditionMessage(w)); invokeRestart("muffleWarning")
})
out$anova_poisson_f <- list(data = "cbpp", formulas = c("incidence ~ 1", "incidence ~ period"), family = "poisson",
                            F = exact(table$F[2]), p_value = exact(table[["Pr(>F)"]][2]), warnings = I(warned))

describe <- function(fit, formula, family, data_name) {
  vc <- as.data.frame(VarCorr(fit))
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  list(
    formula = formula, family = family, data = data_name,
    term = names(fixef(fit)), beta = exact(fixef(fit)), se = exact(sqrt(diag(as.matrix(vcov(fit))))),
    deviance = exact(-2 * as.numeric(logLik(fit))), AIC = exact(AIC(fit)),
    n_groups = as.list(ngrps(fit)),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = exact(vc$vcov), sdcor = exact(vc$sdcor)),
    ranef = list(grp = as.character(re$grpvar), level = as.character(re$grp), term = as.character(re$term),
                 condval = exact(re$condval), condsd = exact(re$condsd))
  )
}
interaction_grouping <- "use ~ age + urban + (1 | district:urban)"
fit <- glmer(as.formula(interaction_grouping), data = contraception, family = binomial, control = ctl)
out$interaction_grouping <- describe(fit, interaction_grouping, "binomial", "contraception")
offset_glmm <- "incidence ~ period + offset(log(size)) + (1 | herd)"
fit <- glmer(as.formula(offset_glmm), data = cbpp, family = poisson, control = ctl)
out$offset_glmm <- describe(fit, offset_glmm, "poisson", "cbpp")
out$notes <- paste(R.version.string, "lme4", as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null"), "tests/r/documented_reference.json")
