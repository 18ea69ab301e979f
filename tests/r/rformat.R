# R's own formatting of the values tests/test_rformat.py gives glmflow's formatters (R 4.2).
# Run from the repository root:  Rscript tests/r/rformat.R   (writes tests/r/rformat_reference.json)
# Inputs are written as %.17g strings so the test formats the very same doubles.
suppressMessages(library(jsonlite))
exact <- function(x) sprintf("%.17g", x)
case <- function(x, digits, out) list(x = exact(x), digits = digits, out = out)

format_real <- list(
  list(c(-0.94133, 0.095129, 0.015197, 0.002232), 4), list(6.120189e-15, 3),
  list(c(1186.655, 917.804), 5), list(0.60835, 4), list(c(123456789, 0.5), 7),
  list(c(1e-300, 1), 3), list(c(-1.5, 22.25, 333.125), 2)
)
format_pval <- list(
  list(c(1.9e-51, 6.12e-15), 3), list(c(0.369076, 1.2e-31), 3),
  list(c(0.0315841, 7.8e-20, 0.000215, 0.0502524), 3), list(c(0.5, 1e-5, 2e-17), 4),
  list(c(3e-20), 3)
)
r_round <- list(list(c(0.15, -0.60835), 1), list(c(2.5, 0.5, 3.5), 0), list(c(1.005, 2.675), 2))
zapsmall_cases <- list(list(c(-2.152369115722911, -0.608351854344215, 2.392856643974444), 5),
                       list(c(1e-20, 1.5), 7))
format_c <- list(list(c(144.0412, 63.03, 0.06621, 5), 4), list(c(1234567, 1e-7), 3))

out <- list(
  format_real = lapply(format_real, function(a) case(a[[1]], a[[2]], format(a[[1]], digits = a[[2]]))),
  format_pval = lapply(format_pval, function(a) case(a[[1]], a[[2]], format.pval(a[[1]], digits = a[[2]]))),
  r_round = lapply(r_round, function(a) case(a[[1]], a[[2]], exact(round(a[[1]], a[[2]])))),
  zapsmall = lapply(zapsmall_cases, function(a) case(a[[1]], a[[2]], exact(zapsmall(a[[1]], a[[2]])))),
  # formatC one value at a time, as glmflow's format_c takes one
  format_c = lapply(format_c, function(a) case(a[[1]], a[[2]],
                                               vapply(a[[1]], formatC, "", digits = a[[2]]))),
  deparse = list(call = paste(deparse(quote(glm(formula = survived ~ 1 + sex * fare,
                                                  family = "binomial", data = df))),
                              collapse = "\n")),
  r_version = R.version.string
)
writeLines(toJSON(out, auto_unbox = FALSE, pretty = TRUE), "tests/r/rformat_reference.json")
