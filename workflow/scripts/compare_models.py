"""anova() of nested models, as R's anova(m1, m2, ..., test = ...) from their written results
and model frames."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.comparisons import compare_models
from glmflow.frame import read_frame
from glmflow.io import logged, read_json, write_json

with logged(snakemake) as log:
    files, names = snakemake.input, snakemake.params.names
    frames = {name: read_frame(files[f"frame_{i}"], files[f"frame_json_{i}"]) for i, name in enumerate(names)}
    glances = [read_json(files[f"glance_{i}"]) for i in range(len(names))]
    augments = [files[f"augment_{i}"] for i in range(len(names))]
    models = {name: frame.spec for name, frame in frames.items()}
    table = compare_models(snakemake.params.spec, models, glances, augments, frames)
    for message in table.get("messages", []):
        log.info(message)
    for warning in table.get("warnings", []):
        log.warning(warning)
    write_json(snakemake.output[0], table)
