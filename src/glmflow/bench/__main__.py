"""``python -m glmflow.bench {simulate}``: speed ratios against a baseline run in the same process."""

from __future__ import annotations

import argparse
import sys

from glmflow.bench import simulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glmflow.bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    simulate_parser = commands.add_parser("simulate", help="batched IRLS against a statsmodels GLM loop")
    simulate_parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    simulate_parser.add_argument("--replicates", type=int, default=20000, help="fits for the batched fitter")
    simulate_parser.add_argument(
        "--baseline-fits", type=int, default=200, help="fits for the statsmodels loop"
    )
    simulate_parser.add_argument(
        "--repeats", type=int, default=5, help="timings per measure; the median is kept"
    )
    arguments = parser.parse_args(argv)
    if arguments.command == "simulate":
        simulate.run(arguments.sizes, arguments.replicates, arguments.baseline_fits, arguments.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
