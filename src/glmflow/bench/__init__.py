"""Benchmarks: ``python -m glmflow.bench simulate`` (and more subcommands as they land).

Each benchmark times a baseline in the same process and prints ratios, since the
machines are shared and noisy; none of them asserts a time.
"""

import statistics
import time


def median_seconds(function, repeats: int) -> float:
    """Median wall time of ``repeats`` calls, after one untimed warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
