"""The chapter's simulated data set, drawn as R draws it after set.seed()."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.io import logged, write_csv
from glmflow.simulate import simulate_logistic

with logged(snakemake) as log:
    spec = snakemake.params.spec
    data = simulate_logistic(spec["n"], spec["b0"], spec["b1"], spec["seed"], spec["rng"])
    log.info("%d rows, %d responses of 1", len(data), int(data["response"].sum()))
    write_csv(snakemake.output.data, data)
