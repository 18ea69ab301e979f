"""Fit one model and write R's tidy, glance, summary and augment outputs, the covariance and the
model frame every later job reads (glmflow.frame)."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.datafile import read_dataset
from glmflow.frame import fit_frame, model_frame, write_frame
from glmflow.io import logged
from glmflow.models import fit_model
from glmflow.summaries import write_model_outputs

with logged(snakemake) as log:
    output = snakemake.output
    frame = model_frame(read_dataset(snakemake.input.data), snakemake.params.spec, snakemake.wildcards.model)
    fit = fit_frame(fit_model, frame)
    log.info("%d rows used, %d dropped for missing values", fit.nobs, fit.design.n_dropped)
    for warning in fit.warnings:
        log.warning(warning)
    write_model_outputs(fit, frame.data, output)
    write_frame(frame, fit, output.frame, output.frame_json)
