# The study's Wald coverage and power by R's own Monte Carlo (glm), cell by cell, for the grid of
# config.yaml's simulation.study. Run from the repository root:
#   Rscript tests/r/study_coverage.R   (writes tests/r/study_coverage_reference.json)
# R's draws are not glmflow's, so tests compare the two estimates as independent binomial counts.
# Separated samples (the x of the 0s and of the 1s do not overlap; one class only) have no MLE
# and are left out of coverage, as glmflow's summary does.
suppressMessages(library(jsonlite))
set.seed(2027)
replicates <- 2000
z <- qnorm(0.975)
cell <- function(n, b0, b1) {
  counts <- c(used = 0, covered = 0)
  X <- cbind(1, numeric(n))
  for (r in seq_len(replicates)) {
    x <- rnorm(n)
    y <- rbinom(n, 1, plogis(b0 + b1 * x))
    if (all(y == y[1]) || max(x[y == 0]) < min(x[y == 1]) || max(x[y == 1]) < min(x[y == 0])) next
    X[, 2] <- x
    fit <- suppressWarnings(glm.fit(X, y, family = binomial()))
    se <- sqrt(diag(chol2inv(qr.R(fit$qr))))[2]
    counts <- counts + c(1, abs(fit$coefficients[2] - b1) <= z * se)
  }
  list(n = n, b0 = b0, b1 = b1, replicates = replicates, used = counts[["used"]],
       covered = counts[["covered"]])
}
grid <- expand.grid(n = c(50, 100, 250, 500, 1000), b0 = 0, b1 = c(0, 0.5, 1, 2, 8))
out <- list(cells = lapply(seq_len(nrow(grid)), function(i) cell(grid$n[i], grid$b0[i], grid$b1[i])),
            r_version = R.version.string)
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/r/study_coverage_reference.json")
