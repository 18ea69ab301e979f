"""Declared factors of any level type, and prediction grids as effects::Effect, against R
(tests/r/factors_effects.R -> tests/r/factors_effects_reference.json, R 4.2, effects 4.2.2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, assert_close

from glmflow.data import as_factor, load_dataset
from glmflow.datafile import read_dataset, write_dataset
from glmflow.errors import GlmflowError
from glmflow.glmm import fit_glmm
from glmflow.interpret import count_table, predictions
from glmflow.io import write_csv
from glmflow.models import fit_model

RTOL = 1e-6
REFERENCE = json.loads((ROOT / "tests" / "r" / "factors_effects_reference.json").read_text())


@pytest.fixture(scope="module")
def titanic_classes():
    return load_dataset(ROOT / "resources" / "titanic_train.csv", factors=["sex", "pclass"])


@pytest.fixture(scope="module")
def cbpp(tmp_path_factory):
    # Through the data file, as every job reads it.
    data = load_dataset(ROOT / "resources" / "cbpp.csv", factors=["period", "herd"])
    return write_dataset(data, tmp_path_factory.mktemp("cbpp") / "cbpp.parquet")


def assert_tidy(fit, reference, rename=None):
    tidy = fit.tidy()
    terms = [rename(t) if rename else t for t in reference["term"]]
    assert list(tidy["term"]) == terms
    for column in ["estimate", "std_error", "statistic", "p_value"]:
        assert_close(tidy[column], reference[column], RTOL, column)
    assert_close(fit.loglik, reference["logLik"], RTOL, "logLik")


def test_integer_coded_factor_is_fitted_as_factor(cbpp):
    assert list(cbpp["period"].cat.categories) == ["1", "2", "3", "4"]
    assert list(cbpp["herd"].cat.categories)[:3] == ["1", "2", "3"]  # numeric order, not text
    assert list(cbpp["herd"].cat.categories)[-1] == "15"
    fit = fit_model(cbpp, {"formula": "incidence ~ period", "family": "poisson"}, "cbpp")
    assert_tidy(fit, REFERENCE["cbpp_period"], lambda t: t.replace("factor(period)", "period"))


def test_declared_pclass_is_rs_factor(titanic_classes):
    fit = fit_model(titanic_classes, {"formula": "survived ~ sex + pclass", "family": "binomial"}, "m")
    assert_tidy(fit, REFERENCE["titanic_sex_class"], lambda t: t.replace("factor(pclass)", "pclass"))


def assert_effect(table, reference, rows=None):
    rows = list(range(len(reference["link"]))) if rows is None else rows
    for column in ["link", "se_link", "prob", "conf_low", "conf_high"]:
        assert_close(table[column], np.asarray(reference[column])[rows], RTOL, column)


def effect(data, formula, family, at):
    spec = {"formula": formula, "family": family}
    fit = fit_model(data, spec, "m")
    return predictions(data, spec, "m", fit.tidy(), fit.vcov_frame(), at)


def test_effect_holds_a_factor_at_its_proportions_and_a_numeric_at_its_mean(titanic_classes):
    table = effect(titanic_classes, "survived ~ sex + age + fare", "binomial", {"fare": [0, 50, 250]})
    assert list(table.columns[:1]) == ["fare"] and len(table) == 3  # one row per fare, sex averaged
    assert_effect(table, REFERENCE["effect_fare"])


def test_effect_of_a_factor_call_term(titanic_classes):
    data = titanic_classes.assign(pclass=titanic_classes["pclass"].astype(int))  # numbers, factor() in formula
    formula = "sib_sp ~ factor(pclass) + age"
    table = effect(data, formula, "poisson", {"age": [5, 30, 60]})
    assert_effect(table, REFERENCE["effect_factor_nonfocal"])
    assert "pclass" not in table  # held at its proportions, never at a mean fed into factor()
    # Levels named as numbers or as R's labels, a subset in the order given.
    table = effect(data, formula, "poisson", {"pclass": [1, "3"]})
    assert table["pclass"].tolist() == [1, 3]
    assert_effect(table, REFERENCE["effect_factor_call_focal"], rows=[0, 2])


def test_effect_with_an_interaction_and_a_transformed_numeric(titanic_classes):
    table = effect(titanic_classes, "survived ~ sex * fare + age + I(age^2)", "binomial", {"fare": [0, 100, 200]})
    assert_effect(table, REFERENCE["effect_interaction"])


def test_two_focal_predictors_cross_with_the_first_fastest(titanic_classes):
    table = effect(titanic_classes, "survived ~ sex * fare", "binomial", {"sex": [], "fare": [0, 250, 500]})
    reference = REFERENCE["effect_sex_fare"]
    assert table["sex"].astype(str).tolist() == reference["grid"]["sex"]
    assert table["fare"].tolist() == reference["grid"]["fare"]
    assert_effect(table, reference)


def test_integer_coded_declared_factor_in_at(cbpp):
    table = effect(cbpp, "incidence ~ period + size", "poisson", {"period": [1, "3"]})
    assert table["period"].astype(str).tolist() == ["1", "3"]
    assert_effect(table, REFERENCE["effect_cbpp"], rows=[0, 2])


@pytest.mark.parametrize(
    "at, message",
    [
        ({"pclass": [4]}, r"at\.pclass: no level 4 \(levels: 1, 2, 3\)"),
        ({"age": ["old"]}, r"at\.age: age is numeric; 'old' is not a number"),
        ({}, "name at least one predictor"),
        ({"fare": [1]}, r"'fare' not among the model's predictors"),
    ],
)
def test_bad_at_values_are_refused_by_key(titanic_classes, at, message):
    with pytest.raises(GlmflowError, match=message):
        effect(titanic_classes, "survived ~ pclass + age", "binomial", at)


# --- every dtype through the data file that every job reads ------------------------------


def test_every_dtype_survives_the_data_file(tmp_path):
    csv = tmp_path / "types.csv"
    csv.write_text(
        "int_factor,text_factor,bool_factor,int_na,text_na,flag,flag_na,real\n"
        "10,b,TRUE,1,x,TRUE,TRUE,1.5\n"
        "2,a,FALSE,NA,NA,FALSE,NA,NA\n"
        "2,,TRUE,3,,T,FALSE,2\n"
    )
    data = load_dataset(csv, factors=["int_factor", "text_factor", "bool_factor"])
    write_dataset(data, tmp_path / "types.parquet")
    back = read_dataset(tmp_path / "types.parquet")
    pd.testing.assert_frame_equal(back, data, check_exact=True)
    assert list(back["int_factor"].cat.categories) == ["2", "10"]
    assert list(back["text_factor"].cat.categories) == ["", "a", "b"]  # R keeps "" as a level
    assert list(back["bool_factor"].cat.categories) == ["FALSE", "TRUE"]
    assert str(back["int_na"].dtype) == "Int64" and back["int_na"].isna().tolist() == [False, True, False]
    assert back["text_na"].isna().tolist() == [False, True, False] and back["text_na"][2] == ""
    assert back["flag"].dtype == bool and str(back["flag_na"].dtype) == "boolean"
    assert back["real"].dtype == "float64"


def test_as_factor_labels_numbers_as_r():
    factor = as_factor(pd.Series([2.5, 10.0, 2.5, None]))
    assert list(factor.cat.categories) == ["2.5", "10"] and factor.isna().tolist() == [False, False, False, True]


def test_mixed_model_with_a_declared_integer_factor(cbpp):
    reference = REFERENCE["glmm_cbpp_period"]
    spec = {"formula": "incidence ~ period + (1 | herd)", "family": "poisson", "nAGQ": 10}
    fit = fit_glmm(cbpp, spec, "cbpp")
    assert fit.terms == reference["term"]
    # lme4 (bobyqa, nAGQ 10) against glmflow's exact optimum: parameters agree to 1e-5.
    assert_close(fit.beta, reference["estimate"], 1e-5, "fixed effects")
    assert_close(fit.theta[0], reference["theta"], 1e-5, "theta")
    assert_close(fit.tidy()["std_error"], reference["std_error"], 1e-4, "SEs")


def test_factor_labels_survive_the_csv_results(cbpp, tmp_path):
    """Count tables and augment files are CSV: the factor's labels come back as the same text."""
    table = count_table(cbpp, ["period"], "counts")
    write_csv(tmp_path / "counts.csv", table)
    back = pd.read_csv(tmp_path / "counts.csv")
    assert back["period"].astype(str).tolist() == ["1", "2", "3", "4"] and back["n"].tolist() == table["n"].tolist()
    fit = fit_model(cbpp, {"formula": "incidence ~ period", "family": "poisson"}, "m")
    write_csv(tmp_path / "augment.csv", fit.augment(cbpp))
    augment = pd.read_csv(tmp_path / "augment.csv")
    assert augment["period"].astype(str).tolist() == cbpp["period"].astype(str).tolist()
    assert augment[".row"].tolist() == list(range(1, len(cbpp) + 1))
