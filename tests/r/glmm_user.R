# Reference fits for mixed models users get wrong silently: aliased fixed-effect columns
# (lme4 drops them with a message) and separation (lme4 says nothing of it: it reports huge
# numbers, or, on this data set, stops in PIRLS).
# R 4.2, lme4 from Debian. Run from the repository root:
#   Rscript tests/r/glmm_user.R   (writes tests/r/glmm_user_data.csv and
#                                  tests/r/glmm_user_reference.json)
# "tight" is glmer with bobyqa (rhoend 1e-10, maxfun 1e5) and tolPwrss 1e-12; "default" is
# glmer's default control, recorded to show the two reach the same optimum (to 4e-4 in -2 logLik).
suppressMessages({library(lme4); library(jsonlite)})
options(useFancyQuotes = FALSE)
exact <- function(x) sprintf("%.17g", x)
tight <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5), tolPwrss = 1e-12)

# One data set for every case: 300 rows, 15 groups of 20.
set.seed(20240611)
n <- 300
d <- data.frame(g = rep(sprintf("g%02d", 1:15), each = 20))
gi <- as.integer(factor(d$g))
d$x1 <- round(rnorm(n), 6)
d$x2 <- round(rnorm(n), 6)
d$x1copy <- d$x1                          # a duplicated predictor
d$x3 <- d$x1 - 2 * d$x2 + 1               # a linear combination of the intercept, x1 and x2
b0 <- rnorm(15, sd = 0.8)
b1 <- rnorm(15, sd = 0.4)
d$y <- rbinom(n, 1, plogis(-0.3 + 0.8 * d$x1 - 0.5 * d$x2 + b0[gi]))
d$count <- rpois(n, exp(0.4 + 0.3 * d$x1 + 0.2 * d$x2 + 0.5 * b0[gi] + b1[gi] * d$x1))
# two factors whose interaction has an empty cell: arm "r" never meets site "v"
d$arm <- rep(c("p", "q", "r"), length.out = n)
d$site <- ifelse(d$arm == "r", "u", rep(c("u", "v"), each = 3, length.out = n))
d$trials <- sample(2:8, n, replace = TRUE)
p <- pnorm(0.2 + 0.4 * d$x1 + 0.3 * (d$arm == "q") - 0.4 * (d$site == "v") + 0.5 * b0[gi])
d$successes <- rbinom(n, d$trials, p)
d$failures <- d$trials - d$successes
# complete separation: the first 200 rows, y = (x > 0), 10 groups
d$sep_x <- round(rnorm(n), 6)
d$sep_y <- as.integer(d$sep_x > 0)
d$sep_g <- sprintf("s%02d", (seq_len(n) - 1) %% 10 + 1)
write.csv(d, "tests/r/glmm_user_data.csv", row.names = FALSE)
d <- read.csv("tests/r/glmm_user_data.csv")
for (column in c("g", "arm", "site", "sep_g")) d[[column]] <- factor(d[[column]])

# name = list(formula, family, link, the number of leading rows used (NULL: all))
models <- list(
  binomial_duplicate = list("y ~ x1 + x2 + x1copy + (1 | g)", "binomial", "logit", NULL),
  poisson_combination = list("count ~ x1 + x2 + x3 + (1 + x1 | g)", "poisson", "log", NULL),
  probit_two_dropped = list("cbind(successes, failures) ~ x1 + I(2 * x1) + arm * site + (1 | g)", "binomial", "probit", NULL),
  separation = list("sep_y ~ sep_x + (1 | sep_g)", "binomial", "logit", 200)
)

# glmer with its messages and warnings kept (the rank message is a message()), and its error:
# on the separated data lme4's PIRLS stops with "pwrssUpdate did not converge" (default control
# too, and on every seed tried)
fit_with_messages <- function(formula, data, fam, control) {
  messages <- character(); warnings <- character()
  fit <- tryCatch(withCallingHandlers(
    glmer(as.formula(formula), data = data, family = fam, control = control),
    message = function(m) { messages <<- c(messages, conditionMessage(m)); invokeRestart("muffleMessage") },
    warning = function(w) { warnings <<- c(warnings, conditionMessage(w)); invokeRestart("muffleWarning") }),
    error = function(e) conditionMessage(e))
  list(fit = fit, messages = sub("\n$", "", messages), warnings = warnings)
}

describe <- function(run, default) {
  fit <- run$fit
  if (is.character(fit)) return(list(error = fit, messages = I(run$messages), warnings = I(run$warnings), dropped = I(character())))
  list(
    term = I(names(fixef(fit))), dropped = I(names(attr(getME(fit, "X"), "col.dropped"))),
    beta = exact(fixef(fit)), se = exact(sqrt(diag(as.matrix(vcov(fit))))),
    vcov = exact(as.vector(as.matrix(vcov(fit)))), theta = I(exact(getME(fit, "theta"))),
    deviance = exact(-2 * as.numeric(logLik(fit))), logLik = exact(as.numeric(logLik(fit))),
    df = attr(logLik(fit), "df"), nobs = nobs(fit), messages = I(run$messages), warnings = I(run$warnings),
    default = list(beta = exact(fixef(default$fit)), deviance = exact(-2 * as.numeric(logLik(default$fit))),
                   messages = I(default$messages)),
    summary = paste(capture.output(print(summary(fit))), collapse = "\n")
  )
}

out <- list()
for (name in names(models)) {
  m <- models[[name]]
  rows <- if (is.null(m[[4]])) d else d[seq_len(m[[4]]), ]
  fam <- get(m[[2]])(link = m[[3]])
  run <- fit_with_messages(m[[1]], rows, fam, tight)
  default <- fit_with_messages(m[[1]], rows, fam, glmerControl())
  out[[name]] <- c(list(formula = m[[1]], family = m[[2]], link = m[[3]], rows = m[[4]]), describe(run, default))
}
# the workflow's small run (tests/config/small.yaml) fits this aliased model to titanic
titanic <- read.csv("resources/titanic_train.csv")
titanic <- data.frame(survived = titanic$Survived, sex = factor(titanic$Sex), fare = titanic$Fare,
                      pclass = factor(titanic$Pclass))
titanic <- titanic[titanic$fare >= 0, ]
formula <- "survived ~ sex + fare + I(2 * fare) + (1 | pclass)"
run <- fit_with_messages(formula, titanic, binomial(), tight)
out$workflow <- list(glmm_aliased = c(list(formula = formula, family = "binomial", link = "logit", rows = NULL),
                                      describe(run, fit_with_messages(formula, titanic, binomial(), glmerControl()))))

# R's qr(X, tol = 1e-7), the rank test lme4 uses, on matrices where near-aliasing, scale and
# the order of the columns decide what is kept
set.seed(7)
z <- matrix(round(rnorm(20 * 4), 6), 20, 4)
one <- rep(1, 20)
matrices <- list(
  near_duplicate = cbind(one, z[, 1], z[, 1] + 1e-9 * z[, 2]),           # dropped: below 1e-7
  close_but_independent = cbind(one, z[, 1], z[, 1] + 1e-5 * z[, 2]),     # kept: above 1e-7
  scales = cbind(one, 1e8 * z[, 1], z[, 1], z[, 2]),                      # each column against its own norm
  zero_and_sums = cbind(z[, 1], z[, 2], z[, 1] + z[, 2], z[, 3], 0, z[, 3] - z[, 1], z[, 4]),
  reduced_norms = cbind(one, z[, 1], z[, 1] + 1e-4 * z[, 2], z[, 1] + 2e-4 * z[, 2] + 1e-10 * z[, 3])
)
out$qr <- lapply(matrices, function(X) {
  q <- qr(X, tol = 1e-7)
  list(X = exact(as.vector(X)), nrow = nrow(X), rank = q$rank, pivot = q$pivot)
})
out$notes <- paste("glmer, bobyqa rhoend 1e-10 maxfun 1e5, tolPwrss 1e-12 (default: glmerControl());",
                   R.version.string, "lme4", as.character(packageVersion("lme4")))
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null", digits = NA),
           "tests/r/glmm_user_reference.json")
