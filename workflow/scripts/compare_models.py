"""Likelihood-ratio test of two nested models, as anova(compact, augmented, test = "LRT")."""

import pandas as pd

from glmflow.io import logged, read_json, write_json
from glmflow.likelihood import likelihood_ratio_test

with logged(snakemake):
    spec, files = snakemake.params.spec, snakemake.input
    compact = (spec["compact"], read_json(files.compact_glance), pd.read_csv(files.compact_augment))
    augmented = (spec["augmented"], read_json(files.augmented_glance), pd.read_csv(files.augmented_augment))
    write_json(snakemake.output[0], likelihood_ratio_test(compact, augmented))
