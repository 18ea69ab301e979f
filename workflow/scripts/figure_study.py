"""Bias and coverage of the simulation study against n, with Monte Carlo error bars."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.figures import study_figure
from glmflow.io import logged, read_csv, write_text

with logged(snakemake):
    write_text(snakemake.output[0], study_figure(read_csv(snakemake.input[0])))
