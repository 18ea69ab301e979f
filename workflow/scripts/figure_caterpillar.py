"""A mixed model's conditional modes with their 95% intervals, sorted, one panel per grouping
factor and term (caterpillar plot)."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.figures import caterpillar
from glmflow.io import logged, read_csv, write_text

with logged(snakemake):
    write_text(snakemake.output[0], caterpillar(read_csv(snakemake.input[0], keep_default_na=False)))
