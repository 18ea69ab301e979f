"""One cell of the parameter-recovery study: simulate its replicates, fit them all, summarise."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.io import logged, write_json
from glmflow.simulate import run_cell
from glmflow.study import Cell

with logged(snakemake) as log:
    spec = snakemake.params.cell
    cell = Cell(spec["n"], spec["b0"], spec["b1"])
    row = run_cell(spec["seed"], cell, spec["replicates"], threads=snakemake.threads)
    log.info("%s: %d replicates, %d separated", cell.label, row["replicates"], row["separated"])
    write_json(snakemake.output[0], row)
