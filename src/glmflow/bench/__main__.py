"""``python -m glmflow.bench {simulate,glmm,glm,workflow}``: speed against a baseline timed beside it."""

from __future__ import annotations

import argparse
import sys

from glmflow.bench import glm, glmm, lmm, scale, simulate, workflow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glmflow.bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    simulate_parser = commands.add_parser("simulate", help="batched IRLS against a statsmodels GLM loop")
    simulate_parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    simulate_parser.add_argument("--replicates", type=int, default=20000, help="fits for the batched fitter")
    simulate_parser.add_argument("--baseline-fits", type=int, default=200, help="fits for the statsmodels loop")
    simulate_parser.add_argument("--repeats", type=int, default=5, help="timings per measure; the median is kept")
    simulate_parser.add_argument("--threads", type=int, help="numba threads (default: one per core)")
    glmm_parser = commands.add_parser("glmm", help="the chapter's mixed model, SEs included, against glmer")
    glmm_parser.add_argument("--nagq", type=int, nargs="+", default=[1, 10])
    glmm_parser.add_argument("--repeats", type=int, default=7, help="timed fits after a warm-up; the median is kept")
    glmm_parser.add_argument("--with-r", action="store_true", help="also time glmer with Rscript, if installed")
    glmm_parser.add_argument(
        "--suite",
        choices=["chapter", "general", "scale"],
        default="chapter",
        help="the chapter's model per nAGQ, the four reference models (crossed, slopes), or models at scale "
        "(InstEval binary, a simulated 10^6 rows), each in a fresh process with its peak memory",
    )
    glmm_parser.add_argument("--r-timeout", type=float, default=1800, help="seconds glmer may take a scale model")
    glmm_parser.add_argument("--models", nargs="+", choices=list(scale.MODELS), help="scale models to fit (all)")
    lmm_parser = commands.add_parser("lmm", help="linear mixed models (InstEval, sleepstudy, Penicillin) vs lmer")
    lmm_parser.add_argument(
        "--repeats", type=int, default=3, help="timed fits of each model (lmer: one of InstEval); the median"
    )
    lmm_parser.add_argument("--with-r", action="store_true", help="also time lmer with Rscript, if installed")
    glm_parser = commands.add_parser("glm", help="one logistic fit of n x 8, against statsmodels, glum and R")
    glm_parser.add_argument("--n", default="100000,1000000", help="comma-separated sizes")
    glm_parser.add_argument("--repeats", type=int, default=3, help="timed fits after a warm-up; the median is kept")
    glm_parser.add_argument("--with-peers", action="store_true", help="also statsmodels, glum and R's glm.fit")
    workflow_parser = commands.add_parser("workflow", help="the whole workflow: clean, no-op, and per added GLM")
    workflow_parser.add_argument("--repeats", type=int, default=3, help="clean runs; the median is kept")
    workflow_parser.add_argument("--extra-models", type=int, default=50, help="GLMs added for the per-model cost")
    workflow_parser.add_argument("--cores", type=int, default=2)
    arguments = parser.parse_args(argv)
    if arguments.command == "simulate":
        simulate.run(
            arguments.sizes, arguments.replicates, arguments.baseline_fits, arguments.repeats, arguments.threads
        )
    elif arguments.command == "glm":
        glm.run([int(n) for n in arguments.n.split(",")], arguments.repeats, arguments.with_peers)
    elif arguments.command == "lmm":
        lmm.run(arguments.repeats, arguments.with_r)
    elif arguments.command == "workflow":
        workflow.run(arguments.repeats, arguments.extra_models, arguments.cores)
    elif arguments.suite == "scale":
        scale.run_scale(arguments.with_r, arguments.r_timeout, arguments.models)
    elif arguments.suite == "general":
        glmm.run_general(arguments.repeats, arguments.with_r)
    else:
        glmm.run(arguments.nagq, arguments.repeats, arguments.with_r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
