"""A user's own factors, filters, grids and weights against R 4.2 (tests/r/user_factors.R ->
tests/r/user_factors_reference.json): the order of text levels (R's en_US.UTF-8 collation),
`levels:` as factor(x, levels = ...), filters on factors as subset(), nobs() with zero prior
weights, and effects::Effect's t intervals where the dispersion is estimated. Estimates,
SEs and intervals to 1e-6 relative, as every glm test; rows, labels and counts exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, assert_close

from glmflow.data import load_dataset, r_sorted
from glmflow.errors import GlmflowError
from glmflow.filters import evaluate_filter
from glmflow.interpret import predictions
from glmflow.models import fit_model
from glmflow.summaries import reference_levels_text, summary_text

RTOL = 1e-6
REFERENCE = json.loads((ROOT / "tests" / "r" / "user_factors_reference.json").read_text())
CSV = ROOT / "tests" / "r" / "user_factors_data.csv"


def load(levels=None):
    return load_dataset(CSV, factors=["race", "dose"], levels=levels)


def spec_of(entry: dict) -> dict:
    spec = {"dataset": "d", "formula": entry["formula"], "family": entry["family"]}
    for key in ("link", "weights"):
        if entry.get(key):
            spec[key] = entry[key]
    return spec


def test_text_levels_sort_as_r_in_en_us():
    collation = REFERENCE["collation"]
    assert r_sorted(collation["strings"]) == collation["sorted"]


@pytest.mark.parametrize("name", sorted(REFERENCE["filters"]))
def test_filters_keep_rs_rows(name):
    case = REFERENCE["filters"][name]
    mask = evaluate_filter(load(), case["filter"])
    assert (np.flatnonzero(mask.to_numpy()) + 1).tolist() == case["rows"]


def test_ordering_a_factor_is_refused_with_the_reason():
    with pytest.raises(GlmflowError, match="ordering is not meaningful for a factor"):
        evaluate_filter(load(), "race < 3")


@pytest.mark.parametrize("name", sorted(REFERENCE["models"]))
def test_models_of_own_factors_and_weights_match_r(name):
    entry = REFERENCE["models"][name]
    fit = fit_model(load(entry.get("levels")), spec_of(entry), name)
    assert fit.xlevels == entry["xlevels"]
    tidy = fit.tidy()
    assert list(tidy["term"]) == entry["term"]
    aliased = [e is None for e in entry["estimate"]]  # R's NA: a column aliased with earlier ones
    assert tidy["estimate"].isna().tolist() == aliased and tidy["std_error"].isna().tolist() == aliased
    kept = [not a for a in aliased]
    assert_close(tidy["estimate"][kept], [e for e in entry["estimate"] if e is not None], RTOL, f"{name} estimate")
    assert_close(tidy["std_error"][kept], [e for e in entry["std_error"] if e is not None], RTOL, f"{name} SE")
    if "summary" in entry:
        printed = summary_text(fit).partition("Warning message")[0]
        assert printed.rstrip("\n") == entry["summary"].rstrip("\n")
    glance = fit.glance()
    assert (glance["nobs"], glance["df_residual"]) == (entry["nobs"], entry["df_residual"])
    for key in ("logLik", "AIC", "BIC"):
        assert_close(glance[key], entry[key], RTOL, f"{name} {key}")


def test_the_reference_levels_are_printed():
    fit = fit_model(load({"race": [3, 1, 2]}), spec_of(REFERENCE["models"]["collated"]), "m")
    assert fit.glance()["reference_levels"] == {"dose": "<1l", "race": "3"}
    assert reference_levels_text(fit) == "Reference levels: dose = <1l, race = 3\n"


def test_levels_must_name_every_value():
    with pytest.raises(GlmflowError, match=r"datasets.d.levels.race .*not among the levels listed: '3'"):
        load_dataset(CSV, name="d", levels={"race": [1, 2]})
    with pytest.raises(GlmflowError, match="level '1' is listed twice"):
        load_dataset(CSV, name="d", levels={"race": [1, "1", 2, 3]})


@pytest.mark.parametrize("name", sorted(REFERENCE["grids"]))
def test_grid_intervals_are_effects(name):
    """effects::Effect: t quantiles on df.residual where the dispersion is estimated, normal
    ones for binomial and Poisson (the Poisson case guards the other side)."""
    entry = REFERENCE["grids"][name]
    data = load()
    spec = spec_of(entry)
    fit = fit_model(data, spec, name)
    assert fit.df_residual == entry["df_residual"]
    expected = entry["effect"]
    table = predictions(data, spec, name, fit.tidy(), fit.vcov_frame(), {"x": expected["grid"]["x"]})
    assert_close(table["link"], expected["link"], RTOL, "link")
    assert_close(table["se_link"], expected["se_link"], RTOL, "se")
    for ours, theirs in [("prob", "prob"), ("conf_low", "conf_low"), ("conf_high", "conf_high")]:
        assert_close(table[ours], expected[theirs], RTOL, ours)


def test_an_undeclared_text_predictor_is_rs_factor():
    """R's model frame makes a character column a factor, levels in R's collation."""
    entry = REFERENCE["models"]["collated"]
    fit = fit_model(load_dataset(CSV, factors=["race"]), spec_of(entry), "text")
    assert list(fit.tidy()["term"]) == entry["term"] and fit.xlevels == entry["xlevels"]
    assert_close(fit.tidy()["estimate"], entry["estimate"], RTOL, "estimate")
