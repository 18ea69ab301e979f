# How many quadrature nodes lme4's glmer takes (lme4 1.1-31): nAGQ goes through as.integer()
# (2.5 fits as 2, silently) and GHrule(), which stops beyond 100 nodes. Run from the repository
# root:  Rscript tests/r/nagq_limits.R
suppressPackageStartupMessages(library(lme4))
library(jsonlite)
fit <- function(k) glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial, nAGQ = k)
message_of <- function(expr) tryCatch({ expr; NA }, error = conditionMessage)
out <- list(
  largest_accepted = max(Filter(function(k) is.na(message_of(fit(k))), c(25, 50, 100, 101))),
  beyond_largest = message_of(fit(101)),
  fraction_fits_as_its_integer = deviance(fit(2.5)) == deviance(fit(2)),
  lme4_version = as.character(packageVersion("lme4")),
  r_version = R.version.string
)
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/r/nagq_limits_reference.json")
