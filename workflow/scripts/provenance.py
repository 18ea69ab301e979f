"""The provenance page: config as run, checksums, versions, git commit, each step's run time."""

from pathlib import Path

from glmflow.io import logged, write_text
from glmflow.report import provenance_context, render_provenance

with logged(snakemake):
    context = provenance_context(snakemake.config, Path("benchmarks"), Path("."))
    write_text(snakemake.output[0], render_provenance(context))
