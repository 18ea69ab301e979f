# R's random draws for glmflow's R-compatible generator (R 4.2 from Debian).
# Run from the repository root:  Rscript tests/r/simulation.R
library(jsonlite)
# jsonlite prints at most 15 significant digits; draws are compared bit for bit, so every
# number is written as a "%.17g" string (which round-trips a double exactly).
exact <- function(x) sprintf("%.17g", x)

draw <- function(seed, n, b0, b1) {
  set.seed(seed)
  x <- rnorm(n)
  p <- plogis(b0 + b1 * x)  # boot::inv.logit is plogis
  response <- rbinom(n, size = 1, prob = p)
  fit <- glm(response ~ 1 + x, family = binomial)
  list(seed = seed, n = n, b0 = b0, b1 = b1, x = exact(x), p = exact(p), response = response,
       estimate = exact(coef(fit)), std_error = exact(sqrt(diag(vcov(fit)))),
       logLik = exact(logLik(fit)))
}

set.seed(7)
out <- list(
  runif_seed7 = exact(runif(20)),
  rnorm_seed123 = { set.seed(123); exact(rnorm(20)) },
  rnorm_seed_negative = { set.seed(-5); exact(rnorm(20)) },
  # the ends of the seeds set.seed() takes, +-(2^31 - 1); one more is "not a valid integer"
  rnorm_seed_max = { set.seed(2147483647); exact(rnorm(20)) },
  rnorm_seed_min = { set.seed(-2147483647); exact(rnorm(20)) },
  seed_beyond_max = tryCatch({ set.seed(2147483648); "accepted" }, error = conditionMessage, warning = function(w) {
    tryCatch(suppressWarnings(set.seed(2147483648)), error = conditionMessage) }),
  chapter = draw(1, 1000, 0, 1),
  seed42 = draw(42, 500, -1, 2),
  seed2026_steep = draw(2026, 50, 0.5, 8),
  r_version = R.version.string
)
writeLines(toJSON(out, auto_unbox = TRUE), "tests/r/simulation_reference.json")
