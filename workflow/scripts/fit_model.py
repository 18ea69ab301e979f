"""Fit one model and write R's tidy, glance, summary and augment outputs and the covariance."""

import pandas as pd

from glmflow.io import logged, write_csv, write_json, write_text
from glmflow.models import fit_model
from glmflow.summaries import summary_text

with logged(snakemake) as log:
    data = pd.read_parquet(snakemake.input.data)
    fit = fit_model(data, snakemake.params.spec, snakemake.wildcards.model)
    log.info("%d rows used, %d dropped for missing values", fit.nobs, fit.design.n_dropped)
    for warning in fit.warnings:
        log.warning(warning)
    out = snakemake.output
    write_csv(out.tidy, fit.tidy())
    write_json(out.glance, fit.glance())
    write_text(out.summary, summary_text(fit))
    write_csv(out.augment, fit.augment(data))
    write_csv(out.vcov, fit.vcov_frame(), index=True)
