"""Fit time of the chapter's logistic mixed model (SEs included), per nAGQ, against glmer.

glmer runs in R, so it cannot be timed in this process: with ``--with-r`` (R and lme4
installed) it is timed in an R process started right after, on the same data (fit and
``vcov``); otherwise the times measured for the GLMM issue on this kind of machine are
printed beside ours. Comparisons are comment lines (``# ...``), after the
``nAGQ=<k> fit_seconds=<s>`` lines.
"""

from __future__ import annotations

import shutil
import subprocess
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
