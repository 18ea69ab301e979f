"""glmflow: the statistics behind the workflow, importable and tested without Snakemake.

Importing it changes nothing in the process: a rule script hands itself to the warm job server
explicitly, by its first statement ``glmflow.job.start(snakemake)``."""

__version__ = "0.1.0"
