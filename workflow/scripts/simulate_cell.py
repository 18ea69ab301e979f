"""One cell of the parameter-recovery study: simulate its replicates, fit them all, summarise."""

from glmflow.io import logged, write_json
from glmflow.simulate import run_cell
from glmflow.study import cell_by_label

with logged(snakemake) as log:
    study = snakemake.params.study
    cell = cell_by_label(study, snakemake.wildcards.cell)
    row = run_cell(study["seed"], cell, study["replicates"], threads=snakemake.threads)
    log.info("%s: %d replicates, %d separated", cell.label, row["replicates"], row["separated"])
    write_json(snakemake.output[0], row)
