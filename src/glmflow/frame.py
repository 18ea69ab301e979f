"""The model frame: the rows and columns a model is fitted to, written by its fit job and read by
every job after it (predictions, figures, comparisons, the likelihood checks), as lme4's
``predict.merMod`` and statsmodels' ``GLMResults.get_prediction`` work from the fit, not from
the data again.

Two files per model, both with the same bytes on every run:

- ``frame.parquet``: the dataset's rows after the model's ``filter`` (applied here, the one time
  in the workflow), in the columns the model reads (response, predictors, offset, weights,
  grouping factors), with their dtypes and factor levels, and ``.row`` (the row's number in the
  dataset). Rows with a missing value stay in: the fit drops them as R's ``na.omit`` (and
  counts them), and ``effects`` refits a mixed model's fixed part on the rows complete in the
  fixed part only.
- ``frame.json``: what the fit was given (``spec``: the model's config, less the filter it
  applied) and what it decided: the response, the variables, the coefficients' labels
  (``terms``), each factor's levels in the rows used and its contrasts, the offset
  expressions, the weights column, family and link, and the row counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from glmflow.data import apply_filter
from glmflow.datafile import read_dataset, write_dataset
from glmflow.errors import GlmflowError
from glmflow.filters import expression_columns
from glmflow.formula import Design, build_design, r_name, required_variables
from glmflow.io import read_json, write_json
from glmflow.models import model_data, model_xlevels


@dataclass
class ModelFrame:
    """A model's rows after its filter, in the columns it reads (index: the rows' positions in
    the dataset), and its config less the filter (``spec``), which those rows already reflect."""

    name: str
    spec: dict
    filter: str | None
    data: pd.DataFrame
    left_out: dict | None = None  # what the filter left out (``report_facts.filter_facts``), for the report

    @property
    def where(self) -> str:
        return f"model {self.name!r} (dataset {self.spec.get('dataset')!r})"

    def model_rows(self) -> pd.DataFrame:
        """The rows the fit starts from: the frame less rows with a missing weight (R's model
        frame holds the weights; ``glmflow.models.model_data``)."""
        return model_data(self.data, self.spec, self.name)

    def design(self) -> Design:
        """The fixed part's model frame and matrix, as the fit built them."""
        return build_design(self.spec["formula"], self.model_rows(), self.where, self.spec.get("offset"))


def model_columns(spec: dict, where: str) -> list[str]:
    """The columns a model reads, in the formula's order: response, predictors, grouping
    factors, offset columns, then the weights."""
    _, columns = required_variables(spec["formula"], where)
    if spec.get("offset"):
        columns += expression_columns(spec["offset"])
    if spec.get("weights"):
        columns.append(spec["weights"])
    return list(dict.fromkeys(columns))


def model_frame(data: pd.DataFrame, spec: dict, name: str) -> ModelFrame:
    """The model's frame from its dataset: the model's ``filter`` applied (the only place a job
    applies it) and the columns it reads kept. A column missing from the data is left for the
    fit to name in its error."""
    from glmflow.report_facts import filter_facts  # the report's sentence, from the one application

    rows = apply_filter(data, spec["filter"], f"models.{name}.filter") if spec.get("filter") else data
    columns = [c for c in model_columns(spec, f"model {name!r}") if c in rows.columns]
    unfiltered = {key: value for key, value in spec.items() if key != "filter"}
    left_out = None
    if spec.get("filter"):
        left_out = filter_facts(data, spec, name, data[~data.index.isin(rows.index)])
    return ModelFrame(name, unfiltered, spec.get("filter"), rows[columns], left_out)


def fit_frame(fitter, frame: ModelFrame):
    """``fitter`` (``fit_model`` or ``fit_glmm``) on the frame's rows, with the spec less the
    filter they are already after; an lm or glm fit keeps the filter's text, which its summary
    prints as R's ``subset =``."""
    fit = fitter(frame.data, frame.spec, frame.name)
    if hasattr(fit, "filter"):
        fit.filter = frame.filter
    return fit


def contrasts(design: Design) -> dict[str, str]:
    """R's ``attr(model.matrix, "contrasts")``: each factor of the fixed part coded by contrasts,
    under the model frame's name for it (``sex``, ``factor(pclass)``); glmflow codes every
    factor as R's default ``contr.treatment`` (``glmflow.formula`` refuses any other)."""
    return {
        r_name(expression): "contr.treatment"
        for expression, (_, state) in design.spec.encoder_state.items()
        if "categories" in state
    }


def frame_description(frame: ModelFrame, fit) -> dict:
    """frame.json: what the fit was given and what it decided (see the module's docstring)."""
    design = fit.design
    levels = getattr(fit, "xlevels", None)
    if levels is None:  # a mixed model: its fixed part's factors, as the model frame holds them
        levels = model_xlevels(design, frame.data, frame.spec["formula"])
    return {
        "model": frame.name,
        "spec": frame.spec,
        "filter": frame.filter,
        "family": fit.family_object.name,
        "link": fit.family_object.link.name,
        "response": design.response,
        "variables": list(design.variables),
        "terms": list(fit.terms),
        "levels": levels,
        "contrasts": contrasts(design),
        "offset": list(design.offsets),
        "weights": frame.spec.get("weights"),
        "rows": {"after_filter": len(frame.data), "used": len(design.y), "dropped": int(design.n_dropped)},
        "left_out": frame.left_out,
    }


def write_frame(frame: ModelFrame, fit, parquet: str | Path, description: str | Path) -> None:
    """Write the frame (``.row`` first, then the model's columns) and its description."""
    table = frame.data.reset_index(drop=True)
    table.insert(0, ".row", frame.data.index.to_numpy() + 1)
    write_dataset(table, parquet)
    write_json(description, frame_description(frame, fit))


def read_frame(parquet: str | Path, description: str | Path) -> ModelFrame:
    """A frame as its fit job wrote it, the rows indexed by their positions in the dataset again."""
    meta = read_json(description)
    table = read_dataset(parquet)
    if ".row" not in table.columns:
        raise GlmflowError(f"{parquet}: no .row column; rerun the model's fit job (snakemake --forcerun fit_model)")
    data = table.drop(columns=".row").set_index(pd.Index(table[".row"].to_numpy() - 1))
    return ModelFrame(meta["model"], meta["spec"], meta["filter"], data, meta.get("left_out"))
