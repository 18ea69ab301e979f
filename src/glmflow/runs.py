"""A job's outputs belong to the Snakemake run that started it: a job dies with its run, and no
job writes an output after its run has ended.

A ``kill -9`` of ``snakemake`` (an out-of-memory kill, a lost terminal) leaves its running jobs
behind: a rule script's process is a child of the shell Snakemake started, which lives on. After
``snakemake --unlock`` and a new run, such an orphan finished later and wrote its old result over
the new run's, and nothing noticed. So:

- The Snakefile names its process the run (``mark_run``): ``GLMFLOW_RUN`` holds its pid and
  start time (the start time tells a reused pid apart), and every job inherits it.
- Each job watches that process (``watch_run``, a pidfd or a poll of /proc) and kills itself
  when it ends; a job the job server forked kills itself the same way.
- A job writes its outputs under temporary names beside them (``staged_outputs``) and moves them
  into place only after its work is done and only while its run is alive: a job that outlived
  its run by a moment (between the run's death and the watch's kill) writes nothing.

Linux only (``/proc``); elsewhere the jobs run as Snakemake starts them, without the guard.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path

RUN = "GLMFLOW_RUN"  # "<pid>:<start time>" of the Snakemake process that runs the jobs


class RunEnded(Exception):
    """The Snakemake run that started this job has ended: the job may not write its outputs."""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat's field 22); None if
    there is no such process, or it has exited and waits to be reaped (a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # after the name
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def _run() -> tuple[int, str] | None:
    token = os.environ.get(RUN, "")
    pid, _, start = token.partition(":")
    return (int(pid), start) if pid.isdigit() and start else None


def _is_ancestor(pid: int) -> bool:
    current = os.getpid()
    while current > 1:
        if current == pid:
            return True
        current = _parent(current)
    return False


def mark_run() -> None:
    """Name this process (the Snakemake that parsed the Snakefile) the run of the jobs it starts.
    A run inherited from a process above this one is kept (a Snakemake started by a job belongs
    to the outer run); any other (a copied environment, a cluster job's submit host) is replaced."""
    run = _run()
    if run is not None and _is_ancestor(run[0]) and _start_time(run[0]) == run[1]:
        return
    start = _start_time(os.getpid())
    if start is None:  # no /proc: no guard
        os.environ.pop(RUN, None)
        return
    os.environ[RUN] = f"{os.getpid()}:{start}"


def run_ended() -> bool:
    """Whether this job's run has ended (False outside a run)."""
    run = _run()
    return run is not None and _start_time(run[0]) != run[1]


def _stop_when_ended(pid: int, start: str) -> None:
    try:
        waiter = os.pidfd_open(pid)
    except (AttributeError, OSError):
        waiter = None
    while _start_time(pid) == start:  # checked after opening the pidfd: no exit is missed
        if waiter is None:
            time.sleep(1.0)
        else:
            select.select([waiter], [], [])
    print(f"glmflow: the Snakemake run (pid {pid}) has ended: this job stops and writes nothing", file=sys.stderr)
    os.kill(os.getpid(), signal.SIGKILL)


def watch_run() -> None:
    """Kill this process when its run ends (a thread waiting for the run's process to exit)."""
    run = _run()
    if run is not None:
        threading.Thread(target=_stop_when_ended, args=run, daemon=True, name="glmflow-run-watch").start()


def _staging_name(path: Path) -> Path:
    return path.with_name(f".glmflow-{os.getpid()}-{path.name}")


def _remove_stale_staging(path: Path) -> None:
    """Staged files of jobs that were killed before they could clean up."""
    for stale in path.parent.glob(f".glmflow-*-{path.name}"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and _start_time(int(pid)) is None:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_outputs(output):
    """Point a rule's ``output`` (Snakemake's Namedlist, changed in place) at temporary files
    beside the outputs; when the block succeeds and the run is alive, move them into place.
    Otherwise remove them: an output is never half-written, nor written by an orphan."""
    finals = [Path(path) for path in output]
    staging = [_staging_name(path) for path in finals]
    for path, staged in zip(finals, staging, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(path)
        staged.unlink(missing_ok=True)
    names = list(output._get_names())
    output[:] = [str(path) for path in staging]
    output._take_names(names)
    try:
        yield
        if run_ended():
            raise RunEnded(
                f"the Snakemake run that started this job (pid {_run()[0]}) has ended: its outputs "
                f"({', '.join(map(str, finals))}) are not written; a newer run writes them"
            )
        for path, staged in zip(finals, staging, strict=True):
            os.replace(staged, path)
    finally:
        for staged in staging:
            staged.unlink(missing_ok=True)
        output[:] = [str(path) for path in finals]
        output._take_names(names)
