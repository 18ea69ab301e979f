"""The simulation study's grid: cells and their labels (light, so the Snakefile can import it)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# The chapter's fit of its simulated data set, glm(response ~ 1 + x, binomial): defined once,
# for the fit, its figure and the report (here, as this module is light enough for the Snakefile).
DEMO_MODEL = {"dataset": "simulated", "formula": "response ~ 1 + x", "family": "binomial"}
# Its name as a model (the report's section and table ids) and as a fitted-curve figure
# (fit_simulation_demo.svg and its id): built in, so a configured model or figure of that name
# would replace or duplicate it. glmflow.config refuses these names, whether or not a demo runs.
DEMO_NAME = "simulation_demo"
RESERVED_NAMES = {"models": DEMO_NAME, "figures.fits": DEMO_NAME}
# A cell's job holds every replicate's results (8 doubles) and the summary's copies of them: its
# peak allocation beyond the imports measured 117 bytes a replicate (tracemalloc;
# tests/test_bounded.py keeps it within these bounds); a thread holds one replicate's draws
# (x, y and Philox's words: 4 x 8 bytes a row).
CELL_BYTES_PER_REPLICATE = 128
CELL_BYTES_PER_ROW = 32


def cell_memory(replicates: int, n: int, threads: int = 1) -> int:
    """The bytes a cell's job needs, about (an upper bound of the measured peak)."""
    return replicates * CELL_BYTES_PER_REPLICATE + threads * n * CELL_BYTES_PER_ROW


def number_label(value: float) -> str:
    """``value`` as text that reads back as the same number, so that two cells never share a label
    (a job, a file): ``:g`` where its 6 significant digits are exact, as labels always were
    (0.5, 8, 1e-07), else the shortest text that round-trips (Python's repr: 0.5000001)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


@dataclass(frozen=True)
class Cell:
    n: int
    b0: float
    b1: float

    @property
    def label(self) -> str:
        return f"n{self.n}_b0{number_label(self.b0)}_b1{number_label(self.b1)}"

    def key(self, master_seed: int) -> list[int]:
        """Philox's 128-bit key, from the master seed and the cell's parameters (not its position)."""
        text = f"seed={master_seed};n={self.n};b0={self.b0!r};b1={self.b1!r}"
        digest = hashlib.sha256(text.encode()).digest()
        return [int.from_bytes(digest[0:8], "little"), int.from_bytes(digest[8:16], "little")]


def study_cells(study: dict) -> list[Cell]:
    return [Cell(int(n), float(b0), float(b1)) for n in study["n"] for b0 in study["b0"] for b1 in study["b1"]]
