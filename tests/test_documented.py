"""Documented features that had no test of their own, against R (tests/r/documented.R): the
formula functions in a GLM, anova's F-test warning for Poisson, ``clean_names: false``, an
``a:b`` grouping factor written directly and a mixed model with an offset (lme4)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, assert_close
from test_glmm_general import GAPS, own_gaps

from glmflow.comparisons import compare_models
from glmflow.data import load_dataset
from glmflow.glmm import fit_glmm
from glmflow.models import fit_model

REFERENCE = json.loads((ROOT / "tests" / "r" / "documented_reference.json").read_text())
RTOL = 1e-6  # glm's numbers, as tests/test_families.py


def dataset(name):
    factors = {"bdf": [], "cbpp": ["herd", "period"], "contraception": ["district", "livch", "urban", "use"]}
    filter_ = "repeatgr != 2" if name == "bdf" else None
    return load_dataset(ROOT / "resources" / f"{name}.csv", factors=factors[name], filter_=filter_)


def test_formula_functions_in_a_glm_equal_rs():
    reference = REFERENCE["functions"]
    spec = {"dataset": "bdf", "formula": reference["formula"], "family": reference["family"]}
    fit = fit_model(dataset("bdf"), spec, "functions")
    tidy = fit.tidy()
    assert list(tidy["term"]) == reference["term"]  # R's labels: exp(iq_verb/10), log10(arit_post + 1)
    assert_close(tidy["estimate"], np.array(reference["estimate"], dtype=float), RTOL, "estimates")
    assert_close(tidy["std_error"], np.array(reference["std_error"], dtype=float), RTOL, "SEs")
    assert_close(fit.glance()["deviance"], float(reference["deviance"]), RTOL, "deviance")
    assert fit.glance()["iterations"] == reference["iter"]


def test_an_f_test_on_poisson_fits_warns_as_r():
    reference = REFERENCE["anova_poisson_f"]
    data = dataset("cbpp")
    specs = {f"m{i}": {"formula": f, "family": "poisson"} for i, f in enumerate(reference["formulas"])}
    fits = [fit_model(data, spec, name) for name, spec in specs.items()]
    table = compare_models({"models": list(specs), "test": "F"}, specs, [f.glance() for f in fits],
                           [f.augment(data) for f in fits], data)  # fmt: skip
    assert table["warnings"] == reference["warnings"]
    assert_close(table["F"][1], float(reference["F"]), RTOL, "F")
    assert_close(table["p_value"][1], float(reference["p_value"]), RTOL, "p")


def test_clean_names_false_keeps_the_files_names():
    path = ROOT / "resources" / "titanic_train.csv"
    raw = load_dataset(path, clean_names_=False)
    assert list(raw.columns) == list(pd.read_csv(path, nrows=0).columns)  # PassengerId, Survived, ...
    cleaned = load_dataset(path)
    assert "passenger_id" in cleaned.columns and "PassengerId" not in cleaned.columns
    by_raw = fit_model(raw, {"formula": "Survived ~ Fare", "family": "binomial"}, "raw").tidy()
    by_clean = fit_model(cleaned, {"formula": "survived ~ fare", "family": "binomial"}, "clean").tidy()
    assert list(by_raw["term"]) == ["(Intercept)", "Fare"]
    assert np.array_equal(by_raw["estimate"], by_clean["estimate"])


# Measured gaps to tight lme4 (as tests/test_glmm_general.py's OWN_TOLERANCES), tolerance 1.5x.
MIXED_TOLERANCES = {
    "interaction_grouping": (1e-6, 9e-6, 2e-6, 9e-7, 9e-7),  # 6.2e-07 5.5e-06 1.3e-06 5.7e-07 5.7e-07
    "offset_glmm": (2e-7, 3e-6, 2e-7, 9e-8, 5e-8),  # 6.8e-08 1.7e-06 6.8e-08 5.5e-08 2.8e-08
}


@pytest.mark.parametrize("name", ["interaction_grouping", "offset_glmm"])
def test_mixed_models_equal_tight_lme4(name):
    reference = REFERENCE[name]
    spec = {"dataset": reference["data"], "formula": reference["formula"], "family": reference["family"]}
    fit = fit_glmm(dataset(reference["data"]), spec, name)
    r_deviance = float(reference["deviance"])
    assert r_deviance - 1e-4 <= fit.deviance <= r_deviance + 1e-6, fit.deviance - r_deviance
    assert fit.terms == reference["term"] and fit.glmm_design.n_groups == reference["n_groups"]
    gaps, tolerances = own_gaps(fit, reference), dict(zip(GAPS, MIXED_TOLERANCES[name], strict=True))
    assert all(gaps[kind] <= tolerances[kind] for kind in GAPS), {k: (gaps[k], tolerances[k]) for k in GAPS}
