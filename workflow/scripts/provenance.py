"""The provenance page: config as run, checksums, versions, git commit (run times: snakemake --report);
the same as an SVG image, which the report shows."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from pathlib import Path

from glmflow.io import logged, write_text
from glmflow.report import provenance_context, render_provenance, render_provenance_svg

with logged(snakemake):
    # Data paths are the project's (the working directory); the commit is of the checkout this
    # script belongs to, which is another directory when glmflow runs as a module. Snakemake's
    # preamble sets __file__ to the rule's script, not to the copy it runs.
    context = provenance_context(snakemake.params.config, Path("."), Path(__file__).resolve().parent)
    write_text(snakemake.output.page, render_provenance(context))
    write_text(snakemake.output.image, render_provenance_svg(context))
