"""What the report says in words, decided from the config and computed from the data: which
items are the chapter's own (its story is told around those alone), what a model's filter
leaves out, what a fitted curve holds the other predictors at, and how a mixed model's numbers
relate to lme4's default fit."""

from __future__ import annotations

import pandas as pd
import yaml

from glmflow.data import r_sorted
from glmflow.filters import evaluate_filter, filter_columns
from glmflow.formula import build_design, predictor_variables
from glmflow.interpret import _fixed_effects_model, factor_predictors
from glmflow.models import model_data
from glmflow.plan import comparison_models, is_linear_mixed, is_mixed
from glmflow.report_plan import config_items
from glmflow.rformat import format_number, r_label

# The chapter's items as config.yaml defines them (tests/test_report_layout.py holds the two
# equal). The report tells the chapter's story around an item only when the config has it
# under this name with these settings and everything it uses is the chapter's too; anything
# else, a renamed or changed chapter item included, is laid out from the config.
CHAPTER = yaml.safe_load("""
datasets:
  titanic:
    path: resources/titanic_train.csv
    sha256: 7d118fef8b6ccf7f81111877bc388536f7b1e498a655e3d649d19aaa010e9f6f
    clean_names: true
    factors: [sex]
    digits: 2
  bdf:
    path: resources/bdf.csv
    sha256: deba021e15dc80e367a63452fd9207df31c14e8d64b980896b97555ee4672af2
    clean_names: true
    factors: [minority]
    filter: "repeatgr != 2"
models:
  lm_fare: {dataset: titanic, formula: "survived ~ 1 + fare", family: gaussian}
  glm_fare: {dataset: titanic, formula: "survived ~ 1 + fare", family: binomial}
  glm_sex: {dataset: titanic, formula: "survived ~ sex", family: binomial}
  glm_sex_fare: {dataset: titanic, formula: "survived ~ 1 + sex * fare", family: binomial}
  glm_sex_fare_no_outlier:
    {dataset: titanic, formula: "survived ~ 1 + sex * fare", family: binomial, filter: "fare < 500"}
  glm_sex_plus_fare: {dataset: titanic, formula: "survived ~ 1 + sex + fare", family: binomial}
  glmm_repeatgr:
    {dataset: bdf, formula: "repeatgr ~ 1 + ses * minority + (1 | school_nr)", family: binomial, nAGQ: 1}
  glmm_repeatgr_agq10:
    {dataset: bdf, formula: "repeatgr ~ 1 + ses * minority + (1 | school_nr)", family: binomial, nAGQ: 10}
comparisons:
  sex_effect: {compact: glm_fare, augmented: glm_sex_plus_fare, test: LRT}
predictions:
  fare_intercept: {model: glm_fare, at: {fare: [0]}}
  sex_probabilities: {model: glm_sex, at: {sex: [female, male]}}
  fare_values: {model: glm_fare, at: {fare: [0, 10, 50, 100, 500]}, digits: 2}
  male_fare200: {model: glm_sex_fare, at: {sex: [male], fare: [200]}}
  male_fare200_no_outlier: {model: glm_sex_fare_no_outlier, at: {sex: [male], fare: [200]}}
  sex_fare_effects: {model: glm_sex_fare, at: {sex: [], fare: [0, 100, 200, 300, 400, 500]}}
counts:
  survival_by_sex: {dataset: titanic, by: [sex, survived], digits: 2}
fits:
  lm_fare: {model: lm_fare, x: fare, y_label: survived}
  glm_fare: {model: glm_fare, x: fare, y_label: p(survived)}
  glm_sex_fare: {model: glm_sex_fare, x: fare, by: sex, y_label: survived, point_alpha: 0.1}
  glm_sex_fare_no_outlier: {model: glm_sex_fare_no_outlier, x: fare, by: sex, y_label: survived, point_alpha: 0.1}
proportions:
  survival_by_sex: {counts: survival_by_sex, x: sex, fill: survived, labels: {"0": died, "1": survived}}
""")
# The schema's defaults (validate() fills them in): a setting at its default is the same
# setting as one left out. `digits` only changes how the report prints a table.
DEFAULTS = {"nAGQ": 1, "point_alpha": 1, "clean_names": True, "factors": [], "test": "LRT"}
IGNORED = {"digits", "allow_outside_project"}


def _settings(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k not in IGNORED and not (k in DEFAULTS and DEFAULTS[k] == v)}


def chapter_items(config: dict) -> dict[str, set[str]]:
    """Per kind, the names of the config's items that are the chapter's own: same name, same
    settings, and what they use (a model's dataset, a grid's model) the chapter's too."""
    items = config_items(config)
    same = {
        kind: {name for name, spec in items[kind].items()
               if name in CHAPTER[kind] and _settings(spec) == _settings(CHAPTER[kind][name])}
        for kind in CHAPTER
    }  # fmt: skip
    models = {m for m in same["models"] if items["models"][m]["dataset"] in same["datasets"]}
    counts = {c for c in same["counts"] if items["counts"][c]["dataset"] in same["datasets"]}
    comparisons = {c for c in same["comparisons"] if set(comparison_models(items["comparisons"][c])) <= models}
    return {
        "datasets": same["datasets"],
        "models": models,
        "comparisons": comparisons,
        "predictions": {p for p in same["predictions"] if items["predictions"][p]["model"] in models},
        "counts": counts,
        "fits": {f for f in same["fits"] if items["fits"][f]["model"] in models},
        "proportions": {p for p in same["proportions"] if items["proportions"][p]["counts"] in counts},
    }


def r_text(value) -> str:
    """A value as R prints it alone (numbers with 7 significant digits)."""
    if isinstance(value, bool | str) or not isinstance(value, int | float):
        return str(value)
    return format_number(float(value), 7).strip()


def filter_facts(data: pd.DataFrame, spec: dict, model: str, left_out: pd.DataFrame | None = None) -> dict:
    """What a model's ``filter`` leaves out of its dataset: how many rows of how many, the
    values they have in the filter's columns, and how they fall on the model's factors. The
    fit job passes the rows its filter left out (``glmflow.frame``), so the filter runs once."""
    text = spec["filter"]
    if left_out is None:
        left_out = data[~evaluate_filter(data, text)]
    values = {}
    for column in filter_columns(text):
        counts = left_out[column].value_counts(dropna=False).sort_index()
        if len(counts) <= 4:
            values[column] = [(r_text(v), int(n)) for v, n in counts.items()]
        elif pd.api.types.is_numeric_dtype(left_out[column]):
            values[column] = [(f"{r_text(left_out[column].min())} to {r_text(left_out[column].max())}", len(left_out))]
        else:  # a factor or text: no range (its levels have no order), how many values
            values[column] = [(f"{len(counts)} values", len(left_out))]
    factors = {}
    for column in predictor_variables(spec["formula"], f"model {model!r}"):
        if column in data and isinstance(data[column].dtype, pd.CategoricalDtype) and column not in values:
            counts = left_out[column].value_counts(sort=False)
            factors[column] = [(str(level), int(n)) for level, n in counts.items() if n]
    return {"filter": text, "n": len(left_out), "of": len(data), "columns": values, "factors": factors}


def held_values(data: pd.DataFrame, spec: dict, model: str, focal: list[str]) -> list[str]:
    """What a grid or a fitted curve holds each predictor not in ``focal`` at, as
    ``effects::Effect`` (``glmflow.interpret.effect_grid``): a number at its mean over the rows
    used, a factor at the proportions of its levels there."""
    where = f"model {model!r}"
    fixed = _fixed_effects_model(spec, where) if is_mixed(spec) else spec
    rows = model_data(data, fixed, model)
    design = build_design(fixed["formula"], rows, where, fixed.get("offset"))
    frame = design.frame
    factors = factor_predictors(design, frame)
    held = []
    for variable in predictor_variables(fixed["formula"], where):
        if variable in focal:
            continue
        if variable in factors:
            # in the order of the levels (a categorical column's categories, else sorted as R)
            shares = frame[variable].value_counts(normalize=True, sort=False)
            if not isinstance(frame[variable].dtype, pd.CategoricalDtype):
                shares = shares.reindex(r_sorted(shares.index))
            parts = ", ".join(f"{r_label(level)} {format_number(share, 3).strip()}" for level, share in shares.items())
            held.append(f"{variable} at the proportions of its levels ({parts})")
        else:
            held.append(f"{variable} at its mean, {format_number(float(frame[variable].mean()), 4).strip()}")
    for offset in design.offsets:
        held.append(f"the offset {offset} at its mean, {format_number(float(design.offset.mean()), 4).strip()}")
    return held


def lme4_note(spec: dict, glance: dict, conditional: bool) -> list[str]:
    """How a mixed model's numbers relate to those of lme4's default ``glmer`` fit of the same
    model (README: How it is built), sentence by sentence."""
    if is_linear_mixed(spec):
        # lme4 fits a linear mixed model with lmer, not glmer: what follows is about glmer
        return ["A linear mixed model: lme4 fits it with lmer; README (How it is built) says how glmflow's "
                "fit relates to lmer's default one."]  # fmt: skip
    nagq = int(glance.get("nAGQ", spec.get("nAGQ", 1)))
    if nagq == 1:
        fit = (
            "glmflow maximises lme4's Laplace approximation to its exact optimum (the conditional modes solved "
            "to 1e-10 or tighter at every step). "
            "lme4's default glmer stops short of it (its PIRLS tolerance, 1e-7 relative, and its optimizer's "
            "stopping rule): its -2 logLik can differ from this one by up to about 0.01 and its estimates "
            "in the fourth or fifth digit; with tight settings (tolPwrss = 1e-12) lme4 reaches the same optimum."
        )
    else:
        fit = (
            f"With nAGQ = {nagq}, adaptive Gauss-Hermite quadrature as glmer(nAGQ = {nagq}): lme4's default fit and "
            "glmflow reach the same optimum, to about 1e-6 of -2 logLik."
        )
    sentences = [fit]
    if nagq > 1 and (spec["family"] == "poisson" or spec.get("weights")):
        sentences.append(
            "lme4 reports this model's logLik relative to the saturated model (at nAGQ > 1, for Poisson and "
            "weighted binomial models); glmflow reports the log-likelihood itself."
        )
    sentences.append(
        "The standard errors come from an accurate Hessian of the deviance over (theta, beta): central "
        "differences with a step sized to each parameter's curvature, Richardson-extrapolated; they agree "
        "with glmmTMB's and with numDeriv's Hessian of lme4's objective. lme4's vcov() takes its Hessian "
        "by finite differences with a fixed step of 1e-4 (deriv12), so lme4's default SEs differ from "
        "these, typically by about 1% and up to 10% on parameters far from unit scale."
    )
    if conditional:
        sentences.append(
            "The column conditional SE is lme4's vcov(use.hessian = FALSE): the fixed effects' block at the "
            "conditional modes, which ignores their uncertainty in the variance parameters."
        )
    return sentences
