"""The study's cells gathered into one table, one row per cell."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.io import logged, read_json, write_csv
from glmflow.simulate import gather_cells

with logged(snakemake):
    rows = [read_json(path) for path in snakemake.input]
    write_csv(snakemake.output[0], gather_cells(rows))
