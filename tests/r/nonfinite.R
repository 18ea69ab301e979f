# What R says when a model's response or a predictor holds Inf (R 4.2 from Debian): lm and
# glm stop in lm.fit / glm.fit. Run from the repository root:  Rscript tests/r/nonfinite.R
library(jsonlite)
d <- data.frame(y = c(1, 2, Inf, 4, 5, 3), x = c(1, 2, 3, 4, 5, 7), x_inf = c(1, -Inf, 3, 4, 5, 6))
message_of <- function(expr) tryCatch({ expr; NA }, error = conditionMessage)
out <- list(
  lm_y = message_of(lm(y ~ x, d)),
  lm_x = message_of(lm(x ~ x_inf, d)),
  glm_gaussian_y = message_of(glm(y ~ x, gaussian, d)),
  glm_gaussian_x = message_of(glm(x ~ x_inf, gaussian, d)),
  glm_log_of_zero_x = message_of(glm(x ~ log(x - 1), gaussian, d)),
  r_version = R.version.string
)
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "tests/r/nonfinite_reference.json")
