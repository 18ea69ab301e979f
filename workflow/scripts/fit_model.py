"""Fit one model and write R's tidy, glance, summary and augment outputs and the covariance."""

from glmflow.datafile import read_dataset
from glmflow.io import logged
from glmflow.models import fit_model
from glmflow.summaries import write_model_outputs

with logged(snakemake) as log:
    data = read_dataset(snakemake.input.data)
    fit = fit_model(data, snakemake.params.spec, snakemake.wildcards.model)
    log.info("%d rows used, %d dropped for missing values", fit.nobs, fit.design.n_dropped)
    for warning in fit.warnings:
        log.warning(warning)
    write_model_outputs(fit, data, snakemake.output)
