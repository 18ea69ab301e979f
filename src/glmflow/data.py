"""Loading and cleaning data sets as the chapter does in R (read.csv, janitor, factor, filter)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from glmflow.errors import GlmflowError
from glmflow.rformat import format_real


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: str | Path, expected: str | None) -> None:
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected.lower():
        raise GlmflowError(
            f"{path}: sha256 is {actual}, but the config expects {expected}; "
            "the file changed (update `sha256` in config.yaml if that is intended)"
        )


_CAMEL_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_CAMEL_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")


def clean_name(name: str) -> str:
    """One name as ``janitor::clean_names()`` makes it (snake case, ASCII, not starting with a digit)."""
    text = name.replace("%", "_percent_").replace("#", "_number_")
    text = _CAMEL_ACRONYM.sub(r"\1_\2", text)
    text = _CAMEL_LOWER_UPPER.sub(r"\1_\2", text)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text)
    if not text:
        text = "x"
    if text[0].isdigit():
        text = "x" + text
    return text


def clean_names(columns: list[str]) -> list[str]:
    """``janitor::clean_names()``: snake case, duplicates numbered ``_2``, ``_3``, ..."""
    seen: dict[str, int] = {}
    cleaned = []
    for column in columns:
        base = clean_name(column)
        seen[base] = seen.get(base, 0) + 1
        cleaned.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return cleaned


def read_csv_like_r(path: str | Path) -> pd.DataFrame:
    """Read a CSV with R's ``read.csv`` typing.

    Blank fields are missing in numeric columns but stay empty strings in character
    columns, and "NA" is missing everywhere; whole-number columns become integers.
    """
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.DataFrame({column: _parse_column(raw[column]) for column in raw.columns})


def _parse_column(raw: pd.Series) -> pd.Series:
    missing_numeric = raw.isin(["", "NA"])
    present = raw[~missing_numeric]
    numbers = pd.to_numeric(present, errors="coerce")
    if len(present) and numbers.notna().all():
        values = pd.to_numeric(raw.where(~missing_numeric), errors="coerce")
        integral = not missing_numeric.any() and np.all(np.mod(values, 1) == 0)
        return values.astype("int64") if integral else values.astype("float64")
    return raw.where(raw != "NA", None).astype(object)


def load_dataset(
    path: str | Path,
    *,
    name: str = "dataset",
    sha256: str | None = None,
    clean_names_: bool = True,
    factors: list[str] | None = None,
    filter_: str | None = None,
) -> pd.DataFrame:
    """Read, check, clean and filter one configured data set."""
    path = Path(path)
    if not path.is_file():
        raise GlmflowError(f"dataset {name!r}: file {path} does not exist")
    verify_checksum(path, sha256)
    data = read_csv_like_r(path)
    if clean_names_:
        data.columns = clean_names(list(data.columns))
    for column in factors or []:
        if column not in data.columns:
            raise GlmflowError(
                f"dataset {name!r} ({path}): factor column {column!r} is not in the data; "
                f"columns are {', '.join(data.columns)}"
            )
        data[column] = as_factor(data[column])
    if filter_:
        data = apply_filter(data, filter_, f"dataset {name!r} ({path})")
    return data.reset_index(drop=True)


def as_factor(values: pd.Series) -> pd.Series:
    """R's ``factor()``: levels sorted, the first one is the reference level."""
    levels = sorted(pd.unique(values.dropna()))
    return pd.Series(pd.Categorical(values, categories=levels), index=values.index)


def apply_filter(data: pd.DataFrame, expression: str, where: str) -> pd.DataFrame:
    try:
        kept = data.query(expression, engine="python")
    except Exception as error:  # pandas raises many kinds for a bad expression
        raise GlmflowError(f"{where}: filter {expression!r} failed: {error}") from error
    return kept


_R_TYPES = {"i": "int", "f": "dbl", "b": "lgl", "O": "chr", "U": "chr", "T": "chr"}


def r_type(values: pd.Series) -> str:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return "fct"
    if pd.api.types.is_string_dtype(values.dtype):
        return "chr"
    return _R_TYPES.get(values.dtype.kind, "chr")


def glimpse(data: pd.DataFrame, width: int = 73) -> str:
    """Text as ``dplyr::glimpse()`` printed it in the chapter: one line per column, cut at ``width``."""
    lines = [f"Observations: {len(data):,}", f"Variables: {data.shape[1]}"]
    name_width = max(len(c) for c in data.columns)
    for column in data.columns:
        prefix = f"$ {column.ljust(name_width)} <{r_type(data[column])}> "
        values = _glimpse_values(data[column].head(width // 2 + 1))
        line = prefix + ", ".join(values)
        if len(line) > width:
            line = line[: width - 3] + "..."
        lines.append(line)
    return "\n".join(lines) + "\n"


def _glimpse_values(values: pd.Series) -> list[str]:
    kind = r_type(values)
    if kind == "chr":
        return ["NA" if v is None or v is pd.NA else f'"{v}"' for v in values]
    if kind == "fct":
        return ["NA" if pd.isna(v) else str(v) for v in values]
    numbers = values.to_numpy(dtype=float)
    finite = np.isfinite(numbers)
    shown = iter(s.strip() for s in format_real(numbers[finite], 7)) if finite.any() else iter(())
    return [next(shown) if ok else "NA" for ok in finite]
