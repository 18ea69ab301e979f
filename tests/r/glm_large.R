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
# Every other family and link the blocked path serves (glmflow.glm_large.applies), drawn after
# the data above so that its numbers stay as they were. Covariates in (0, 1) keep the log-binomial,
# identity and sqrt fits inside their valid range (the blocked path leaves invalid steps to the
# QR path); the count is a sum of three Bernoulli draws, which glmflow.rrandom redraws (it has no rpois).
u1 <- runif(n); u2 <- runif(n)
rare <- rbinom(n, 1, plogis(-1.8 + 0.5 * u1 - 0.3 * u2))
p_count <- plogis(-0.5 + u1 - 0.5 * u2)
count <- rbinom(n, 1, p_count) + rbinom(n, 1, p_count) + rbinom(n, 1, p_count)
U <- cbind(1, u1, u2)
out$more <- list(rare = sum(rare), count = sum(count))
served <- list(
  binomial_cloglog = list(binomial("cloglog"), "X", "y"), binomial_cauchit = list(binomial("cauchit"), "X", "y"),
  binomial_log = list(binomial("log"), "U", "rare"), poisson_log = list(poisson("log"), "X", "count"),
  poisson_identity = list(poisson("identity"), "U", "count"), poisson_sqrt = list(poisson("sqrt"), "U", "count")
)
for (name in names(served)) {
  fam <- served[[name]][[1]]
  fit <- glm.fit(get(served[[name]][[2]]), get(served[[name]][[3]]), family = fam)
  p <- fit$rank
  out$more[[name]] <- list(
    family = fam$family, link = fam$link, design = served[[name]][[2]], response = served[[name]][[3]],
    coef = exact(unname(fit$coefficients)), deviance = exact(fit$deviance), iter = fit$iter,
    converged = fit$converged, se = exact(sqrt(diag(chol2inv(fit$qr$qr[1:p, 1:p]))))
  )
}
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/r/glm_large_reference.json")
