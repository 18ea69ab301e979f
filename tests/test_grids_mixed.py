"""Prediction grids as effects::Effect where the formula calls a function, the model has an
offset, a predictor is text, or the model is mixed; and lme4's anova.merMod of mixed models.
Against R: tests/r/grids_mixed.R -> tests/r/grids_mixed_reference.json (R 4.2, effects 4.2.2,
lme4 1.1.31)."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, assert_close

from glmflow.comparisons import compare_models, mixed_anova_table
from glmflow.config import check_config
from glmflow.data import load_dataset
from glmflow.datafile import write_dataset
from glmflow.errors import GlmflowError
from glmflow.glmm import fit_glmm
from glmflow.interpret import predictions
from glmflow.models import fit_model
from glmflow.report import lrt_table

REFERENCE = json.loads((ROOT / "tests" / "r" / "grids_mixed_reference.json").read_text())
# A grid from the same coefficients and covariance is arithmetic: R's numbers to 1e-6.
RTOL = 1e-6
COLUMNS = ["link", "se_link", "prob", "conf_low", "conf_high"]


@pytest.fixture(scope="module")
def cbpp(tmp_path_factory):
    # Through the data file, as every job reads it.
    data = load_dataset(ROOT / "resources" / "cbpp.csv", factors=["period", "herd"])
    return write_dataset(data, tmp_path_factory.mktemp("cbpp") / "cbpp.parquet")


@pytest.fixture(scope="module")
def ticks():
    return load_dataset(ROOT / "resources" / "grouseticks.csv", factors=["year", "brood", "location"])


@pytest.fixture(scope="module")
def contraception(tmp_path_factory):
    # livch ("0", "1", "2", "3+") and urban ("N", "Y") are left as text, as R's read.csv leaves them.
    data = load_dataset(ROOT / "resources" / "contraception.csv", factors=["use"])
    return write_dataset(data, tmp_path_factory.mktemp("contraception") / "contraception.parquet")


def assert_effect(table: pd.DataFrame, reference: dict, rtol: float = RTOL, rows: list | None = None) -> None:
    """``rows``: the rows of R's grid to compare (effects takes every level of a factor)."""
    rows = list(range(len(reference["link"]))) if rows is None else rows
    for variable, values in reference["grid"].items():
        values = np.atleast_1d(values)[rows].tolist()
        shown = table[variable].astype(str).tolist() if isinstance(values[0], str) else table[variable].tolist()
        assert shown == values, variable
    for column in COLUMNS:
        assert_close(table[column], np.asarray(reference[column])[rows], rtol, column)


def glm_effect(data, at, **spec) -> pd.DataFrame:
    fit = fit_model(data, spec, "m")
    return predictions(data, spec, "m", fit.tidy(), fit.vcov_frame(), at)


# --- The formula's functions ------------------------------------------------------------------


@pytest.mark.parametrize("function", ["sqrt", "log1p", "log2", "log10"])
def test_a_focal_predictor_goes_through_the_formulas_function(cbpp, function):
    at = {"size": REFERENCE[f"function_{function}"]["grid"]["size"]}
    table = glm_effect(cbpp, at, formula=f"incidence ~ period + {function}(size)", family="poisson")
    assert_effect(table, REFERENCE[f"function_{function}"])


@pytest.mark.parametrize("function", ["exp", "abs"])
def test_exp_and_abs_of_a_focal_predictor(ticks, function):
    at = {"height_z": REFERENCE[f"function_{function}"]["grid"]["height_z"]}
    table = glm_effect(ticks, at, formula=f"ticks ~ year + {function}(height_z)", family="poisson")
    assert_effect(table, REFERENCE[f"function_{function}"])


def test_a_held_predictor_goes_through_the_function_at_its_mean(cbpp):
    table = glm_effect(cbpp, {"period": []}, formula="incidence ~ period + sqrt(size)", family="poisson")
    assert_effect(table, REFERENCE["function_nonfocal"])


def test_a_value_outside_the_functions_domain_is_refused(cbpp):
    with pytest.raises(GlmflowError, match="outside the domain"):
        glm_effect(cbpp, {"size": [-4]}, formula="incidence ~ period + sqrt(size)", family="poisson")


# --- Offsets: held at their mean, in both spellings -------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"formula": "incidence ~ period", "offset": "log(size)"},
        # effects 4.2.2 fails on this spelling of a one-term model: R's numbers are the
        # offset argument's, the same fit.
        {"formula": "incidence ~ period + offset(log(size))"},
    ],
    ids=["offset_key", "offset_in_formula"],
)
def test_an_offset_is_held_at_its_mean(cbpp, spec):
    table = glm_effect(cbpp, {"period": []}, family="poisson", **spec)
    assert_effect(table, REFERENCE["offset_argument_period"])


@pytest.mark.parametrize(
    "spec, reference",
    [
        ({"formula": "incidence ~ period + size", "offset": "log(size)"}, "offset_argument_size"),
        ({"formula": "incidence ~ period + size + offset(log(size))"}, "offset_formula_size"),
    ],
    ids=["offset_key", "offset_in_formula"],
)
def test_an_offset_stays_at_its_mean_when_its_column_is_focal(cbpp, spec, reference):
    table = glm_effect(cbpp, {"size": [5, 20]}, family="poisson", **spec)
    assert_effect(table, REFERENCE[reference])


@pytest.mark.parametrize(
    "spec",
    [{"formula": "incidence ~ period", "offset": "log(size)"}, {"formula": "incidence ~ period + offset(log(size))"}],
    ids=["offset_key", "offset_in_formula"],
)
def test_a_column_only_in_the_offset_is_not_a_grid_predictor(cbpp, spec):
    with pytest.raises(GlmflowError, match="'size' is only in the offset"):
        glm_effect(cbpp, {"size": [5, 20]}, family="poisson", **spec)


# --- Text predictors: factors, as in R's model frame -------------------------------------------


@pytest.mark.parametrize(
    "reference, at, rows",
    [
        ("text_focal", {"livch": []}, None),
        ("text_nonfocal", {"age": [-10, 0, 10]}, None),
        # effects crosses every level of urban (fastest) and livch; glmflow the levels named
        ("text_two_focal", {"urban": [], "livch": ["0", "3+"]}, [0, 1, 6, 7]),
    ],  # fmt: skip
)
def test_text_predictors_are_factors_in_a_grid(contraception, reference, at, rows):
    assert contraception["livch"].dtype != "category" and contraception["urban"].dtype != "category"
    table = glm_effect(contraception, at, formula="use ~ livch + age + urban", family="binomial")
    assert_effect(table, REFERENCE[reference], rows=rows)


# --- Mixed models: the fixed part, with vcov(fit) ----------------------------------------------

CBPP_BINOMIAL = {"formula": "cbind(incidence, size - incidence) ~ period + (1 | herd)", "family": "binomial"}
TICKS_POISSON = {"formula": "ticks ~ year + height_z + (1 | brood)", "family": "poisson"}
CBPP_OFFSET = {"formula": "incidence ~ period + (1 | herd)", "family": "poisson", "offset": "log(size)"}
CONTRACEPTION = {"formula": "use ~ age + livch + urban + (1 | district)", "family": "binomial"}
# model: (data, spec, lme4's fixed effects, [(effects' grid, at)])
MIXED = {
    "cbpp": ("cbpp", CBPP_BINOMIAL, "glmm_cbpp_fixed", [("glmm_cbpp_period", {"period": []})]),
    "ticks": (
        "ticks",
        TICKS_POISSON,
        "glmm_ticks_fixed",
        [("glmm_ticks_height", {"height_z": [-1.5, -0.2, 0.4, 1.6]}), ("glmm_ticks_year", {"year": []})],
    ),
    "offset": ("cbpp", CBPP_OFFSET, "glmm_offset_fixed", [("glmm_offset_period", {"period": []})]),
    "text": ("contraception", CONTRACEPTION, "glmm_text_fixed", [("glmm_text_livch", {"livch": []})]),
    # rows without their grouping factor: out of the fit, in the means effects holds predictors at
    "missing_group": ("ticks_na", TICKS_POISSON, "glmm_na_group_fixed", [("glmm_na_group_year", {"year": []})]),
}

# glmflow's Laplace fits reach the exact optimum of the Laplace deviance; lme4's is that of a
# slightly different function: at lme4's own estimates (cbpp binomial, bobyqa with maxfun
# 1e5, converged: gradients about 1e-6) lme4 reports -2 logLik 184.053133, the exact Laplace
# deviance there is 184.052573 with gradients about 0.01, and its optimum 184.052564. So the
# gap is lme4's accuracy, not its convergence. Measured gaps, glmflow against lme4 (asserted
# first below): fixed effects at most 5.7e-4 apart (cbpp binomial), 5.7e-4 (cbpp with offset),
# 7.0e-5 (contraception), 2.2e-6 (grouseticks, 1.9e-6 without 3 broods); Hessian SEs
# 1.28%, 1.38%, 0.12%, 0.003% (0.0025%) apart (relative). Tolerances: those gaps rounded up
# to 1, 2 or 5 times a power of ten. A grid's link is x'beta with sum|x| <= 3.6 here (the
# intercept, one level or proportions summing to 1, |height_z| <= 1.6): its tolerance is 4
# times the fixed effects'; its SE gets the SEs' relative tolerance. The grid's arithmetic
# itself is checked to 1e-6 on lme4's own coefficients (the test before).
LME4_GAP = {
    "cbpp": (1e-3, 2e-2),
    "ticks": (5e-6, 5e-5),
    "offset": (1e-3, 2e-2),
    "text": (1e-4, 2e-3),
    "missing_group": (5e-6, 5e-5),
}


@pytest.fixture(scope="module")
def mixed_data(cbpp, ticks, contraception):
    ticks_na = ticks.copy()
    ticks_na.loc[[0, 49, 99], "brood"] = None  # R's rows 1, 50, 100
    return {"cbpp": cbpp, "ticks": ticks, "ticks_na": ticks_na, "contraception": contraception}


@pytest.mark.parametrize("model", list(MIXED))
def test_mixed_grid_from_lme4s_coefficients_is_effects(mixed_data, model):
    """The grid's arithmetic on lme4's own fixef and vcov: which rows, what is held where,
    the offset's mean, normal quantiles."""
    data_name, spec, fixed, grids = MIXED[model]
    reference = REFERENCE[fixed]
    tidy = pd.DataFrame({"term": reference["term"], "estimate": reference["estimate"]})
    vcov = pd.DataFrame(reference["vcov"], index=reference["term"], columns=reference["term"])
    for name, at in grids:
        table = predictions(mixed_data[data_name], spec, "m", tidy, vcov, at)
        assert_effect(table, REFERENCE[name])


def test_mixed_grid_with_a_dispersion_uses_t_quantiles_on_the_fixed_parts_df(bdf):
    """Gamma(log): effects' interval uses qt on the fixed-part refit's df.residual (lme4's own
    fixef and vcov; lme4 does not converge on this model, which does not matter here)."""
    spec = {"formula": "lang_post ~ ses + iq_verb + (1 | school_nr)", "family": "Gamma", "link": "log"}
    reference = REFERENCE["glmm_gamma_fixed"]
    tidy = pd.DataFrame({"term": reference["term"], "estimate": reference["estimate"]})
    vcov = pd.DataFrame(reference["vcov"], index=reference["term"], columns=reference["term"])
    assert_effect(predictions(bdf, spec, "m", tidy, vcov, {"ses": [10, 30, 50]}), REFERENCE["glmm_gamma_ses"])


@pytest.mark.parametrize("model", list(MIXED))
def test_mixed_grid_from_glmflows_fit_is_effects_within_lme4s_accuracy(mixed_data, model):
    data_name, spec, fixed, grids = MIXED[model]
    reference, (beta_tol, se_rtol) = REFERENCE[fixed], LME4_GAP[model]
    fit = fit_glmm(mixed_data[data_name], spec, "m")
    assert fit.terms == reference["term"]
    assert np.max(np.abs(fit.beta - reference["estimate"])) <= beta_tol
    assert_close(np.sqrt(np.diag(fit.vcov)), reference["std_error"], se_rtol, "SEs")
    for name, at in grids:
        table = predictions(mixed_data[data_name], spec, "m", fit.tidy(), fit.vcov_frame(), at)
        assert np.max(np.abs(table["link"] - REFERENCE[name]["link"])) <= 4 * beta_tol, name
        assert_close(table["se_link"], REFERENCE[name]["se_link"], se_rtol, f"{name} se_link")


def test_a_grouping_factor_is_not_a_grid_predictor(cbpp):
    _, spec, fixed, _ = MIXED["cbpp"]
    reference = REFERENCE[fixed]
    tidy = pd.DataFrame({"term": reference["term"], "estimate": reference["estimate"]})
    vcov = pd.DataFrame(reference["vcov"], index=reference["term"], columns=reference["term"])
    with pytest.raises(GlmflowError, match=r"'herd' not among the model's predictors \['period'\]"):
        predictions(cbpp, spec, "m", tidy, vcov, {"herd": []})


# --- anova() of mixed models: lme4's anova.merMod ----------------------------------------------

ANOVA = {
    "anova_cbpp": ("cbpp", {
        "null": {"formula": "cbind(incidence, size - incidence) ~ 1 + (1 | herd)", "family": "binomial"},
        "period": CBPP_BINOMIAL}),  # fmt: skip
    "anova_glm_glmer": ("cbpp", {
        "glm": {"formula": "cbind(incidence, size - incidence) ~ period", "family": "binomial"},
        "period": CBPP_BINOMIAL}),  # fmt: skip
    "anova_ticks": ("ticks", {
        "year": {"formula": "ticks ~ year + (1 | brood)", "family": "poisson"},
        "height": TICKS_POISSON,
        "location": {"formula": "ticks ~ year + height_z + (1 | brood) + (1 | location)", "family": "poisson"}}),
}  # fmt: skip
# The logLik gap between glmflow's exact Laplace optimum and lme4's (see LME4_GAP): at most
# 2.9e-4 (the cbpp fits; glmflow's is the higher), 2e-6 for grouseticks; tolerances rounded
# up, and doubled for a difference of two logLiks (Chisq) and for -2 logLik.
ANOVA_LOGLIK_TOL = {"anova_cbpp": 5e-4, "anova_glm_glmer": 5e-4, "anova_ticks": 1e-5}


def fitted(data, name, spec):
    return fit_glmm(data, spec, name) if "|" in spec["formula"] else fit_model(data, spec, name)


@pytest.mark.parametrize("comparison", list(ANOVA))
def test_anova_of_mixed_models_is_lme4s(mixed_data, comparison):
    data_name, specs = ANOVA[comparison]
    data = mixed_data[data_name]
    fits = {name: fitted(data, name, spec) for name, spec in specs.items()}
    reference, tol = REFERENCE[comparison], ANOVA_LOGLIK_TOL[comparison]
    # listed largest first: lme4 orders the models by npar itself
    names = list(reversed(specs))
    table = compare_models({"models": names}, specs, [fits[n].glance() for n in names],
                           [fits[n].augment(data) for n in names], data)  # fmt: skip
    assert table["models"] == reference["models"]
    assert table["npar"] == reference["npar"] and table["Df"][1:] == reference["Df"][1:]
    assert table["Chisq"][0] is None and table["p_value"][0] is None and table["Df"][0] is None
    for column, scale in [("logLik", 1), ("AIC", 2), ("BIC", 2), ("deviance", 2), ("Chisq", 4)]:
        worst = np.max(np.abs(np.array(table[column][1 if column == "Chisq" else 0 :], dtype=float)
                              - np.array(reference[column][1 if column == "Chisq" else 0 :], dtype=float)))  # fmt: skip
        assert worst <= scale * tol, (column, worst)
    # lme4's arithmetic (Chisq, Df, p) exactly, on lme4's own logLiks
    glances = [{"df": npar, "logLik": loglik, "AIC": 0.0, "BIC": 0.0, "nAGQ": 1}
               for npar, loglik in zip(reference["npar"], reference["logLik"], strict=True)]  # fmt: skip
    rows = fits[names[0]].augment(data)
    exact = mixed_anova_table([(name, glance, rows) for name, glance in zip(reference["models"], glances, strict=True)])
    assert_close(exact["Chisq"][1:], reference["Chisq"][1:], 1e-9, "Chisq")
    assert_close(exact["p_value"][1:], reference["p_value"][1:], 1e-9, "p")


def test_report_prints_the_anova_of_mixed_models_as_lme4(cbpp):
    """The report's table has print(anova(...))'s columns and digits (lme4's own numbers in)."""
    reference = REFERENCE["anova_ticks"]
    rows = pd.DataFrame({".row": [1, 2, 3]})
    table = mixed_anova_table([
        (name, {"df": npar, "logLik": loglik, "AIC": aic, "BIC": bic, "nAGQ": 1}, rows)
        for name, npar, loglik, aic, bic in zip(reference["models"], reference["npar"], reference["logLik"],
                                                reference["AIC"], reference["BIC"], strict=True)
    ])  # fmt: skip
    page = html.unescape(lrt_table(table, "anova"))
    headers = re.findall(r"<th[^>]*>(.*?)</th>", page)  # a text column's cells are class="text"
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)]
    printed = REFERENCE["anova_ticks_print"]
    header = next(i for i, line in enumerate(printed) if line.split()[:1] == ["npar"])
    assert headers == ["model", *printed[header].split()]
    for line, cells in zip(printed[header + 1 :], [r for r in rows if r], strict=True):
        # R's significance stars are not in the report
        assert [c for c in cells if c] == line.replace("***", "").split()


def test_anova_refuses_what_lme4_refuses(cbpp):
    glm = {"formula": "cbind(incidence, size - incidence) ~ period", "family": "binomial"}
    agq = {**CBPP_BINOMIAL, "nAGQ": 5}
    fits = [fit_model(cbpp, glm, "glm"), fit_glmm(cbpp, agq, "agq")]
    glances, augments = [f.glance() for f in fits], [f.augment(cbpp) for f in fits]
    message = REFERENCE["refused_agq_glm"]  # lme4's words, quoted in glmflow's
    with pytest.raises(GlmflowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compare_models({"models": ["glm", "agq"]}, {"glm": glm, "agq": agq}, glances, augments, cbpp)
    subset, null = cbpp[cbpp["size"] > 5], ANOVA["anova_cbpp"][1]["null"]
    smaller = fit_glmm(subset, null, "subset")
    with pytest.raises(GlmflowError, match=REFERENCE["refused_rows"]):
        compare_models({"models": ["subset", "glm"]}, {"subset": null, "glm": glm},
                       [smaller.glance(), glances[0]], [smaller.augment(subset), augments[0]], cbpp)  # fmt: skip


# --- The config check --------------------------------------------------------------------------


def mixed_config() -> dict:
    return {
        "datasets": {
            "cbpp": {"path": "resources/cbpp.csv", "factors": ["period", "herd"]},
            "contraception": {"path": "resources/contraception.csv", "factors": ["use"]},
        },
        "models": {
            "glm": {"dataset": "cbpp", "formula": "cbind(incidence, size - incidence) ~ period", "family": "binomial"},
            "glmm": {"dataset": "cbpp", "formula": CBPP_BINOMIAL["formula"], "family": "binomial"},
            "offset": {"dataset": "cbpp", "formula": "incidence ~ period + (1 | herd)", "family": "poisson",
                       "offset": "log(size)"},  # fmt: skip
            "text": {"dataset": "contraception", "formula": "use ~ age + livch + urban", "family": "binomial"},
        },
        "comparisons": {"random_herd": {"models": ["glm", "glmm"], "test": "LRT"}},
        "interpretation": {"predictions": {
            "mixed": {"model": "glmm", "at": {"period": ["1", "4"]}},
            "offset": {"model": "offset", "at": {"period": []}},
            "text": {"model": "text", "at": {"livch": ["3+"], "urban": []}},
        }},
    }  # fmt: skip


def test_config_accepts_mixed_grids_and_comparisons_and_text_in_grids():
    check_config(mixed_config(), ROOT)


def test_config_refuses_what_a_mixed_grid_or_anova_cannot_do():
    config = mixed_config()
    config["models"]["agq"] = {**config["models"]["glmm"], "nAGQ": 5}
    config["comparisons"] = {
        "f_test": {"models": ["glm", "glmm"], "test": "F"},
        "quadrature": {"compact": "glm", "augmented": "agq"},
    }
    predictions_ = config["interpretation"]["predictions"]
    predictions_["herd"] = {"model": "glmm", "at": {"herd": []}}
    predictions_["size"] = {"model": "offset", "at": {"size": [10]}}
    with pytest.raises(GlmflowError) as error:
        check_config(yaml.safe_load(yaml.safe_dump(config)), ROOT)
    message = str(error.value)
    assert "comparisons.f_test.test: 'F': anova of mixed models (lme4's anova.merMod) is a likelihood-ratio" in message
    assert "comparisons.quadrature: 'agq' (nAGQ > 1) and the glm fits 'glm' cannot be compared" in message
    assert "interpretation.predictions.herd.at: 'herd' is not a predictor of model 'glmm'" in message
    assert "interpretation.predictions.size.at: 'size' is only in the offset of model 'offset'" in message


def test_config_checks_a_text_predictors_levels_in_a_grid():
    """The data-dependent checks run once the rest is right: a text column's levels as R's
    factor() makes them."""
    config = mixed_config()
    config["interpretation"]["predictions"]["text"]["at"]["livch"] = ["4"]
    with pytest.raises(
        GlmflowError, match=r"interpretation.predictions.text.at.livch: no level '4' \(levels: 0, 1, 2, 3\+\)"
    ):
        check_config(config, ROOT)
