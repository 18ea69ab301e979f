"""Fit one mixed model (lme4's formula language; Laplace, or adaptive Gauss-Hermite for one
random intercept) and write its outputs, VarCorr and the conditional modes included."""

from glmflow.datafile import read_dataset
from glmflow.glmm import fit_glmm
from glmflow.io import logged, write_csv
from glmflow.summaries import write_model_outputs

with logged(snakemake) as log:
    data = read_dataset(snakemake.input.data)
    fit = fit_glmm(data, snakemake.params.spec, snakemake.wildcards.model)
    log.info("theta %s, deviance %.6f, optimiser: %s", list(fit.theta), fit.deviance, fit.optimizer_message)
    for warning in fit.warnings:
        log.warning(warning)
    write_model_outputs(fit, data, snakemake.output)
    write_csv(snakemake.output.ranef, fit.ranef())
    write_csv(snakemake.output.varcorr, fit.varcorr())
