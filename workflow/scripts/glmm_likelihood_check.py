"""A mixed model's log-likelihood at its written estimates, recomputed independently from its
model frame, and the exact marginal log-likelihood by quadrature."""

from glmflow.errors import GlmflowError
from glmflow.families import family
from glmflow.frame import read_frame
from glmflow.glmm import build_glmm_design
from glmflow.glmm_likelihood import glmm_likelihood_check
from glmflow.io import logged, read_csv, read_json, write_json

with logged(snakemake) as log:
    model, frame = snakemake.wildcards.model, read_frame(snakemake.input.frame, snakemake.input.frame_json)
    spec, rows = frame.spec, frame.model_rows()
    design = build_glmm_design(spec["formula"], rows, frame.where, spec.get("weights"), spec.get("offset"))
    glance, tidy = read_json(snakemake.input.glance), read_csv(snakemake.input.tidy)
    check = glmm_likelihood_check(
        model,
        design,
        family(spec["family"], spec.get("link")),
        glance["nAGQ"],
        glance["theta"],
        tidy["estimate"],
        glance["logLik"],
    )
    log.info("recomputed - fitted = %.3g; approximation error %s", check["difference"], check["approximation_error"])
    if not check["ok"]:
        raise GlmflowError(
            f"model {model!r}: the log-likelihood recomputed independently differs from the fit's by "
            f"{check['difference']:.3g} > {check['tolerance']:g}"
        )
    write_json(snakemake.output[0], check)
