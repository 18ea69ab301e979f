"""Interpretation numbers, the by-hand log-likelihood and the LRT, against R."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_close

from glmflow.comparisons import compare_models
from glmflow.errors import GlmflowError
from glmflow.interpret import count_table, predictions
from glmflow.likelihood import likelihood_check, loglik_by_hand
from glmflow.models import fit_model

RTOL = 1e-6


def predict_configured(config, titanic, name):
    prediction = config["interpretation"]["predictions"][name]
    spec = config["models"][prediction["model"]]
    fit = fit_model(titanic, spec, prediction["model"])
    return predictions(titanic, spec, prediction["model"], fit.tidy(), fit.vcov_frame(), prediction["at"])


def test_intercept_probability(config, titanic, r_ref):
    table = predict_configured(config, titanic, "fare_intercept")
    assert_close(table["prob"], [r_ref["glm_fare"]["p_intercept"]], RTOL, "p at intercept")


def test_sex_probabilities(config, titanic, r_ref):
    table = predict_configured(config, titanic, "sex_probabilities")
    assert list(table["sex"]) == ["female", "male"]
    assert_close(table["prob"], [r_ref["glm_sex"]["p_female"], r_ref["glm_sex"]["p_male"]], RTOL, "p by sex")


def test_fare_predictions_on_link_scale(config, titanic, r_ref):
    table = predict_configured(config, titanic, "fare_values")
    reference = r_ref["glm_fare"]["augment"]
    assert list(table["fare"]) == reference["fare"]
    assert_close(table["link"], reference["fitted_link"], RTOL, "link")
    assert_close(table["prob"], 1 / (1 + np.exp(-np.array(reference["fitted_link"]))), RTOL, "prob")


@pytest.mark.parametrize(
    "name, model", [("male_fare200", "glm_sex_fare"), ("male_fare200_no_outlier", "glm_sex_fare_no_outlier")]
)
def test_male_at_200_with_and_without_outlier(config, titanic, r_ref, name, model):
    table = predict_configured(config, titanic, name)
    assert_close(table["prob"], [r_ref[model]["p_male_fare200"]], RTOL, name)


def test_all_effects_grid_as_the_effects_package(config, titanic, r_ref):
    table = predict_configured(config, titanic, "sex_fare_effects")
    reference = r_ref["effects_sex_fare"]
    assert list(table["sex"].astype(str)) == reference["sex"]
    assert list(table["fare"]) == reference["fare"]
    assert_close(table["prob"], reference["fit"], RTOL, "fit")
    assert_close(table["conf_low"], reference["lower"], RTOL, "lower")
    assert_close(table["conf_high"], reference["upper"], RTOL, "upper")
    assert_close(table["se_link"], reference["se_link"], RTOL, "se")


def test_non_focal_factor_is_averaged_and_numeric_held_at_its_mean(titanic):
    spec = {"formula": "survived ~ sex + age", "family": "binomial"}
    fit = fit_model(titanic, spec, "m")
    table = predictions(titanic, spec, "m", fit.tidy(), fit.vcov_frame(), {"age": [30]})
    # effects::Effect: sexmale at its share of the model frame, not one row per sex.
    used = titanic.dropna(subset=["age"])
    share = (used["sex"] == "male").mean()
    expected = fit.coef @ [1, share, 30]
    assert list(table.columns[:1]) == ["age"] and len(table) == 1
    assert_close(table["link"], [expected], 1e-12, "link")


def test_prediction_at_unknown_level_is_refused(titanic):
    spec = {"formula": "survived ~ sex", "family": "binomial"}
    fit = fit_model(titanic, spec, "m")
    with pytest.raises(GlmflowError, match="at.sex: no level 'other'"):
        predictions(titanic, spec, "m", fit.tidy(), fit.vcov_frame(), {"sex": ["other"]})


def test_count_table_is_the_chapters(titanic):
    table = count_table(titanic, ["sex", "survived"], "counts")
    assert table["n"].tolist() == [81, 233, 468, 109]  # the chapter's printed counts
    assert_close(table["p"], np.array([81, 233, 468, 109]) / 891, 1e-12, "p")
    assert_close(table["p(survived|sex)"], [81 / 314, 233 / 314, 468 / 577, 109 / 577], 1e-12, "p|sex")


@pytest.mark.parametrize("name", ["glm_fare", "glm_sex_fare_no_outlier", "lm_fare"])
def test_likelihood_by_hand_equals_model(config, titanic, r_ref, name):
    fit = fit_model(titanic, config["models"][name], name)
    check = likelihood_check(name, fit.family, fit.augment(titanic), "survived", fit.glance())
    assert check["ok"], check
    if "logLik" in r_ref[name]:
        assert_close(check["by_hand"]["logLik"], r_ref[name]["logLik"], RTOL, "logLik")


def test_likelihood_check_fails_on_wrong_fitted_values(config, titanic):
    fit = fit_model(titanic, config["models"]["glm_fare"], "glm_fare")
    augment = fit.augment(titanic)
    augment[".prob"] = augment[".prob"] * 0.999
    assert not likelihood_check("glm_fare", "binomial", augment, "survived", fit.glance())["ok"]


def test_poisson_and_gaussian_by_hand_against_scipy():
    y = np.array([0.0, 1, 3, 2])
    mu = np.array([0.5, 1.2, 2.5, 2.0])
    from scipy import stats

    assert np.allclose(loglik_by_hand("poisson", y, mu), stats.poisson.logpmf(y, mu))
    sigma = np.sqrt(np.mean((y - mu) ** 2))
    assert np.allclose(loglik_by_hand("gaussian", y, mu), stats.norm.logpdf(y, mu, sigma))


def lrt_of(titanic, compact_spec, augmented_spec):
    compact = fit_model(titanic, compact_spec, "compact")
    augmented = fit_model(titanic, augmented_spec, "augmented")
    spec = {"compact": "compact", "augmented": "augmented", "test": "LRT"}
    models = {"compact": compact_spec, "augmented": augmented_spec}
    glances = [compact.glance(), augmented.glance()]
    return compare_models(spec, models, glances, [compact.augment(titanic), augmented.augment(titanic)], titanic)


def test_chapter_lrt(config, titanic, r_ref):
    test = lrt_of(titanic, config["models"]["glm_fare"], config["models"]["glm_sex_plus_fare"])
    reference = r_ref["lrt_sex"]
    assert test["resid_df"] == reference["resid_df"] and test["df"] == reference["df"]
    assert_close(test["resid_dev"], reference["resid_dev"], RTOL, "resid dev")
    assert_close(test["deviance"], reference["deviance"], RTOL, "deviance")
    assert_close(test["p_value"], reference["p_value"], RTOL, "p")


@pytest.mark.parametrize(
    "key, family, compact, augmented",
    [
        ("lrt_class_given_age", "binomial", "survived ~ age", "survived ~ factor(pclass) + age"),
        ("lrt_lm_class", "gaussian", "fare ~ age", "fare ~ age + factor(pclass)"),
    ],
)
def test_own_lrts_match_r(titanic, extra_ref, key, family, compact, augmented):
    test = lrt_of(titanic, {"formula": compact, "family": family}, {"formula": augmented, "family": family})
    reference = extra_ref[key]
    assert test["resid_df"] == reference["resid_df"] and test["df"] == reference["df"]
    assert_close(test["resid_dev"], reference["resid_dev"], RTOL, "resid dev")
    assert_close(test["deviance"], reference["deviance"], RTOL, "deviance")
    assert_close(test["p_value"], reference["p_value"], RTOL, "p")


def test_lrt_refuses_models_fitted_to_different_rows(titanic):
    with pytest.raises(GlmflowError, match="not fitted to the same rows"):
        lrt_of(
            titanic,
            {"formula": "survived ~ fare", "family": "binomial"},
            {"formula": "survived ~ fare + age", "family": "binomial"},
        )


def test_likelihood_table_rows(titanic):
    from glmflow.likelihood import likelihood_table

    table = likelihood_table(np.array([1, 0]), np.array([0.3, 0.4]))
    assert table["p(Y = response)"].tolist() == [0.3, 0.6]
    assert isinstance(table, pd.DataFrame)
