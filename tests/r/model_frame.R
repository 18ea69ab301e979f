# Reference values for the model frame each fit job writes (results/models/{model}/frame.json):
# the rows of R's model.frame() (row numbers in the data set), how many rows the subset leaves
# and the frame keeps, names(coef()) (fixef() for glmer), the factors' levels in the frame
# (fit$xlevels for glm; glmer's model frame, grouping factors included), the contrasts of the
# model matrix, family and link; for the models of tests/config/small.yaml.
# Run from the repository root:  Rscript tests/r/model_frame.R
# Writes tests/r/model_frame_reference.json; tests/test_frame.py compares glmflow with it.
library(jsonlite)
library(lme4)

d <- read.csv("resources/titanic_train.csv")
names(d) <- tolower(gsub("([a-z])([A-Z])", "\\1_\\2", names(d)))  # janitor::clean_names here
d$sex <- factor(d$sex)
d$pclass <- factor(d$pclass)
d <- d[d$fare >= 0, ]  # the data set's filter

models <- list(
  lm_fare = list(formula = "survived ~ fare", family = "gaussian"),
  glm_sex_fare = list(formula = "survived ~ sex * fare", family = "binomial"),
  glm_fare = list(formula = "survived ~ fare", family = "binomial"),
  glm_sex_plus_fare = list(formula = "survived ~ fare + sex", family = "binomial"),
  poisson_sib_sp = list(formula = "sib_sp ~ sex + age", family = "poisson", filter = "age < 60"),
  glmm_class = list(formula = "survived ~ sex + (1 | pclass)", family = "binomial"),
  glmm_aliased = list(formula = "survived ~ sex + fare + I(2 * fare) + (1 | pclass)", family = "binomial"),
  gamma_fare = list(formula = "fare ~ sex + age", family = "Gamma", link = "log", filter = "fare > 0"),
  weighted_probit = list(formula = "survived ~ fare", family = "binomial", link = "probit", weights = "parch")
)

frame_of <- function(spec) {
  rows <- if (is.null(spec$filter)) d else d[which(eval(parse(text = spec$filter), d)), ]
  fam <- get(spec$family)
  fam <- if (is.null(spec$link)) fam() else fam(link = spec$link)
  mixed <- grepl("|", spec$formula, fixed = TRUE)
  f <- as.formula(spec$formula)
  fit <- if (mixed) {
    suppressMessages(glmer(f, data = rows, family = fam))
  } else if (is.null(spec$weights)) {
    glm(f, data = rows, family = fam)
  } else {
    glm(f, data = rows, family = fam, weights = rows[[spec$weights]])
  }
  mf <- model.frame(fit)
  X <- if (mixed) getME(fit, "X") else model.matrix(fit)
  factors <- names(mf)[vapply(mf, is.factor, logical(1))]
  levels <- if (mixed) lapply(mf[factors], levels) else lapply(fit$xlevels, identity)
  list(spec = spec, rows = as.integer(rownames(mf)), after_filter = nrow(rows), used = nrow(mf),
       terms = names(if (mixed) fixef(fit) else coef(fit)), levels = levels,
       contrasts = lapply(attr(X, "contrasts"), identity),
       family = family(fit)$family, link = family(fit)$link)
}

out <- lapply(models, frame_of)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"), "tests/r/model_frame_reference.json")
