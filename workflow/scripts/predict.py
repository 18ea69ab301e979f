"""A fitted model's predictions on a grid, from its model frame, coefficients and covariance."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.frame import read_frame
from glmflow.interpret import frame_predictions
from glmflow.io import logged, read_csv, write_csv

with logged(snakemake):
    files = snakemake.input
    table = frame_predictions(
        read_frame(files.frame, files.frame_json),
        read_csv(files.tidy),
        read_csv(files.vcov, index_col="term"),
        snakemake.params.at,
        f"interpretation.predictions.{snakemake.wildcards.name}",
    )
    write_csv(snakemake.output[0], table)
