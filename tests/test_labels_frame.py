"""R's coefficient labels and model frame, against R 4.2 (tests/r/labels_frame.R ->
tests/r/labels_frame_reference.json): ``names(coef(fit))`` character for character (interaction
variables in the formula's order, levels with brackets, colons, dots and spaces, function terms
as deparse() writes them, logical predictors as factors), unused factor levels dropped as
model.frame drops them (effects grids too), a factor left with one level refused, and the
likelihood check and Rao test of a yes/no factor response. Estimates and SEs to 1e-6 relative,
summary() character for character."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import ROOT, assert_close

from glmflow.comparisons import compare_models
from glmflow.data import load_dataset, r_label
from glmflow.errors import GlmflowError
from glmflow.interpret import predictions
from glmflow.io import read_csv, write_csv
from glmflow.likelihood import likelihood_check
from glmflow.models import fit_model
from glmflow.summaries import summary_text

RTOL = 1e-6
R_DIR = ROOT / "tests" / "r"
REFERENCE = json.loads((R_DIR / "labels_frame_reference.json").read_text())
MODELS = sorted(name for name, value in REFERENCE.items() if isinstance(value, dict) and "terms" in value)


@pytest.fixture(scope="module")
def datasets():
    warpbreaks = load_dataset(R_DIR / "warpbreaks.csv")
    for column, levels in REFERENCE["levels"].items():  # R's levels, L M H not sorted
        warpbreaks[column] = pd.Categorical(warpbreaks[column], categories=levels)
    return {
        "warpbreaks": warpbreaks,
        "labels_frame": load_dataset(R_DIR / "labels_frame_data.csv", factors=REFERENCE["factors"]),
    }


def spec_of(reference: dict) -> dict:
    spec = {"dataset": reference["dataset"], "formula": reference["formula"], "family": reference["family"]}
    if reference["filter"]:
        spec["filter"] = reference["filter"]
    return spec


@pytest.mark.parametrize("name", MODELS)
def test_labels_and_estimates_match_r(datasets, name):
    reference = REFERENCE[name]
    fit = fit_model(datasets[reference["dataset"]], spec_of(reference), name)
    tidy = fit.tidy()
    assert list(tidy["term"]) == reference["terms"]
    assert_close(tidy["estimate"], reference["estimate"], RTOL, f"{name} estimate")
    assert_close(tidy["std_error"], reference["std_error"], RTOL, f"{name} std_error")
    assert_close(fit.glance()["logLik"], reference["logLik"], RTOL, f"{name} logLik")
    assert fit.nobs == reference["nobs"]


@pytest.mark.parametrize("name", MODELS)
def test_summary_text_is_rs(datasets, name):
    """summary() character for character: the call's formula deparsed as R (``exp(z/7)``) and
    the coefficient table's row names."""
    reference = REFERENCE[name]
    fit = fit_model(datasets[reference["dataset"]], spec_of(reference), name)
    assert summary_text(fit).rstrip("\n") == reference["summary"].rstrip("\n")


def test_a_factor_left_with_one_level_is_refused_as_r_refuses_it(datasets):
    reference = REFERENCE["one_level"]
    assert "2 or more levels" in reference["error"]  # R's model.matrix stops
    with pytest.raises(GlmflowError, match=r"g has one level \(A\) in the rows used"):
        fit_model(datasets["labels_frame"], spec_of(reference), "one_level")


def test_lm_of_a_factor_response_is_refused(datasets):
    """R's lm fits a factor's codes (1, 2) with warnings that this is meaningless; glmflow refuses."""
    reference = REFERENCE["lm_factor_response"]
    assert any("factor response" in w for w in reference["warnings"])
    with pytest.raises(GlmflowError, match="the response 'answer' is a factor"):
        fit_model(datasets["labels_frame"], spec_of(reference), "lm_factor_response")


def test_effect_grid_has_only_the_used_levels(datasets):
    """effects::Effect over a factor whose level B no row of the model keeps: B is not on the grid."""
    reference, expected = REFERENCE["unused_by_filter"], REFERENCE["effect_unused_by_filter"]
    data, spec = datasets["labels_frame"], spec_of(reference)
    fit = fit_model(data, spec, "unused_by_filter")
    table = predictions(data, spec, "unused_by_filter", fit.tidy(), fit.vcov_frame(), {"g": []})
    assert list(table["g"].astype(str)) == expected["g"]
    assert_close(table["link"], expected["fit"], RTOL, "effect fit")
    assert_close(table["se_link"], expected["se"], RTOL, "effect se")


def test_effect_grid_of_a_logical_predictor(datasets):
    """effects::Effect crosses a logical predictor's two values, as a factor's levels."""
    expected = REFERENCE["effect_logical"]
    data = datasets["labels_frame"]
    spec = {"dataset": "labels_frame", "formula": expected["formula"], "family": "binomial"}
    fit = fit_model(data, spec, "effect_logical")
    table = predictions(data, spec, "effect_logical", fit.tidy(), fit.vcov_frame(), {"flag": [], "x": [2, 8]})
    assert [r_label(v) for v in table["flag"]] == expected["flag"]
    assert list(table["x"]) == expected["x"]
    assert_close(table["link"], expected["fit"], RTOL, "effect fit")
    assert_close(table["se_link"], expected["se"], RTOL, "effect se")


def test_likelihood_check_of_a_factor_response(datasets, tmp_path):
    """The likelihood check reads the model's augment file as the workflow writes it: the
    response as fitted (.y), not the column's yes/no text."""
    reference = REFERENCE["factor_response"]
    fit = fit_model(datasets["labels_frame"], spec_of(reference), "factor_response")
    path = tmp_path / "augment.csv"
    write_csv(path, fit.augment(datasets["labels_frame"]))
    augment = read_csv(path)
    assert set(augment["answer"]) == {"no", "yes"}
    check = likelihood_check("factor_response", "binomial", augment, "answer", fit.glance())
    assert check["ok"], check
    assert_close(check["by_hand"]["logLik"], reference["logLik"], RTOL, "logLik by hand")


def test_rao_test_of_a_factor_response(datasets, tmp_path):
    """anova(test = "Rao") from the augment files as written: the working residuals of a yes/no
    response are of its 0/1 coding."""
    expected = REFERENCE["rao_factor_response"]
    data = datasets["labels_frame"]
    specs = {f"m{i}": {"formula": f, "family": "binomial"} for i, f in enumerate(expected["formulas"])}
    fits = [fit_model(data, spec, name) for name, spec in specs.items()]
    augments = []
    for fit in fits:
        write_csv(tmp_path / f"{fit.name}.csv", fit.augment(data))
        augments.append(read_csv(tmp_path / f"{fit.name}.csv"))
    spec = {"models": list(specs), "test": "Rao"}
    table = compare_models(spec, specs, [f.glance() for f in fits], augments, data)
    assert_close(table["Rao"][1], expected["Rao"], RTOL, "Rao")
    assert_close(table["p_value"][1], expected["p_value"], RTOL, "p")
