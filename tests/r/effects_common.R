# effects::Effect as the R reference scripts record it: the grid (factors as their labels), the
# link-scale fit and SE, and the response-scale fit and 95% interval. Sourced by the scripts.
effect_of <- function(focal, fit, xlevels = list()) {
  e <- Effect(focal, fit, xlevels = xlevels)
  grid <- lapply(as.list(e$x), function(v) if (is.factor(v)) as.character(v) else v)
  list(grid = grid, link = as.vector(e$fit), se_link = as.vector(e$se),
       prob = as.vector(e$transformation$inverse(e$fit)),
       conf_low = as.vector(e$transformation$inverse(e$lower)),
       conf_high = as.vector(e$transformation$inverse(e$upper)))
}
