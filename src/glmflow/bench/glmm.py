"""Fit time of mixed models (SEs included) against glmer (and glmmTMB): the chapter's model
per nAGQ (``--suite chapter``), or the four reference models of lme4's formula language
(``--suite general``).

glmer runs in R, so it cannot be timed in this process: with ``--with-r`` (R and lme4
installed) it is timed in an R process on the same data (fit and ``vcov``): for the chapter's
model one started right after, for the general suite one answering on a pipe between
glmflow's fits (with glmmTMB); without, the chapter suite prints the times measured for the
GLMM issue on this kind of machine beside ours. Comparisons are comment lines (``# ...``),
after the ``nAGQ=<k> fit_seconds=<s>`` or ``model=<name> fit_seconds=<s>`` lines.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
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


# The general suite: the four reference models of tests/reference/
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

# An R process that fits on request: a line "<package> <model>" on stdin, "<seconds>" back
# (glmer or glmmTMB, fit and vcov), so that its fits interleave with glmflow's in time.
R_GENERAL_SERVER = """
suppressMessages({{library(lme4); library(glmmTMB)}})
fits <- list()
{models}
con <- file("stdin"); open(con)
while (length(line <- readLines(con, n = 1)) > 0) {{
  cat(system.time(fits[[line]]())[["elapsed"]], "\\n"); flush(stdout())
}}
"""
R_MODEL = """
d <- read.csv("{path}"); {filter} for (v in c({factors})) d[[v]] <- factor(d[[v]])
local({{ data <- d
  fits[["glmer {name}"]] <<- function() {{ m <- glmer({formula}, data, binomial); vcov(m) }}
  fits[["glmmTMB {name}"]] <<- function() {{ m <- glmmTMB({formula}, data, binomial); vcov(m) }} }})
"""


def general_data(name: str):
    file, factors, filter_, *_ = GENERAL_SUITE[name]
    return load_dataset(ROOT / "resources" / file, factors=factors, filter_=filter_)


class RServer:
    """The R process of R_GENERAL_SERVER with the four models' data read: ``seconds(package,
    name)`` times one fit by glmer or glmmTMB there."""

    def __init__(self):
        models = []
        for name, (file, _, _, _, r_formula, r_factors, r_filter) in GENERAL_SUITE.items():
            models.append(R_MODEL.format(
                path=ROOT / "resources" / file, filter=f"d <- subset(d, {r_filter});" if r_filter else "",
                factors=", ".join(f'"{v}"' for v in r_factors), formula=r_formula, name=name,
            ))  # fmt: skip
        script = R_GENERAL_SERVER.format(models="".join(models))
        # one thread each for R's BLAS and OpenMP, whose idle pools may spin between requests:
        # with R's defaults verbagg took 0.26 s interleaved, with these 0.16-0.19 s (0.14 s alone)
        environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.errors = tempfile.TemporaryFile(mode="w+")  # R's warnings, and why it stopped if it did
        self.process = subprocess.Popen(
            ["Rscript", "-e", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
            text=True, env=environment,
        )  # fmt: skip

    def seconds(self, package: str, name: str) -> float:
        self.process.stdin.write(f"{package} {name}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer.strip():
            self.errors.seek(0)
            lines = self.errors.read().strip().splitlines()
            reason = [line for line in lines if line.startswith("Error")] or lines[-1:]
            raise RuntimeError(f"R stopped before timing {package} on {name} (exit status "
                               f"{self.process.wait()}): {' '.join(reason) or 'no message'}")  # fmt: skip
        return float(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()
        self.errors.close()


def run_general(repeats: int, with_r: bool) -> None:
    """``model=<name> fit_seconds=<median>`` per reference model (SEs included, numba cache
    warm), the first call in this process as a comment, then with --with-r glmer's and
    glmmTMB's medians and the ratios. Each round fits every model once in glmflow, then in
    glmer and glmmTMB (an R process answering on a pipe), after one untimed round, so that a
    slow spell of the machine weighs on both sides alike."""
    # this machine's speed changes within seconds: one process's verbagg fits took 0.14-0.15 s,
    # then 0.25-0.27 s twenty fits later; R timed minutes after glmflow gave 11.4x to 28.2x
    r = with_r and shutil.which("Rscript")
    server = RServer() if r else None
    data = {name: general_data(name) for name in GENERAL_SUITE}
    specs = {name: {"formula": GENERAL_SUITE[name][3], "family": "binomial", "dataset": name} for name in GENERAL_SUITE}
    times: dict[tuple[str, str], list[float]] = {}
    first = None
    for _ in range(repeats + 1):
        for name in GENERAL_SUITE:
            started = time.perf_counter()
            fit_glmm(data[name], specs[name], name)
            seconds = time.perf_counter() - started
            first = seconds if first is None else first
            times.setdefault(("glmflow", name), []).append(seconds)
            for package in ("glmer", "glmmTMB") if server else ():
                times.setdefault((package, name), []).append(server.seconds(package, name))
    if server:
        server.close()
    median = {key: statistics.median(values[1:]) for key, values in times.items()}  # the first round untimed
    for index, name in enumerate(GENERAL_SUITE):
        print(f"model={name} fit_seconds={median['glmflow', name]:.4f}", flush=True)
        if index == 0:
            print(f"# first fit in a fresh process (numba cache load included): {first:.3f} s")
    for name in GENERAL_SUITE if server else ():
        glmer, tmb, ours = median["glmer", name], median["glmmTMB", name], median["glmflow", name]
        print(f"# model={name} glmer_seconds={glmer:.3f} ratio={glmer / ours:.1f} "
              f"glmmTMB_seconds={tmb:.3f} ratio={tmb / ours:.1f}")  # fmt: skip
