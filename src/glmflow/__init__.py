"""glmflow: the statistics behind the workflow, importable and tested without Snakemake."""

import os
import sys

__version__ = "0.1.0"

# In a rule script, Snakemake's `snakemake` object is in __main__ before the script runs, and
# numpy is not yet imported: the BLAS, OpenMP and numba thread pools are sized here to the
# rule's `threads`, so that `--cores` is never oversubscribed (numpy's OpenBLAS would otherwise
# start a thread per core in every job: on a loaded 2-core machine one n = 10,000 fit ran
# 8-13x slower).
_job = getattr(sys.modules.get("__main__"), "snakemake", None)
if getattr(_job, "threads", None):
    for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_variable] = str(_job.threads)
