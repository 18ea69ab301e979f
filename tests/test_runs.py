"""A job belongs to the Snakemake run that started it (glmflow.runs): it dies with the run, and
a job whose run has ended writes no output. A ``kill -9`` of ``snakemake`` alone left its
running jobs behind; after README's recovery (``--unlock``, then ``snakemake``) with a changed
config, such an orphan finished later and wrote its old cell over the new run's."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import edit_config, result_hashes, snakemake
from test_hardening import broken  # noqa: F401 (the fixture)

from glmflow import runs

# Cells of 20,000 replicates at n = 20,000 and 40,000 run for tens of seconds each (little memory)
LONG = {"n": [20000, 40000], "replicates": 20000}
CELLS = ["n20000_b00_b10", "n20000_b00_b11", "n40000_b00_b10", "n40000_b00_b11"]


def alive_jobs(logs: Path) -> list[int]:
    """The pids of the study's jobs at work, as their logs name them."""
    texts = [(logs / f"{cell}.log").read_text() for cell in CELLS if (logs / f"{cell}.log").exists()]
    pids = [int(m.group(1)) for text in texts for m in re.finditer(r"process (\d+) \(", text)]
    return [pid for pid in pids if runs._start_time(pid) is not None]


def running_jobs(logs: Path, deadline: float) -> list[int]:
    """``alive_jobs``, once one is."""
    while time.monotonic() < deadline:
        if alive := alive_jobs(logs):
            return alive
        time.sleep(0.05)
    raise AssertionError(f"no study job named its process in {logs}")


def gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if runs._start_time(pid) is None:  # exited (a zombie too)
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("server", ["1", "0"], ids=["job server", "own process"])
def test_an_orphaned_job_never_overwrites_a_newer_result(broken, server, monkeypatch):  # noqa: F811
    """kill -9 of snakemake alone (not its process group) during long simulate_cell jobs: the jobs
    die with it; README's recovery with a changed config then gives the new cells, and they stay."""
    monkeypatch.setenv("GLMFLOW_JOBSERVER", server)
    cells = broken / "results" / "simulation" / "cells"
    edit_config(broken, lambda c: c["simulation"]["study"].update(LONG))
    run = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "2", "results/simulation/summary.csv"],
        cwd=broken, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        pids = running_jobs(broken / "logs" / "simulation" / "cells", time.monotonic() + 120)
        os.kill(run.pid, signal.SIGKILL)  # the run only: its jobs are left to themselves
        run.wait(timeout=30)
        assert [pid for pid in pids if not gone(pid, 20)] == [], "a job outlived its run"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    edit_config(broken, lambda c: c["simulation"]["study"].update(replicates=30))
    snakemake(broken, "--unlock")  # README's recovery
    snakemake(broken, "results/simulation/summary.csv")
    written = {f"{cell}.json": (cells / f"{cell}.json").read_bytes() for cell in CELLS}
    assert [path.name for path in cells.iterdir() if path.name.startswith(".")] == []  # no staged file left
    assert {json.loads(text)["replicates"] for text in written.values()} == {30}
    time.sleep(2)
    assert {name: (cells / name).read_bytes() for name in written} == written


@pytest.fixture
def ended_run(monkeypatch):
    """GLMFLOW_RUN naming a process that has exited."""
    process = subprocess.Popen(["sleep", "30"])
    token = f"{process.pid}:{runs._start_time(process.pid)}"
    process.kill()
    process.wait()
    monkeypatch.setenv(runs.RUN, token)
    return process.pid


class Output(list):
    """Snakemake's Namedlist, as a rule script gets its ``output``."""

    def __init__(self, paths, names):
        super().__init__(paths)
        self._names = names
        self._take_names(names.items())

    def _get_names(self):
        return self._names.items()

    def _take_names(self, names):
        for name, (index, _) in list(names):
            setattr(self, name, self[index])


def test_a_job_whose_run_has_ended_writes_nothing(ended_run, tmp_path):
    """The moment between the run's death and the watch's kill: the job finishes its work, and
    its outputs are not moved into place; an earlier result stays as it was."""
    earlier = tmp_path / "cell.json"
    earlier.write_text("the newer run's cell\n")
    output = Output([str(earlier), str(tmp_path / "sub" / "other.csv")], {"cell": (0, None)})
    with pytest.raises(runs.RunEnded, match=rf"the Snakemake run that started this job \(pid {ended_run}\) has ended"):
        with runs.staged_outputs(output):
            assert output.cell != str(earlier) and Path(output.cell).parent == tmp_path
            for path in output:
                Path(path).write_text("the orphan's cell\n")
    assert earlier.read_text() == "the newer run's cell\n"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["cell.json"]
    assert output == [str(earlier), str(tmp_path / "sub" / "other.csv")] and output.cell == str(earlier)


def test_a_live_run_s_job_moves_its_outputs_into_place(tmp_path, monkeypatch):
    monkeypatch.delenv(runs.RUN, raising=False)
    runs.mark_run()
    assert os.environ[runs.RUN] == f"{os.getpid()}:{runs._start_time(os.getpid())}"
    output = Output([str(tmp_path / "a.json")], {"a": (0, None)})
    with runs.staged_outputs(output):
        Path(output.a).write_text("new\n")
    assert (tmp_path / "a.json").read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_job_kills_itself_when_its_run_ends(tmp_path):
    """The watch alone (no Snakemake): a process whose run exits is killed within a second."""
    code = "import time; from glmflow import runs; runs.watch_run(); time.sleep(60)\n"
    sleeper = subprocess.Popen(["sleep", "60"])
    env = {**os.environ, runs.RUN: f"{sleeper.pid}:{runs._start_time(sleeper.pid)}"}
    job = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert job.poll() is None
    sleeper.kill()
    sleeper.wait()
    assert job.wait(timeout=10) == -signal.SIGKILL
    assert f"the Snakemake run (pid {sleeper.pid}) has ended: this job stops" in job.stderr.read()


@pytest.mark.parametrize("server", ["1", "0"], ids=["job server", "own process"])
def test_a_job_killed_by_a_signal_says_which(broken, server, monkeypatch):  # noqa: F811
    """An out-of-memory kill is a SIGKILL of the job's process: with the job server the run said
    only "exit status 1" (its client knew no better). Both ways name the signal; no earlier result
    is lost."""
    monkeypatch.setenv("GLMFLOW_JOBSERVER", server)
    before = result_hashes(broken)
    edit_config(broken, lambda c: c["simulation"]["study"].update(LONG))
    run = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "2", "results/simulation/summary.csv"],
        cwd=broken, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    logs, killed, deadline = broken / "logs" / "simulation" / "cells", set(), time.monotonic() + 300
    try:
        running_jobs(logs, time.monotonic() + 120)
        while True:  # each job at work is killed, also one that starts after the first kill
            for pid in set(alive_jobs(logs)) - killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            try:
                output = run.communicate(timeout=0.2)[0]
                break
            except subprocess.TimeoutExpired:  # retried without losing output (subprocess's docs)
                assert time.monotonic() < deadline, "the run did not end after its jobs were killed"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode != 0
    assert "' died with <Signals.SIGKILL: 9>." in output, output[-3000:]  # Snakemake's words, either way
    if server == "1":
        assert "was killed by signal 9 (SIGKILL): an out-of-memory kill" in output, output[-3000:]
    assert {path: digest for path, digest in result_hashes(broken).items() if path in before} == before
