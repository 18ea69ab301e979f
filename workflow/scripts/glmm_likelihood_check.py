"""A mixed model's log-likelihood at its written estimates, recomputed independently from its
model frame, and the exact marginal log-likelihood by quadrature."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.errors import GlmflowError
from glmflow.families import family
from glmflow.frame import read_frame
from glmflow.glmm import build_glmm_design
from glmflow.glmm_likelihood import glmm_likelihood_check, lmm_likelihood_check
from glmflow.io import logged, read_csv, read_json, write_json

with logged(snakemake) as log:
    model, frame = snakemake.wildcards.model, read_frame(snakemake.input.frame, snakemake.input.frame_json)
    spec, rows = frame.spec, frame.model_rows()
    design = build_glmm_design(spec["formula"], rows, frame.where, spec.get("weights"), spec.get("offset"))
    glance, tidy = read_json(snakemake.input.glance), read_csv(snakemake.input.tidy)
    if "REML" in glance:  # a linear mixed model: its exact marginal (or REML) log-likelihood
        check = lmm_likelihood_check(model, design, glance["theta"], tidy["estimate"], glance["sigma"],
                                     glance["REML"], glance["logLik"])  # fmt: skip
    else:
        check = glmm_likelihood_check(
            model,
            design,
            family(spec["family"], spec.get("link")),
            glance["nAGQ"],
            glance["theta"],
            tidy["estimate"],
            glance["logLik"],
        )
    error = check.get("approximation_error")
    log.info("recomputed - fitted = %.3g; approximation error %s", check["difference"], error)
    if not check["ok"]:
        raise GlmflowError(
            f"model {model!r}: the log-likelihood recomputed independently differs from the fit's by "
            f"{check['difference']:.3g} > {check['tolerance']:g}"
        )
    write_json(snakemake.output[0], check)
