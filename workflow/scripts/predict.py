"""A fitted model's predictions on a grid, from its written coefficients and covariance."""

from glmflow.datafile import read_dataset
from glmflow.interpret import predictions
from glmflow.io import logged, read_csv, write_csv

with logged(snakemake):
    files, params = snakemake.input, snakemake.params
    table = predictions(
        read_dataset(files.data),
        params.spec,
        params.model,
        read_csv(files.tidy),
        read_csv(files.vcov, index_col="term"),
        params.at,
        f"interpretation.predictions.{snakemake.wildcards.name}",
    )
    write_csv(snakemake.output[0], table)
