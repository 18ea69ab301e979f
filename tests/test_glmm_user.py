"""Mixed models users get wrong silently: aliased fixed-effect columns, dropped as lme4 drops
them (with its message), and separation, warned of as for GLMs; checked against lme4
(tests/r/glmm_user.R, tests/r/glmm_user_reference.json)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import ROOT, assert_close

from glmflow.data import load_dataset
from glmflow.glmm import build_glmm_design
from glmflow.glmm.fit import fit_glmm
from glmflow.models import fit_model
from glmflow.rank import r_qr_rank
from glmflow.summaries import summary_text

REFERENCE = json.loads((ROOT / "tests" / "r" / "glmm_user_reference.json").read_text())
CASES = [name for name in REFERENCE if name not in ("notes", "qr", "workflow")]
ALIASED = [name for name in CASES if REFERENCE[name]["dropped"]]


def numbers(values):
    return np.array([float(v) for v in np.atleast_1d(values)])


@pytest.fixture(scope="module")
def data():
    return load_dataset(ROOT / "tests" / "r" / "glmm_user_data.csv", factors=["g", "arm", "site", "sep_g"])


def rows(data, name):
    count = REFERENCE[name]["rows"]
    return data if count is None else data.iloc[:count]


def spec(name):
    reference = REFERENCE[name]
    return {"dataset": "glmm_user", "formula": reference["formula"], "family": reference["family"],
            "link": reference["link"]}  # fmt: skip


@pytest.fixture(scope="module")
def fits(data):
    return {name: fit_glmm(rows(data, name), spec(name), name) for name in CASES}


def test_the_cases_cover_what_they_claim():
    assert {REFERENCE[name]["family"] for name in ALIASED} == {"binomial", "poisson"}
    assert sorted(len(REFERENCE[name]["dropped"]) for name in ALIASED) == [1, 1, 2]
    # glmer's default control reaches the tight fit's optimum, short of it by up to 4e-4 in -2 logLik
    # (its known early stop), and drops the same columns: the tight fit is lme4's answer
    for name in ALIASED:
        reference = REFERENCE[name]
        assert float(reference["default"]["deviance"]) == pytest.approx(float(reference["deviance"]), abs=1e-3)
        assert_close(numbers(reference["default"]["beta"]), numbers(reference["beta"]), 1e-2, f"{name} default")
        assert reference["default"]["messages"] == reference["messages"]


@pytest.mark.parametrize("name", ALIASED)
def test_the_design_drops_the_columns_lme4_drops(data, name):
    reference = REFERENCE[name]
    gd = build_glmm_design(reference["formula"], rows(data, name), name)
    assert gd.design.terms == reference["term"]
    assert gd.dropped == list(np.atleast_1d(reference["dropped"]))
    assert gd.design.X.shape[1] == len(reference["term"])
    assert r_qr_rank(gd.design.X)[0] == len(reference["term"])
    assert gd.messages == reference["messages"]  # lme4's message, word for word


@pytest.mark.parametrize("name", ALIASED)
def test_aliased_fits_equal_tight_lme4(fits, name):
    fit, reference = fits[name], REFERENCE[name]
    r_deviance = float(reference["deviance"])
    assert fit.deviance <= r_deviance + 1e-6, fit.deviance - r_deviance
    assert_close(fit.loglik, float(reference["logLik"]), 1e-6, f"{name} logLik")
    assert fit.terms == reference["term"] == list(fit.tidy()["term"])
    assert_close(fit.beta, numbers(reference["beta"]), 1e-5, f"{name} estimates")
    assert_close(fit.theta, numbers(reference["theta"]), 1e-5, f"{name} theta")
    # lme4's vcov is from its finite-difference Hessian: SEs to 1e-3 relative, and the
    # correlations (not the covariances elementwise: some are 1e-5 against variances of 2e-2)
    # to 1e-3 absolute
    k = len(fit.terms)
    r_vcov = numbers(reference["vcov"]).reshape(k, k, order="F")
    r_se = np.sqrt(np.diag(r_vcov))
    assert_close(np.sqrt(np.diag(fit.vcov)), numbers(reference["se"]), 1e-3, f"{name} SEs")
    assert np.max(np.abs(fit.correlation() - r_vcov / np.outer(r_se, r_se))) <= 1e-3
    assert fit.n_params == reference["df"] and fit.nobs == reference["nobs"]
    assert fit.convergence_check()["check_passed"] and not fit.singular


@pytest.mark.parametrize("name", ALIASED)
def test_the_message_reaches_every_output(fits, name):
    fit, message = fits[name], REFERENCE[name]["messages"][0]
    assert fit.warnings[0] == message
    glance = fit.glance()
    assert glance["warnings"][0] == message
    assert glance["dropped_columns"] == list(np.atleast_1d(REFERENCE[name]["dropped"]))
    assert message in summary_text(fit)
    assert fit.vcov.shape == (len(fit.terms),) * 2


def test_separation_is_warned_of_as_for_a_glm(data, fits):
    fit, reference = fits["separation"], REFERENCE["separation"]
    glm_spec = {"dataset": "glmm_user", "formula": "sep_y ~ sep_x", "family": "binomial"}
    glm = fit_model(rows(data, "separation"), glm_spec, "separation_glm")
    expected = [w for w in glm.warnings if w.startswith("separation:")]
    assert len(expected) == 1
    assert [w for w in fit.warnings if w.startswith("separation:")] == expected
    assert fit.glance()["separation"] == glm.glance()["separation"]
    assert fit.glance()["separation"]["sep_x"] == "Inf"
    assert expected[0] in summary_text(fit)
    # lme4 says nothing of separation: its PIRLS gives up on these data (tight and default control)
    assert reference["error"] == "pwrssUpdate did not converge in (maxit) iterations"
    assert reference["messages"] == []


def test_binomial_fits_without_separation_say_so(fits):
    assert fits["binomial_duplicate"].glance()["separation"] == {}
    assert "separation" not in fits["poisson_combination"].glance()
    assert not any(w.startswith("separation:") for w in fits["binomial_duplicate"].warnings)


@pytest.mark.parametrize("name", list(REFERENCE["qr"]))
def test_rank_and_pivot_equal_rs_qr(name):
    reference = REFERENCE["qr"][name]
    X = numbers(reference["X"]).reshape(reference["nrow"], -1, order="F")
    rank, pivot = r_qr_rank(X, 1e-7)
    assert rank == reference["rank"]
    assert list(pivot + 1) == reference["pivot"]


def _layout(text):
    """A summary with every number replaced by #, and the numbers."""
    pattern = r"-?\d+\.?\d*(?:e[-+]\d+)?"
    return re.sub(pattern, "#", text), [float(v) for v in re.findall(pattern, text)]


@pytest.mark.parametrize("name", ALIASED)
def test_summary_ends_as_lme4s(fits, name):
    """From the fixed effects to the end, "fit warnings:" and lme4's message included: layout
    to the character, numbers to 1e-3 (lme4's finite-difference SEs)."""
    ours = summary_text(fits[name]).rstrip("\n").splitlines()
    theirs = REFERENCE[name]["summary"].splitlines()
    ours = ours[ours.index("Fixed effects:") :]
    theirs = theirs[theirs.index("Fixed effects:") :]
    assert theirs[-2:] == ["fit warnings:", REFERENCE[name]["messages"][0]]
    for line, target in zip(ours, theirs, strict=True):
        layout, values = _layout(line)
        target_layout, target_values = _layout(target)
        assert layout == target_layout, (line, target)
        assert np.allclose(values, target_values, rtol=1e-3, atol=1e-6), (line, target)
