"""Counts and proportions of a data set by some columns (the chapter's sex x survived table)."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.datafile import read_dataset
from glmflow.interpret import count_table
from glmflow.io import logged, write_csv

with logged(snakemake):
    data = read_dataset(snakemake.input.data)
    table = count_table(data, list(snakemake.params.by), f"counts {snakemake.wildcards.name!r}")
    write_csv(snakemake.output[0], table)
