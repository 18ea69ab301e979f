# The data sets of the differential test against R, written from R's own packages.
# Run from the repository root:  Rscript tests/r/differential_data.R
# Writes tests/r/differential/<name>.csv: column names as janitor::clean_names() leaves them
# (lower case, '_'), factors as their labels, missing values as NA. tests/differential.py
# draws model configurations over these files; tests/r/differential.R fits them in R.
suppressMessages({library(MASS); library(lme4); library(mlmRev)})
dir.create("tests/r/differential", showWarnings = FALSE)
write_data <- function(d, name) {
  names(d) <- gsub("_+", "_", gsub("^_|_$", "", tolower(gsub("[^A-Za-z0-9]+", "_", names(d)))))
  for (column in names(d)) if (is.factor(d[[column]])) d[[column]] <- as.character(d[[column]])
  write.csv(d, file.path("tests/r/differential", paste0(name, ".csv")), row.names = FALSE, na = "NA")
}
write_data(mtcars, "mtcars")
write_data(warpbreaks, "warpbreaks")
write_data(esoph, "esoph")
write_data(infert, "infert")
write_data(ToothGrowth, "toothgrowth")
write_data(InsectSprays, "insectsprays")
write_data(airquality, "airquality")
write_data(birthwt, "birthwt")
write_data(quine, "quine")
write_data(sleepstudy, "sleepstudy")
write_data(as.data.frame(CO2), "co2")
write_data(as.data.frame(ChickWeight), "chickweight")
write_data(cbpp, "cbpp")
write_data(grouseticks, "grouseticks")
write_data(Contraception, "contraception")
write_data(Penicillin, "penicillin")
