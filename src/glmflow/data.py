"""Loading and cleaning data sets as the chapter does in R (read.csv, janitor, factor, filter)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from glmflow.errors import GlmflowError
from glmflow.filters import FilterError, evaluate_filter
from glmflow.rformat import format_real, r_label


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


def data_path_problem(path: str, base: str | Path = ".", allow_outside: bool = False) -> str | None:
    """Why a dataset's ``path`` may not be read, or None. Config is data: it may not make the
    workflow read (and its errors show) files outside the project directory ``base``, symlinks
    followed, unless the dataset says ``allow_outside_project: true``; and only a regular file is
    read (a directory, a device such as /dev/null or /dev/zero, a pipe: nothing, or for ever)."""
    full, project = Path(base, path), Path(base).resolve()
    try:
        resolved = full.resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop
        return f"{path} cannot be resolved ({type(error).__name__}): give the path of a CSV file"
    if not allow_outside and not resolved.is_relative_to(project):
        via = "" if resolved == Path(os.path.normpath(full.absolute())) else f" (it resolves to {resolved})"
        return (
            f"{path} is outside the project directory {project}{via}: copy the file into the project, or set "
            "allow_outside_project: true for this dataset to read it where it is"
        )
    if not full.exists():
        return f"file {path} does not exist (paths are relative to {project})"
    if not full.is_file():
        kind = next((kind for kind, test in _NOT_REGULAR if test(full)), "not a file")
        return f"{path} is not a regular file ({kind}): give the path of a CSV file"
    return None


_NOT_REGULAR = [
    ("a directory", Path.is_dir),
    ("a character device", Path.is_char_device),
    ("a block device", Path.is_block_device),
    ("a pipe", Path.is_fifo),
    ("a socket", Path.is_socket),
]


@contextlib.contextmanager
def csv_errors(path: str | Path):
    """Errors reading a CSV file as one that names the file and what is wrong with it, but
    quotes none of its content."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise GlmflowError(f"{path}: the file is empty: a CSV file needs a header line") from None
    except UnicodeDecodeError:
        raise GlmflowError(f"{path}: not a UTF-8 text file: give a CSV file") from None
    except pd.errors.ParserError as error:  # pandas' words: a line number and field counts
        raise GlmflowError(f"{path}: cannot be read as CSV ({str(error).splitlines()[0][:200]})") from None


def read_csv_header(path: str | Path) -> list[str]:
    """The column names of a CSV file (its header line only)."""
    with csv_errors(path):
        return list(pd.read_csv(path, nrows=0).columns)


def has_data_rows(path: str | Path) -> bool:
    """Whether a CSV file has a line of data after its header (its first one is read)."""
    with csv_errors(path):
        return len(pd.read_csv(path, nrows=1, dtype=str, keep_default_na=False)) > 0


def read_csv_like_r(path: str | Path) -> pd.DataFrame:
    """Read a CSV with R's ``read.csv`` typing.

    Blank fields are missing in numeric and logical columns but stay empty strings in
    character columns, and "NA" is missing everywhere; whole-number columns become integers
    (pandas' nullable ``Int64`` where some are missing, as R's integer NA), ``TRUE``/``FALSE``
    columns logical (``boolean`` where some are missing), the rest text.
    """
    with csv_errors(path):
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    data = pd.DataFrame({column: parse_column(raw[column]) for column in raw.columns})
    data.attrs["warnings"] = [w for column in raw.columns if (w := text_in_numeric(raw[column], path))]
    return data


def text_in_numeric(raw: pd.Series, path) -> str | None:
    """A warning for a column of numbers with a few text values, which makes the whole column
    text (as R's read.csv does, where R users at least see <chr>): it names the rows."""
    present = raw[~raw.isin(["", "NA"])]
    numbers = pd.to_numeric(present, errors="coerce")
    bad = numbers.isna()
    if not len(present) or not bad.any() or bad.mean() > 0.1:
        return None
    rows = ", ".join(f"{i + 1} ({present[i]!r})" for i in present.index[bad][:5])
    more = f" and {int(bad.sum()) - 5} more" if bad.sum() > 5 else ""
    return (
        f"{path}: column {raw.name!r} is numeric except in data rows {rows}{more}, so it was read as text; "
        "correct those values or write NA there"
    )


# The spellings R's type.convert() reads as logical.
_LOGICAL = {"TRUE": True, "T": True, "True": True, "true": True,
            "FALSE": False, "F": False, "False": False, "false": False}  # fmt: skip


def parse_column(raw: pd.Series) -> pd.Series:
    """One column of text as R's type.convert() reads it: logical, integer, double or text."""
    missing = raw.isin(["", "NA"])
    present = raw[~missing]
    # each test looks at the first value before the whole column: a text column failed every
    # value's number conversion (0.9 of a column's 1.4 ms on titanic's names)
    if len(present) and present.iloc[0] in _LOGICAL and present.isin(list(_LOGICAL)).all():
        values = raw.map(_LOGICAL)
        return values.astype("boolean") if missing.any() else values.astype(bool)
    if len(present) and pd.notna(pd.to_numeric(present.iloc[:1], errors="coerce").iloc[0]):
        numbers = pd.to_numeric(present, errors="coerce")
        if numbers.notna().all():
            if np.all(np.mod(numbers, 1) == 0) and np.all(np.abs(numbers) < 2**31):
                return numbers.reindex(raw.index).astype("Int64") if missing.any() else numbers.astype("int64")
            return numbers.reindex(raw.index).astype("float64")
    return raw.where(raw != "NA", None).astype("str")


def load_dataset(
    path: str | Path,
    *,
    name: str = "dataset",
    sha256: str | None = None,
    clean_names_: bool = True,
    factors: list[str] | None = None,
    filter_: str | None = None,
    levels: dict[str, list] | None = None,
) -> pd.DataFrame:
    """Read, check, clean and filter one configured data set."""
    path = Path(path)
    if not path.is_file():
        raise GlmflowError(f"dataset {name!r}: file {path} does not exist")
    verify_checksum(path, sha256)
    data = read_csv_like_r(path)
    warnings = data.attrs.get("warnings", [])
    if clean_names_:
        data.columns = clean_names(list(data.columns))
    levels = levels or {}
    for column in dict.fromkeys([*(factors or []), *levels]):
        if column not in data.columns:
            raise GlmflowError(
                f"dataset {name!r} ({path}): factor column {column!r} is not in the data; "
                f"columns are {', '.join(data.columns)}"
            )
        data[column] = as_factor(data[column], levels.get(column), f"datasets.{name}.levels.{column} ({path})")
    if filter_:
        data = apply_filter(data, filter_, f"datasets.{name}.filter ({path})")
    data = data.reset_index(drop=True)
    data.attrs["warnings"] = warnings
    return data


def as_factor(values: pd.Series, levels: list | None = None, where: str = "factor") -> pd.Series:
    """R's ``factor()``: levels are the sorted distinct values (``r_sorted``: numbers
    numerically, text in R's en_US.UTF-8 collation), labelled as R labels them (text), and the
    first one is the reference level. ``levels`` fixes the order, as ``factor(x, levels = ...)``:
    each a label or, for numbers, the number; a value that is none of them is an error naming
    ``where`` (R would make it NA silently).

    The labels are text whatever the values' type, as in R: a factor of integers survives the
    Parquet file between jobs only so (pyarrow turns integer-level categoricals into int64)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and levels is None:
        return values
    present = values.dropna()
    distinct = pd.unique(present)
    labels_of = {value: r_label(value) for value in distinct}
    if levels is None:
        labels = [labels_of[v] for v in r_sorted(distinct)]
    else:
        labels = [r_label(level) for level in levels]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        unknown = sorted({label for label in labels_of.values() if label not in labels})
        if repeated:
            raise GlmflowError(f"{where}: level {', '.join(map(repr, repeated))} is listed twice")
        if unknown:
            shown = ", ".join(map(repr, r_sorted(unknown)[:10])) + (" ..." if len(unknown) > 10 else "")
            raise GlmflowError(
                f"{where}: the column has values that are not among the levels listed: {shown}; "
                "list them too, or filter those rows out"
            )
    position = {label: i for i, label in enumerate(labels)}
    codes = np.full(len(values), -1, dtype=np.int64)
    codes[values.notna().to_numpy()] = [position[labels_of[v]] for v in present]
    return pd.Series(pd.Categorical.from_codes(codes, categories=labels), index=values.index)


@functools.cache
def _collator():
    # pyuca's Unicode Collation Algorithm (DUCET, non-ignorable punctuation) orders text as
    # R does in an en_US.UTF-8 session, where R collates with ICU's root collation
    # (tests/r/collation.R checks it on punctuation, digits, case and accents).
    import pyuca  # noqa: PLC0415  (its table takes 0.17 s to load: only jobs that sort text pay)

    return pyuca.Collator()


def r_sorted(values) -> list:
    """Distinct values in R's ``sort()`` order: numbers numerically, FALSE before TRUE, text
    in R's en_US.UTF-8 collation (``<1l``, ``>2l``, ``1-1.5l``, ``a``, ``A``, ``b``), ties of
    the collation broken by code point."""
    values = list(values)
    if not values or not all(isinstance(v, str) for v in values):
        return sorted(values)
    key = _collator().sort_key
    return sorted(values, key=lambda text: (key(text), text))


def factor_level(value, levels) -> str | None:
    """The level of a factor that a config value names: 2, 2.0 and "2" all name level "2"."""
    label = value if isinstance(value, str) else r_label(value)
    if label in levels:
        return label
    if isinstance(value, float) and value.is_integer() and r_label(int(value)) in levels:
        return r_label(int(value))
    return None


def apply_filter(data: pd.DataFrame, expression: str, where: str) -> pd.DataFrame:
    """The rows where an allow-listed filter expression (``glmflow.filters``) holds; index kept.
    Each application is logged (in a job, to its log file): a model's filter is applied by its
    fit job alone, and every later job reads the model frame the fit wrote (``glmflow.frame``)."""
    try:
        mask = evaluate_filter(data, expression)
    except FilterError as error:
        raise GlmflowError(f"{where}: filter {expression!r}: {error}") from None
    if not mask.any():
        raise GlmflowError(f"{where}: filter {expression!r} leaves no rows (of {len(data)})")
    logging.getLogger("glmflow").info("%s: filter %r keeps %d of %d rows", where, expression, mask.sum(), len(data))
    return data.loc[mask]


_R_TYPES = {"i": "int", "f": "dbl", "b": "lgl", "O": "chr", "U": "chr", "T": "chr"}
_NULLABLE = {"Int64": "int", "boolean": "lgl"}


def r_type(values: pd.Series) -> str:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return "fct"
    if str(values.dtype) in _NULLABLE:
        return _NULLABLE[str(values.dtype)]
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
        return ["NA" if pd.isna(v) else f'"{v}"' for v in values]
    if kind == "fct":
        return ["NA" if pd.isna(v) else str(v) for v in values]
    if kind == "lgl":
        return ["NA" if pd.isna(v) else ("TRUE" if v else "FALSE") for v in values]
    numbers = values.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(numbers)
    shown = iter(s.strip() for s in format_real(numbers[finite], 7)) if finite.any() else iter(())
    return [next(shown) if ok else "NA" for ok in finite]
