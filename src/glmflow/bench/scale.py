"""Mixed models at the size of real studies (``python -m glmflow.bench glmm --suite scale``):
``lme4::InstEval`` as a binary model (73,421 ratings; 2,972 students crossed with 1,128
lecturers) and a simulated binary model of 10^6 rows (10,000 subjects with a random slope,
crossed with 1,000 items). Each model is fitted in a fresh process, so that its peak resident
memory is its own: ``model=<name> fit_seconds=<s> peak_rss_mb=<n>``. With ``--with-r``, glmer
fits the same data in R right after (fit and ``vcov``), up to ``--r-timeout`` seconds a model;
its times and the ratios are comment lines.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
# R's I(y > 3) ~ ...: a mixed model's response here is a column, so the loader derives it
INSTEVAL_FORMULA = "good ~ 1 + service + (1 | s) + (1 | d)"
INSTEVAL_R_FORMULA = "I(y > 3) ~ 1 + service + (1 | s) + (1 | d)"
SIM_FORMULA = "y ~ 1 + x + (1 + x | subject) + (1 | item)"
SIM_SEED = 20261130


def insteval() -> pd.DataFrame:
    from glmflow.data import load_dataset

    data = load_dataset(ROOT / "resources" / "insteval.csv", factors=["s", "d", "service", "dept"])
    data["good"] = (data["y"] > 3).astype(float)
    return data


def simulated(subjects: int = 10_000, items: int = 1_000, per_subject: int = 100) -> pd.DataFrame:
    """Each subject answers ``per_subject`` items drawn without replacement; logit P(y = 1) =
    -0.5 + 0.8 x + a_s + b_s x + c_i, with sd(a) = 1, sd(b) = 0.5, cor(a, b) = 0.3, sd(c) = 0.7.
    A counter-based stream (Philox) keyed by the seed: the same rows on every machine."""
    rng = np.random.Generator(np.random.Philox(key=SIM_SEED))
    n = subjects * per_subject
    subject = np.repeat(np.arange(subjects), per_subject)
    item = np.argsort(rng.random((subjects, items)), axis=1)[:, :per_subject].ravel()
    x = rng.normal(size=n)
    cov = np.array([[1.0, 0.15], [0.15, 0.25]])
    ab = rng.multivariate_normal([0.0, 0.0], cov, size=subjects)
    c = rng.normal(scale=0.7, size=items)
    eta = -0.5 + 0.8 * x + ab[subject, 0] + ab[subject, 1] * x + c[item]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    subjects_ = pd.Categorical.from_codes(subject, [f"s{j:05d}" for j in range(subjects)])
    items_ = pd.Categorical.from_codes(item, [f"i{j:04d}" for j in range(items)])
    return pd.DataFrame({"y": y, "x": x, "subject": subjects_, "item": items_})


MODELS = {"insteval_binary": (insteval, INSTEVAL_FORMULA), "sim_1e6": (simulated, SIM_FORMULA)}


def fit_one(name: str) -> None:
    """In a fresh process: fit one model, print its fit time, peak memory and -2 logLik as JSON."""
    import resource
    import time

    from glmflow.glmm import fit_glmm

    make, formula = MODELS[name]
    data = make()
    started = time.perf_counter()
    fit = fit_glmm(data, {"formula": formula, "family": "binomial", "dataset": name}, name)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "minus2loglik": -2 * fit.loglik}))


R_SCALE = """
suppressMessages(library(lme4))
d <- read.csv("{path}"); for (v in c({factors})) d[[v]] <- factor(d[[v]])
t <- system.time({{ m <- glmer({formula}, d, binomial); v <- vcov(m) }})[["elapsed"]]
cat(t, -2 * as.numeric(logLik(m)), "\\n")
"""


def glmer_seconds(name: str, timeout: float) -> str:
    """glmer's fit + vcov time and -2 logLik on the same rows, or why there is none."""
    make, formula = MODELS[name]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.csv"
        if name == "insteval_binary":
            path, factors = ROOT / "resources" / "insteval.csv", '"s", "d", "service", "dept"'
            formula = INSTEVAL_R_FORMULA
        else:
            make().to_csv(path, index=False)
            factors = '"subject", "item"'
        script = R_SCALE.format(path=path, factors=factors, formula=formula)
        try:
            run = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"glmer did not finish in {timeout:.0f} s"
    if run.returncode != 0:
        return f"glmer failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}"
    seconds, deviance = map(float, run.stdout.split())
    return f"glmer_seconds={seconds:.1f} glmer_minus2loglik={deviance:.4f}"


def run_scale(with_r: bool, r_timeout: float, models: list[str] | None = None) -> None:
    results = {}
    for name in models or list(MODELS):
        code = f"from glmflow.bench.scale import fit_one; fit_one({name!r})"
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
        r = results[name]
        print(f"model={name} fit_seconds={r['seconds']:.2f} peak_rss_mb={r['peak_rss_mb']:.0f}", flush=True)
        print(f"# model={name} minus2loglik={r['minus2loglik']:.4f}", flush=True)
    if with_r and shutil.which("Rscript"):
        for name, r in results.items():
            answer = glmer_seconds(name, r_timeout)
            ratio = ""
            if answer.startswith("glmer_seconds="):
                ratio = f" ratio={float(answer.split()[0].split('=')[1]) / r['seconds']:.1f}"
            print(f"# model={name} {answer}{ratio}", flush=True)
