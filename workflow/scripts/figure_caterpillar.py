"""A mixed model's group intercepts with their 95% intervals, sorted (caterpillar plot)."""

import pandas as pd

from glmflow.figures import caterpillar
from glmflow.formula import random_effect_terms
from glmflow.io import logged, write_text

with logged(snakemake):
    group = random_effect_terms(snakemake.params.spec["formula"])[0][1]
    write_text(snakemake.output[0], caterpillar(pd.read_csv(snakemake.input[0]), group))
