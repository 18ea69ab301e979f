"""Load, check and clean one data set; write it with its glimpse and first rows."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.data import data_path_problem, glimpse, load_dataset
from glmflow.datafile import write_dataset
from glmflow.errors import GlmflowError
from glmflow.io import logged, write_csv, write_text

with logged(snakemake) as log:
    spec = snakemake.params.spec
    # checked before any job too; again here, as a symlink may have been pointed elsewhere since
    problem = data_path_problem(snakemake.input.csv, ".", spec.get("allow_outside_project", False))
    if problem:
        raise GlmflowError(f"datasets.{snakemake.wildcards.dataset}.path: {problem}")
    data = load_dataset(
        snakemake.input.csv,
        name=snakemake.wildcards.dataset,
        sha256=spec.get("sha256"),
        clean_names_=spec.get("clean_names", True),
        factors=spec.get("factors", []),
        filter_=spec.get("filter"),
        levels=spec.get("levels"),
    )
    log.info("%d rows, %d columns after cleaning", *data.shape)
    warnings = data.attrs.get("warnings", [])
    for warning in warnings:
        log.warning(warning)
    # The glimpse and first rows are written from the file as every later job reads it.
    data = write_dataset(data, snakemake.output.data)
    write_text(snakemake.output.glimpse, glimpse(data) + "".join(f"Warning: {w}\n" for w in warnings))
    write_csv(snakemake.output.head, data.head(10))
