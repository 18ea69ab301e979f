# How often a logistic regression's sample is separated, by R's own Monte Carlo, for the
# study's steep small cell (n = 50, b0 = 0, b1 = 8, x ~ N(0, 1)).
# Run from the repository root:  Rscript tests/r/separation_rate.R
#   (writes tests/r/separation_rate_reference.json)
# With one continuous covariate and an intercept a sample is separated exactly when the x of
# the 0s and of the 1s do not overlap (all one class included); no fit is needed.
suppressMessages(library(jsonlite))
set.seed(2026)
n <- 50; b0 <- 0; b1 <- 8; replicates <- 20000
separated <- replicate(replicates, {
  x <- rnorm(n)
  y <- rbinom(n, 1, plogis(b0 + b1 * x))
  all(y == y[1]) || max(x[y == 0]) < min(x[y == 1]) || max(x[y == 1]) < min(x[y == 0])
})
out <- list(n = n, b0 = b0, b1 = b1, replicates = replicates, separated = sum(separated),
            r_version = R.version.string)
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/r/separation_rate_reference.json")
