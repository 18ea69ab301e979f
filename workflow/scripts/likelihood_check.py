"""The log-likelihood by hand from the fitted values against the model's logLik, AIC and BIC."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.errors import GlmflowError
from glmflow.io import logged, read_csv, read_json, write_json
from glmflow.likelihood import likelihood_check

with logged(snakemake) as log:
    model, frame = snakemake.wildcards.model, read_json(snakemake.input.frame_json)
    augment = read_csv(snakemake.input.augment)
    check = likelihood_check(model, frame["family"], augment, frame["response"], read_json(snakemake.input.glance))
    log.info("largest difference %.3g", check["max_abs_difference"])
    if not check["ok"]:
        raise GlmflowError(
            f"model {model!r}: the log-likelihood by hand differs from the model's by "
            f"{check['max_abs_difference']:.3g} > {check['tolerance']:g}: {check['differences']}"
        )
    write_json(snakemake.output[0], check)
