"""Fixes for Snakemake 9.27 (the version in requirements.lock), applied by the Snakefile.

Retries that skip glmflow's own errors. ``retries`` (the SLURM profile's) submits any failed job
again, but a GlmflowError (bad input, a failed fit) fails the same way each time, and on a
cluster its message stays in the job's log: the console says only "Error in group models ...
check log file(s)". When a job fails, ``_handle_error`` reads its steps' logs: a log that ends
with ``glmflow.errors.LOG_MARK`` (written by ``glmflow.io.logged``) makes the job fail for good,
with its message printed where ``snakemake`` runs. A job that died without one (a lost node, a
cancel, a time limit) is retried as before. A mark from an earlier run must not stop that retry:
a local run removes a job's logs before the job, but a cluster job's are removed on its node
when it starts, so one cancelled in the queue keeps them; ``_run`` removes such marks first.

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
from pathlib import Path

from snakemake.logging import logger
from snakemake.scheduling.job_scheduler import JobScheduler

from glmflow.errors import error_in_log

_handle_error_of_snakemake = JobScheduler._handle_error
_run_of_snakemake = JobScheduler.run


def _logs(job) -> list[Path]:
    """The ``log:`` files of a job's steps (each step of a group job)."""
    steps = job.jobs if hasattr(job, "jobs") else [job]
    return [Path(str(log)) for step in steps for log in step.log]


def _run(self, jobs, executor=None):
    """Snakemake's, after removing the logs that still hold an earlier run's glmflow error."""
    if not self.workflow.dryrun:
        for log in (log for job in jobs for log in _logs(job)):
            if error_in_log(log) is not None:
                log.unlink(missing_ok=True)
    return _run_of_snakemake(self, jobs, executor)


def _handle_error(self, job, postprocess_job: bool = True):
    """Snakemake's, but a job whose step stopped on a glmflow error is not retried, and a
    cluster job's message is printed (a local job has shown its step's stderr already)."""
    errors = [(log, message) for log in _logs(job) if (message := error_in_log(log)) is not None]
    if errors:
        job.attempt = job.restart_times + 1  # the count of tries that Snakemake checks
    _handle_error_of_snakemake(self, job, postprocess_job)
    if not (self.workflow.local_exec or job.is_local):  # a local job's stderr is on the console
        for log, message in errors:
            logger.error(f"glmflow: {message}\n  (log: {log}; not submitted again: it would fail the same way)")


def _exit_gracefully(self, *args) -> None:
    """SIGTERM: finish the running jobs, start no more (Snakemake's meaning), without a lock."""
    self._user_kill = "graceful"
    threading.Thread(target=self._open_jobs.release, daemon=True).start()


def apply() -> None:
    JobScheduler.exit_gracefully = _exit_gracefully
    JobScheduler._handle_error = _handle_error
    JobScheduler.run = _run
