"""The study's cells gathered into one table, one row per cell."""

import pandas as pd

from glmflow.io import logged, read_json, write_csv

with logged(snakemake):
    rows = [read_json(path) for path in snakemake.input]
    write_csv(snakemake.output[0], pd.DataFrame(rows).sort_values(["b0", "b1", "n"]))
