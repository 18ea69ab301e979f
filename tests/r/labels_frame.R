# Reference values for R's coefficient labels and model frame: interaction columns in the order
# of the formula's variables (warpbreaks), levels with brackets, colons, dots and spaces,
# function terms as deparse() writes them, unused factor levels dropped (by a filter, and by
# rows with NA, the reference level too), and a yes/no factor response.
# Run from the repository root:  Rscript tests/r/labels_frame.R
# Writes tests/r/warpbreaks.csv, tests/r/labels_frame_data.csv and
# tests/r/labels_frame_reference.json; tests/test_labels_frame.py compares glmflow with them.
library(jsonlite)
library(effects)
options(useFancyQuotes = FALSE)

write.csv(warpbreaks, "tests/r/warpbreaks.csv", row.names = FALSE)

# A small deterministic data set (no random numbers: the same on every R).
i <- 1:48
x <- round(1 + ((i * 37) %% 48) / 4, 2)
z <- round(sin(i) * 3 + 5, 3)
w <- round(cos(i * 0.7) * 2, 3)
k <- i %% 3 + 1
g <- c("A", "B", "C", "D")[((i - 1) %/% 3) %% 4 + 1]
constructed <- data.frame(
  i = i, x = x, z = z, w = w, k = k,
  grp = c("a[1]", "b:2", "c.3", "d 4")[i %% 4 + 1],
  g = g,
  keep = as.integer(g != "B"),  # keep == 1 leaves no row of level B
  xna = ifelse(g == "A", NA, x),  # rows with NA are all of level A, the reference
  y = round(2 + 0.5 * log(x + 1) + 0.3 * sqrt(x) + 0.01 * x^2 + 0.1 * z + 0.2 * w + 0.3 * (k == 2) +
              sin(i * 1.3), 5),
  count = round(exp(0.5 + 0.1 * x + 0.3 * (g == "C") + 0.5 * sin(i * 2.1))),
  yb = as.integer(sin(i * 1.7) + 0.1 * x - 0.6 > 0),
  answer = ifelse(sin(i * 0.9) + 0.15 * x - 1 > 0, "yes", "no"),
  flag = cos(i * 2.3) > 0
)
write.csv(constructed, "tests/r/labels_frame_data.csv", row.names = FALSE)

# The models are fitted to the data as read back from the CSV files, as glmflow reads them.
wb <- read.csv("tests/r/warpbreaks.csv")
wb$wool <- factor(wb$wool, levels = levels(warpbreaks$wool))
wb$tension <- factor(wb$tension, levels = levels(warpbreaks$tension))
lf <- read.csv("tests/r/labels_frame_data.csv")
factors <- c("grp", "g", "answer")
for (column in factors) lf[[column]] <- factor(lf[[column]])
data_sets <- list(warpbreaks = wb, labels_frame = lf)

# name = list(dataset, formula, family ("lm" for lm), filter (NULL: none))
models <- list(
  warpbreaks_interaction = list("warpbreaks", breaks ~ tension + wool + wool:tension, "poisson"),
  warpbreaks_interaction_written_first = list("warpbreaks", breaks ~ wool:tension + tension + wool, "lm"),
  # two factors of several levels: R's first variable (g) varies fastest in the columns
  two_factor_interaction = list("labels_frame", y ~ g + factor(k) + factor(k):g, "Gamma"),
  brackets = list("labels_frame", y ~ grp * x, "lm"),
  functions = list("labels_frame", y ~ log(x + 1) + sqrt(x) + I(x^2) + factor(k), "lm"),
  functions_more = list("labels_frame", y ~ exp(z/7) + I(z * 2) + I(-w) + I(x * 1e5), "lm"),
  functions_glm = list("labels_frame", count ~ sqrt(x) + I(x/1000):g, "poisson"),
  unused_by_filter = list("labels_frame", yb ~ g + x, "binomial", "keep == 1"),
  unused_by_filter_interaction = list("labels_frame", y ~ g * x, "lm", "keep == 1"),
  unused_reference_by_na = list("labels_frame", count ~ g + xna, "poisson"),
  factor_response = list("labels_frame", answer ~ x + grp, "binomial"),
  # logicals are factors in R's model matrix: flagTRUE, I(x > 7)TRUE; both levels without intercept
  logical_terms = list("labels_frame", y ~ flag + I(x > 7) + x, "lm"),
  logical_no_intercept = list("labels_frame", y ~ 0 + flag + x, "lm"),
  logical_interaction = list("labels_frame", yb ~ flag:x, "binomial")
)

out <- list(r_version = R.version.string,
            levels = list(tension = levels(wb$tension), wool = levels(wb$wool)),
            factors = factors)
fits <- list()
for (name in names(models)) {
  m <- models[[name]]
  filter <- if (length(m) >= 4) m[[4]] else NULL
  # The call as glmflow's summary prints it: glm(formula, family, data = <dataset>, subset = <filter>)
  call <- if (m[[3]] == "lm") bquote(lm(.(m[[2]]), data = .(as.name(m[[1]])))) else
    bquote(glm(.(m[[2]]), family = .(m[[3]]), data = .(as.name(m[[1]]))))
  if (!is.null(filter)) call$subset <- str2lang(filter)
  fit <- eval(call, data_sets)
  fits[[name]] <- fit
  cf <- coef(summary(fit))
  out[[name]] <- list(
    dataset = m[[1]], formula = deparse(m[[2]], width.cutoff = 500L),
    family = if (m[[3]] == "lm") "gaussian" else m[[3]], filter = if (is.null(filter)) NA else filter,
    terms = names(coef(fit)), estimate = unname(cf[, 1]), std_error = unname(cf[, 2]),
    logLik = as.numeric(logLik(fit)), nobs = nobs(fit),
    summary = paste(capture.output(print(summary(fit))), collapse = "\n")
  )
}
# A filter that leaves one level of a factor: R refuses the model.
one_level <- tryCatch(lm(y ~ g + x, data = lf, subset = g == "A"), error = conditionMessage)
out$one_level <- list(dataset = "labels_frame", formula = "y ~ g + x", family = "gaussian", filter = "g == 'A'",
                      error = one_level)

# lm of a factor response: R fits its codes (1, 2) with warnings that it is meaningless.
warned <- character()
invisible(withCallingHandlers(lm(answer ~ x, data = lf), warning = function(w) {
  warned <<- c(warned, conditionMessage(w))
  invokeRestart("muffleWarning")
}))
out$lm_factor_response <- list(dataset = "labels_frame", formula = "answer ~ x", family = "gaussian", filter = NA,
                               warnings = warned)

# effects::Effect over a factor with a level no row uses: its grid holds the used levels only.
effect <- Effect("g", glm(yb ~ g + x, binomial, data = lf, subset = keep == 1))
out$effect_unused_by_filter <- list(g = as.character(effect$x$g), fit = unname(as.vector(effect$fit)),
                                    se = unname(effect$se))
# effects::Effect treats a logical predictor as a factor: both values on the grid.
effect <- Effect(c("flag", "x"), glm(yb ~ flag * x + z, binomial, data = lf), xlevels = list(x = c(2, 8)))
out$effect_logical <- list(formula = "yb ~ flag * x + z", flag = effect$x$flag, x = effect$x$x,
                           fit = unname(as.vector(effect$fit)), se = unname(effect$se))
# anova(test = "Rao") of models with a yes/no factor response: the score test reads it as 0/1.
rao <- anova(glm(answer ~ x, binomial, lf), glm(answer ~ x + grp, binomial, lf), test = "Rao")
out$rao_factor_response <- list(formulas = c("answer ~ x", "answer ~ x + grp"), Rao = rao$Rao[2],
                                p_value = rao[["Pr(>Chi)"]][2])

write_json(out, "tests/r/labels_frame_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
