# Reference for glmflow's large-n glm.fit path (glmflow/glm_large.py): R 4.2's glm.fit on
# 250,000 rows drawn in R, which glmflow.rrandom redraws bit for bit in Python.
# Run from the repository root:  Rscript tests/r/glm_large.R   (writes tests/r/glm_large_reference.json)
suppressMessages(library(jsonlite))
exact <- function(x) sprintf("%.17g", x)
set.seed(20261126)
n <- 250000
x1 <- rnorm(n); x2 <- rnorm(n); x3 <- rnorm(n); x4 <- rnorm(n)
eta <- 0.2 + 0.5 * x1 - 0.3 * x2 + 0.1 * x3 + 0.05 * x4
y <- rbinom(n, 1, plogis(eta))
X <- cbind(1, x1, x2, x3, x4)
out <- list(seed = 20261126, n = n, successes = sum(y))
for (link in c("logit", "probit")) {
  fit <- glm.fit(X, y, family = binomial(link = link))
  p <- fit$rank
  out[[link]] <- list(
    coef = exact(unname(fit$coefficients)), deviance = exact(fit$deviance), iter = fit$iter,
    se = exact(sqrt(diag(chol2inv(fit$qr$qr[1:p, 1:p]))))
  )
}
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/r/glm_large_reference.json")
