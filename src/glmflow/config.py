"""Checks of a config that its JSON schema cannot express, made before any job runs.

The schema (workflow/schemas/config.schema.yaml) checks shapes and fills defaults; this
checks that the parts refer to each other and to the data: every model's dataset exists,
its formula parses and names columns that the file has, comparisons and predictions
name models that exist. Only the CSV header of each file is read, so it is cheap.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from glmflow.data import clean_names
from glmflow.errors import GlmflowError
from glmflow.formula import random_effect_terms, required_variables


def dataset_columns(spec: dict, base: Path) -> list[str]:
    header = list(pd.read_csv(base / spec["path"], nrows=0).columns)
    return clean_names(header) if spec.get("clean_names", True) else header


def is_mixed(model: dict) -> bool:
    return bool(random_effect_terms(model["formula"]))


def check_config(config: dict, base: str | Path = ".") -> None:
    """Raise one GlmflowError that lists every problem, each under its config key."""
    base = Path(base)
    problems: list[str] = []
    columns: dict[str, list[str]] = {}
    for name, spec in config.get("datasets", {}).items():
        path = base / spec["path"]
        if not path.is_file():
            problems.append(f"datasets.{name}.path: file {spec['path']} does not exist")
            continue
        columns[name] = dataset_columns(spec, base)
        for factor in spec.get("factors", []):
            if factor not in columns[name]:
                problems.append(f"datasets.{name}.factors: {factor!r} is not a column of {spec['path']}")

    models = config.get("models", {})
    variables: dict[str, list[str]] = {}
    for name, model in models.items():
        key = f"models.{name}"
        if model["dataset"] not in config.get("datasets", {}):
            problems.append(f"{key}.dataset: no dataset {model['dataset']!r} in datasets")
            continue
        try:
            response, variables[name] = required_variables(model["formula"], key)
        except GlmflowError as error:
            problems.append(f"{key}.formula: {error}")
            continue
        known = columns.get(model["dataset"])
        if known is not None:
            unknown = [v for v in variables[name] if v not in known]
            if unknown:
                problems.append(
                    f"{key}.formula: {', '.join(map(repr, unknown))} not a column of dataset "
                    f"{model['dataset']!r} (columns: {', '.join(known)})"
                )
        if "weights" in model and known is not None and model["weights"] not in known:
            problems.append(f"{key}.weights: {model['weights']!r} is not a column of dataset {model['dataset']!r}")
        if "weights" in model and not is_mixed(model):
            problems.append(f"{key}.weights: prior weights are supported for mixed binomial models only")
        if is_mixed(model) and model["family"] == "gaussian":
            problems.append(f"{key}.family: linear mixed models (gaussian with ( | ) terms) are not supported")

    for name, comparison in config.get("comparisons", {}).items():
        pair = [comparison["compact"], comparison["augmented"]]
        for role, model in zip(("compact", "augmented"), pair, strict=True):
            if model not in models:
                problems.append(f"comparisons.{name}.{role}: no model {model!r} in models")
        if all(m in models for m in pair):
            first, second = (models[m] for m in pair)
            if first["dataset"] != second["dataset"] or first.get("filter") != second.get("filter"):
                problems.append(f"comparisons.{name}: {pair[0]!r} and {pair[1]!r} are fitted to different data")
            if first["family"] != second["family"]:
                problems.append(f"comparisons.{name}: {pair[0]!r} and {pair[1]!r} have different families")

    interpretation = config.get("interpretation", {})
    for name, prediction in interpretation.get("predictions", {}).items():
        model = prediction["model"]
        key = f"interpretation.predictions.{name}"
        if model not in models:
            problems.append(f"{key}.model: no model {model!r} in models")
        elif is_mixed(models[model]):
            problems.append(f"{key}.model: predictions of mixed model {model!r} are not supported")
        elif model in variables:
            unknown = [v for v in prediction.get("at", {}) if v not in variables[model][1:]]
            if unknown:
                problems.append(f"{key}.at: {', '.join(map(repr, unknown))} not a predictor of model {model!r}")
    for name, table in interpretation.get("counts", {}).items():
        key = f"interpretation.counts.{name}"
        if table["dataset"] not in columns:
            problems.append(f"{key}.dataset: no dataset {table['dataset']!r} in datasets")
            continue
        unknown = [v for v in table["by"] if v not in columns[table["dataset"]]]
        if unknown:
            problems.append(f"{key}.by: {', '.join(map(repr, unknown))} not a column of dataset {table['dataset']!r}")

    if problems:
        raise GlmflowError("config.yaml has problems:\n  - " + "\n  - ".join(problems))
