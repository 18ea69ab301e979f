"""The numba kernels compiled once, before the jobs that use them: the ``compile_kernels`` rule.

numba compiles a kernel on its first call and keeps the machine code in its cache beside the
sources (``__pycache__/*.nbi`` and ``*.nbc``, the kernels' ``cache=True``), from which a later
process loads it in milliseconds. On a fresh clone every mixed-model job that Snakemake started
at the same time found that cache empty and compiled the same kernels, each its own copy, on
cores the other jobs needed. A group's ``compile_kernels()`` runs a few small fits that take the
same code paths as the workflow's jobs (through the same fitting functions, so with the same
argument types): run by one job that the fitting jobs depend on, it leaves the cache full for
them. ``glmflow.io.logged`` logs the kernels a job compiled, so a job that missed the cache says so.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# Each group's module by name, not imported here: the compile job's code fingerprint (the
# workflow's rerun trigger: workflow/rules/common.smk) then holds that group's module alone, and
# editing the study's kernels does not rerun the mixed models, nor the other way round.
GROUPS = {"mixed_models": "glmflow.glmm.warmup", "study": "glmflow.simulate"}


def group_file(group: str) -> Path:
    """The source file of ``group``'s module."""
    return PACKAGE.joinpath(*GROUPS[group].split(".")[1:]).with_suffix(".py")


def compile_group(group: str) -> dict:
    """Run ``group``'s small fits, which compile what numba's cache lacks; returns what was
    fitted (the same whether the cache was full or empty: the job's output)."""
    fits = importlib.import_module(GROUPS[group]).compile_kernels()
    return {"kernels": group, "numba": version("numba"), "fits": fits}
