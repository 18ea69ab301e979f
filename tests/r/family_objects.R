# R's family objects, for each family and each link it accepts (R 4.2 from Debian, lme4):
# variance, make.link's functions (beyond their thresholds too), valideta/validmu, dev.resids,
# aic, initialize (mustart, warnings, error texts), and what summary.glm, AIC and glmer make of
# the family (t or z tests, AIC NA, "quasi" refused).
# Run from the repository root:  Rscript tests/r/family_objects.R
# Writes tests/r/family_objects_reference.json; tests/test_family_objects.py compares with it.
library(jsonlite)
suppressMessages(library(lme4))

families <- c("binomial", "quasibinomial", "poisson", "quasipoisson", "gaussian", "Gamma", "inverse.gaussian")
all_links <- c("logit", "probit", "cauchit", "cloglog", "identity", "log", "sqrt", "1/mu^2", "inverse")

# Means inside each family's range, responses, prior weights; etas beyond the logit (30) and
# probit (8.13) clamps for the binomial links.
mu_values <- list(
  binomial = c(1e-10, 0.03, 0.3, 0.5, 0.81, 0.999999),
  poisson = c(1e-6, 0.2, 1, 3.7, 40),
  positive = c(0.05, 0.4, 1, 2.5, 17)
)
# binomial: 4 x 0.3 successes is not whole (initialize's warning)
y_values <- list(binomial = c(0, 0.3, 1, 0, 1, 0.5), poisson = c(0, 1, 0, 5, 38), positive = c(0.1, 0.3, 1.2, 2, 20))
weights <- list(binomial = c(1, 4, 2, 1, 3, 2), poisson = c(1, 2, 0.5, 1, 3), positive = c(1, 2, 0.5, 1, 3))
extreme_eta <- c(-45, -31, -29.5, -8.3, -2, 0.4, 8.3, 29.5, 31, 45)
kind <- function(name) {
  if (name %in% c("binomial", "quasibinomial")) "binomial" else if (name %in% c("poisson", "quasipoisson")) "poisson"
  else "positive"
}

# what glm.fit has in scope where it evaluates family$initialize
initialize_env <- function(fam, y, wt) {
  init <- new.env()
  assign("y", y, init); assign("weights", wt, init); assign("nobs", length(y), init); assign("family", fam, init)
  assign("etastart", NULL, init); assign("start", NULL, init); assign("mustart", NULL, init)
  init
}

# initialize's error for a response out of the family's range (gaussian: out of the link's)
bad_response <- list(binomial = c(0, 1.5), poisson = c(-1, 2), positive = c(0, 2))
initialize_error <- function(fam, name) {
  init <- initialize_env(fam, bad_response[[kind(name)]], c(1, 1))
  tryCatch({ eval(fam$initialize, init); NULL }, error = function(e) conditionMessage(e))
}

one_link <- function(fam, name) {
  k <- kind(name)
  mu <- mu_values[[k]]
  y <- y_values[[k]]
  wt <- weights[[k]]
  eta <- fam$linkfun(mu)
  if (k == "binomial") eta <- c(eta, extreme_eta)
  dev <- sum(fam$dev.resids(y, mu, wt))
  init <- initialize_env(fam, y, wt)
  init_warnings <- character(0)
  withCallingHandlers(eval(fam$initialize, init), warning = function(w) {
    init_warnings <<- c(init_warnings, conditionMessage(w)); invokeRestart("muffleWarning")
  })
  list(
    family = fam$family, link = fam$link, mu = mu, y = y, wt = wt, eta = eta,
    variance = fam$variance(mu), linkfun = fam$linkfun(mu), linkinv = fam$linkinv(eta), mu_eta = fam$mu.eta(eta),
    valideta = fam$valideta(eta), validmu = fam$validmu(mu), dev_resids = fam$dev.resids(y, mu, wt),
    aic = fam$aic(y, rep(1, length(y)), mu, wt, dev), mustart = get("mustart", init),
    initialize_warnings = init_warnings, initialize_error = initialize_error(fam, name),
    initialize_error_y = bad_response[[kind(name)]]
  )
}

# summary.glm's test column (t: the dispersion is estimated) and AIC, from a small fit
fit_facts <- function(name) {
  set.seed(3)
  x <- seq(0.1, 2, length.out = 40)
  y <- switch(kind(name), binomial = rbinom(40, 1, 0.5), poisson = rpois(40, 2), positive = rgamma(40, 2, 1))
  fit <- suppressWarnings(glm(y ~ x, family = get(name)()))
  g <- factor(rep(1:8, 5))
  refused <- tryCatch({
    suppressWarnings(suppressMessages(glmer(y ~ x + (1 | g), family = get(name)())))
    NULL
  }, error = function(e) conditionMessage(e))
  list(test_column = colnames(coef(summary(fit)))[3], aic_is_na = is.na(AIC(fit)), glmer_error = refused)
}

out <- list()
for (name in families) {
  maker <- get(name)
  links <- list()
  valid <- character(0)
  for (link in all_links) {
    # the link as a bare name, as R's documentation writes it: a family takes its okLinks so (a
    # string would pass any make.link name)
    fam <- tryCatch(eval(parse(text = sprintf("%s(link = %s)", name, link))), error = function(e) NULL)
    if (is.null(fam)) next
    valid <- c(valid, link)
    # quasipoisson also takes links whose range is not the counts' (logit of 3.7): no values
    values <- tryCatch(suppressWarnings(one_link(fam, name)), error = function(e) NULL)
    if (!is.null(values)) links[[link]] <- values
  }
  out[[name]] <- c(list(default_link = maker()$link, links_accepted = valid, link_values = links), fit_facts(name))
}
out$r_version <- R.version.string
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null", null = "null"),
           "tests/r/family_objects_reference.json")
