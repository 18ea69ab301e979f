"""A run killed at a random job recovers with README's Troubleshooting commands and gives the
same results, byte for byte, as a clean run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import SMALL_CONFIG, copy_workflow, result_hashes, snakemake

from glmflow.snakemake_fixes import _exit_gracefully

# Log files that appear when a job starts: the kill lands while that job runs (or just after).
JOB_LOGS = [
    "logs/data/titanic.log",
    "logs/models/glm_sex_fare.log",
    "logs/models/glmm_class.log",
    "logs/simulation/cells/n100_b00_b11.log",
    "logs/checks/likelihood_glm_fare.log",
    "logs/report.log",
]


def kill_point(signal_) -> str:
    """A job log drawn afresh on every run (each run tries another kill point; over runs, all of
    them), printed so that a failure can be replayed with GLMFLOW_FAULT_SEED=<seed>."""
    seed = int(os.environ.get("GLMFLOW_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    point = random.Random(f"{seed}-{signal_.name}").choice(JOB_LOGS)
    print(f"{signal_.name} at {point} (GLMFLOW_FAULT_SEED={seed})")
    return point


def start(directory):
    command = [sys.executable, "-m", "snakemake", "--cores", "2"]
    return subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


@pytest.mark.parametrize("signal_", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_run_recovers_with_the_readme_commands(small_run, tmp_path, signal_):
    directory = copy_workflow(tmp_path / "killed", SMALL_CONFIG)
    target = directory / kill_point(signal_)
    process = start(directory)
    deadline = time.monotonic() + 300
    while not target.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before {target.name} appeared"
    os.killpg(process.pid, signal_)  # the whole run: snakemake and its jobs
    process.wait(timeout=120)
    if signal_ == signal.SIGKILL:
        # README, Troubleshooting: a hard kill leaves Snakemake's lock behind.
        locked = snakemake(directory, check=False)
        assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
        snakemake(directory, "--unlock")
    snakemake(directory)  # rerun-incomplete (default profile) redoes the job that was cut off
    assert result_hashes(directory) == result_hashes(small_run)


def test_sigterm_handler_does_not_take_the_schedulers_lock():
    """glmflow/snakemake_fixes.py: the SIGTERM handler returns while the scheduler's lock is
    held (as when the signal lands mid-step on the main thread) and still wakes the scheduler."""

    class Scheduler:
        _lock = threading.Lock()
        _open_jobs = threading.Semaphore(0)
        _user_kill = None

    scheduler = Scheduler()
    with scheduler._lock:
        _exit_gracefully(scheduler, signal.SIGTERM, None)
        assert scheduler._user_kill == "graceful"
    assert scheduler._open_jobs.acquire(timeout=5)
