"""The general mixed-model engine where a plain search goes wrong, against lme4
(tests/r/glmm_engine.R, tests/r/glmm_engine_reference.json): lme4's two-stage optimisation
(theta first, beta profiled) on a random slope of a large covariate, the exact optimum below
lme4's default fits (its PIRLS tolerance), standard errors on parameters of large scale, and
a likelihood with no maximum."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT
from test_glmm import saturated_loglik

from glmflow.data import load_dataset
from glmflow.errors import GlmflowError
from glmflow.glmm.fit import fit_glmm
from glmflow.glmm_likelihood import glmm_likelihood_check

REFERENCE = json.loads((ROOT / "tests" / "r" / "glmm_engine_reference.json").read_text())
FITS = ["slope_scale", "cloglog", "inverse_gaussian", "crossed", "gamma_identity"]
# lme4's default PIRLS tolerance puts its objective off the Laplace value by more than its optimiser's error
PIRLS_TOLERANCE_CASES = ["cloglog", "inverse_gaussian", "crossed"]
DEVIANCE_RTOL = 1e-8  # bobyqa with rhoend 1e-10 on lme4's objective with tolPwrss 1e-12
# How far bobyqa's stopping leaves the estimates: relative, plus a thousandth of the SE (near
# a boundary, grouseticks' slope SD at 0, the deviance is flat to 1e-8 along 1e-4 of an SE)
BETA_RTOL, BETA_SE_FRACTION = 1e-4, 1e-3
SE_RTOL = 1e-3  # lme4's deriv12 Hessian (step 1e-4, tolPwrss 1e-12) against glmflow's
RICHARDSON_RTOL = 1e-4  # numDeriv's Hessian of lme4's objective against glmflow's
# At a boundary (grouseticks' slope SD at 0) lme4's deriv12, numDeriv's Richardson Hessian of
# lme4's objective and glmflow's differences of its gradient give SEs up to 0.8% apart
BOUNDARY_SE_RTOL = {"slope_scale": 1e-2}


def numbers(values):
    return np.array([float(v) for v in np.atleast_1d(values)])


def assert_close(actual, expected, rtol: float, what: str, atol: float = 0.0) -> None:
    error = np.abs(np.asarray(actual) - expected) - rtol * np.abs(expected) - atol
    assert error.max() <= 0, f"{what}: ours {actual} vs lme4 {expected}"


def fit(name: str):
    case = REFERENCE[name]
    factors = list(np.atleast_1d(case["factors"]))
    data = load_dataset(ROOT / "tests" / "r" / "differential" / f"{case['data']}.csv", name=case["data"],
                        factors=factors)  # fmt: skip
    spec = {"formula": case["formula"], "family": case["family"], "link": case["link"], "dataset": case["data"]}
    spec.update({key: case[key] for key in ("filter", "nAGQ") if key in case})
    return fit_glmm(data, spec, name)


@pytest.mark.parametrize("name", FITS)
def test_reaches_lme4s_exact_optimum(name):
    tight = REFERENCE[name]["tight"]
    result = fit(name)
    assert result.terms == list(np.atleast_1d(tight["term"]))
    expected = float(tight["deviance"])
    assert result.deviance <= expected + DEVIANCE_RTOL * abs(expected), (result.deviance, expected)
    se = result.tidy()["std_error"].to_numpy()
    assert np.all(np.isfinite(se))
    assert_close(result.beta, numbers(tight["beta"]), BETA_RTOL, "fixef", atol=BETA_SE_FRACTION * se)
    if "se_richardson" in tight:  # lme4's vcov() has its Hessian to PIRLS's rounding here
        assert_close(se, numbers(tight["se_richardson"]), RICHARDSON_RTOL, "standard errors")
    else:
        assert_close(se, numbers(tight["se"]), BOUNDARY_SE_RTOL.get(name, SE_RTOL), "standard errors")


@pytest.mark.parametrize("name", PIRLS_TOLERANCE_CASES)
def test_lme4s_default_fit_is_below_the_optimum_by_its_pirls_tolerance(name):
    """lme4's default fit reports a -2 logLik up to 1e-3 below the exact optimum (its PIRLS
    stops at a relative change of 1e-7): glmflow's is the exact one, so it lies above the
    default one, by no more than 1e-6 relative (the differential test's allowance)."""
    tight, default = (float(REFERENCE[name][key]["deviance"]) for key in ("tight", "default"))
    assert default < tight
    assert fit(name).deviance - default <= 1e-6 * abs(default)


def test_a_response_constant_within_groups_has_no_optimum():
    case = REFERENCE["exact_fit"]
    values = numbers(case["devfun"])
    assert np.all(np.diff(values) < 0)  # lme4's own objective keeps falling past its fit
    with pytest.raises(GlmflowError, match=r"model 'exact_fit'.*constant within every level of 'stratum'"):
        fit("exact_fit")


AGQ = [name for name in REFERENCE if name.startswith("agq_")]


@pytest.mark.parametrize("name", AGQ)
def test_quadrature_with_a_non_canonical_link_matches_lme4(name):
    """nAGQ > 1 for binomial probit and cloglog (with trials) and Poisson sqrt, as lme4's
    glmerAGQ: the nodes spread by the Fisher-weight conditional SDs. lme4's value leaves out the
    saturated log-likelihood; glmflow's is -2 logLik itself."""
    tight = REFERENCE[name]["tight"]
    result = fit(name)
    assert result.nAGQ == REFERENCE[name]["nAGQ"] and result.terms == list(np.atleast_1d(tight["term"]))
    saturated = saturated_loglik(result.family, result.design.y, result.glmm_design.prior)
    expected = float(tight["deviance"])
    assert result.deviance + 2 * saturated <= expected + DEVIANCE_RTOL * abs(expected)
    assert result.deviance + 2 * saturated >= expected - 1e-6 * abs(expected)  # the same objective
    se = result.tidy()["std_error"].to_numpy()
    assert_close(result.beta, numbers(tight["beta"]), BETA_RTOL, "fixef", atol=BETA_SE_FRACTION * se)
    assert_close(result.theta, numbers(tight["theta"]), BETA_RTOL, "theta", atol=1e-6)
    assert_close(se, numbers(tight["se"]), SE_RTOL, "standard errors")
    # the likelihood check's independent recomputation (its own modes and quadrature)
    check = glmm_likelihood_check(name, result.glmm_design, result.family_object, result.nAGQ, result.theta,
                                  result.beta, result.loglik)  # fmt: skip
    assert check["ok"], check


def test_a_boundary_optimum_lme4_stops_short_of_is_reached():
    """co2's gaussian(log) model with conc^2: lme4 stops with an error; its own objective is
    lowest at theta = 0 with the GLM's estimates, where glmflow converges (lme4's gradient
    check, scaled as lme4's, passes; finite SEs), flagged singular. The Hessian's probes are in
    eta units: a step of 1e-4 in conc^2's coefficient moves eta by 100, outside PIRLS's reach."""
    case = REFERENCE["boundary_optimum"]
    assert "Downdated VtV is not positive definite" in case["lme4_error"]
    devfun = numbers(case["devfun"])
    assert devfun[0] < devfun[1] < devfun[2]  # theta = 0 is the minimum along theta
    result = fit("boundary_optimum")
    assert result.theta[0] == 0.0 and result.singular
    se = result.tidy()["std_error"].to_numpy()
    assert np.all(np.isfinite(se))
    # glm's own stopping rule (a relative deviance change of 1e-8) leaves its estimates 1e-4 SE off
    assert_close(result.beta, numbers(case["glm_beta"]), 1e-6, "fixef", atol=1e-4 * se)
    assert abs(result.deviance - devfun[0]) <= 1e-9 * abs(devfun[0])
    check = result.convergence_check()
    assert check["check_passed"] and result.converged, check


def test_singular_fit_standard_errors_are_its_objectives_curvature():
    """airquality's singular gaussian(log) model: lme4's vcov() (deriv12, step 1e-4) is 2% off
    the curvature of lme4's own objective, which steps of 1e-5 and 1e-6 agree on (to 2e-3, the
    rounding at 1e-6); glmflow's curvature-fitted steps give that curvature."""
    case = REFERENCE["singular_correlated"]
    fine, finer = numbers(case["se_delta_1e5"]), numbers(case["se_delta_1e6"])
    assert_close(fine, finer, 2e-3, "lme4's objective's SEs at two steps")  # PIRLS's rounding at 1e-6
    vcov_se = numbers(case["tight"]["se"])
    assert np.all(np.abs(vcov_se - fine) > 0.02 * fine)  # lme4's vcov() off by 2%
    result = fit("singular_correlated")
    assert result.singular and result.deviance <= float(case["tight"]["deviance"]) * (1 + DEVIANCE_RTOL)
    assert_close(result.tidy()["std_error"].to_numpy(), fine, 1e-3, "standard errors")


def test_a_nested_factor_with_one_row_per_level_has_no_optimum():
    """(1 | sample/plate) on penicillin: plate:sample has one row per level, which its random
    intercept fits exactly; lme4 stops in PIRLS, glmflow says why, naming the model."""
    assert "pwrssUpdate did not converge" in REFERENCE["exact_fit_nested"]["lme4_error"]
    with pytest.raises(GlmflowError, match=r"model 'exact_fit_nested'.*within every level of 'plate:sample'"):
        fit("exact_fit_nested")
