"""A rule script's first statement: ``start(snakemake)``, before anything heavy is imported.

It sizes the BLAS, OpenMP and numba thread pools to the rule's ``threads`` before numpy loads,
so that ``--cores`` is never oversubscribed (numpy's OpenBLAS would otherwise start a thread
per core in every job: on a loaded 2-core machine one n = 10,000 fit ran 8-13x slower); then
it hands the job to the warm job server (``glmflow.jobserver``), which runs the script and whose
exit status this process exits with. Where no server is used (``GLMFLOW_JOBSERVER=0``, a SLURM
node, no server reachable), it returns and the script runs here. Called, not done on import,
so that importing glmflow never changes a process.
"""

from __future__ import annotations

import os
import sys

FORKED = False  # True in a job's process forked by the job server (set there; glmflow.io logs it)
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def start(job) -> None:
    """Size the thread pools to ``job.threads`` and run the job in the warm server if there is
    one (this process then exits with the job's status); return to run it here otherwise."""
    threads = getattr(job, "threads", None)
    if FORKED or not threads:  # in the server's child the server has set them
        return
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    if os.environ.get("GLMFLOW_IN_JOBSERVER"):
        return
    from glmflow import jobserver  # only here: a script's process imports it before anything heavy

    if jobserver.enabled():
        main = sys.modules["__main__"]  # Snakemake's preamble sets __file__ to the rule's script
        jobserver.delegate(getattr(main, "__real_file__", main.__file__), threads)


def where() -> str:
    return "forked by the glmflow job server" if FORKED else "its own process"


def compiled_kernels() -> list[str]:
    """glmflow's numba kernels that numba compiled in this process, for signatures its cache
    lacked, by qualified name (logged by glmflow.io.logged: after the workflow's compile_kernels
    job a fitting job should list none). Nothing where numba was never imported."""
    if "numba" not in sys.modules:
        return []
    from numba.core.dispatcher import Dispatcher

    compiled = set()
    for name, module in list(sys.modules.items()):
        if name.startswith("glmflow."):
            for value in vars(module).values():
                if isinstance(value, Dispatcher) and value.py_func.__module__ == name and value.stats.cache_misses:
                    compiled.add(f"{name}.{value.py_func.__name__}")
    return sorted(compiled)
