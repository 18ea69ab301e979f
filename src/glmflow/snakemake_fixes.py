"""A fix for Snakemake 9.27 (the version in requirements.lock), applied by the Snakefile.

SIGTERM to a run (a cluster's or a terminal's) is handled by ``JobScheduler.exit_gracefully``,
which takes the scheduler's lock, a non-reentrant ``threading.Lock``, inside the signal handler.
Python runs the handler on the main thread between two bytecodes of whatever it was doing: when
the signal lands while the main thread holds that lock (it does at every scheduling step), the
handler waits for a lock that only the code it interrupted can release, and the run hangs for
ever. ``tests/test_faults.py`` hung so once in about 40 SIGTERMs here (more often as jobs got
shorter with the job server). The replacement sets the same flag without the lock (a single
attribute store) and wakes the scheduler from a thread.
"""

from __future__ import annotations

import threading

from snakemake.scheduling.job_scheduler import JobScheduler


def _exit_gracefully(self, *args) -> None:
    """SIGTERM: finish the running jobs, start no more (Snakemake's meaning), without a lock."""
    self._user_kill = "graceful"
    threading.Thread(target=self._open_jobs.release, daemon=True).start()


def apply() -> None:
    JobScheduler.exit_gracefully = _exit_gracefully
