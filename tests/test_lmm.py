"""Linear mixed models (gaussian, identity link) as lme4's lmer fits them, REML and ML, with
lmerTest's Satterthwaite df; checked against tight lmer fits (tests/r/lmm.R)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SMALL_CONFIG, assert_close, copy_workflow, edit_config, snakemake

from glmflow.comparisons import compare_models
from glmflow.config import check_config
from glmflow.data import load_dataset
from glmflow.errors import GlmflowError
from glmflow.glmm import fit_glmm, lmm
from glmflow.glmm.design import build_glmm_design
from glmflow.glmm.lmm import BLOCK_TRACE_MIN, LmmCriterion, _Stalled, _StallWatch
from glmflow.glmm_likelihood import lmm_likelihood_check
from glmflow.interpret import predictions
from glmflow.models import model_data
from glmflow.report import coefficient_frame
from glmflow.summaries import summary_text

REFERENCE = json.loads((ROOT / "tests" / "r" / "lmm_reference.json").read_text())
FITS = REFERENCE["fits"]
FACTORS = {
    "sleepstudy": ["subject", "phase"],
    "sleepstudy_na": ["subject", "phase"],
    "penicillin": ["plate", "sample"],
    "pastes": ["batch", "cask", "sample"],
    "dyestuff2": ["batch"],
    "machines": ["worker", "machine"],
}


def listed(values) -> list:
    """A JSON value of R's: a vector of one is a scalar, an empty one may be null."""
    return [] if values is None else list(np.atleast_1d(values))


def numbers(values):
    return np.array([float(v) for v in listed(values)])


def close(actual, expected, rtol, what):
    """assert_close, where a model without fixed effects has nothing to compare on both sides."""
    if len(actual) == len(expected) == 0:
        return
    assert_close(actual, expected, rtol, what)


def data(name):
    if name == "bdf":  # the GLMMs' data set, vendored in resources/
        return load_dataset(ROOT / "resources" / "bdf.csv", factors=["school_nr"])
    return load_dataset(ROOT / "tests" / "r" / "lmm" / f"{name}.csv", factors=FACTORS[name])


def spec_of(reference) -> dict:
    spec = {"formula": reference["formula"], "family": "gaussian", "dataset": reference["data"]}
    if not reference["REML_requested"]:
        spec["REML"] = False
    for key, setting in (("weights", "weights"), ("offset", "offset"), ("subset", "filter")):
        if reference.get(key):
            spec[setting] = reference[key]
    return spec


@pytest.fixture(scope="module")
def fits():
    return {name: fit_glmm(data(ref["data"]), spec_of(ref), name) for name, ref in FITS.items()}


@pytest.mark.parametrize("name", list(FITS))
def test_estimates_and_criterion_match_lmer(fits, name):
    fit, ref = fits[name], FITS[name]
    assert fit.terms == listed(ref["term"])
    assert fit.nobs == ref["nobs"]
    close(fit.beta, numbers(ref["beta"]), 1e-6, f"{name} estimates")
    close(np.sqrt(np.diag(fit.vcov)), numbers(ref["se"]), 1e-4, f"{name} SEs")
    # vcov(fit) entrywise, relative to the product of the SEs (a covariance near 0 has no digits of its own)
    se = np.sqrt(np.diag(fit.vcov))
    r_vcov = numbers(ref["vcov"]).reshape(len(se), len(se), order="F")
    assert np.max(np.abs(fit.vcov - r_vcov) / np.outer(se, se), initial=0.0) <= 1e-4
    assert_close(fit.fitted, numbers(ref["fitted"]), 1e-6, f"{name} fitted")
    assert np.max(np.abs(fit.theta - numbers(ref["theta"]))) <= 1e-5, fit.theta
    assert_close([fit.sigma], numbers(ref["sigma"]), 1e-5, f"{name} sigma")
    assert abs(fit.loglik - float(ref["logLik"])) <= 1e-6
    # the criterion at lme4's default optimum or below, and at its tightest one within rounding
    assert fit.criterion <= float(ref["default_criterion"]) + 1e-9
    assert fit.criterion <= float(ref["criterion"]) + 1e-9
    glance = fit.glance()
    assert glance["REML"] is ref["REML"]
    assert glance["df"] == ref["df_logLik"]
    assert_close([glance["logLik"], glance["AIC"], glance["BIC"]],
                 [float(ref[k]) for k in ("logLik", "AIC", "BIC")], 1e-9, f"{name} glance")  # fmt: skip
    key = "REMLcrit" if ref["REML"] else "deviance"
    assert key in glance and abs(glance[key] - float(ref["criterion"])) <= 1e-6
    assert glance["singular"] is ref["singular"]
    assert glance["check_passed"]


@pytest.mark.parametrize("name", list(FITS))
def test_satterthwaite_df_and_p_values_match_lmertest(fits, name):
    tidy, ref = fits[name].tidy(), FITS[name]
    assert list(tidy.columns[:6]) == ["term", "estimate", "std_error", "statistic", "df", "p_value"]
    close(tidy["df"], numbers(ref["df"]), 1e-3, f"{name} Satterthwaite df")
    close(tidy["statistic"], numbers(ref["t"]), 1e-4, f"{name} t")
    close(tidy["p_value"], numbers(ref["p"]), 1e-3, f"{name} p")
    # the intervals: lme4's confint(method = "Wald"), normal quantiles
    close(np.concatenate([tidy["conf_low"], tidy["conf_high"]]), numbers(ref["wald"]), 1e-6, f"{name} intervals")


@pytest.mark.parametrize("name", list(FITS))
def test_varcorr_and_conditional_modes_match_lmer(fits, name):
    fit, ref = fits[name], FITS[name]
    varcorr = fit.varcorr()
    expected = pd.DataFrame(ref["varcorr"])
    assert list(varcorr["grp"]) == list(expected["grp"])
    assert varcorr["grp"].iloc[-1] == "Residual"
    r_vcov = numbers(expected["vcov"])
    zero = np.abs(r_vcov) < 1e-10  # the singular fit's variance: 0 on both sides
    assert np.all(np.abs(varcorr["vcov"].to_numpy()[zero]) < 1e-10)
    assert_close(varcorr["vcov"].to_numpy()[~zero], r_vcov[~zero], 1e-4, f"{name} VarCorr")
    ranef = fit.ranef().merge(pd.DataFrame(ref["ranef"]), on=["grp", "level", "term"], suffixes=("", "_r"))
    assert len(ranef) == len(fit.ranef()) == len(np.atleast_1d(ref["ranef"]["level"]))
    for _, block in ranef.groupby(["grp", "term"]):
        theirs = block["condval_r"].astype(float)
        scale = max(np.max(np.abs(theirs)), 1e-300)
        assert np.max(np.abs(block["condval"] - theirs)) <= 1e-5 * scale or scale < 1e-8
        if scale >= 1e-8:
            assert_close(block["condsd"], block["condsd_r"].astype(float), 1e-4, f"{name} condsd")


def test_the_singular_fit_is_flagged(fits):
    fit = fits["singular"]
    assert fit.singular and fit.theta[0] == 0.0
    assert "boundary (singular) fit: see help('isSingular')" in fit.warnings


def test_na_rows_are_dropped_as_lmer(fits):
    fit = fits["na_rows"]
    assert fit.design.n_dropped == 5
    assert fit.glance()["n_dropped"] == 5


def test_nagq_on_a_linear_mixed_model_is_refused():
    spec = {"formula": "reaction ~ days + (1 | subject)", "family": "gaussian", "nAGQ": 5}
    with pytest.raises(GlmflowError, match="linear mixed model.*no nAGQ"):
        fit_glmm(data("sleepstudy"), spec, "m")


@pytest.mark.parametrize("name", list(FITS))
def test_summary_is_laid_out_as_lmertest_prints_it(fits, name):
    """Line for line as lmerTest's summary() of the tight fit (whose optimizer, bobyqa, its last
    block names; lmer's default, which glmflow's summary names, is nloptwrap)."""
    theirs = [line.replace("(bobyqa)", "(nloptwrap)") for line in np.atleast_1d(FITS[name]["summary"])]
    ours = summary_text(fits[name]).split("\n")[:-1]  # the text ends in a newline
    assert ours == theirs


@pytest.mark.parametrize("comparison", list(REFERENCE["anova"]))
def test_anova_of_linear_mixed_models_is_lme4s(fits, comparison):
    """anova.merMod: REML fits compared by their ML refits, with lme4's message."""
    ref = REFERENCE["anova"][comparison]
    names = list(reversed(ref["models"]))  # lme4 orders the models by npar itself
    specs = {name: spec_of(FITS[name]) for name in names}
    sleep = data("sleepstudy")
    table = compare_models({"models": names}, specs, [fits[n].glance() for n in names],
                           [fits[n].augment(sleep) for n in names], sleep)  # fmt: skip
    assert table["models"] == ref["models"]
    assert table["npar"] == ref["npar"] and table["Df"][1:] == ref["Df"][1:]
    assert table["messages"] == ([ref["message"]] if ref["message"] else [])
    for column in ("AIC", "BIC", "logLik", "deviance"):
        assert_close(table[column], numbers(ref[column]), 1e-9, column)
    assert abs(table["Chisq"][1] - float(ref["Chisq"][1])) <= 1e-6
    assert_close(table["p_value"][1:], numbers(ref["p"][1:]), 1e-4, "p")


@pytest.mark.parametrize("name", list(FITS))
def test_the_likelihood_check_recomputes_logLik_from_the_marginal_distribution(fits, name):
    """The workflow's independent check: y ~ N(X beta + offset, V) with sparse LU, not the fit's
    block factor; REML's log-likelihood for REML fits."""
    fit = fits[name]
    check = lmm_likelihood_check(name, fit.glmm_design, fit.theta, fit.beta, fit.sigma, fit.reml, fit.loglik)
    assert check["ok"], check["difference"]
    assert abs(check["logLik_recomputed"] - float(FITS[name]["logLik"])) <= 1e-6


def test_the_report_shows_satterthwaite_df(fits):
    frame = coefficient_frame(fits["sleep_reml"].tidy())
    assert list(frame.columns[:5]) == ["term", "estimate", "std. error", "statistic", "df"]


@pytest.mark.parametrize("grid", list(REFERENCE["effects"]))
def test_prediction_grids_are_effects_on_the_lmer_fit(fits, grid):
    """effects::Effect on an lmer fit: the fixed part with vcov(fit), an offset at its mean,
    t intervals on the fixed-part refit's residual df."""
    ref = REFERENCE["effects"][grid]
    fit, spec = fits[ref["model"]], spec_of(FITS[ref["model"]])
    sleep = data("sleepstudy")
    at = {variable: ref["at"].get(variable, []) for variable in ref["grid"]}  # Effect's order of the focal ones
    table = predictions(sleep, spec, ref["model"], fit.tidy(), fit.vcov_frame(), at)
    for column, values in ref["grid"].items():
        assert [str(v).removesuffix(".0") for v in table[column]] == list(values)
    for ours, theirs in (("link", "fit"), ("se_link", "se"), ("conf_low", "lower"), ("conf_high", "upper")):
        assert_close(table[ours], numbers(ref[theirs]), 1e-6, f"{grid} {ours}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"formula": "reaction ~ days + (1 | row_id)"}, "number of levels of each grouping factor must be < number"),
        ({"filter": "days < 2"}, r"number of observations \(=36\) <= number of random effects \(=36\)"),
        ({"weights": "w_zero"}, "weights 'w_zero' has zeros"),
        ({"weights": "w_negative"}, "weights 'w_negative' has negative values"),
        # no optimum, where lmer stops anywhere (sigma 1e-7 to 1e-13; tests/test_differential.py)
        ({"formula": "subject_mean ~ days + (days | subject)"}, "constant within every level of 'subject'"),
        ({"offset": "off_exact"}, "constant within every level of 'subject'"),
        ({"formula": "days_linear ~ days + (days | subject)"}, "fixed effects fit the response 'days_linear' exactly"),
    ],
)
def test_what_lmer_refuses_is_refused_naming_the_model(change, message):
    sleep = data("sleepstudy")
    sleep["row_id"] = np.arange(len(sleep)).astype(str)
    sleep["w_zero"] = np.where(np.arange(len(sleep)) == 0, 0.0, 1.0)
    sleep["w_negative"] = -sleep["w_zero"]
    sleep["subject_mean"] = sleep.groupby("subject")["reaction"].transform("mean")
    sleep["off_exact"] = sleep["reaction"] - sleep["subject"].astype(int)  # reaction less it: the subject
    sleep["days_linear"] = 3 * sleep["days"] + 1
    spec = {"formula": "reaction ~ days + (days | subject)", "family": "gaussian", **change}
    with pytest.raises(GlmflowError, match=message) as error:
        fit_glmm(sleep, spec, "my_lmm")
    assert "my_lmm" in str(error.value)


def test_the_config_check_accepts_reml_on_lmms_only():
    config = {
        "datasets": {"sleep": {"path": "tests/r/lmm/sleepstudy.csv", "factors": ["subject"]}},
        "models": {
            "reml": {"dataset": "sleep", "formula": "reaction ~ days + (days | subject)", "family": "gaussian"},
            "ml": {"dataset": "sleep", "formula": "reaction ~ days + (1 | subject)", "family": "gaussian",
                   "REML": False},
        },
        "comparisons": {"slope": {"models": ["ml", "reml"]}},
    }  # fmt: skip
    check_config(config, ROOT)
    config["models"]["glm"] = {"dataset": "sleep", "formula": "reaction ~ days", "family": "gaussian", "REML": True}
    with pytest.raises(GlmflowError, match="models.glm.REML: REML applies to linear mixed models only"):
        check_config(config, ROOT)


def test_lmms_run_in_the_workflow(tmp_path):
    """fit, likelihood check, anova and a grid for lmer fits in one targeted run of the small
    config: the written tidy, glance and summary are those of the fit in process."""
    directory = copy_workflow(tmp_path / "lmm", SMALL_CONFIG)
    shutil.copy(ROOT / "tests" / "r" / "lmm" / "sleepstudy.csv", directory / "resources" / "sleepstudy.csv")
    models = {name: {**spec_of(FITS[name]), "dataset": "sleep"} for name in ("sleep_intercept", "sleep_reml")}

    def change(config):
        config["datasets"]["sleep"] = {"path": "resources/sleepstudy.csv", "factors": ["subject", "phase"]}
        config["models"].update(models)
        config["comparisons"]["slope"] = {"models": list(models)}
        config["interpretation"]["predictions"]["days"] = {"model": "sleep_reml", "at": {"days": [0, 9]}}

    edit_config(directory, change)
    results = directory / "results"
    targets = ["results/models/sleep_reml/summary.txt", "results/checks/likelihood_sleep_reml.json",
               "results/comparisons/slope.json", "results/interpretation/predictions/days.csv"]  # fmt: skip
    snakemake(directory, *targets)
    fit = fit_glmm(data("sleepstudy"), models["sleep_reml"], "sleep_reml")
    folder = results / "models" / "sleep_reml"
    assert (folder / "summary.txt").read_text().startswith("Linear mixed model fit by REML. t-tests use")
    tidy = pd.read_csv(folder / "tidy.csv")
    assert_close(tidy["df"], fit.tidy()["df"], 1e-9, "written df")
    glance = json.loads((folder / "glance.json").read_text())
    assert glance["REML"] is True and abs(glance["REMLcrit"] - fit.criterion) < 1e-9
    assert json.loads((results / "checks" / "likelihood_sleep_reml.json").read_text())["ok"]
    table = json.loads((results / "comparisons" / "slope.json").read_text())
    assert table["messages"] == ["refitting model(s) with ML (instead of REML)"]
    assert_close(table["Chisq"][1:], numbers(REFERENCE["anova"]["reml"]["Chisq"][1:]), 1e-6, "Chisq")
    assert len(pd.read_csv(results / "interpretation" / "predictions" / "days.csv")) == 2


# a slope in the dense block: (days | subject)'s 2 x 2 blocks of H^-1 read from P11 (term 0 is
# phase:subject, which has more levels); a theta of each term away from any optimum
GRADIENT_CASES = {
    "slope_in_dense_block": {"data": "sleepstudy", "REML_requested": True, "theta": [0.5, 0.9, 0.1, 0.2],
                             "formula": "reaction ~ days + (1 | phase:subject) + (days | subject)"},
}  # fmt: skip


@pytest.mark.parametrize("small", [False, True], ids=["block_traces", "row_traces"])
@pytest.mark.parametrize("name", ["sleep_reml", "sleep_ml", "weights_offset", "pastes", "phase_slope",
                                  "slope_in_dense_block"])  # fmt: skip
def test_the_criterions_analytic_gradient_and_jacobian_match_differences(name, small):
    """The optimizer's gradient (traces of H^-1 dH, the envelope theorem for pwrss, log|RX'RX|
    for REML) and Satterthwaite's d RX'RX / d theta, against central differences of the
    criterion and of RX'RX (steps 1e-5; the criterion is exact linear algebra, to ~1e-12), at a
    theta away from the optimum, where the gradient is far from 0. ``small``: the first term's
    first diagonal theta below BLOCK_TRACE_MIN, whose traces are then summed over the rows."""
    ref = GRADIENT_CASES.get(name) or FITS[name]
    spec = spec_of(ref)
    rows = model_data(data(ref["data"]), spec, name)
    gd = build_glmm_design(spec["formula"], rows, name, spec.get("weights"), spec.get("offset"))
    criterion = LmmCriterion(gd, bool(ref["REML_requested"]))
    theta = numbers(ref["theta"]) * 1.2 + 0.05
    if small:
        theta[0] = BLOCK_TRACE_MIN / 2
    _, gradient = criterion.value_and_gradient(theta)
    d_rx = criterion.derivatives(criterion.solve(theta)).rx
    steps = 1e-5 * np.eye(len(theta))
    differences = np.array([(criterion(theta + e) - criterion(theta - e)) / 2e-5 for e in steps])
    assert_close(gradient, differences, 1e-5, f"{name} gradient")
    rx_differences = np.array([(criterion.solve(theta + e).rx - criterion.solve(theta - e).rx) / 2e-5 for e in steps])
    assert_close(d_rx, rx_differences, 1e-5, f"{name} d RX'RX")


def test_the_search_stops_at_the_criterions_rounding_and_not_before():
    """L-BFGS-B's trials at the best point's rounding stop it at the second that is no lower;
    trials further away, or lower, never do; an infinite first value (no best point yet) is
    passed on, not a crash."""
    values = iter([np.inf, 5.0, 4.0, 4.0, 3.0, 3.0 + 1e-12, 3.0])
    watch = _StallWatch(lambda theta: (next(values), np.zeros(2)))
    watch(np.array([1.0, 1.0]))  # inf: no best point yet
    watch(np.array([0.5, 0.5]))  # 5
    watch(np.array([0.4, 0.5]))  # 4: the best
    watch(np.array([0.4 + 1e-3, 0.5]))  # 4 again, but 1e-3 away: not the rounding
    watch(np.array([0.3, 0.5]))  # 3: the best
    watch(np.array([0.3 + 1e-10, 0.5]))  # no lower, within 1e-8: the first stall
    with pytest.raises(_Stalled):
        watch(np.array([0.3, 0.5 - 1e-10]))  # the second
    assert watch.best == 3.0 and np.array_equal(watch.best_x, [0.3, 0.5])


@pytest.mark.parametrize("search_ftol", [1e-3, 1e-6])
def test_a_search_handed_over_early_reaches_lmers_optimum(monkeypatch, search_ftol):
    """L-BFGS-B hands over to Newton at SEARCH_FTOL; handed over far from the optimum, Newton
    either finishes (the Hessians taken again where theta moved beyond their steps) or hands
    back to L-BFGS-B: each way, lmer's optimum and lmerTest's df."""
    monkeypatch.setattr(lmm, "SEARCH_FTOL", search_ftol)
    handed_back = []
    search = lmm._search
    monkeypatch.setattr(lmm, "_search", lambda *args: handed_back.append(args[-1]) or search(*args))
    for name, ref in FITS.items():
        fit = fit_glmm(data(ref["data"]), spec_of(ref), name)
        assert np.max(np.abs(fit.theta - numbers(ref["theta"]))) <= 1e-5, (name, fit.theta)
        assert fit.criterion <= float(ref["criterion"]) + 1e-9, name
        close(fit.tidy()["df"], numbers(ref["df"]), 1e-3, f"{name} df")
    assert lmm.ROUNDING_FTOL in handed_back  # the hand-back was taken at least once
