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
    # The rule script runs in the warm job server (glmflow.jobserver: imports paid once per run,
    # not per job) and this process exits with its status; imported here, not at the top,
    # because only rule scripts use it, before anything heavy is imported.
    if not os.environ.get("GLMFLOW_IN_JOBSERVER"):
        from glmflow import jobserver

        if jobserver.enabled():
            _main = sys.modules["__main__"]  # Snakemake's preamble sets __file__ to the rule's script
            jobserver.delegate(getattr(_main, "__real_file__", _main.__file__), _job.threads)
