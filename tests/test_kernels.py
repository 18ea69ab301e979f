"""numba's kernels are compiled once in a first run, by the compile_kernels jobs, and by no job
that depends on them: the real Snakemake on a copy of the workflow with its own copy of the
package, whose numba cache (beside its sources) starts empty, as on a fresh clone."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import ROOT, copy_workflow, snakemake

PACKAGE_FILES = shutil.ignore_patterns("__pycache__", "*.egg-info")
CONFIG = ROOT / "tests" / "config" / "kernels.yaml"


def compiled(log) -> set[str]:
    """The kernels a job's log says numba compiled in that job (glmflow.io.logged)."""
    found = re.findall(r"^INFO compiled by numba in this job: (.*)$", log.read_text(), flags=re.M)
    return {name for line in found for name in line.split(", ")}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    directory = copy_workflow(tmp_path_factory.mktemp("kernels"), CONFIG)
    shutil.copytree(ROOT / "src", directory / "src", ignore=PACKAGE_FILES)
    assert not list((directory / "src").rglob("*.nbi"))  # numba's cache is empty
    snakemake(directory)
    return directory


def test_the_compile_jobs_compile_the_kernels(first_run):
    mixed = compiled(first_run / "logs" / "kernels" / "mixed_models.log")
    assert {"glmflow.glmm.pirls.laplace", "glmflow.glmm.pirls.laplace_gradient",
            "glmflow.glmm.scalar._deviance_and_gradient"} <= mixed  # fmt: skip
    assert "glmflow.simulate._draw_and_fit_batch" in compiled(first_run / "logs" / "kernels" / "study.log")


def test_no_job_that_uses_the_kernels_compiles_any(first_run):
    """Every mixed model (one on each path through glmflow.glmm) and the study's cell found its
    kernels in the cache: the compile jobs ran first, with the argument types the fits use."""
    logs = sorted((first_run / "logs" / "models").glob("*.log"))
    logs += sorted((first_run / "logs" / "simulation" / "cells").glob("*.log"))
    assert len(logs) == 5
    assert {log.name: compiled(log) for log in logs} == {log.name: set() for log in logs}
