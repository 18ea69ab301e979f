"""Linear mixed models against lme4's lmer (``python -m glmflow.bench lmm``): InstEval's
crossed model (73,421 ratings; students, lecturers and department-by-service), fitted by ML,
and two small models of lme4's (sleepstudy's correlated slope and Penicillin's crossed
intercepts, by REML). ``model=<name> fit_seconds=<median>`` lines (glmflow's
fit with SEs and Satterthwaite's df); with ``--with-r``, lmer (fit and ``vcov``) timed in one R
process right after, its times, the ratios and both criteria (REML criterion or -2 logLik:
glmflow's at lmer's or below) as comment lines.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from glmflow.bench import median_seconds
from glmflow.data import load_dataset
from glmflow.glmm import fit_glmm

ROOT = Path(__file__).resolve().parents[3]
# name: (file, factors, formula, REML)
MODELS = {
    "insteval": ("resources/insteval.csv", ["s", "d", "service", "dept"],
                 "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", False),
    "sleepstudy": ("tests/r/lmm/sleepstudy.csv", ["subject"], "reaction ~ days + (days | subject)", True),
    "penicillin": ("tests/r/lmm/penicillin.csv", ["plate", "sample"], "diameter ~ 1 + (1 | plate) + (1 | sample)",
                   True),
}  # fmt: skip

R_TIMING = """
suppressMessages(library(lme4))
time_it <- function(f, repeats) {{ f(); median(sapply(1:repeats, function(i) system.time(f())[["elapsed"]])) }}
{models}
"""
R_MODEL = """
d <- read.csv("{path}"); for (v in c({factors})) d[[v]] <- factor(d[[v]])
m <- NULL
seconds <- time_it(function() {{ m <<- lmer({formula}, d, REML = {reml}); vcov(m) }}, {repeats})
cat("{name}", seconds, sprintf("%.10f", getME(m, "devcomp")$cmp[[if (isREML(m)) "REML" else "dev"]]), "\\n")
"""


def lmer_seconds(repeats: int) -> dict[str, tuple[float, float]]:
    """Per model, lmer's median seconds and its criterion (REML criterion or -2 logLik)."""
    models = "".join(
        R_MODEL.format(path=ROOT / file, factors=", ".join(f'"{v}"' for v in factors), formula=formula,
                       reml="TRUE" if reml else "FALSE", name=name, repeats=1 if name == "insteval" else repeats)
        for name, (file, factors, formula, reml) in MODELS.items()
    )  # fmt: skip
    output = subprocess.run(["Rscript", "-e", R_TIMING.format(models=models)], capture_output=True, text=True,
                            check=True).stdout  # fmt: skip
    return {name: (float(seconds), float(criterion))
            for name, seconds, criterion in (line.split() for line in output.strip().splitlines())}  # fmt: skip


def run(repeats: int, with_r: bool) -> None:
    ours, criteria = {}, {}
    for name, (file, factors, formula, reml) in MODELS.items():
        data = load_dataset(ROOT / file, factors=factors)
        spec = {"formula": formula, "family": "gaussian", "REML": reml, "dataset": name}

        def fit(spec=spec, data=data, name=name):  # each timed fit leaves its criterion
            criteria[name] = fit_glmm(data, spec, name).criterion

        # InstEval too as the median of `repeats`: a process's first seconds run slower on this machine (README)
        ours[name] = median_seconds(fit, repeats)
        print(f"model={name} fit_seconds={ours[name]:.4f}", flush=True)
    if with_r and shutil.which("Rscript"):
        for name, (seconds, criterion) in lmer_seconds(repeats).items():
            print(f"# model={name} lmer_seconds={seconds:.3f} ratio={seconds / ours[name]:.2f} "
                  f"criterion={criteria[name]:.6f} lmer_criterion={criterion:.6f}")  # fmt: skip
