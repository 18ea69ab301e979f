"""anova() of nested models, as R's anova(m1, m2, ..., test = ...) from their written results."""

from glmflow.comparisons import compare_models
from glmflow.datafile import read_dataset
from glmflow.io import logged, read_json, write_json

with logged(snakemake) as log:
    files, params = snakemake.input, snakemake.params
    glances = [read_json(files[f"glance_{i}"]) for i in range(len(params.models))]
    augments = [files[f"augment_{i}"] for i in range(len(params.models))]
    table = compare_models(params.spec, params.models, glances, augments, read_dataset(files.data))
    for message in table.get("messages", []):
        log.info(message)
    for warning in table.get("warnings", []):
        log.warning(warning)
    write_json(snakemake.output[0], table)
