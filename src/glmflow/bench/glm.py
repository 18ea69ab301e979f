"""A logistic fit with 8 columns (an intercept and 7 standard normals) at each n: glmflow's
``glm_fit`` (R's glm.fit; the blocked path from 200,000 rows), and with ``--with-peers``
statsmodels' GLM and glum (installed for the bench only) on the same arrays in this process,
and R's ``glm.fit`` on the same numbers (written to a raw file, read with readBin), as
comment lines with ratios. Each size runs in a fresh process: ``peak_rss_mb`` is the process's
peak resident memory (runtime, data generation and fits); the comment line's
``fit_peak_beyond_data_mb`` is one fit's peak above the memory held before it (runtime and
data), measured by resetting the kernel's peak counter (/proc/self/clear_refs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

COLUMNS = 8
BETA = np.array([0.3, -0.5, 0.25, 0.1, -0.2, 0.4, 0.05, -0.3])

WORKER = """
import json, resource, sys, time
import numpy as np
from glmflow.bench.glm import data
from glmflow.bench import median_seconds
from glmflow.families import family
from glmflow.models import glm_fit
def memory(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
n, repeats, peers, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
X, y = data(n)
out = {"data_mb": (X.nbytes + y.nbytes) / 2**20}
fit = glm_fit(X, y, family("binomial"))
del fit
out["baseline_mb"] = memory("VmRSS")  # the runtime and the data
with open("/proc/self/clear_refs", "w") as handle:  # resets VmHWM, the peak (Linux)
    handle.write("5")
fit = glm_fit(X, y, family("binomial"))
out["fit_peak_mb"] = memory("VmHWM")
out["iterations"] = fit.iterations
out["coef"] = [float(c) for c in fit.coef]
out["deviance"] = fit.deviance
out["fit_seconds"] = median_seconds(lambda: glm_fit(X, y, family("binomial")), repeats)
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if peers:
    import statsmodels.api as sm
    out["statsmodels"] = median_seconds(lambda: sm.GLM(y, X, family=sm.families.Binomial()).fit(), 1)
    try:
        from glum import GeneralizedLinearRegressor
        model = lambda: GeneralizedLinearRegressor(family="binomial", alpha=0, fit_intercept=False).fit(X, y)
        out["glum"] = median_seconds(model, repeats)
    except ImportError:
        out["glum"] = None
    np.column_stack([X, y]).T.tofile(path)
print(json.dumps(out))
"""

R_TIMING = """
n <- {n}; m <- matrix(readBin("{path}", "double", n * {columns1}), ncol = {columns1})
X <- m[, 1:{columns}]; y <- m[, {columns1}]
t <- system.time(f <- glm.fit(X, y, family = binomial()))[["elapsed"]]
cat(t, f$iter, sprintf("%.17g", f$deviance), sprintf("%.17g", f$coefficients), "\\n")
"""


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """X (n x 8: intercept, 7 standard normals) and y ~ Bernoulli(expit(X beta)), seed 2026."""
    rng = np.random.default_rng(2026)
    X = np.empty((n, COLUMNS))
    X[:, 0] = 1.0
    X[:, 1:] = rng.standard_normal((n, COLUMNS - 1))
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ BETA)))).astype(np.float64)
    return X, y


def run(sizes: list[int], repeats: int, with_peers: bool) -> None:
    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "data.bin"
            command = [sys.executable, "-c", WORKER, str(n), str(repeats), "1" if with_peers else "0", str(path)]
            result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            ours = result["fit_seconds"]
            print(f"n={n} fit_seconds={ours:.4f} peak_rss_mb={result['peak_rss_mb']:.0f}", flush=True)
            beyond = result["fit_peak_mb"] - result["baseline_mb"]
            print(f"# n={n} data_mb={result['data_mb']:.0f} iterations={result['iterations']} "
                  f"fit_peak_beyond_data_mb={beyond:.0f} ({beyond / result['data_mb']:.2f} x the data)")  # fmt: skip
            if not with_peers:
                continue
            print(f"# n={n} statsmodels_seconds={result['statsmodels']:.3f} ratio={result['statsmodels'] / ours:.1f}")
            if result["glum"] is not None:
                print(f"# n={n} glum_seconds={result['glum']:.3f} ratio={result['glum'] / ours:.2f}")
            else:
                print("# glum is not installed (pip install glum: for the bench only)")
            if shutil.which("Rscript"):
                script = R_TIMING.format(n=n, path=path, columns=COLUMNS, columns1=COLUMNS + 1)
                seconds, iterations, deviance, *coef = subprocess.run(
                    ["Rscript", "-e", script], capture_output=True, text=True, check=True
                ).stdout.split()
                coef_error = np.max(np.abs(np.array(result["coef"]) / np.array(coef, dtype=float) - 1))
                deviance_error = abs(result["deviance"] / float(deviance) - 1)
                print(f"# n={n} R_glm.fit_seconds={float(seconds):.3f} ratio={float(seconds) / ours:.1f} "
                      f"R_iterations={iterations} coef_relative_error={coef_error:.1e} "
                      f"deviance_relative_error={deviance_error:.1e}")  # fmt: skip
