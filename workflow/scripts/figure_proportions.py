"""100% stacked bars of a count table (the chapter's survival by sex)."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

from glmflow.figures import proportion_bars
from glmflow.io import logged, read_csv, write_text

with logged(snakemake):
    figure = snakemake.params.figure
    counts = read_csv(snakemake.input[0])
    write_text(snakemake.output[0], proportion_bars(counts, figure["x"], figure["fill"], figure.get("labels", {})))
