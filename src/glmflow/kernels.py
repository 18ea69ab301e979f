"""The numba kernels compiled once, before the jobs that use them: the ``compile_kernels`` rule.

numba compiles a kernel on its first call and keeps the machine code in its cache beside the
sources (``__pycache__/*.nbi`` and ``*.nbc``, the kernels' ``cache=True``), from which a later
process loads it in milliseconds. On a fresh clone every mixed-model job that Snakemake started
at the same time found that cache empty and compiled the same kernels, each its own copy, on
cores the other jobs needed. A group here is a few small fits that take the same code paths as
the workflow's jobs (through the same fitting functions, so with the same argument types): run
by one job that the fitting jobs depend on, it leaves the cache full for them.
``glmflow.io.logged`` logs the kernels a job compiled, so that a job that missed the cache says so.
"""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
import pandas as pd

# Small enough to fit in milliseconds once compiled, large enough that every model converges.
_GROUPS, _ROWS_PER_GROUP = 12, 20


def _mixed_model_data() -> pd.DataFrame:
    """Clustered data with a 0/1, a positive and a normal response (a fixed seed)."""
    rng = np.random.default_rng(2026)
    n = _GROUPS * _ROWS_PER_GROUP
    group = np.repeat(np.arange(_GROUPS), _ROWS_PER_GROUP)
    x = rng.normal(size=n)
    eta = 0.5 * x + rng.normal(size=_GROUPS)[group]
    return pd.DataFrame({
        "y": (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-eta))).astype(float),
        "positive": np.exp(0.3 * eta + 0.3 * rng.normal(size=n)),
        "normal": eta + rng.normal(size=n),
        "x": x,
        "g": pd.Categorical([f"g{j}" for j in group]),
        "h": pd.Categorical([f"h{i % 5}" for i in range(n)]),
    })  # fmt: skip


# One model per path through glmflow.glmm: the scalar intercept (glmflow.glmm.scalar), the
# general Laplace deviance with its analytic gradient (crossed terms and a random slope), without
# it (a non-canonical link), with a dispersion, and the linear mixed model.
MIXED_MODELS = {
    "scalar": {"formula": "y ~ x + (1 | g)", "family": "binomial"},
    "general": {"formula": "y ~ x + (x | g) + (1 | h)", "family": "binomial"},
    "probit": {"formula": "y ~ x + (1 | g)", "family": "binomial", "link": "probit"},
    "gamma": {"formula": "positive ~ x + (1 | g)", "family": "Gamma", "link": "log"},
    "linear": {"formula": "normal ~ x + (1 | g)", "family": "gaussian"},
}


def _mixed_models() -> dict:
    from glmflow.glmm import fit_glmm

    data = _mixed_model_data()
    for name, spec in MIXED_MODELS.items():
        fit_glmm(data, spec, f"kernels_{name}")
    return MIXED_MODELS


STUDY_CELL = {"seed": 1, "n": 50, "b0": 0.0, "b1": 1.0, "replicates": 4}


def _study() -> dict:
    from glmflow.simulate import run_cell
    from glmflow.study import Cell

    cell = STUDY_CELL
    run_cell(cell["seed"], Cell(cell["n"], cell["b0"], cell["b1"]), cell["replicates"])
    return {"cell": cell}


GROUPS = {"mixed_models": _mixed_models, "study": _study}


def compile_group(group: str) -> dict:
    """Run ``group``'s fits, which compile what numba's cache lacks; returns what was fitted
    (the same whether the cache was full or empty: the job's output)."""
    return {"kernels": group, "numba": version("numba"), "fits": GROUPS[group]()}
