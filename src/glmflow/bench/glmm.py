"""Fit time of mixed models (SEs included) against glmer (and glmmTMB): the chapter's model
per nAGQ (``--suite chapter``), or the four reference models of lme4's formula language
(``--suite general``).

glmer runs in R, so it cannot be timed in this process: with ``--with-r`` (R and lme4
installed) it is timed in an R process started right after, on the same data (fit and
``vcov``); otherwise the times measured for the GLMM issue on this kind of machine are
printed beside ours. Comparisons are comment lines (``# ...``), after the
``nAGQ=<k> fit_seconds=<s>`` lines.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from glmflow.bench import median_seconds
from glmflow.data import load_dataset
from glmflow.glmm import fit_glmm

ROOT = Path(__file__).resolve().parents[3]
FORMULA = "repeatgr ~ 1 + ses * minority + (1 | school_nr)"
GLMER_MEASURED = {1: (0.34, 0.40), 10: (0.6, 0.7)}  # seconds, R 4.2 / lme4 1.1-31, the GLMM issue

R_TIMING = """
suppressMessages(library(lme4))
d <- read.csv("{path}"); d <- d[d$repeatgr != 2, ]; d$Minority <- factor(d$Minority)
for (k in c({agqs})) {{
  f <- function() {{ m <- glmer(repeatgr ~ 1 + ses * Minority + (1 | schoolNR), d, binomial, nAGQ = k); vcov(m) }}
  f()
  cat(k, median(sapply(1:{repeats}, function(i) system.time(f())[["elapsed"]])), "\\n")
}}
"""


def glmer_seconds(agqs: list[int], repeats: int) -> dict[int, float]:
    script = R_TIMING.format(path=ROOT / "resources" / "bdf.csv", agqs=", ".join(map(str, agqs)), repeats=repeats)
    output = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True).stdout
    return {int(k): float(v) for k, v in (line.split() for line in output.strip().splitlines())}


def run(agqs: list[int], repeats: int, with_r: bool) -> None:
    data = load_dataset(ROOT / "resources" / "bdf.csv", factors=["minority"], filter_="repeatgr != 2")
    ours = {}
    for nAGQ in agqs:
        spec = {"formula": FORMULA, "family": "binomial", "nAGQ": nAGQ, "dataset": "bdf"}
        ours[nAGQ] = median_seconds(lambda spec=spec: fit_glmm(data, spec, "bench"), repeats)
        print(f"nAGQ={nAGQ} fit_seconds={ours[nAGQ]:.4f}", flush=True)
    if with_r and shutil.which("Rscript"):
        for nAGQ, seconds in glmer_seconds(agqs, repeats).items():
            print(f"# nAGQ={nAGQ} glmer_seconds={seconds:.4f} ratio={seconds / ours[nAGQ]:.1f}")
    else:
        for nAGQ in agqs:
            if nAGQ in GLMER_MEASURED:
                low, high = GLMER_MEASURED[nAGQ]
                print(
                    f"# nAGQ={nAGQ} glmer_seconds_measured={low}-{high} "
                    f"ratio={low / ours[nAGQ]:.1f}-{high / ours[nAGQ]:.1f} (run with --with-r to time glmer here)"
                )


# The general suite (issue 10): the four reference models of tests/reference/
# glmm_general_reference.json. name: (file, factors, filter, formula with clean names,
# the formula as R reads the file's own names, R's factor() columns, R's row filter).
GENERAL_SUITE = {
    "verbagg_crossed": ("verbagg.csv", ["id", "item", "gender", "btype", "situ", "r2"], None,
                        "r2 ~ anger + gender + btype + situ + (1 | id) + (1 | item)",
                        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", ["id", "item", "r2"], None),
    "cbpp_proportions": ("cbpp.csv", ["herd", "period"], None,
                         "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                         "cbind(incidence, size - incidence) ~ period + (1 | herd)", ["herd", "period"], None),
    "bdf_random_slope": ("bdf.csv", ["minority"], "repeatgr != 2",
                         "repeatgr ~ ses + minority + (1 + ses | school_nr)",
                         "repeatgr ~ ses + Minority + (1 + ses | schoolNR)", ["Minority", "schoolNR"], "repeatgr != 2"),
    "contraception_slope": ("contraception.csv", ["district", "livch", "urban", "use"], None,
                            "use ~ age + I(age^2) + urban + livch + (urban | district)",
                            "use ~ age + I(age^2) + urban + livch + (urban | district)",
                            ["district", "livch", "urban", "use"], None),
}  # fmt: skip

R_GENERAL_TIMING = """
suppressMessages({{library(lme4); library(glmmTMB)}})
time_it <- function(f) {{ median(sapply(1:{repeats}, function(i) system.time(f())[["elapsed"]])) }}
{models}
"""
R_MODEL = """
d <- read.csv("{path}"); {filter} for (v in c({factors})) d[[v]] <- factor(d[[v]])
g <- time_it(function() {{ m <- glmer({formula}, d, binomial); vcov(m) }})
t <- time_it(function() {{ m <- glmmTMB({formula}, d, binomial); vcov(m) }})
cat("{name}", g, t, "\\n")
"""


def general_data(name: str):
    file, factors, filter_, *_ = GENERAL_SUITE[name]
    return load_dataset(ROOT / "resources" / file, factors=factors, filter_=filter_)


def r_general_seconds(repeats: int) -> dict[str, tuple[float, float]]:
    """glmer's and glmmTMB's median fit + vcov times, in one R process."""
    models = []
    for name, (file, _, _, _, r_formula, r_factors, r_filter) in GENERAL_SUITE.items():
        models.append(R_MODEL.format(
            path=ROOT / "resources" / file, filter=f"d <- subset(d, {r_filter});" if r_filter else "",
            factors=", ".join(f'"{v}"' for v in r_factors), formula=r_formula, name=name,
        ))  # fmt: skip
    script = R_GENERAL_TIMING.format(repeats=repeats, models="".join(models))
    output = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, check=True).stdout
    return {name: (float(g), float(t)) for name, g, t in (line.split() for line in output.strip().splitlines())}


def run_general(repeats: int, with_r: bool) -> None:
    """``model=<name> fit_seconds=<median>`` per reference model (SEs included, numba cache
    warm), the first call in this process as a comment, then glmer and glmmTMB with --with-r."""
    ours = {}
    for index, name in enumerate(GENERAL_SUITE):
        data = general_data(name)
        spec = {"formula": GENERAL_SUITE[name][3], "family": "binomial", "dataset": name}
        started = time.perf_counter()
        fit_glmm(data, spec, name)
        first = time.perf_counter() - started
        ours[name] = median_seconds(lambda spec=spec, data=data, name=name: fit_glmm(data, spec, name), repeats)
        print(f"model={name} fit_seconds={ours[name]:.4f}", flush=True)
        if index == 0:
            print(f"# first fit in a fresh process (numba cache load included): {first:.3f} s")
    if with_r and shutil.which("Rscript"):
        for name, (glmer, tmb) in r_general_seconds(max(1, min(repeats, 3))).items():
            print(f"# model={name} glmer_seconds={glmer:.3f} ratio={glmer / ours[name]:.1f} "
                  f"glmmTMB_seconds={tmb:.3f} ratio={tmb / ours[name]:.1f}")  # fmt: skip
