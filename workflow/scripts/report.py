"""The HTML report, rendered from the files its rule declares as named inputs and the config
values its rule declares as params (nothing is refitted)."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.io import logged, write_text
from glmflow.report import build_context, render_report

with logged(snakemake):
    write_text(snakemake.output[0], render_report(build_context(snakemake.params.settings, snakemake.input)))
