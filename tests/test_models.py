"""lm and glm fits against R: the chapter's models and glmflow's own (tests/r/extra_models.R)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import assert_close

from glmflow.errors import GlmflowError
from glmflow.models import fit_model
from glmflow.summaries import summary_text

RTOL = 1e-6  # relative, for every number of the lm and glm outputs

CHAPTER_MODELS = ["lm_fare", "glm_fare", "glm_sex", "glm_sex_fare", "glm_sex_fare_no_outlier"]


def fit_configured(config, titanic, name, dataset_label="titanic"):
    spec = dict(config["models"][name], dataset=dataset_label)
    return fit_model(titanic, spec, name)


@pytest.mark.parametrize("name", CHAPTER_MODELS)
def test_chapter_model_tidy_matches_r(config, titanic, r_ref, name):
    tidy = fit_configured(config, titanic, name).tidy()
    reference = r_ref[name]["tidy"]
    assert list(tidy["term"]) == reference["term"]
    for column in ["estimate", "std_error", "statistic", "p_value"]:
        assert_close(tidy[column], reference[column], RTOL, f"{name} {column}")


@pytest.mark.parametrize("name", [m for m in CHAPTER_MODELS if m != "lm_fare"])
def test_chapter_glm_glance_matches_r(config, titanic, r_ref, name):
    fit = fit_configured(config, titanic, name)
    glance, reference = fit.glance(), r_ref[name]
    for key in ["logLik", "AIC", "BIC", "deviance", "null_deviance"]:
        assert_close(glance[key], reference[key], RTOL, f"{name} {key}")
    for key in ["nobs", "df_residual", "df_null"]:
        assert glance[key] == reference[key], key
    assert glance["iterations"] == reference["iter"]
    assert glance["converged"] is True
    quantiles = np.quantile(fit.deviance_residuals, [0, 0.25, 0.5, 0.75, 1])
    assert_close(quantiles, reference["deviance_residual_quantiles"], RTOL, f"{name} residuals")


def test_chapter_lm_statistics_match_r(config, titanic, r_ref):
    fit = fit_configured(config, titanic, "lm_fare")
    glance, reference = fit.glance(), r_ref["lm_fare"]
    for key in ["r_squared", "adj_r_squared", "sigma", "f_p_value"]:
        assert_close(glance[key], reference[key], RTOL, key)
    assert_close(glance["fstatistic"], reference["fstatistic"], RTOL, "fstatistic")
    assert glance["df_residual"] == reference["df_residual"]
    quantiles = np.quantile(fit.deviance_residuals, [0, 0.25, 0.5, 0.75, 1])
    assert_close(quantiles, reference["residual_quantiles"], RTOL, "lm residuals")


def test_augmented_model_of_the_lrt_matches_r(config, titanic, r_ref):
    tidy = fit_configured(config, titanic, "glm_sex_plus_fare").tidy()
    reference = r_ref["lrt_sex"]["augmented"]
    assert list(tidy["term"]) == reference["term"]
    for column in ["estimate", "std_error", "statistic", "p_value"]:
        assert_close(tidy[column], reference[column], RTOL, column)


EXTRA_MODELS = [
    "glm_class_age",
    "glm_class",
    "glm_age_only",
    "glm_quadratic",
    "glm_no_intercept",
    "lm_fare_age_class",
    "poisson_sib_sp",
]


@pytest.mark.parametrize("name", EXTRA_MODELS)
def test_own_models_match_r(titanic, extra_ref, name):
    reference = extra_ref[name]
    spec = {"dataset": "titanic", "formula": reference["formula"], "family": reference["family"]}
    fit = fit_model(titanic, spec, name)
    tidy, glance = fit.tidy(), fit.glance()
    assert list(tidy["term"]) == reference["tidy"]["term"]
    for column in ["estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]:
        assert_close(tidy[column], reference["tidy"][column], RTOL, f"{name} {column}")
    for key in ["logLik", "AIC", "BIC", "deviance"]:
        assert_close(glance[key], reference[key], RTOL, f"{name} {key}")
    assert glance["nobs"] == reference["nobs"]
    assert glance["n_dropped"] == reference["n_dropped"]
    assert glance["df_residual"] == reference["df_residual"]
    if reference["family"] == "gaussian":
        for key in ["r_squared", "adj_r_squared", "sigma"]:
            assert_close(glance[key], reference[key], RTOL, key)
        assert_close(glance["fstatistic"], reference["fstatistic"], RTOL, "fstatistic")
        assert_close(glance["dispersion"], reference["sigma"] ** 2, RTOL, "dispersion = sigma^2")
    else:
        assert_close(glance["null_deviance"], reference["null_deviance"], RTOL, "null deviance")
        assert glance["iterations"] == reference["iter"]


@pytest.mark.parametrize("name", EXTRA_MODELS)
def test_own_model_summary_text_is_rs(titanic, extra_ref, name):
    reference = extra_ref[name]
    spec = {"dataset": "titanic", "formula": reference["formula"], "family": reference["family"]}
    assert summary_text(fit_model(titanic, spec, name)).rstrip("\n") == reference["summary"].rstrip("\n")


def chapter_outputs(chapter_text: str) -> list[str]:
    """The knitted chapter's printed outputs (the ``## `` blocks), without the prefix."""
    blocks = re.findall(r"```\n((?:##.*\n)+)```", chapter_text)
    return ["\n".join(line[3:] for line in block.splitlines()) for block in blocks]


@pytest.mark.parametrize("name", ["lm_fare", "glm_fare", "glm_sex", "glm_sex_fare"])
def test_summary_text_is_the_chapters(config, titanic, chapter_text, name):
    ours = summary_text(fit_configured(config, titanic, name, dataset_label="df.titanic"))
    call = ours.split("\n\n")[1]
    printed = [block for block in chapter_outputs(chapter_text) if call in block]
    assert printed, f"no summary of {name} in the chapter"
    assert ours.strip("\n") == printed[0].strip("\n")


def test_missing_values_are_dropped_and_counted(titanic):
    fit = fit_model(titanic, {"formula": "survived ~ age", "family": "binomial"}, "m")
    assert fit.glance()["n_dropped"] == int(titanic["age"].isna().sum()) == 177
    assert fit.nobs == 714


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"formula": "survived ~ fares", "family": "binomial"}, "'fares', not a column"),
        ({"formula": "survived ~ fare", "family": "gamma"}, "family 'gamma'"),
        ({"formula": "fare ~ sex", "family": "binomial"}, "0/1 response"),
        ({"formula": "survived fare", "family": "binomial"}, "exactly one '~'"),
    ],
)
def test_bad_models_get_clear_errors(titanic, spec, message):
    with pytest.raises(GlmflowError, match=re.escape(message)) as error:
        fit_model(titanic, dict(spec, dataset="titanic"), "broken_model")
    assert "broken_model" in str(error.value)
