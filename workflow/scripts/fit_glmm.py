"""Fit one logistic or Poisson mixed model (Laplace or adaptive Gauss-Hermite) and write its outputs."""

from glmflow.datafile import read_dataset
from glmflow.glmm import fit_glmm
from glmflow.io import logged, write_csv
from glmflow.summaries import write_model_outputs

with logged(snakemake) as log:
    data = read_dataset(snakemake.input.data)
    fit = fit_glmm(data, snakemake.params.spec, snakemake.wildcards.model)
    log.info("theta %.6f, deviance %.6f, optimiser: %s", fit.theta, fit.deviance, fit.optimizer_message)
    for warning in fit.warnings:
        log.warning(warning)
    write_model_outputs(fit, data, snakemake.output)
    write_csv(snakemake.output.ranef, fit.ranef())
