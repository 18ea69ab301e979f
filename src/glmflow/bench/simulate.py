"""Fits per second of the batched logistic IRLS against a statsmodels GLM loop, on the same data:
the fits alone, and end to end (draws inside the kernel, fits, the cell's summary)."""

from __future__ import annotations

import os

import numba
import numpy as np

from glmflow.bench import median_seconds
from glmflow.simulate import Cell, draw_and_fit, fit_logistic_batch, simulate_cell, summarise_cell


def statsmodels_loop(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    import statsmodels.api as sm

    out = np.empty((x.shape[0], 2))
    for r in range(x.shape[0]):
        design = np.column_stack([np.ones(x.shape[1]), x[r]])
        out[r] = sm.GLM(y[r], design, family=sm.families.Binomial()).fit().params
    return out


def run(sizes: list[int], replicates: int, baseline_fits: int, repeats: int, threads: int | None) -> None:
    if threads is not None:
        numba.set_num_threads(threads)
    print(
        f"# batched and end to end on {numba.get_num_threads()} numba threads (the statsmodels loop on one); "
        f"load average before: {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    for n in sizes:
        cell = Cell(n, 0.0, 1.0)
        x, y = simulate_cell(2026, cell, replicates)
        batched = replicates / median_seconds(lambda x=x, y=y: fit_logistic_batch(x, y), repeats)
        xs, ys = x[:baseline_fits], y[:baseline_fits]
        baseline = baseline_fits / median_seconds(lambda xs=xs, ys=ys: statsmodels_loop(xs, ys), max(1, repeats // 2))
        # end to end: the draws (inside the kernel), the fits and the cell's summary
        end_to_end = replicates / median_seconds(
            lambda cell=cell: summarise_cell(cell, draw_and_fit(2026, cell, replicates)), repeats
        )
        print(
            f"n={n} batched={batched:.0f} statsmodels={baseline:.1f} ratio={batched / baseline:.0f} "
            f"end_to_end={end_to_end:.0f} end_to_end_ratio={end_to_end / baseline:.0f}",
            flush=True,
        )
