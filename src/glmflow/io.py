"""Reading and writing results files the same way everywhere: deterministic bytes, logs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from glmflow import job, runs
from glmflow.errors import LOG_MARK, GlmflowError


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def write_json(path: str | Path, value) -> None:
    """JSON with keys in insertion order, floats at full precision (repr), newline at the end."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(_plain(value), indent=2, allow_nan=True) + "\n")


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def read_csv(path: str | Path, **options) -> pd.DataFrame:
    """A results CSV back as a frame (pandas' reader; ``options`` as its)."""
    return pd.read_csv(path, **options)


def write_csv(path: str | Path, frame: pd.DataFrame, index: bool = False) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=index, lineterminator="\n")


def write_text(path: str | Path, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


@contextlib.contextmanager
def logged(snakemake):
    """Send a rule script's log and any error (with its traceback) to the rule's ``log:`` file;
    the job dies with its Snakemake run and writes its outputs only while that run lives
    (glmflow.runs)."""
    runs.watch_run()
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as handle:
        logger = logging.getLogger("glmflow")
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.addHandler(handler)
        # Warnings also reach the console, where Snakemake shows the job's stderr.
        wildcards = ", ".join(f"{k}={v}" for k, v in dict(snakemake.wildcards).items())
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter(f"glmflow warning ({snakemake.rule} {wildcards}): %(message)s"))
        logger.addHandler(console)
        logger.setLevel(logging.INFO)
        logger.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards))
        logger.info("threads %d (OPENBLAS_NUM_THREADS=%s)", snakemake.threads, os.environ.get("OPENBLAS_NUM_THREADS"))
        logger.info("process %d (%s)", os.getpid(), job.where())
        if "SLURM_JOB_ID" in os.environ:  # which cluster job ran this step
            logger.info("SLURM job %s on %s", os.environ["SLURM_JOB_ID"], os.environ.get("SLURMD_NODENAME", "?"))
        try:
            with runs.staged_outputs(snakemake.output):
                yield logger
        except Exception as error:
            handle.write(traceback.format_exc())
            if isinstance(error, GlmflowError):
                handle.write(f"{LOG_MARK} {error}\n")
            print(f"glmflow: {error}", file=sys.stderr)
            raise
        finally:
            compiled = job.compiled_kernels()
            if compiled:  # numba's cache lacked them (README: The first run)
                logger.info("compiled by numba in this job: %s", ", ".join(compiled))
            logger.removeHandler(handler)
            logger.removeHandler(console)
