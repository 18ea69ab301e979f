"""Small fits on each path through glmflow.glmm, run before the workflow's mixed models so that
numba compiles their kernels once (glmflow.kernels)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glmflow.glmm.fit import fit_glmm

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


def compile_kernels() -> dict:
    """Fit ``MIXED_MODELS`` (numba compiles what its cache lacks); returns them."""
    data = _mixed_model_data()
    for name, spec in MIXED_MODELS.items():
        fit_glmm(data, spec, f"kernels_{name}")
    return MIXED_MODELS
