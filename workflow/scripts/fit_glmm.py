"""Fit one mixed model (lme4's formula language; Laplace, or adaptive Gauss-Hermite for one
random intercept) and write its outputs, VarCorr, the conditional modes and the model frame."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.datafile import read_dataset
from glmflow.frame import fit_frame, model_frame, write_frame
from glmflow.glmm import fit_glmm
from glmflow.io import logged, write_csv
from glmflow.summaries import write_model_outputs

with logged(snakemake) as log:
    output = snakemake.output
    frame = model_frame(read_dataset(snakemake.input.data), snakemake.params.spec, snakemake.wildcards.model)
    fit = fit_frame(fit_glmm, frame)
    log.info("theta %s, deviance %.6f, optimiser: %s", list(fit.theta), fit.deviance, fit.optimizer_message)
    for warning in fit.warnings:
        log.warning(warning)
    write_model_outputs(fit, frame.data, output)
    write_csv(output.ranef, fit.ranef())
    write_csv(output.varcorr, fit.varcorr())
    write_frame(frame, fit, output.frame, output.frame_json)
