"""The cleaned data set between jobs: one Parquet file that carries every dtype faithfully.

Where data cross a file boundary in the workflow, and what carries their types:
- ``results/data/{dataset}.parquet`` (clean_data -> the fit and count jobs): written and read
  here; the writer reads the file back and refuses to leave one that differs from the frame
  in any dtype, factor level, level order or value.
- ``results/models/{model}/frame.parquet`` (a fit job -> the jobs that predict, compare, check
  or draw from its fit): the model frame (``glmflow.frame``), written and read here as well.
- ``results/simulation/demo/data.csv`` (numbers only): read with R's ``read.csv`` typing.
- ``augment.csv``, ``tidy.csv``, ``vcov.csv``, count and prediction tables: results for
  people and for the checks; their readers use only numeric columns and ``.row``, or show
  the factor labels as text (factor levels are text, ``glmflow.data.as_factor``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glmflow.data import read_csv_like_r
from glmflow.errors import GlmflowError


def write_dataset(data: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Write ``data`` and return the frame as every later job will read it (checked equal)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    data = data.reset_index(drop=True)
    data.to_parquet(path, index=False)
    back = read_dataset(path)
    try:
        pd.testing.assert_frame_equal(back, data, check_exact=True, check_categorical=True)
    except AssertionError as error:
        Path(path).unlink()
        raise GlmflowError(f"{path}: the data do not survive the Parquet file unchanged: {error}") from None
    return back


def read_dataset(path: str | Path) -> pd.DataFrame:
    """A data set as a rule wrote it: Parquet from the data job, or a CSV of numbers."""
    if str(path).endswith(".csv"):
        return read_csv_like_r(path)
    return pd.read_parquet(path)
