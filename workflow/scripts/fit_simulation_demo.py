"""glm(response ~ 1 + x, binomial) on the simulated data, with the chapter's likelihood table."""

from glmflow.datafile import read_dataset
from glmflow.errors import GlmflowError
from glmflow.io import logged, write_csv, write_json
from glmflow.likelihood import likelihood_check, likelihood_table
from glmflow.models import fit_model
from glmflow.study import DEMO_MODEL
from glmflow.summaries import write_model_outputs

with logged(snakemake):
    data = read_dataset(snakemake.input.data)
    spec = DEMO_MODEL
    fit = fit_model(data, spec, "simulation_demo")
    write_model_outputs(fit, data, snakemake.output)
    write_csv(snakemake.output.likelihood, likelihood_table(fit.design.y, fit.fitted))
    check = likelihood_check("simulation_demo", "binomial", fit.augment(data), "response", fit.glance())
    if not check["ok"]:
        raise GlmflowError(f"simulated data: the log-likelihood by hand differs by {check['max_abs_difference']:.3g}")
    write_json(snakemake.output.check, check)
