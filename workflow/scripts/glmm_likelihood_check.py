"""A mixed model's log-likelihood recomputed independently, and the exact marginal by quadrature."""

import pandas as pd

from glmflow.errors import GlmflowError
from glmflow.glmm import fit_glmm
from glmflow.io import logged, read_json, write_json
from glmflow.likelihood import glmm_likelihood_check

with logged(snakemake) as log:
    model = snakemake.wildcards.model
    data = pd.read_parquet(snakemake.input.data)
    # Refit from the data (milliseconds), then check against the fit that the model job wrote.
    fit = fit_glmm(data, snakemake.params.spec, model)
    written = read_json(snakemake.input.glance)
    if abs(written["logLik"] - fit.loglik) > 1e-9:
        raise GlmflowError(f"model {model!r}: refit logLik {fit.loglik} differs from {written['logLik']}")
    check = glmm_likelihood_check(fit)
    log.info("recomputed - fitted = %.3g; approximation error %.3g", check["difference"], check["approximation_error"])
    if not check["ok"]:
        raise GlmflowError(
            f"model {model!r}: the log-likelihood recomputed independently differs from the fit's by "
            f"{check['difference']:.3g} > {check['tolerance']:g}"
        )
    write_json(snakemake.output[0], check)
