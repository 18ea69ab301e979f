"""The differential test: 400 configurations drawn at random (tests/differential.py, seeded)
over data sets that ship with R, each checked by glmflow's config checks and fitted, against
R's answers (tests/r/differential.R -> tests/r/differential_reference.json, and
tests/r/differential_lmm_reference.json for the linear mixed models, compared in check_lmm).

Every case R fits must pass the config checks and match R: a GLM's terms, aliased
coefficients, nobs and df exactly, estimates, SEs, deviance and logLik/AIC/BIC to 1e-6
relative (as every glm test); an effects grid to 1e-6; an anova table to 1e-6. A mixed model
must reach lme4's deviance or below (lme4 with bobyqa at 1e5 evaluations stops within 1e-6
of the optimum) and its estimates agree to the precision lme4's optimum carries (GLMM_BETA).
Every case R refuses must be refused with a GlmflowError naming the model."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import snakemake.utils
from conftest import ROOT
from differential import CASES, DATA, generate, generate_lmm
from snakemake.utils import validate
from test_glmm import saturated_loglik

from glmflow.comparisons import compare_models
from glmflow.config import check_config, check_schema
from glmflow.data import clean_names, load_dataset
from glmflow.errors import GlmflowError
from glmflow.glmm.fit import fit_glmm
from glmflow.glmm.lmm import LmmCriterion
from glmflow.glmm_likelihood import glmm_likelihood_check, lmm_likelihood_check
from glmflow.interpret import predictions
from glmflow.models import fit_model

ALL = json.loads(CASES.read_text())
REFERENCE = json.loads((ROOT / "tests" / "r" / "differential_reference.json").read_text())
REFERENCE |= json.loads((ROOT / "tests" / "r" / "differential_lmm_reference.json").read_text())
LMM_KINDS = ("lmm", "lmm_anova")
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
RTOL = 1e-6
# Mixed models, -2 logLik absolute: lme4's value at its own estimates (PIRLS to 1e-10) and the
# Laplace value recomputed there by glmflow.glmm_likelihood differ by up to 1.4e-4 (measured:
# binomial cloglog; 4e-6 to 5e-5 for the others), so gaps below 2e-4 are one optimum. Such a
# gap moves the estimates by about sqrt(2 * 2e-4) = 2% of an SE along the flattest direction.
SAME_OPTIMUM = 2e-4
LOGLIK_AT_LME4 = 1e-4
BETA_IN_SE = 0.02
GLMM_SE = 1e-3  # against an accurate Hessian at lme4's optimum, which is within SAME_OPTIMUM of ours
# a singular fit: lme4 stops at a variance of 1e-4 to 1e-3 where glmflow's is 0, and the fixed
# effects' SEs grow with it (measured: 1.0e-3 on case176)
GLMM_SE_SINGULAR = 5e-3


@pytest.fixture(scope="module", autouse=True)
def schema_parsed_once():
    """Snakemake's ``validate`` parses the schema on each call with PyYAML's pure-Python loader:
    here it gets a copy of one parse, and validates and fills defaults as in the workflow."""
    # a parse took 20 ms, and 800 of them were half of this file's time
    load, parsed = snakemake.utils._load_configfile, {}

    def load_once(source, filetype="Config"):
        key = (str(source), filetype)
        if key not in parsed:
            parsed[key] = load(source, filetype=filetype)
        return copy.deepcopy(parsed[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(snakemake.utils, "_load_configfile", load_once)
        yield


def test_the_cases_are_the_generators():
    """The committed cases are what the seeded generator draws (so R's answers are for them)."""
    assert generate() + generate_lmm() == ALL


def test_the_data_need_no_cleaning():
    for path in sorted(DATA.glob("*.csv")):
        header = path.read_text().split("\n", 1)[0].replace('"', "").split(",")
        assert clean_names(header) == header, path.name


def config_of(case: dict, models: dict) -> dict:
    dataset = {"path": str((DATA / f"{case['dataset']}.csv").relative_to(ROOT)), "factors": case["factors"]}
    if case.get("levels"):
        dataset["levels"] = case["levels"]
    config = {"datasets": {case["dataset"]: dataset}, "models": models}
    if case["kind"] == "grid":
        config["interpretation"] = {"predictions": {"grid": {"model": "m", "at": case["at"]}}}
    if case["kind"] == "anova":
        config["comparisons"] = {"chain": {"models": list(models), "test": case["test"]}}
    if case["kind"] == "lmm_anova":
        config["comparisons"] = {"chain": {"models": list(models)}}
    return config


def models_of(case: dict) -> dict:
    model = {"dataset": case["dataset"], **case["model"]}
    if case["kind"] not in ("anova", "lmm_anova"):
        return {"m": model}
    return {f"m{i}": {**model, "formula": formula} for i, formula in enumerate(case["formulas"])}


def run_case(case: dict):
    """Check the case's config as the workflow does, then fit it: what glmflow answers."""
    models = models_of(case)
    config = config_of(case, models)
    check_schema(config, SCHEMA)
    validate(config, str(SCHEMA))  # the defaults, as the Snakefile fills them
    check_config(config, ROOT)
    data = load_dataset(DATA / f"{case['dataset']}.csv", name=case["dataset"], factors=case["factors"],
                        levels=case.get("levels"))  # fmt: skip
    if case["kind"] in ("glmm", "lmm"):
        return fit_glmm(data, models["m"], "m"), data
    fit = fit_glmm if case["kind"] == "lmm_anova" else fit_model
    fits = {name: fit(data, spec, name) for name, spec in models.items()}
    if case["kind"] in ("anova", "lmm_anova"):
        spec = config["comparisons"]["chain"]
        table = compare_models(spec, models, [f.glance() for f in fits.values()],
                               [f.augment(data) for f in fits.values()], data)  # fmt: skip
        return table, data
    return fits["m"], data


def number(value) -> float:
    """One of R's numbers as tests/r/differential.R writes it: NA and NaN as NaN, "Inf"."""
    if value is None or value in ("NA", "NaN"):
        return np.nan
    return {"Inf": np.inf, "-Inf": -np.inf}.get(value, value) if isinstance(value, str) else value


def close(actual, expected, rtol: float, what: str, atol: float = 0.0) -> None:
    """Elementwise |a - e| <= rtol |e| + atol, R's NA as NaN (both missing, or neither), and
    infinities equal."""
    actual = np.asarray([number(a) for a in np.atleast_1d(actual)], dtype=float)
    expected = np.asarray([number(e) for e in np.atleast_1d(expected)], dtype=float)
    assert actual.shape == expected.shape, f"{what}: {actual.shape} values, R has {expected.shape}"
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{what}: NA at {np.isnan(expected)}, ours {actual}"
    infinite = np.isinf(expected)
    assert np.array_equal(actual[infinite], expected[infinite]), f"{what}: ours {actual}, R {expected}"
    ok = ~np.isnan(expected) & ~infinite
    atol = np.broadcast_to(np.asarray(atol, dtype=float), expected.shape)[ok]
    error = np.abs(actual[ok] - expected[ok]) - rtol * np.abs(expected[ok]) - atol
    assert error.size == 0 or error.max() <= 0, f"{what}: ours {actual} vs R {expected}"


def vector(value) -> list:
    """A vector of R's as jsonlite writes it: one of length 1 is a scalar."""
    return value if isinstance(value, list) else [value]


def check_glm(fit, expected: dict, warnings: list[str]) -> None:
    tidy = fit.tidy()
    assert list(tidy["term"]) == vector(expected["term"])
    if "glm.fit: algorithm did not converge" in warnings:
        # 25 iterations along a direction where the likelihood keeps rising (separation): where
        # they stop is rounding, in R as here; the deviance, the NA pattern and the warning are not
        assert not fit.converged and "glm.fit: algorithm did not converge" in fit.warnings
        assert np.array_equal(tidy["estimate"].isna(), np.isnan([number(e) for e in vector(expected["estimate"])]))
        close(fit.glance()["deviance"], expected["deviance"], RTOL, "deviance", atol=1e-8)
        return
    se = np.asarray([number(s) for s in vector(expected["std_error"])], dtype=float)
    # A coefficient that is 0 in theory (a balanced design's, a perfect fit's) is R's and our
    # rounding noise, where a relative error means nothing: there, within 1e-6 of its SE, and
    # of 1e-12 of the largest coefficient (an exact fit's SE is itself noise)
    scale = np.nanmax(np.abs(np.asarray(tidy["estimate"], dtype=float)), initial=0.0)
    close(
        tidy["estimate"], vector(expected["estimate"]), RTOL, "estimate", atol=RTOL * np.nan_to_num(se) + 1e-12 * scale
    )
    close(tidy["std_error"], se, RTOL, "std_error", atol=1e-12 * scale)
    glance = fit.glance()
    assert (glance["nobs"], glance["df_residual"]) == (expected["nobs"], expected["df_residual"])
    size = float(np.sum(fit.design.y**2))
    if number(expected["deviance"]) < 1e-20 * size:
        # an exact fit (a response that is a function of the predictors): the residual sum of
        # squares is R's and our rounding, and logLik its log; R's summary says "essentially
        # perfect fit: summary may be unreliable"
        close(glance["deviance"], expected["deviance"], RTOL, "deviance", atol=1e-20 * size)
    else:
        for key in ("deviance", "logLik", "AIC", "BIC"):
            close(glance[key], expected[key], RTOL, key)
    assert fit.xlevels == {k: vector(v) for k, v in (expected["xlevels"] or {}).items()}


def check_glmm(fit, expected: dict) -> None:
    """At lme4's optimum or below it. Where glmflow's -2 logLik is lower by more than
    SAME_OPTIMUM, lme4 stopped short: glmflow's objective at lme4's estimates must then be
    lme4's value (the same objective, so the lower optimum is the better fit). Otherwise the
    fixed effects agree within BETA_IN_SE of their SE, and the SEs with those of an accurate
    Hessian of lme4's objective (numDeriv, where lme4's own finite differences wobble)."""
    assert list(fit.tidy()["term"]) == vector(expected["term"])
    # lme4 at nAGQ > 1 reports -2 logLik less twice the saturated model's (tests/test_glmm.py)
    saturated = saturated_loglik(fit.family_object.name, fit.design.y, fit.glmm_design.prior) if fit.nAGQ > 1 else 0.0
    ours, theirs = -2 * fit.glance()["logLik"] + 2 * saturated, number(expected["deviance"])
    assert ours <= theirs + SAME_OPTIMUM, f"-2 logLik {ours} above lme4's {theirs}"
    if ours < theirs - SAME_OPTIMUM:
        check = glmm_likelihood_check("m", fit.glmm_design, fit.family_object, fit.nAGQ,
                                      vector(expected["theta"]), vector(expected["estimate"]),
                                      number(expected["logLik"]) + saturated, LOGLIK_AT_LME4)  # fmt: skip
        assert check["ok"], f"lme4 stopped at {theirs}, ours {ours}; at lme4's estimates ours is {check}"
        return
    if fit.separation:
        # some fixed effects go to +-Inf (the LP check names them, as for GLMs): where each
        # optimiser stops along those directions, and the SEs there, are arbitrary
        assert any("separation" in warning for warning in fit.warnings)
        return
    se = np.asarray(fit.tidy()["std_error"], dtype=float)
    close(fit.beta, vector(expected["estimate"]), 0.0, "fixef", atol=BETA_IN_SE * se)
    if expected.get("std_error_hessian") is not None:
        tolerance = GLMM_SE_SINGULAR if expected["singular"] else GLMM_SE
        close(se, vector(expected["std_error_hessian"]), tolerance, "std_error")


# Linear mixed models against lmerTest::lmer at its tightest optimum, as tests/test_lmm.py. Two
# tight optimisers (bobyqa, nloptwrap) agree on the criterion to about 1e-10, which pins the
# estimates to sqrt(2e-10) = 1.4e-5 of an SE along the flattest direction (measured: 4e-6 SE
# on a singular random slope); below lmer's by more than LMM_SAME_OPTIMUM, lmer stopped short.
LMM_SAME_OPTIMUM = 1e-7
LMM_BETA_IN_SE = math.sqrt(2e-10)
# R's sigma relative to the spread of the response: 9e-6 and below where a random intercept or
# the fixed effects fit the response exactly (lmer stops anywhere; glmflow refuses), 0.37 and up
# otherwise
EXACT_FIT = 1e-4


def check_lmm(fit, expected: dict) -> None:
    """At lmer's optimum or below it. Below by more than LMM_SAME_OPTIMUM: lmer stopped short,
    which the likelihood recomputed at lmer's estimates (glmflow.glmm_likelihood, from the
    marginal distribution) confirms to be the same objective. At it: estimates to 1e-6 (or
    LMM_BETA_IN_SE), SEs 1e-4, Satterthwaite df and p 1e-3, theta and sigma 1e-5, logLik
    1e-6; where the criterion is flat in theta (a grouping factor that is also a fixed factor),
    the estimates and logLik only, the rest depending on where along the flat each stops."""
    tidy = fit.tidy()
    assert list(tidy["term"]) == vector(expected["term"])
    assert fit.nobs == expected["nobs"] and fit.reml is expected["REML"]
    theirs = number(expected["criterion"])
    assert fit.criterion <= theirs + 1e-9, f"criterion {fit.criterion} above lmer's {theirs}"
    if fit.criterion < theirs - LMM_SAME_OPTIMUM:
        check = lmm_likelihood_check("m", fit.glmm_design, vector(expected["theta"]), vector(expected["estimate"]),
                                     number(expected["sigma"]), fit.reml, number(expected["logLik"]))  # fmt: skip
        assert check["ok"], f"lmer stopped at {theirs}, ours {fit.criterion}; at lmer's estimates ours is {check}"
        return
    se = np.asarray(tidy["std_error"], dtype=float)
    close(fit.loglik, expected["logLik"], 0.0, "logLik", atol=1e-6)
    theta = np.asarray(vector(expected["theta"]), dtype=float)
    if np.max(np.abs(fit.theta - theta)) > 1e-5:
        flat = LmmCriterion(fit.glmm_design, fit.reml)(theta)
        assert abs(flat - fit.criterion) <= LMM_SAME_OPTIMUM, f"theta {fit.theta}, lmer's {theta} ({flat})"
        moved = math.sqrt(2 * LMM_SAME_OPTIMUM) * se  # as far as a criterion within LMM_SAME_OPTIMUM allows
        close(tidy["estimate"], vector(expected["estimate"]), 0.0, "estimate", atol=moved)
        return
    close(tidy["estimate"], vector(expected["estimate"]), 1e-6, "estimate", atol=LMM_BETA_IN_SE * se)
    close(se, vector(expected["std_error"]), 1e-4, "std_error")
    close(tidy["df"], vector(expected["df"]), 1e-3, "Satterthwaite df")
    close(tidy["p_value"], vector(expected["p_value"]), 1e-3, "p")
    close(fit.sigma, expected["sigma"], 1e-5, "sigma")


def check_lmm_anova(table: dict, expected: dict) -> None:
    """anova.merMod of two lmer fits (REML ones refitted by ML, with lme4's message)."""
    assert table["npar"] == vector(expected["npar"]) and table["Df"][1:] == vector(expected["Df"])[1:]
    for column in ("AIC", "BIC", "logLik", "deviance"):
        close(table[column], vector(expected[column]), 0.0, column, atol=1e-6)
    close(table["Chisq"][1:], vector(expected["Chisq"])[1:], 0.0, "Chisq", atol=2e-6)
    close(table["p_value"][1:], vector(expected["p_value"])[1:], 1e-4, "p")


# lme4's own numerical failures (its PIRLS, its Cholesky downdate), not a model it refuses
LME4_NUMERICAL_FAILURES = ("pwrssUpdate did not converge", "Downdated VtV is not positive definite")


def check_where_lme4_fails(case: dict) -> None:
    """Where lme4's PIRLS or factorisation gives up, glmflow either stops with a clear error
    naming the model, or fits: then at a converged optimum whose log-likelihood an independent
    recomputation at its estimates confirms (glmflow.glmm_likelihood), with its separation
    warning where the fixed effects go to +-Inf."""
    try:
        fit, _ = run_case(case)
    except GlmflowError as error:
        assert "'m'" in str(error)
        return
    if case["kind"] == "lmm":
        check = lmm_likelihood_check("m", fit.glmm_design, fit.theta, fit.beta, fit.sigma, fit.reml, fit.loglik)
    else:
        check = glmm_likelihood_check("m", fit.glmm_design, fit.family_object, fit.nAGQ, fit.theta, fit.beta,
                                      fit.glance()["logLik"])  # fmt: skip
    assert check["ok"], check
    assert fit.separation or fit.convergence_check()["check_passed"], fit.warnings


def check_grid(fit, data, case: dict, expected: dict) -> None:
    table = predictions(data, {"dataset": case["dataset"], **case["model"]}, "m", fit.tidy(), fit.vcov_frame(),
                        case["at"])  # fmt: skip
    # an exact fit's SEs are rounding: there, within 1e-12 of the predictions' size
    scale = 1e-12 * np.nanmax(np.abs([number(v) for v in vector(expected["link"])]), initial=0.0)
    for ours, theirs in [("link", "link"), ("se_link", "se_link"), ("prob", "prob"), ("conf_low", "conf_low"),
                         ("conf_high", "conf_high")]:  # fmt: skip
        close(table[ours], vector(expected[theirs]), RTOL, ours, atol=scale)


def check_anova(table: dict, expected: dict) -> None:
    assert table["resid_df"] == vector(expected["resid_df"])
    close(table["resid_dev"], expected["resid_dev"], RTOL, "resid dev")
    close(table["p_value"], expected["p_value"], RTOL, "p")


@pytest.mark.parametrize("case", ALL, ids=[case["id"] for case in ALL])
def test_case_matches_r(case):
    expected = REFERENCE[case["id"]]
    if "error" in expected and any(failure in expected["error"] for failure in LME4_NUMERICAL_FAILURES):
        check_where_lme4_fails(case)
        return
    if "error" in expected:
        with pytest.raises(GlmflowError, match=r"'m\d?'|models\.m"):
            run_case(case)
        return
    if case["kind"] in LMM_KINDS and min(vector((expected.get("fit") or expected["anova"])["sigma_ratio"])) < EXACT_FIT:
        with pytest.raises(GlmflowError, match=r"'m\d?'.*exactly"):
            run_case(case)
        return
    result, data = run_case(case)
    if case["kind"] == "anova":
        check_anova(result, expected["anova"])
    elif case["kind"] == "lmm_anova":
        check_lmm_anova(result, expected["anova"])
        assert result["messages"] == vector(expected["messages"])
    elif case["kind"] == "lmm":
        check_lmm(result, expected["fit"])
    elif case["kind"] == "glmm":
        check_glmm(result, expected["fit"])
    else:
        check_glm(result, expected["fit"], vector(expected.get("warnings") or []))
        if case["kind"] == "grid":
            assert "effect_error" not in expected, expected.get("effect_error")
            check_grid(result, data, case, expected["effect"])


def test_the_draw_covers_every_kind():
    kinds = {case["kind"] for case in ALL}
    families = {(case["kind"] == "glmm", case["model"]["family"]) for case in ALL}
    assert kinds == {"glm", "grid", "anova", "glmm", "lmm", "lmm_anova"} and len(ALL) >= 300
    lmms = [case["model"] for case in ALL if case["kind"] in LMM_KINDS]
    assert {m.get("REML", True) for m in lmms} == {True, False}
    assert all(any(key in m for m in lmms) for key in ("weights", "offset", "filter"))
    assert any("||" in m["formula"] for m in lmms) and any("/" in m["formula"] for m in lmms)
    assert len(families) >= 11, families
    assert math.isclose(sum("error" in REFERENCE[c["id"]] for c in ALL) / len(ALL), 0.05, abs_tol=0.05)
