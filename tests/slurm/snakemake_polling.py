"""`python -m snakemake`, but with the SLURM executor plugin asking for its jobs' states every
second: for tests/test_slurm.py only.

The plugin waits `slurm-init-seconds-before-status-checks` (10 s in workflow/profiles/slurm)
between two status checks and adds 10 s after every check that finds no job finished (up to
180 s), which spares a real cluster's controller. On the test's one-node cluster that back-off
is most of a run's time: a job that ran 150 s was seen finished about a minute after it ended.
The workflow, the profile and every job are the user's; only the polling of the process that
submits them is tighter (squeue on a local controller costs a few milliseconds).
"""

from __future__ import annotations

import os
import sys

from snakemake.cli import main
from snakemake_executor_plugin_slurm import Executor

SECONDS_BETWEEN_STATUS_CHECKS = 1
_check_active_jobs = Executor.check_active_jobs


async def check_active_jobs(self, active_jobs):
    """The plugin's check, then the next one a second later whatever it found."""
    async for job in _check_active_jobs(self, active_jobs):
        yield job
    self.next_seconds_between_status_checks = SECONDS_BETWEEN_STATUS_CHECKS


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # as `python -m` has it, rather than this file's folder
    Executor.check_active_jobs = check_active_jobs
    main()
