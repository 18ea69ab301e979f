"""The whole workflow on a real single-node SLURM (tests/slurm/cluster.sh, Debian's slurm-wlm),
through workflow/profiles/slurm: every non-local job runs as a SLURM job, the results equal a
local run's byte for byte, and the run survives a cancelled job and a restarted slurmd; a model
that fails on a glmflow error is submitted once, with its message on the console.
Needs root (cluster.sh installs and starts SLURM); `make test` runs it under `timeout -k`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import FAILING_MODEL, ROOT, SMALL_CONFIG, copy_workflow, failing_config, result_hashes, snakemake

from glmflow.datafile import read_dataset
from glmflow.errors import LOG_MARK, GlmflowError
from glmflow.models import fit_model

pytestmark = pytest.mark.slurm

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
JOBCOMP = Path("/var/log/slurm/jobcomp.log")
LOCAL_RULES = {"report", "provenance", "gather_simulation", "count_table", "predict", "compare_models",
               "likelihood_check"}  # fmt: skip
PROFILE = ["--workflow-profile", "workflow/profiles/slurm"]
# Snakemake as `python -m snakemake` runs it, but checking the jobs' states every second
# (tests/slurm/snakemake_polling.py): the profile's back-off would be most of each run's time.
SNAKEMAKE = [sys.executable, str(ROOT / "tests" / "slurm" / "snakemake_polling.py")]


@pytest.fixture(scope="module")
def cluster():
    subprocess.run([CLUSTER, "start"], check=True, timeout=600)
    yield
    subprocess.run([CLUSTER, "stop"], check=True, timeout=120)


def cluster_snakemake(directory, *arguments, check=True, env=None):
    command = [*SNAKEMAKE, *PROFILE, *arguments]
    environment = {**os.environ, **(env or {})}
    result = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=900, env=environment)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake on SLURM failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def completed_slurm_jobs(directory) -> set[str]:
    jobs = set()
    for line in JOBCOMP.read_text().splitlines():
        if f"WorkDir={directory} " in line and "JobState=COMPLETED" in line:
            jobs.add(re.search(r"JobId=(\d+)", line).group(1))
    return jobs


def steps(directory):
    """(rule, SLURM job id or None) of every step, from the steps' own logs."""
    found = []
    for log in sorted((directory / "logs").rglob("*.log")):
        text = log.read_text()
        rule = re.search(r"INFO rule (\w+),", text).group(1)
        job = re.search(r"INFO SLURM job (\d+) on ", text)
        found.append((rule, job.group(1) if job else None, log))
    return found


def test_whole_workflow_on_slurm_equals_a_local_run(cluster, small_run, tmp_path):
    """The small config on SLURM, in a fresh process (another string hash seed, so another job
    order) and with every job in a process of its own: the SLURM jobs by design, the local ones
    by GLMFLOW_JOBSERVER=0. The same results byte for byte as small_run, whose jobs the job
    server forked in one local run."""
    directory = copy_workflow(tmp_path / "cluster", SMALL_CONFIG).resolve()
    started = time.monotonic()
    result = cluster_snakemake(directory, env={"GLMFLOW_JOBSERVER": "0"})
    seconds = time.monotonic() - started
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", result.stdout + result.stderr))
    assert submitted and submitted <= completed_slurm_jobs(directory)
    for rule, job, log in steps(directory):
        if rule in LOCAL_RULES:
            assert job is None, f"{rule} ran as SLURM job {job}"
        else:
            assert job in submitted, f"{log.relative_to(directory)}: {rule} did not run in a SLURM job"
        assert "(its own process)" in log.read_text(), f"{log.relative_to(directory)}: forked"
    # provenance.html and provenance.svg hold the date and host: the files allowed to differ
    assert result_hashes(directory) == result_hashes(small_run)
    assert "(forked by the glmflow job server)" in (small_run / "logs" / "models" / "glm_fare.log").read_text()
    print(f"small config on SLURM: {seconds:.0f} s, {len(submitted)} submissions")


def wait_for(condition, seconds=300, step=0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def running_jobs(directory) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %T %Z"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()[-1] == str(directory)]


def test_cancelled_job_and_restarted_slurmd_are_survived(cluster, tmp_path):
    """On the one-model config (its jobs go in two submissions, data then models: one to cancel
    and one to run while slurmd restarts), the run survives both and ends with a local run's
    results."""
    failing_config(tmp_path / "config.yaml")
    local = copy_workflow(tmp_path / "local", tmp_path / "config.yaml")
    snakemake(local)
    directory = copy_workflow(tmp_path / "faults", tmp_path / "config.yaml").resolve()
    command = [*SNAKEMAKE, *PROFILE]
    run = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: running_jobs(directory)), "no job reached SLURM"
        cancelled = running_jobs(directory)[0]
        subprocess.run(["scancel", cancelled], check=True)  # retries: 2 resubmits it
        # the job submitted after it, once the cancelled one has left the queue: slurmd killed while
        # the node still completed the cancelled job left the node COMPLETING, and it did not
        # come back within cluster.sh's 20 s (the cancelled job was still listed, so this wait
        # had returned at once)
        assert wait_for(lambda: cancelled not in (jobs := running_jobs(directory)) and jobs), (
            "no job after the cancelled one"
        )
        subprocess.run(["pkill", "-9", "-x", "slurmd"], check=True)  # the node's daemon dies mid-run
        time.sleep(3)
        subprocess.run([CLUSTER, "start"], check=True, timeout=120)  # and comes back
        assert run.wait(timeout=900) == 0
    finally:
        if run.poll() is None:
            run.kill()
    # No second run: a run that survived the faults and exited 0 must have written every result.
    assert result_hashes(directory) == result_hashes(local)


def test_ctrl_c_cancels_the_runs_jobs(cluster, tmp_path):
    directory = copy_workflow(tmp_path / "interrupted", SMALL_CONFIG).resolve()
    command = [*SNAKEMAKE, *PROFILE]
    run = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: running_jobs(directory)), "no job reached SLURM"
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=120) != 0
    finally:
        if run.poll() is None:
            os.kill(run.pid, signal.SIGKILL)
    assert wait_for(lambda: not running_jobs(directory), seconds=60), "jobs left in the queue after Ctrl-C"


def slurm_jobs(directory) -> dict[str, str]:
    """Every SLURM job (finished in any state) that ran in ``directory``: id -> its jobcomp line."""
    return {
        re.search(r"JobId=(\d+)", line).group(1): line
        for line in JOBCOMP.read_text().splitlines()
        if f"WorkDir={directory} " in line
    }


def test_failing_model_is_submitted_once_with_its_message_on_the_console(cluster, tmp_path):
    """A glmflow error fails the same way each time: one submission (not 1 + retries), its
    message where snakemake runs, and the earlier run's results kept. Partition and account are
    set as README says, and the job keeps the profile's runtime."""
    config = failing_config(tmp_path / "config.yaml")
    directory = copy_workflow(tmp_path / "failing", tmp_path / "config.yaml").resolve()
    cluster_snakemake(directory)
    before, earlier_jobs = result_hashes(directory), set(slurm_jobs(directory))

    config["models"]["glm_log_fare"] = FAILING_MODEL
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    site = {"GLMFLOW_SLURM_PARTITION": "main", "GLMFLOW_SLURM_ACCOUNT": "glmflow_test"}  # as README says
    result = cluster_snakemake(directory, check=False, env=site)
    console = result.stdout + result.stderr
    assert result.returncode != 0
    with pytest.raises(GlmflowError) as error:
        fit_model(read_dataset(directory / "results/data/titanic.parquet"), FAILING_MODEL, "glm_log_fare")
    assert f"glmflow: {error.value}" in console, console[-4000:]

    submitted = re.findall(r"submitted with SLURM jobid (\d+)", console)
    assert len(submitted) == 1, f"submitted {len(submitted)} times: {submitted}"
    assert wait_for(lambda: set(slurm_jobs(directory)) - earlier_jobs == set(submitted), seconds=30)
    line = slurm_jobs(directory)[submitted[0]]
    runtime = yaml.safe_load((ROOT / PROFILE[1] / "config.yaml").read_text())["default-resources"]["runtime"]
    assert "JobState=FAILED" in line and f"TimeLimit={runtime} " in line, line
    assert "Partition=main " in line and "Account=glmflow_test " in line, line
    assert {path: digest for path, digest in result_hashes(directory).items() if path in before} == before


def test_job_cancelled_in_the_queue_is_retried_despite_an_earlier_glmflow_error(cluster, tmp_path):
    """On SLURM a job's logs are removed on its node when it starts: a job cancelled while
    queued keeps an earlier run's log, whose glmflow error must not stop the retry."""
    failing_config(tmp_path / "config.yaml")
    directory = copy_workflow(tmp_path / "stale", tmp_path / "config.yaml").resolve()
    log = directory / "logs" / "data" / "titanic.log"  # the first job's (clean_data)
    log.parent.mkdir(parents=True)
    log.write_text(f"INFO rule clean_data, wildcards {{'dataset': 'titanic'}}\n{LOG_MARK} an earlier run's\n")
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
    drain = ["scontrol", "update", f"NodeName={node}"]
    subprocess.run([*drain, "State=DRAIN", "Reason=glmflow test"], check=True)  # jobs wait in the queue
    run = subprocess.Popen([*SNAKEMAKE, *PROFILE], cwd=directory, stdout=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: running_jobs(directory)), "no job reached SLURM"
        cancelled = running_jobs(directory)[0]
        subprocess.run(["scancel", cancelled], check=True)
        retried = wait_for(lambda: set(running_jobs(directory)) - {cancelled} or run.poll() is not None)
        assert retried and run.poll() is None, "the cancelled job was not submitted again"
        subprocess.run([*drain, "State=RESUME"], check=True)
        assert run.wait(timeout=900) == 0
    finally:
        subprocess.run([*drain, "State=RESUME"], check=False)
        if run.poll() is None:
            run.kill()
