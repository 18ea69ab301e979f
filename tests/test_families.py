"""Every family x link of R's glm, and prior weights (zero weights too), against R 4.2
(tests/r/glm_families.R -> tests/r/glm_families_reference.json): tidy, logLik/AIC/BIC,
deviances, df, iterations and dispersion to 1e-6 relative, summary() character for character."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import ROOT, assert_close

from glmflow.comparisons import compare_models
from glmflow.data import load_dataset
from glmflow.errors import GlmflowError
from glmflow.families import FAMILIES, family
from glmflow.interpret import predictions
from glmflow.likelihood import likelihood_check
from glmflow.models import fit_model
from glmflow.summaries import summary_text

RTOL = 1e-6
REFERENCE = json.loads((ROOT / "tests" / "r" / "glm_families_reference.json").read_text())
MODELS = sorted(n for n in REFERENCE if n != "r_version" and not n.startswith(("predict_", "anova_")))
ANOVAS = sorted(n for n in REFERENCE if n.startswith("anova_"))


@pytest.fixture(scope="module")
def datasets():
    resources = ROOT / "resources"
    return {
        "titanic": load_dataset(resources / "titanic_train.csv", factors=["sex"]),
        "bdf": load_dataset(resources / "bdf.csv"),
        "cbpp": load_dataset(resources / "cbpp.csv", factors=["period"]),
        "proportions": load_dataset(ROOT / "tests" / "r" / "binomial_weights_data.csv"),
        "halving": load_dataset(ROOT / "tests" / "r" / "poisson_halving_data.csv"),
    }


def fit_reference(datasets, name):
    reference = REFERENCE[name]
    spec = {"dataset": reference["dataset"], "formula": reference["formula"], "family": reference["family"]}
    if reference["link"]:
        spec["link"] = reference["link"]
    if reference["weights"]:
        spec["weights"] = reference["weights"]
    if reference["offset"]:
        spec["offset"] = reference["offset"]
    return fit_model(datasets[reference["dataset"]], spec, name), reference


def close_or_both_nan(actual, expected, what):
    if expected is None:
        assert math.isnan(actual), f"{what}: {actual} where R has NA"
    else:
        assert_close(actual, expected, RTOL, what)


@pytest.mark.parametrize("name", MODELS)
def test_family_and_link_match_r(datasets, name):
    fit, reference = fit_reference(datasets, name)
    tidy = fit.tidy()
    assert list(tidy["term"]) == reference["tidy"]["term"]
    for column in ["estimate", "std_error", "statistic", "p_value"]:
        assert_close(tidy[column], reference["tidy"][column], RTOL, f"{name} {column}")
    glance = fit.glance()
    for key in ["logLik", "AIC", "BIC"]:
        close_or_both_nan(glance[key], reference[key], f"{name} {key}")
    for key in ["deviance", "null_deviance", "dispersion"]:
        assert_close(glance[key], reference[key], RTOL, f"{name} {key}")
    assert (glance["df_residual"], glance["df_null"]) == (reference["df_residual"], reference["df_null"])
    assert glance["iterations"] == reference["iter"]


@pytest.mark.parametrize("name", MODELS)
def test_summary_text_is_rs(datasets, name):
    fit, reference = fit_reference(datasets, name)
    ours = summary_text(fit)
    printed, _, warnings = ours.partition("Warning message")
    assert printed.rstrip("\n") == reference["summary"].rstrip("\n")
    r_warnings = list(reference["warnings"])
    for warning in r_warnings:  # R's own warnings are printed under ours, as R's console does
        assert warning in warnings, warning
    # and none that R lacks: the same warnings, as often and in the same order, and no warning
    # section under a summary where R printed none
    assert fit.warnings == r_warnings
    assert ("Warning message" in ours) == bool(r_warnings)


def test_every_allowed_link_is_checked_against_r():
    checked = {(REFERENCE[n]["family"], REFERENCE[n]["link"] or family(REFERENCE[n]["family"]).link.name)
               for n in MODELS}  # fmt: skip
    offered = {(name, link) for name, cls in FAMILIES.items() for link in cls.links}
    # the canonical binomial/poisson links and gaussian identity are the chapter's models (test_models.py)
    already = {("binomial", "logit"), ("poisson", "log"), ("gaussian", "identity")}
    # the quasi families use the same link objects as binomial and poisson: checked there
    quasi_links = {(n, link) for n, link in offered if n.startswith("quasi") and link != family(n).link.name}
    assert offered - checked - already - quasi_links == set()


@pytest.mark.parametrize("name", MODELS)
def test_likelihood_by_hand_agrees_with_r(datasets, name):
    """The by-hand check (densities written out, not the fitter) on every family x link."""
    fit, reference = fit_reference(datasets, name)
    check = likelihood_check(name, fit.family, fit.augment(datasets[reference["dataset"]]), fit.design.response,
                             fit.glance())  # fmt: skip
    assert check["ok"]
    if reference["logLik"] is not None:
        assert_close(check["by_hand"]["logLik"], reference["logLik"], 1e-9, "by hand")
    else:
        assert not check["applicable"]


@pytest.mark.parametrize("name", ["offset_in_formula", "offset_in_config"])
def test_predictions_hold_the_offset_at_its_mean(datasets, name):
    """As effects::Effect (offset = mean), in both spellings: R's predict() at size 10 and 20,
    with that offset log(size) replaced by the mean of log(size) over the rows used; the SE is
    predict()'s (an offset has none). A column only in the offset is no grid predictor."""
    fit, reference = fit_reference(datasets, name)
    expected = REFERENCE[f"predict_{name}"]
    spec = {"formula": reference["formula"], "family": "poisson"}
    if reference["offset"]:
        spec["offset"] = reference["offset"]
    cbpp = datasets["cbpp"]
    table = predictions(cbpp, spec, name, fit.tidy(), fit.vcov_frame(), {"period": [1, 3]})
    assert table["period"].astype(str).tolist() == expected["period"][:2]
    held = np.log(cbpp["size"]).mean()
    at_size_10 = np.asarray(expected["link"][:2]) - np.log(expected["size"][:2]) + held
    assert_close(table["link"], at_size_10, RTOL, "link")
    assert_close(table["se_link"], expected["se_link"][:2], RTOL, "se")
    with pytest.raises(GlmflowError, match=r"'size' is only in the offset log\(size\)"):
        predictions(cbpp, spec, name, fit.tidy(), fit.vcov_frame(), {"period": [1, 3], "size": [10, 20]})


def none_or_close(actual, expected, rtol, what):
    assert [a is None for a in actual] == [e is None for e in expected], what
    assert_close([a for a in actual if a is not None], [e for e in expected if e is not None], rtol, what)


@pytest.mark.parametrize("name", ANOVAS)
def test_anova_of_several_models_matches_r(datasets, name):
    reference = REFERENCE[name]
    data = datasets[reference["dataset"]]
    names = [f"m{i}" for i in range(len(reference["formulas"]))]
    specs = {
        n: {"formula": f, "family": reference["family"]} for n, f in zip(names, reference["formulas"], strict=True)
    }
    fits = [fit_model(data, specs[n], n) for n in names]
    spec = {"models": names, "test": reference["test"]}
    table = compare_models(spec, specs, [f.glance() for f in fits], [f.augment(data) for f in fits], data)
    assert table["resid_df"] == reference["resid_df"] and table["df"][1:] == reference["df"][1:]
    assert_close(table["resid_dev"], reference["resid_dev"], RTOL, "resid dev")
    none_or_close(table["deviance"], reference["deviance"], RTOL, "deviance")
    none_or_close(table["p_value"], reference["p_value"], RTOL, "p")
    if reference["test"] in ("F", "Rao"):
        none_or_close(table[reference["test"]], reference[reference["test"]], RTOL, reference["test"])
    if name == "anova_binomial_f":
        assert table["warnings"] == ["using F test with a 'binomial' family is inappropriate"]


@pytest.mark.parametrize("name", ["binomial_probit", "binomial_cloglog", "gamma_log", "inverse_gaussian"])
def test_predictions_on_every_link(datasets, name):
    """Link-scale fit and SE, the inverse link, and the Wald interval transformed, as R."""
    fit, reference = fit_reference(datasets, name)
    expected = REFERENCE[f"predict_{name}"]
    spec = {key: reference[key] for key in ["formula", "family"]} | (
        {"link": reference["link"]} if reference["link"] else {}
    )
    at = {"sex": [], "fare": [10, 100]} if reference["dataset"] == "titanic" else {"ses": [10, 30], "iq_verb": [8, 14]}
    data = datasets[reference["dataset"]]
    table = predictions(data, spec, name, fit.tidy(), fit.vcov_frame(), at)
    assert_close(table["link"], expected["link"], RTOL, "link")
    assert_close(table["se_link"], expected["se_link"], RTOL, "se")
    for ours, theirs in [("prob", "response"), ("conf_low", "conf_low"), ("conf_high", "conf_high")]:
        assert_close(table[ours], expected[theirs], RTOL, ours)


def test_no_valid_start_is_rs_error_with_the_model(datasets):
    """R: glm(survived ~ fare, binomial(link = "log")) stops with this error (no start values)."""
    spec = {"formula": "survived ~ fare", "family": "binomial", "link": "log"}
    with pytest.raises(
        GlmflowError, match=r"model 'm' \(binomial, log link\): R's glm.fit stops here too: no valid set"
    ):
        fit_model(datasets["titanic"], spec, "m")


AUGMENT = json.loads((ROOT / "tests" / "r" / "augment_reference.json").read_text())


@pytest.mark.parametrize("name", sorted(n for n in AUGMENT if n != "r_version"))
def test_augment_weights_and_response_are_rs(datasets, name):
    """augment's .working_weight is R's fit$weights, .weights fit$prior.weights and .y fit$y
    (tests/r/augment.R); where .weights or .y is left out, R's are all 1 or the data's column."""
    reference = AUGMENT[name]
    spec = {"dataset": reference["dataset"], "formula": reference["formula"], "family": reference["family"],
            "link": reference["link"]}  # fmt: skip
    if reference["weights"]:
        spec["weights"] = reference["weights"]
    data = datasets[reference["dataset"]]
    frame = fit_model(data, spec, name).augment(data)
    assert frame[".row"].tolist() == reference["row"]
    expected = {c: np.array(reference[c], dtype=float) for c in ["working_weight", "prior_weight", "y"]}
    # IRLS's last weights depend on the last iterate: R's and ours agree to the fit's precision
    assert_close(frame[".working_weight"], expected["working_weight"], 1e-9, f"{name} .working_weight")
    weights = frame[".weights"] if ".weights" in frame else np.ones(len(frame))
    assert np.array_equal(weights, expected["prior_weight"]), f"{name} .weights"
    response = frame[".y"] if ".y" in frame else frame[spec["formula"].split(" ~")[0]].astype(float)
    assert np.array_equal(response, expected["y"]), f"{name} .y"
