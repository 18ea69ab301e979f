"""Compile a group of numba kernels into numba's cache (glmflow.kernels), before the jobs that use them."""

from glmflow.job import start

start(snakemake)  # first: the thread pools sized, the job handed to the warm server

import time

from glmflow.io import logged, write_json
from glmflow.kernels import compile_group

with logged(snakemake) as log:
    began = time.perf_counter()
    fitted = compile_group(snakemake.wildcards.kernels)
    log.info("kernels ready in %.1f s (compiled, or loaded from numba's cache)", time.perf_counter() - began)
    write_json(snakemake.output[0], fitted)
