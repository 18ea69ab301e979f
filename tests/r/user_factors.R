# Reference values for users' own factors, filters, grids and weights (R 4.2, effects 4.2 from Debian).
# Run from the repository root:  Rscript tests/r/user_factors.R
# Writes tests/r/user_factors_data.csv and tests/r/user_factors_reference.json;
# tests/test_user_factors.py compares glmflow with them.
suppressMessages({library(jsonlite); library(effects)})
options(useFancyQuotes = FALSE)
# R sorts text with ICU where it has it; the order of an en_US.UTF-8 session, whatever this one's.
icuSetCollate(locale = "en_US")

# --- Collation: the order of factor levels --------------------------------------------------
set.seed(20261130)
pieces <- c("a", "A", "b", "B", "z", "Z", "e", "\u00e9", "E", "\u00c9", "o", "\u00f6", "1", "2", "9", "10",
            "-", "_", ".", " ", "<", ">", "(", ")", "[", "]", "/", "+", "#", "%", "l", "ml", "x")
strings <- unique(c(
  "<1l", ">2l", "1-1.5l", "1.5-2l", "a[1]", "a[2]", "a b", "ab", "a-b", "a_b", "A", "a", "Zebra", "apple",
  "\u00e9t\u00e9", "ete", "Ete", "10", "9", "09", "1e3", "-1", "(none)", "none", "None", "NONE",
  replicate(150, paste(sample(pieces, sample(1:5, 1), replace = TRUE), collapse = ""))
))
strings <- strings[order(nchar(strings), strings, method = "radix")]  # a fixed order to start from
out <- list(collation = list(strings = strings, sorted = sort(strings)))

# --- A user's data set -------------------------------------------------------------------------
n <- 120
d <- data.frame(
  race = sample(c(1L, 2L, 3L, NA), n, replace = TRUE, prob = c(0.4, 0.3, 0.25, 0.05)),
  dose = sample(c("<1l", ">2l", "1-1.5l", "1.5-2l"), n, replace = TRUE),
  x = round(rnorm(n), 3),
  w = sample(c(0, 1, 2, 3), n, replace = TRUE, prob = c(0.15, 0.45, 0.25, 0.15))
)
d$x[c(7, 50)] <- NA
eta <- 0.3 + 0.8 * d$x + 0.5 * (d$dose == "<1l") - 0.4 * (d$race %in% 3)
d$y <- rbinom(n, 1, plogis(ifelse(is.na(eta), 0, eta)))
d$count <- rpois(n, exp(0.5 + 0.3 * ifelse(is.na(d$x), 0, d$x)))
d$pos <- round(rgamma(n, shape = 4, rate = 4 / exp(1 + 0.2 * ifelse(is.na(d$x), 0, d$x))), 4)
write.csv(d, "tests/r/user_factors_data.csv", row.names = FALSE, na = "NA")
d <- read.csv("tests/r/user_factors_data.csv")
d$race <- factor(d$race)
d$dose <- factor(d$dose)

# --- Filters on a factor: the rows subset() keeps (1-based row numbers) ----------------------
filters <- list(
  ne_number = quote(race != 3), eq_number = quote(race == 1), in_numbers = quote(race %in% c(1, 2)),
  not_in = quote(!(race %in% c(1, 2))), eq_text = quote(race == "2"), text_factor = quote(dose != "<1l"),
  not_eq = quote(!(x > 0)), or_na = quote(x > 1 | race == 1), and_na = quote(x > 1 & race == 1)
)
out$filters <- lapply(filters, function(f) which(with(d, eval(f)) %in% TRUE))
filter_texts <- c(ne_number = "race != 3", eq_number = "race == 1", in_numbers = "race in [1, 2]",
                  not_in = "race not in [1, 2]", eq_text = "race == '2'", text_factor = "dose != '<1l'",
                  not_eq = "not (x > 0)", or_na = "x > 1 or race == 1", and_na = "x > 1 and race == 1")
for (name in names(filters)) out$filters[[name]] <- list(filter = filter_texts[[name]], rows = out$filters[[name]])

# The same on four rows with missing values in a number and a factor, R's logic through
# not/and/or (glmflow's syntax, R's, then the rows subset() keeps).
small <- data.frame(a = c(1, NA, 3, 4), s = factor(c("x", "y", NA, "x")))
small_filters <- list(
  c("a != 3", "a != 3"), c("a >= 1 and s == 'x'", "a >= 1 & s == 'x'"),
  c("s in ['y', 'x'] or a > 3", "s %in% c('y', 'x') | a > 3"), c("not (a < 2)", "!(a < 2)"),
  c("~(a < 2) & (a < 4)", "!(a < 2) & (a < 4)"), c("(a * 2 - 1 > 4) | (a == 1)", "(a * 2 - 1 > 4) | (a == 1)"),
  c("1 < a <= 3", "1 < a & a <= 3"), c("s not in ['x']", "!(s %in% c('x'))"),
  c("isna(a) | notna(s) & (a > 3)", "is.na(a) | !is.na(s) & (a > 3)"), c("a // 2 == 1", "a %/% 2 == 1"),
  c("a % 2 == 1", "a %% 2 == 1"), c("a ** 2 > 5", "a^2 > 5"), c("a / 2 + 1 >= 2.5", "a / 2 + 1 >= 2.5"),
  c("(a > 1) == True", "(a > 1) == TRUE"), c("(a > 3) != False", "(a > 3) != FALSE")
)
out$small_filters <- lapply(small_filters, function(f)
  list(filter = f[[1]], r = f[[2]], rows = I(which(with(small, eval(str2lang(f[[2]]))) %in% TRUE))))

# --- Models: collation order of a text factor, explicit levels, zero weights -----------------
tidy_of <- function(fit) {
  cf <- coef(summary(fit))  # without the aliased (NA) coefficients, which coef() has
  list(term = names(coef(fit)), estimate = unname(coef(fit)),
       std_error = unname(cf[, 2][match(names(coef(fit)), rownames(cf))]),
       nobs = nobs(fit), df_residual = df.residual(fit), logLik = as.numeric(logLik(fit)),
       AIC = AIC(fit), BIC = BIC(fit), xlevels = lapply(fit$xlevels, identity))
}
out$models <- list()
out$models$collated <- c(list(formula = "y ~ dose + x + race", family = "binomial"),
                         tidy_of(glm(y ~ dose + x + race, binomial, d)))
d_levels <- d
d_levels$dose <- factor(as.character(d$dose), levels = c("1.5-2l", "1-1.5l", "<1l", ">2l"))
d_levels$race <- factor(as.character(d$race), levels = c("3", "1", "2"))
out$models$levels <- c(list(formula = "y ~ dose + x + race", family = "binomial",
                            levels = list(dose = c("1.5-2l", "1-1.5l", "<1l", ">2l"), race = c(3, 1, 2))),
                       tidy_of(glm(y ~ dose + x + race, binomial, d_levels)))
out$models$zero_weights <- c(list(formula = "count ~ x + dose", family = "poisson", weights = "w"),
                             tidy_of(glm(count ~ x + dose, poisson, d, weights = w)))
# Aliased columns: R keeps the earlier column (dqrdc2's pivoting) and reports NA.
out$models$aliased_glm <- c(list(formula = "y ~ x + I(2 * x) + dose", family = "binomial"),
                            tidy_of(glm(y ~ x + I(2 * x) + dose, binomial, d)))
out$models$aliased_glm$summary <- paste(capture.output(print(summary(glm(y ~ x + I(2 * x) + dose, "binomial", d)))),
                                        collapse = "\n")
out$models$aliased_lm <- c(list(formula = "pos ~ I(x + 1) + x + race", family = "gaussian"),
                           tidy_of(lm(pos ~ I(x + 1) + x + race, d)))
out$models$aliased_lm$summary <- paste(capture.output(print(summary(lm(pos ~ I(x + 1) + x + race, d)))),
                                       collapse = "\n")
out$models$zero_weights_gamma <- c(list(formula = "pos ~ x", family = "Gamma", link = "log", weights = "w"),
                                   tidy_of(glm(pos ~ x, Gamma(link = "log"), d, weights = w)))

# --- effects::Effect intervals: t quantiles on df.residual where the dispersion is estimated ----
source("tests/r/effects_common.R")  # effect_of()
grids <- list(
  lm = list(formula = "pos ~ x + dose", family = "gaussian", link = NA, weights = NA),
  gaussian_log = list(formula = "pos ~ x + dose", family = "gaussian", link = "log", weights = NA),
  gamma = list(formula = "pos ~ x + dose", family = "Gamma", link = "log", weights = NA),
  gamma_weights = list(formula = "pos ~ x + dose", family = "Gamma", link = "log", weights = "w"),
  inverse_gaussian = list(formula = "pos ~ x + dose", family = "inverse.gaussian", link = "log", weights = NA),
  quasipoisson = list(formula = "count ~ x + dose", family = "quasipoisson", link = NA, weights = NA),
  poisson = list(formula = "count ~ x + dose", family = "poisson", link = NA, weights = NA)
)
out$grids <- list()
for (name in names(grids)) {
  g <- grids[[name]]
  fam <- if (is.na(g$link)) get(g$family)() else get(g$family)(link = g$link)
  call <- bquote(glm(.(as.formula(g$formula)), family = .(fam), data = d))
  if (name == "lm") call <- bquote(lm(.(as.formula(g$formula)), data = d))
  if (!is.na(g$weights)) call$weights <- as.name(g$weights)
  fit <- eval(call)
  out$grids[[name]] <- c(g, list(df_residual = df.residual(fit),
                                 effect = effect_of("x", fit, list(x = c(-1, 0, 1.5)))))
}

out$r_version <- R.version.string
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "tests/r/user_factors_reference.json")
