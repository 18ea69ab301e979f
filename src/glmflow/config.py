"""Checks of a config that its JSON schema cannot express, made before any job runs.

The schema (workflow/schemas/config.schema.yaml) checks shapes, names and defaults; this
checks that the parts refer to each other and to the data: every model's dataset exists,
its formula and filters are allow-listed and name columns that the file has, mixed-model
formulas are of the form the engine fits, comparisons, predictions and figures name things
that exist. Data-dependent checks (a binomial response's values, factor levels named in
prediction grids, rows left after a filter) read only the columns they need.

Problems are listed under their config key. When one problem makes others follow (a
missing file, an unreadable formula), only the cause is listed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from formulaic import Formula
from jsonschema import Draft202012Validator

from glmflow.data import (
    apply_filter,
    as_factor,
    clean_names,
    csv_errors,
    data_path_problem,
    factor_level,
    has_data_rows,
    parse_column,
    r_label,
    r_sorted,
    read_csv_header,
)
from glmflow.errors import GlmflowError
from glmflow.families import family_class, mixed_model_family_problem
from glmflow.filters import FilterError, expression_columns, filter_columns
from glmflow.formula import data_rows, predictor_variables, required_variables
from glmflow.formula_syntax import (
    cbind_parts,
    check_random_terms,
    factor_call_variables,
    fixed_part,
    random_effect_terms,
    response_columns,
    split_formula,
    split_offsets,
    to_formulaic,
)
from glmflow.glmm_memory import machine_bytes, memory_problem
from glmflow.plan import comparison_models, is_linear_mixed, is_mixed
from glmflow.study import CELL_BYTES_PER_REPLICATE, CELL_BYTES_PER_ROW, RESERVED_NAMES, cell_memory


def schema_problems(config: dict, schema_path: str | Path) -> list[str]:
    """Every way ``config`` breaks the JSON schema, each under its dotted config key, in
    words (jsonschema's own messages name no key for a bad name)."""
    # libyaml's loader where PyYAML has it (the same objects): 3 ms a parse of the schema
    # against the pure-Python loader's 19 ms
    schema = yaml.load(Path(schema_path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    problems = nonfinite_problems(config)
    for error in sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.path))):
        key = ".".join(map(str, error.path)) or "(top level)"
        if "propertyNames" in error.schema_path:
            bad = error.instance if isinstance(error.instance, str) else error.message
            problems.append(
                f"{key}: the name {bad!r} is not allowed: names become file paths, ids and Snakemake wildcards, "
                "so use a letter, then letters, digits and underscores (at most 64), not ending in the same "
                "character or characters 20 times over (Snakemake takes such a value for a runaway wildcard)"
            )
        elif error.validator == "additionalProperties":
            allowed = ", ".join(error.schema.get("properties", {}))
            problems.append(f"{key}: {error.message} (allowed: {allowed})")
        elif error.validator == "enum":
            choices = ", ".join(map(str, error.validator_value))
            problems.append(f"{key}: {error.instance!r} is not one of {choices}")
        else:
            hint = error.schema.get("x-hint")
            problems.append(f"{key}: {error.message}" + (f": {hint}" if hint else ""))
    return problems


def nonfinite_problems(value, key: str = "") -> list[str]:
    """Every NaN or infinite number in the config (YAML's .nan, .inf), under its dotted key: the
    schema's bounds pass NaN (no comparison with it is false), and no setting means either."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{key or '(top level)'}: {value} is not a number glmflow can use; give a finite number"]
    if isinstance(value, dict):
        return [
            p for name, item in value.items() for p in nonfinite_problems(item, f"{key}.{name}" if key else str(name))
        ]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in nonfinite_problems(item, f"{key}[{i}]")]
    return []


def check_schema(config: dict, schema_path: str | Path) -> None:
    problems = schema_problems(config, schema_path)
    if problems:
        raise GlmflowError("config.yaml has problems (nothing was run):\n  - " + "\n  - ".join(problems))


def dataset_columns(spec: dict, base: Path) -> list[str]:
    header = read_csv_header(base / spec["path"])
    return clean_names(header) if spec.get("clean_names", True) else header


def read_columns(spec: dict, base: Path, columns: set[str], key: str = "filter") -> pd.DataFrame:
    """Only the named (cleaned) columns of a data set, typed, factored and filtered as the
    data job does it: what the data-dependent checks need, without reading the rest."""
    path = base / spec["path"]
    header = read_csv_header(path)
    names = clean_names(header) if spec.get("clean_names", True) else header
    wanted = set(columns) | (set(filter_columns(spec["filter"])) if spec.get("filter") else set())
    positions = [i for i, name in enumerate(names) if name in wanted]
    with csv_errors(path):
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=positions)
    raw.columns = [names[i] for i in positions]
    data = pd.DataFrame({column: parse_column(raw[column]) for column in raw.columns})
    levels = spec.get("levels", {})
    for factor in dict.fromkeys([*spec.get("factors", []), *levels]):
        if factor in data:
            data[factor] = as_factor(data[factor], levels.get(factor), f"{key.rsplit('.', 1)[0]}.levels.{factor}")
    if spec.get("filter"):
        data = apply_filter(data, spec["filter"], key)
    return data


def _check_mixed_model(problems, key: str, model: dict) -> None:
    """What lme4's glmer allows: its families (any of their links; gaussian with the identity
    link is lmer's); nAGQ > 1 for one scalar random intercept ``(1 | g)``, binomial or Poisson
    with any of their links."""
    problem = mixed_model_family_problem(model["family"], model.get("link"), model.get("nAGQ", 1))
    if problem:
        problems.add(f"{key}.{problem[0]}", problem[1])
        return
    if model.get("nAGQ", 1) > 1:
        terms = random_effect_terms(model["formula"])
        scalar = len(terms) == 1 and terms[0].expression.replace(" ", "") == "1" and "/" not in terms[0].group
        if not scalar:
            problems.add(f"{key}.nAGQ", f"nAGQ = {model['nAGQ']} needs a single scalar random intercept (1 | group), "
                         "as lme4; use nAGQ: 1 (Laplace) for this model")  # fmt: skip


class _Problems(list):
    def add(self, key: str, message: str) -> None:
        self.append(f"{key}: {message}")


def check_config(config: dict, base: str | Path = ".") -> None:
    """Raise one GlmflowError that lists every problem, each under its config key."""
    base = Path(base)
    problems = _Problems()
    _check_reserved_names(problems, config)
    datasets, models = config.get("datasets", {}), config.get("models", {})
    columns = _check_datasets(problems, datasets, base)
    variables = _check_models(problems, models, datasets, columns)
    for name, comparison in config.get("comparisons", {}).items():
        _check_comparison(problems, f"comparisons.{name}", comparison_models(comparison), models, variables,
                          comparison.get("test", "LRT"))  # fmt: skip
    interpretation = config.get("interpretation", {})
    _check_interpretation(problems, interpretation, models, variables, datasets, columns)
    _check_figures(problems, config.get("figures", {}), models, variables, interpretation.get("counts", {}))
    _check_simulation(problems, config.get("simulation", {}))
    if not problems:
        _check_data(problems, config, base, variables)
    if problems:
        raise GlmflowError("config.yaml has problems (nothing was run):\n  - " + "\n  - ".join(dict.fromkeys(problems)))


def _check_datasets(problems: _Problems, datasets: dict, base: Path) -> dict[str, list[str]]:
    """Each dataset's file, factors, levels and filter; returns the columns of those that can be read."""
    columns: dict[str, list[str]] = {}
    for name, spec in datasets.items():
        key = f"datasets.{name}"
        problem = data_path_problem(spec["path"], base, spec.get("allow_outside_project", False))
        if problem:
            problems.add(f"{key}.path", problem)
            continue
        try:
            columns[name] = dataset_columns(spec, base)
            if not has_data_rows(base / spec["path"]):
                problems.add(f"{key}.path", f"{spec['path']}: the file has a header line but no data rows: give "
                             "a CSV file with data (an empty file leaves every model nothing to fit)")  # fmt: skip
                continue
        except GlmflowError as error:
            problems.add(f"{key}.path", str(error))
            continue
        for role in ("factors", "levels"):
            for factor in spec.get(role, []):
                if factor not in columns[name]:
                    problems.add(f"{key}.{role}", f"{factor!r} is not a column of {spec['path']}")
        if spec.get("filter"):
            _check_filter(problems, f"{key}.filter", spec["filter"], columns[name])
    return columns


def _check_models(problems: _Problems, models: dict, datasets: dict, columns: dict) -> dict[str, list[str]]:
    """Each model against its dataset; returns the variables of each model whose formula and
    columns check out (the comparisons, grids and figures read them)."""
    variables: dict[str, list[str]] = {}
    for name, model in models.items():
        key = f"models.{name}"
        if model["dataset"] not in datasets:
            problems.add(f"{key}.dataset", f"no dataset {model['dataset']!r} in datasets ({', '.join(datasets)})")
            continue
        try:
            _, variables[name] = required_variables(model["formula"], key)
            if is_mixed(model):
                check_random_terms(model["formula"], key)
        except GlmflowError as error:
            problems.add(f"{key}.formula", str(error).removeprefix(f"{key}: "))
            variables.pop(name, None)
            continue
        known = columns.get(model["dataset"])
        if known is None:
            continue  # its dataset's file is missing: said once, under the dataset
        unknown = [v for v in variables[name] if v not in known]
        if unknown:
            problems.add(
                f"{key}.formula",
                f"{', '.join(map(repr, unknown))} not a column of dataset {model['dataset']!r} "
                f"(columns: {', '.join(known)})",
            )
            variables.pop(name)
        _check_model_columns(problems, key, model, known)
        _check_model_settings(problems, key, model)
    return variables


def _check_model_columns(problems: _Problems, key: str, model: dict, known: list[str]) -> None:
    """A model's filter, offset and weights against its dataset's columns."""
    if model.get("filter"):
        _check_filter(problems, f"{key}.filter", model["filter"], known)
    if model.get("offset"):
        try:
            missing = [c for c in expression_columns(model["offset"]) if c not in known]
        except GlmflowError as error:
            problems.add(f"{key}.offset", str(error))
        else:
            if missing:
                problems.add(f"{key}.offset", f"{', '.join(map(repr, missing))} not a column of the dataset")
    if "weights" in model and model["weights"] not in known:
        problems.add(f"{key}.weights", f"{model['weights']!r} is not a column of dataset {model['dataset']!r}")


def _check_model_settings(problems: _Problems, key: str, model: dict) -> None:
    """A model's link, and the settings that apply to some kinds of model only."""
    links = family_class(model["family"]).links
    if model.get("link") and model["link"] not in links:
        problems.add(
            f"{key}.link",
            f"{model['link']!r} is not a link of the {model['family']} family (links: {', '.join(links)})",
        )
    if is_mixed(model):
        _check_mixed_model(problems, key, model)
    if not is_mixed(model) and model.get("nAGQ", 1) != 1:
        problems.add(f"{key}.nAGQ", "nAGQ applies to mixed models (a ( | ) term) only")
    if "REML" in model and not is_linear_mixed(model):
        problems.add(f"{key}.REML", "REML applies to linear mixed models only (family gaussian with the "
                     "identity link and a ( | ) term, lme4's lmer); glm and glmer fit by maximum likelihood: "
                     "remove REML")  # fmt: skip


def _check_interpretation(
    problems: _Problems, interpretation: dict, models: dict, variables: dict, datasets: dict, columns: dict
) -> None:
    """Prediction grids against their models, count tables against their datasets."""
    for name, prediction in interpretation.get("predictions", {}).items():
        model = prediction["model"]
        key = f"interpretation.predictions.{name}"
        if model not in models:
            problems.add(f"{key}.model", f"no model {model!r} in models")
        elif model in variables:
            _check_grid_variables(problems, f"{key}.at", prediction.get("at", {}), model, models[model])
    for name, table in interpretation.get("counts", {}).items():
        key = f"interpretation.counts.{name}"
        if table["dataset"] not in datasets:
            problems.add(f"{key}.dataset", f"no dataset {table['dataset']!r} in datasets")
        elif table["dataset"] in columns:
            unknown = [v for v in table["by"] if v not in columns[table["dataset"]]]
            if unknown:
                problems.add(
                    f"{key}.by", f"{', '.join(map(repr, unknown))} not a column of dataset {table['dataset']!r}"
                )


def _check_figures(problems: _Problems, figures: dict, models: dict, variables: dict, counts: dict) -> None:
    """Fitted-curve figures against their models' predictors, proportion figures against their tables."""

    def predictors(model: str) -> list[str]:
        return [v for v in variables[model] if v not in response_columns(required_variables(
            models[model]["formula"], model)[0])]  # fmt: skip

    for name, figure in figures.get("fits", {}).items():
        key = f"figures.fits.{name}"
        if figure["model"] not in models:
            problems.add(f"{key}.model", f"no model {figure['model']!r} in models")
        elif is_mixed(models[figure["model"]]):
            problems.add(f"{key}.model", f"fitted curves of mixed model {figure['model']!r} are not supported")
        elif figure["model"] in variables:
            for role in ("x", "by"):
                if role in figure and figure[role] not in predictors(figure["model"]):
                    problems.add(f"{key}.{role}", f"{figure[role]!r} is not a predictor of model {figure['model']!r}")
    for name, figure in figures.get("proportions", {}).items():
        key = f"figures.proportions.{name}"
        if figure["counts"] not in counts:
            problems.add(f"{key}.counts", f"no count table {figure['counts']!r} in interpretation.counts")
            continue
        by = counts[figure["counts"]]["by"]
        for role in ("x", "fill"):
            if figure[role] not in by:
                problems.add(f"{key}.{role}", f"{figure[role]!r} is not one of the table's columns {by}")


def _check_grid_variables(problems: _Problems, key: str, at: dict, name: str, model: dict) -> None:
    """A grid's focal variables are the fixed part's predictors (effects::Effect's): not a
    grouping factor, not a column only in an offset (held at its mean)."""
    fixed = predictor_variables(model["formula"], f"models.{name}")
    offsets = split_offsets(fixed_part(split_formula(model["formula"], key)[1]))[1] + (
        [model["offset"]] if model.get("offset") else [])  # fmt: skip
    in_offset = {c for text in offsets for c in expression_columns(text)}
    for variable in at:
        if variable in fixed:
            continue
        if variable in in_offset:
            message = (f"{variable!r} is only in the offset of model {name!r}, which a grid holds at its mean over "
                       "the rows used (as effects::Effect); it is not a predictor: leave it out of at")  # fmt: skip
            problems.add(key, message)
        else:
            problems.add(key, f"{variable!r} is not a predictor of model {name!r} (predictors of its fixed part: "
                         f"{', '.join(fixed) or 'none'})")  # fmt: skip


def _check_reserved_names(problems: _Problems, config: dict) -> None:
    for section, name in RESERVED_NAMES.items():
        node = config
        for part in section.split("."):
            node = node.get(part, {})
        if name in node:
            problems.add(
                f"{section}.{name}",
                f"the name {name!r} is built in (the simulated data's fit and its figure): a second one would "
                "replace it or share its files and report ids; choose another name",
            )


def _check_simulation(problems: _Problems, simulation: dict) -> None:
    """What the schema cannot say of the simulations (it holds seeds to R's integers)."""
    demo = simulation.get("demo")
    if demo and demo.get("rng") == "numpy" and demo["seed"] < 0:
        problems.add("simulation.demo.seed", f"{demo['seed']}: numpy's generator takes a seed >= 0; choose one, "
                     "or rng: r (R's set.seed takes negative seeds)")  # fmt: skip
    study = simulation.get("study")
    if study:
        _check_study_memory(problems, study["replicates"], max(study["n"]))


def _check_study_memory(problems: _Problems, replicates: int, n: int) -> None:
    """A cell's job holds every replicate's results: refused before any job where one cannot fit
    in this machine's memory (it would be killed, or swap, after minutes)."""
    need, have = cell_memory(replicates, n), machine_bytes()
    if need <= have:
        return
    most = max(0, (have - cell_memory(0, n)) // CELL_BYTES_PER_REPLICATE)
    key = "replicates" if replicates * CELL_BYTES_PER_REPLICATE >= cell_memory(0, n) else "n"
    problems.add(
        f"simulation.study.{key}",
        f"{replicates} replicates at n = {n} need about {need / 2**30:.1f} GiB in each cell's job "
        f"({CELL_BYTES_PER_REPLICATE} bytes a replicate, {CELL_BYTES_PER_ROW} a row of n), more than this "
        f"machine's {have / 2**30:.1f} GiB of memory: "
        + (f"use at most {most} replicates" if most >= 2 else "use a smaller n")
        + " (a Monte Carlo SE shrinks only as 1/sqrt(replicates))",
    )


def _model_terms(formula: str) -> set[str]:
    rhs = split_offsets(fixed_part(split_formula(formula, "formula")[1]))[0]
    return {str(term) for term in Formula(to_formulaic(rhs))}


def _mixed_comparison_ok(problems: _Problems, key: str, names: list[str], models: dict, test: str) -> bool:
    """lme4's anova.merMod: a likelihood-ratio (Chisq) test only, and no glm fit beside a
    quadrature (nAGQ > 1) fit, whose log-likelihood is on another scale."""
    if test not in ("LRT", "Chisq"):
        problems.add(f"{key}.test", f"{test!r}: anova of mixed models (lme4's anova.merMod) is a likelihood-ratio "
                     "test only; use LRT or Chisq")  # fmt: skip
        return False
    quadrature = [name for name in names if is_mixed(models[name]) and models[name].get("nAGQ", 1) > 1]
    glm_fits = [name for name in names if not is_mixed(models[name])]
    if quadrature and glm_fits:
        message = (f"{', '.join(map(repr, quadrature))} (nAGQ > 1) and the glm fits {', '.join(map(repr, glm_fits))} "
                   "cannot be compared (lme4: 'GLMMs with nAGQ>1 have log-likelihoods incommensurate with glm() "
                   "objects'); fit the mixed models with nAGQ: 1")  # fmt: skip
        problems.add(key, message)
        return False
    return True


def _check_comparison(
    problems: _Problems, key: str, names: list[str], models: dict, variables: dict, test: str = "LRT"
) -> None:
    roles = ["compact", "augmented"] if len(names) == 2 else [f"models[{i}]" for i in range(len(names))]
    unknown = [(role, name) for role, name in zip(roles, names, strict=True) if name not in models]
    for role, name in unknown:
        problems.add(f"{key}.{role}" if not role.startswith("models") else f"{key}.models",
                     f"no model {name!r} in models")  # fmt: skip
    if unknown or any(name not in variables for name in names):
        return
    if len(set(names)) < len(names):
        problems.add(key, "a model is listed twice")
        return
    if any(is_mixed(models[name]) for name in names) and not _mixed_comparison_ok(problems, key, names, models, test):
        return
    first = models[names[0]]
    for name in names[1:]:
        spec = models[name]
        for setting, what in [("dataset", "data"), ("filter", "data"), ("weights", "weights"), ("offset", "offset")]:
            if spec.get(setting) != first.get(setting):
                problems.add(key, f"{names[0]!r} and {name!r} are fitted to different {what} ({setting})")
                return
        if (spec["family"], spec.get("link")) != (first["family"], first.get("link")):
            problems.add(key, f"{names[0]!r} and {name!r} have different families or links")
            return
        if split_formula(spec["formula"], key)[0] != split_formula(first["formula"], key)[0]:
            problems.add(key, f"{names[0]!r} and {name!r} have different responses: they are not nested")
            return
    for smaller, larger in zip(names, names[1:], strict=False):
        extra = _model_terms(models[smaller]["formula"]) - _model_terms(models[larger]["formula"])
        if extra:
            problems.add(
                key,
                f"{smaller!r} has terms {', '.join(sorted(extra))} that {larger!r} lacks: the models must be "
                "nested, smallest first",
            )


def _check_filter(problems: _Problems, key: str, text: str, known: list[str]) -> None:
    try:
        unknown = [c for c in filter_columns(text) if c not in known]
    except FilterError as error:
        problems.add(key, f"{text!r}: {error}")
        return
    if unknown:
        problems.add(key, f"{text!r}: {', '.join(map(repr, unknown))} not a column (columns: {', '.join(known)})")


def _check_data(problems: _Problems, config: dict, base: Path, variables: dict[str, list[str]]) -> None:
    """What needs the data's values: read once per dataset, only the columns needed."""
    models = config["models"]
    predictions = config.get("interpretation", {}).get("predictions", {})
    needed: dict[str, set[str]] = {name: set(spec.get("levels", {})) for name, spec in config["datasets"].items()}
    for name, model in models.items():
        response = required_variables(model["formula"], name)[0]
        needed[model["dataset"]] |= set(response_columns(response)) | set(_finite_roles(model, name))
        needed[model["dataset"]] |= {c for term in random_effect_terms(model["formula"]) for c in term.group_columns}
        if model.get("filter"):
            needed[model["dataset"]] |= set(filter_columns(model["filter"]))
    for prediction in predictions.values():
        model = models[prediction["model"]]
        needed[model["dataset"]] |= set(prediction.get("at", {}))
    frames = {}
    for name, columns in needed.items():
        try:
            frames[name] = read_columns(config["datasets"][name], base, columns, f"datasets.{name}.filter")
        except GlmflowError as error:
            problems.append(str(error))
    for name, model in models.items():
        data = frames.get(model["dataset"])
        if data is None:
            continue
        key = f"models.{name}"
        if model.get("filter"):
            try:
                data = apply_filter(data, model["filter"], f"{key}.filter")
            except GlmflowError as error:
                problems.append(str(error))
                continue
        _check_finite(problems, key, data, _finite_roles(model, name))
        for term in random_effect_terms(model["formula"]):
            for group in term.group_columns:
                if data[group].nunique() < 2:
                    problems.add(f"{key}.formula", f"grouping factor {group!r} has one level; it needs more than one")
        _check_mixed_model_memory(problems, key, data, model, name)
        if cbind_parts(required_variables(model["formula"], name)[0]) is not None:
            continue  # cbind(successes, failures): counts, checked when fitted
        response = data[variables[name][0]]
        problem = family_class(model["family"]).response_problem(response, "weights" in model)
        if problem:
            problems.add(f"{key}.formula", f"response {response.name!r} {problem}")
    for name, prediction in predictions.items():
        model = models[prediction["model"]]
        data = frames.get(model["dataset"])
        if data is not None:
            _check_grid_values(problems, f"interpretation.predictions.{name}", prediction, model, data)


def _check_grid_values(problems: _Problems, key: str, prediction: dict, model: dict, data: pd.DataFrame) -> None:
    """A prediction grid's values against its dataset: levels of a factor, numbers otherwise."""
    factor_calls = factor_call_variables(model["formula"])
    for variable, values in prediction.get("at", {}).items():
        column = data[variable]
        # Text is a factor, as in R's model frame (its levels in R's collation).
        text = not pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if isinstance(column.dtype, pd.CategoricalDtype) or variable in factor_calls or text:
            levels = [r_label(v) for v in (column.cat.categories if column.dtype == "category" else
                                           r_sorted(pd.unique(column.dropna())))]  # fmt: skip
            unknown = [v for v in values if factor_level(v, levels) is None]
            if unknown:
                problems.add(f"{key}.at.{variable}",
                             f"no level {', '.join(map(repr, unknown))} (levels: {', '.join(levels)})")  # fmt: skip
        else:
            bad = [v for v in values if isinstance(v, str | bool)]
            if bad:
                problems.add(f"{key}.at.{variable}",
                             f"{variable!r} is numeric; {', '.join(map(repr, bad))} is not a number")  # fmt: skip


def _check_mixed_model_memory(problems: _Problems, key: str, data: pd.DataFrame, model: dict, name: str) -> None:
    """A mixed model whose factorisation cannot fit in memory, refused before any job. From the
    data: each written term's levels (a nesting a/b counts its innermost combinations), one
    column a term and the rows complete in the model's columns, all lower bounds of what the
    fit builds, so nothing that fits is refused here; the fit checks again with the design."""
    terms = random_effect_terms(model["formula"])
    if not terms:
        return
    columns = sorted(set(_finite_roles(model, name)) | {c for t in terms for c in t.group_columns})
    rows = data[columns].dropna()
    sizes = {t.group: (len(rows[t.group_columns].drop_duplicates()), 1) for t in terms}
    problem = memory_problem(len(rows), sizes, at_least=True)
    if problem:
        problems.add(f"{key}.formula", problem)


def _finite_roles(model: dict, name: str) -> dict[str, str]:
    """The columns a model computes with (not its grouping factors), by role: "y" (the response's),
    "x" (the model matrix's), "formula offset", "offset" (config's), "weights"."""
    response, variables = required_variables(model["formula"], name)
    offsets = split_offsets(fixed_part(split_formula(model["formula"], name)[1]))[1] + [model.get("offset") or "0"]
    groups = {c for term in random_effect_terms(model["formula"]) for c in term.group_columns}
    roles = {c: "x" for c in variables if c not in groups}
    roles.update({c: "formula offset" for text in offsets[:-1] for c in expression_columns(text)})
    roles.update({c: "offset" for c in expression_columns(offsets[-1])})
    roles.update({c: "y" for c in response_columns(response)})
    if model.get("weights"):
        roles[model["weights"]] = "weights"
    return roles


# Where each role's problem is said (the config key under the model) and why it stops the fit.
_NOT_FINITE = {
    "y": ("formula", "R's lm and glm stop: NA/NaN/Inf in 'y'"),
    "x": ("formula", "R's lm and glm stop: NA/NaN/Inf in 'x'"),
    "formula offset": ("formula", "an offset must be finite"),
    "offset": ("offset", "an offset must be finite"),
    "weights": ("weights", "weights must be finite"),
}


def _check_finite(problems: _Problems, key: str, data: pd.DataFrame, roles: dict[str, str]) -> None:
    """Inf in a column a model computes with, on a row na.omit keeps: R's lm and glm stop ("NA/NaN/Inf
    in 'y'", "... in 'x'"), so the fit would; said here, before any job, by column and data row."""
    used = data[list(roles)]
    kept = used.notna().all(axis=1)
    for column, role in roles.items():
        values = used[column][kept]
        if not pd.api.types.is_float_dtype(values) or np.isfinite(values.to_numpy()).all():
            continue
        rows = data_rows(values.index[~np.isfinite(values.to_numpy())].to_numpy())
        where, stop = _NOT_FINITE[role]
        problems.add(
            f"{key}.{where}",
            f"column {column!r} holds Inf or -Inf in data rows {rows} ({stop}); filter those rows out or correct "
            "the data",
        )
