"""The whole workflow's wall time: a clean full run, a no-op run, and what each added GLM costs.

Copies the project to a temporary directory and runs the real Snakemake there (default
profile, ``--cores`` as given): ``repeats`` clean runs (median), each with a cold job server
(``glmflow.jobserver``, stopped before), the no-op run after each (median), and one clean run
with ``extra`` more GLMs in config (copies of the config's first GLM
under new names), whose extra time divided by ``extra`` is the cost of one more GLM with its
likelihood check.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from glmflow import jobserver
from glmflow.project import copy_project

OUTPUTS = ["results", "logs", "benchmarks", ".snakemake"]


def _timed_snakemake(directory: Path, cores: int) -> tuple[float, int]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(cores)], cwd=directory, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"snakemake failed in {directory}:\n{result.stderr[-3000:]}")
    done = re.findall(r"(\d+) of (\d+) steps", result.stderr + result.stdout)
    return seconds, int(done[-1][1]) if done else 0


def _clean(directory: Path) -> None:
    """Remove the outputs, and stop the job server so that the next run starts it cold."""
    for name in OUTPUTS:
        shutil.rmtree(directory / name, ignore_errors=True)
    jobserver.stop()


def run(repeats: int, extra: int, cores: int) -> None:
    print(f"# load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}, cores {cores}", flush=True)
    with tempfile.TemporaryDirectory(prefix="glmflow-bench-") as tmp:
        directory = copy_project(Path(tmp) / "project")
        full, noop, jobs = [], [], 0
        for _ in range(repeats):
            _clean(directory)
            seconds, jobs = _timed_snakemake(directory, cores)
            full.append(seconds)
            noop.append(_timed_snakemake(directory, cores)[0])
        config_path = directory / "config.yaml"
        config = yaml.safe_load(config_path.read_text())
        template = next(spec for spec in config["models"].values() if "|" not in spec["formula"])
        for i in range(extra):
            config["models"][f"bench_glm_{i}"] = dict(template)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        _clean(directory)
        with_extra, _ = _timed_snakemake(directory, cores)
        base = statistics.median(full)
        per_model = (with_extra - base) / extra if extra else float("nan")
        print(
            f"full_run_seconds={base:.1f} noop_seconds={statistics.median(noop):.2f} jobs={jobs} "
            f"per_extra_model_seconds={per_model:.2f}",
            flush=True,
        )
        print(f"# full runs: {', '.join(f'{s:.1f}' for s in full)}; with {extra} more GLMs: {with_extra:.1f} s")
        print(f"# load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
