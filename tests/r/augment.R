# R's per-row weights and response of glm fits, for augment.csv's .working_weight (fit$weights,
# the last IRLS step's), .weights (fit$prior.weights) and .y (fit$y, the response as fitted).
# Run from the repository root:  Rscript tests/r/augment.R   (writes tests/r/augment_reference.json)
# The models are tests/r/glm_families.R's with prior weights, a two-column response, zero
# weights, a factor response and step-halving, where those three columns differ from the data.
library(jsonlite)
exact <- function(x) sprintf("%.17g", x)

titanic <- read.csv("resources/titanic_train.csv")
names(titanic) <- c("passenger_id", "survived", "pclass", "name", "sex", "age",
                    "sib_sp", "parch", "ticket", "fare", "cabin", "embarked")
titanic$sex <- factor(titanic$sex)
cbpp <- read.csv("resources/cbpp.csv")
cbpp$period <- factor(cbpp$period)
proportions <- read.csv("tests/r/binomial_weights_data.csv")
halving <- read.csv("tests/r/poisson_halving_data.csv")
data_sets <- list(titanic = titanic, cbpp = cbpp, proportions = proportions, halving = halving)

models <- list(
  binomial_weights_with_zeros = list("titanic", survived ~ fare, binomial(), "parch"),
  poisson_weights = list("titanic", sib_sp ~ sex + age, poisson(), "pclass"),
  cbind_response = list("cbpp", cbind(incidence, size - incidence) ~ period, binomial(), NULL),
  proportion_weights = list("proportions", proportion ~ x, binomial(), "trials"),
  factor_response = list("titanic", sex ~ fare, binomial(), NULL),
  poisson_identity_halving = list("halving", y ~ x, poisson(link = "identity"), NULL)
)
out <- list()
for (name in names(models)) {
  m <- models[[name]]
  d <- data_sets[[m[[1]]]]
  d$.w <- if (is.null(m[[4]])) 1 else d[[m[[4]]]]
  fit <- suppressWarnings(glm(m[[2]], family = m[[3]], data = d, weights = .w))
  out[[name]] <- list(
    dataset = m[[1]], formula = paste(deparse(m[[2]]), collapse = ""), family = m[[3]]$family,
    link = m[[3]]$link, weights = if (is.null(m[[4]])) NA else m[[4]],
    row = as.integer(names(fit$y)), working_weight = exact(fit$weights),
    prior_weight = exact(fit$prior.weights), y = exact(fit$y)
  )
}
out$r_version <- R.version.string
writeLines(toJSON(out, auto_unbox = TRUE), "tests/r/augment_reference.json")
