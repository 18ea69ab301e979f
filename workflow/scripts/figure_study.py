"""Bias and coverage of the simulation study against n, with Monte Carlo error bars."""

import pandas as pd

from glmflow.figures import study_figure
from glmflow.io import logged, write_text

with logged(snakemake):
    write_text(snakemake.output[0], study_figure(pd.read_csv(snakemake.input[0])))
