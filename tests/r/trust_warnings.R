# R's warnings on the numerically troubled models of tests/test_trust.py, as R's console prints
# them after the call that raised them. Run from the repository root:
#   Rscript tests/r/trust_warnings.R   (writes tests/r/trust_warnings_reference.json)
# Each fit runs at the top level of a fresh Rscript so that the text is R's own deferred-warning
# print (numbering, "Warning message(s):", the space glm.fit's call.-less warnings end with).
suppressMessages(library(jsonlite))

console <- function(fit) {
  code <- paste(
    "suppressMessages(library(lme4))",
    "d <- read.csv('tests/r/trouble_data.csv')",
    "d <- d[d$x != 8, ]",  # the test's filter
    fit, sep = "\n")
  script <- tempfile(fileext = ".R")
  writeLines(code, script)
  paste(system2("Rscript", script, stdout = TRUE, stderr = TRUE), collapse = "\n")
}

fits <- list(
  separated = "m <- glm(y ~ x, family = binomial, data = d)",
  fractional = "m <- glm(count ~ x, family = poisson, data = d)",
  # eleven non-integer counts: more than the ten R's console lists
  many = "d$quarter <- d$count + 0.25; m <- glm(quarter ~ x, family = poisson, data = d)",
  flat = "m <- glmer(y ~ 1 + (1 | g), family = binomial, data = d)"
)
out <- lapply(fits, function(fit) list(call = fit, console = console(fit)))
d <- read.csv("tests/r/trouble_data.csv")
d <- d[d$x != 8, ]
out$separated$iterations <- suppressWarnings(glm(y ~ x, family = binomial, data = d))$iter
out$r_version <- R.version.string
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/r/trust_warnings_reference.json")
