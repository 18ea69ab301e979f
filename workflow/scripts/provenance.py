"""The provenance page: config as run, checksums, versions, git commit (run times: snakemake --report)."""

from pathlib import Path

from glmflow.io import logged, write_text
from glmflow.report import provenance_context, render_provenance

with logged(snakemake):
    context = provenance_context(snakemake.config, Path("."))
    write_text(snakemake.output[0], render_provenance(context))
