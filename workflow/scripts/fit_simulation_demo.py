"""glm(response ~ 1 + x, binomial) on the simulated data, with the chapter's likelihood table."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.datafile import read_dataset
from glmflow.errors import GlmflowError
from glmflow.frame import fit_frame, model_frame, write_frame
from glmflow.io import logged, write_csv, write_json
from glmflow.likelihood import likelihood_check, likelihood_table
from glmflow.models import fit_model
from glmflow.study import DEMO_MODEL, DEMO_NAME
from glmflow.summaries import write_model_outputs

with logged(snakemake):
    output = snakemake.output
    frame = model_frame(read_dataset(snakemake.input.data), DEMO_MODEL, DEMO_NAME)
    fit = fit_frame(fit_model, frame)
    write_model_outputs(fit, frame.data, output)
    write_frame(frame, fit, output.frame, output.frame_json)
    write_csv(output.likelihood, likelihood_table(fit.design.y, fit.fitted))
    check = likelihood_check("simulation_demo", "binomial", fit.augment(frame.data), "response", fit.glance())
    if not check["ok"]:
        raise GlmflowError(f"simulated data: the log-likelihood by hand differs by {check['max_abs_difference']:.3g}")
    write_json(output.check, check)
