"""The real Snakemake on a temporary copy of the workflow with the real data."""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import (
    ROOT,
    SMALL_CONFIG,
    assert_close,
    assert_coverage_as_rs,
    copy_workflow,
    edit_config,
    planned_jobs,
    result_hashes,
    snakemake,
)


def benchmarked_rules(directory) -> dict[str, int]:
    """How many jobs of each rule wrote a readable benchmark. Every rule's log and benchmark
    share a path (logs/models/m.log, benchmarks/models/m.tsv), and each job's log names its rule;
    a job whose benchmark is missing or not Snakemake's one-row table fails here."""
    counts: dict[str, int] = {}
    for log in sorted((directory / "logs").rglob("*.log")):
        rule = re.search(r"INFO rule (\w+),", log.read_text()).group(1)
        benchmark = (directory / "benchmarks" / log.relative_to(directory / "logs")).with_suffix(".tsv")
        assert benchmark.is_file(), f"rule {rule}: {benchmark.relative_to(directory)} is missing"
        table = pd.read_csv(benchmark, sep="\t")
        assert {"s", "max_rss", "cpu_time"} <= set(table.columns) and len(table) == 1, benchmark
        assert np.isfinite(float(table["s"].iloc[0])) and table["s"].iloc[0] >= 0, benchmark
        counts[rule] = counts.get(rule, 0) + 1
    return counts


@pytest.mark.slow
def test_full_run_writes_every_output(finished_run, config):
    results = finished_run / "results"
    for dataset in config["datasets"]:
        for suffix in [".parquet", "_glimpse.txt", "_head.csv"]:
            assert (results / "data" / f"{dataset}{suffix}").is_file()
    glm_models = [m for m, spec in config["models"].items() if "|" not in spec["formula"]]
    for model in glm_models:
        for name in ["tidy.csv", "glance.json", "summary.txt", "augment.csv", "vcov.csv"]:
            assert (results / "models" / model / name).is_file(), (model, name)
        check = json.loads((results / "checks" / f"likelihood_{model}.json").read_text())
        assert check["ok"] and check["max_abs_difference"] <= 1e-8
    assert pd.read_parquet(results / "data" / "titanic.parquet")["sex"].dtype == "category"
    assert len(pd.read_csv(results / "data" / "titanic_head.csv")) == 10
    rules = benchmarked_rules(finished_run)
    for name in ["clean_data", "fit_model", "likelihood_check", "compare_models", "predict", "count_table"]:
        assert rules.get(name), f"no job of rule {name} wrote its benchmark"
    assert (finished_run / "logs" / "models" / "glm_fare.log").read_text().startswith("INFO rule fit_model")


@pytest.mark.slow
def test_workflow_outputs_match_r(finished_run, r_ref):
    results = finished_run / "results"
    tidy = pd.read_csv(results / "models" / "glm_sex_fare" / "tidy.csv")
    for column in ["estimate", "std_error", "statistic", "p_value"]:
        assert_close(tidy[column], r_ref["glm_sex_fare"]["tidy"][column], 1e-6, column)
    glance = json.loads((results / "models" / "lm_fare" / "glance.json").read_text())
    assert_close(glance["r_squared"], r_ref["lm_fare"]["r_squared"], 1e-6, "r2")
    lrt = json.loads((results / "comparisons" / "sex_effect.json").read_text())
    assert_close(lrt["deviance"], r_ref["lrt_sex"]["deviance"], 1e-6, "LRT deviance")
    assert_close(lrt["p_value"], r_ref["lrt_sex"]["p_value"], 1e-6, "LRT p")
    effects = pd.read_csv(results / "interpretation" / "predictions" / "sex_fare_effects.csv")
    assert_close(effects["prob"], r_ref["effects_sex_fare"]["fit"], 1e-6, "effects")
    counts = pd.read_csv(results / "interpretation" / "counts" / "survival_by_sex.csv")
    assert counts["n"].tolist() == [81, 233, 468, 109]


@pytest.mark.slow
def test_simulation_outputs(finished_run, r_ref, config):
    demo = finished_run / "results" / "simulation" / "demo"
    data = pd.read_csv(demo / "data.csv")
    assert list(data.columns) == ["x", "p", "response"] and int(data["response"].sum()) == 485
    tidy = pd.read_csv(demo / "tidy.csv")
    assert_close(tidy["estimate"], r_ref["simulation_seed1"]["tidy"]["estimate"], 1e-6, "demo estimates")
    glance = json.loads((demo / "glance.json").read_text())
    assert_close(glance["logLik"], r_ref["simulation_seed1"]["logLik"], 1e-6, "demo logLik")
    table = pd.read_csv(demo / "likelihood.csv")
    assert list(table.columns) == ["response", "p(Y = 1)", "p(Y = response)", "log(p(Y = response))"]
    summary = pd.read_csv(finished_run / "results" / "simulation" / "summary.csv")
    study = config["simulation"]["study"]
    assert len(summary) == len(study["n"]) * len(study["b0"]) * len(study["b1"])
    assert (summary["replicates"] == study["replicates"]).all()
    steep_small = summary[(summary["n"] == 50) & (summary["b1"] == 8)].iloc[0]
    assert steep_small["separated"] > 0 and steep_small["used"] + steep_small["separated"] == study["replicates"]
    assert_coverage_as_rs(summary)


@pytest.mark.slow
def test_mixed_model_outputs(finished_run, config):
    glmm_models = [m for m, spec in config["models"].items()
                   if "|" in spec["formula"] and spec["dataset"] == "bdf" and spec["family"] == "binomial"]  # fmt: skip
    # the exact optima from tests/r/glmm_targets.R; tolerances as in tests/test_glmm.py
    targets = json.loads((ROOT / "tests" / "r" / "glmm_targets_reference.json").read_text())
    theta_tolerance = {1: 2e-5, 10: 1e-5}
    assert glmm_models
    for model in glmm_models:
        folder = finished_run / "results" / "models" / model
        for name in ["tidy.csv", "glance.json", "summary.txt", "augment.csv", "vcov.csv", "ranef.csv", "varcorr.csv"]:
            assert (folder / name).is_file(), (model, name)
        glance = json.loads((folder / "glance.json").read_text())
        target = targets["laplace" if glance["nAGQ"] == 1 else "agq10"]
        assert target["nAGQ"] == glance["nAGQ"], (model, "no target at this nAGQ")
        assert abs(glance["theta"][0] - float(target["theta"])) <= theta_tolerance[glance["nAGQ"]]
        assert glance["check_passed"] and glance["n_groups"] == {"school_nr": 131}
        check = json.loads((finished_run / "results" / "checks" / f"likelihood_{model}.json").read_text())
        assert check["ok"]
        assert len(pd.read_csv(folder / "ranef.csv")) == 131
        assert (folder / "summary.txt").read_text().startswith("Generalized linear mixed model fit by maximum")


@pytest.mark.parametrize("change, fails", [(1e-6, True), (1e-13, False)])
def test_likelihood_check_fails_the_run_above_its_tolerance(small_run, tmp_path, change, fails):
    """A fitted probability moved in augment.csv (as a fitter's wrong fitted value would be)
    makes the by-hand log-likelihood differ from glance.json's: the check job fails the run and
    says by how much when that exceeds 1e-8 (1e-6 on one row moves it by about 1e-6), and passes
    when it does not (1e-13: about 1e-13)."""
    directory = tmp_path / "corrupted"
    shutil.copytree(small_run, directory, symlinks=True)
    augment_file = directory / "results" / "models" / "glm_fare" / "augment.csv"
    augment = pd.read_csv(augment_file)
    augment.loc[0, ".prob"] += change
    augment.to_csv(augment_file, index=False)
    check = directory / "results" / "checks" / "likelihood_glm_fare.json"
    check.unlink()
    result = snakemake(directory, str(check.relative_to(directory)), check=False)
    output = result.stdout + result.stderr
    assert "rule fit_model" not in output  # only the check ran, on the edited file
    if fails:
        assert result.returncode != 0
        assert "model 'glm_fare': the log-likelihood by hand differs from the model's by" in output
        assert not check.exists()
    else:
        assert result.returncode == 0, output[-3000:]
        assert json.loads(check.read_text())["ok"]


def _contains(big, small) -> bool:
    """Every key of ``small`` in ``big`` with the same value (mappings recursively): the config
    as run is the file's plus the schema's defaults."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _contains(big[k], v) for k, v in small.items())
    return big == small


def test_provenance_records_config_checksums_versions_and_commit(small_run):
    """results/provenance.html against the run's own inputs, recomputed here: the config file,
    each dataset's sha256, the installed versions (Snakemake ran this interpreter) and the commit."""
    page = (small_run / "results" / "provenance.html").read_text()
    config = yaml.safe_load((small_run / "config.yaml").read_text())
    as_run = yaml.safe_load(html.unescape(re.search(r"<pre>(.*)</pre>", page, re.S).group(1)))
    assert _contains(as_run, config)
    checksums = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td><code>([0-9a-f]{64})</code></td></tr>", page)
    assert {name for name, _, _ in checksums} == set(config["datasets"])
    for name, path, digest in checksums:
        assert path == config["datasets"][name]["path"]
        assert digest == hashlib.sha256((small_run / path).read_bytes()).hexdigest(), name
    table = re.search(r'<table id="versions">(.*?)</table>', page, re.S).group(1)
    versions = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", table))
    assert versions.pop("python") == platform.python_version()
    assert versions and all(importlib.metadata.version(name) == v for name, v in versions.items()), versions
    for package in ["glmflow", "snakemake", "numpy", "scipy", "pandas"]:
        assert package in versions
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=small_run, capture_output=True, text=True)
    commit = git.stdout.strip() if git.returncode == 0 else "none (not a git checkout)"
    assert f"git commit {commit}." in page


def test_small_run_writes_every_output(small_run):
    config = yaml.safe_load(SMALL_CONFIG.read_text())
    results = small_run / "results"
    for model in config["models"]:
        for name in ["tidy.csv", "glance.json", "summary.txt", "augment.csv", "vcov.csv"]:
            assert (results / "models" / model / name).is_file(), (model, name)
        assert json.loads((results / "checks" / f"likelihood_{model}.json").read_text())["ok"], model
    # the declared integer-coded factor pclass is a factor in the mixed model's grouping
    assert len(pd.read_csv(results / "models" / "glmm_class" / "ranef.csv")) == 3
    effects = pd.read_csv(results / "interpretation" / "predictions" / "fare_by_sex.csv")
    assert effects[["sex", "fare"]].astype(str).values.tolist() == [
        ["female", "0.0"], ["male", "0.0"], ["female", "100.0"], ["male", "100.0"]
    ]  # fmt: skip
    summary = pd.read_csv(results / "simulation" / "summary.csv")
    assert len(summary) == 4 and (summary["replicates"] == 200).all()
    assert (results / "report.html").is_file() and (results / "provenance.html").is_file()
    # BLAS and numba thread pools follow each rule's `threads` (glmflow.job.start)
    assert "INFO threads 1 (OPENBLAS_NUM_THREADS=1)" in (small_run / "logs" / "models" / "glm_fare.log").read_text()


def test_an_aliased_mixed_model_is_fitted_as_lme4_fits_it(small_run):
    """I(2 * fare) dropped with lme4's message, which reaches glance.json, summary.txt and the
    report; the estimates those of lme4 (tests/r/glmm_user.R), checked independently too."""
    reference = json.loads((ROOT / "tests" / "r" / "glmm_user_reference.json").read_text())["workflow"]
    reference = reference["glmm_aliased"]
    folder, message = small_run / "results" / "models" / "glmm_aliased", reference["messages"][0]
    glance = json.loads((folder / "glance.json").read_text())
    assert glance["warnings"][0] == message and glance["dropped_columns"] == reference["dropped"]
    assert glance["separation"] == {}
    tidy = pd.read_csv(folder / "tidy.csv")
    assert list(tidy["term"]) == reference["term"]
    assert_close(tidy["estimate"], [float(v) for v in reference["beta"]], 1e-5, "aliased estimates")
    assert_close(glance["logLik"], float(reference["logLik"]), 1e-6, "aliased logLik")
    assert list(pd.read_csv(folder / "vcov.csv").columns[1:]) == reference["term"]
    assert f"fit warnings:\n{message}\n" in (folder / "summary.txt").read_text()
    assert message in (small_run / "results" / "report.html").read_text()
    assert json.loads((small_run / "results" / "checks" / "likelihood_glmm_aliased.json").read_text())["ok"]


def test_second_run_does_nothing(small_run):
    assert planned_jobs(small_run) == set()


def test_the_config_checks_run_again_exactly_when_what_they_read_changes(small_run, tmp_path):
    """glmflow.plan: an unchanged workflow skips the config checks (0.36 s of every start);
    a changed config, or a touched data file, runs them again."""
    directory = tmp_path / "checked"
    shutil.copytree(small_run, directory, symlinks=True)
    checked = directory / ".snakemake" / "glmflow" / "config-checked"
    key = checked.read_text()
    assert planned_jobs(directory) == set() and checked.read_text() == key
    os.utime(directory / "resources" / "titanic_train.csv")
    assert planned_jobs(directory) == set() and checked.read_text() != key
    key = checked.read_text()
    edit_config(directory, lambda c: c["models"]["glm_fare"].update(filter="fares > 3"))
    result = snakemake(directory, "-n", check=False)
    message = "models.glm_fare.filter: 'fares > 3': 'fares' not a column"
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert checked.read_text() == key  # a config that fails is never remembered as checked


def test_a_checked_config_comes_back_with_the_defaults_validate_filled_in(small_run, tmp_path, monkeypatch):
    """What an unchanged workflow uses instead of validating again: the config as validate()
    left it, only under the same key; a config JSON cannot give back is never kept."""
    from snakemake.utils import validate

    from glmflow import plan

    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((small_run / "config.yaml").read_text())
    schema = small_run / "workflow" / "schemas" / "config.schema.yaml"
    key = plan.check_key(config, schema, small_run)
    validated = json.loads(json.dumps(config))
    validate(validated, str(schema))
    assert validated != config  # the schema has defaults to fill in
    plan.remember_checked(key, validated)
    assert plan.checked_config(key) == validated
    assert plan.checked_config("another key") is None and plan.checked_config(None) is None
    dated = dict(validated, note=__import__("datetime").date(2026, 11, 26))
    plan.remember_checked("dated", dated)
    assert plan.checked_config("dated") is None and plan.checked_config(key) == validated


def test_changing_one_model_reruns_only_that_model(small_run, tmp_path):
    directory = tmp_path / "copy"  # the finished run's copy: other tests (and workers) read small_run
    shutil.copytree(small_run, directory, symlinks=True)
    original = (directory / "config.yaml").read_text()
    edit_config(directory, lambda c: c["models"]["glm_sex_fare"].update(formula="survived ~ 1 + sex * fare"))
    assert planned_jobs(directory) == {
        ("fit_model", "model=glm_sex_fare"),
        ("likelihood_check", "model=glm_sex_fare"),
        ("compare_models", "name=sex_effect"),
        ("compare_models", "name=sex_steps"),
        ("predict", "name=fare_by_sex"),
        ("figure_fit", "name=glm_sex_fare"),
        ("report", ""),
        ("provenance", ""),
    }
    (directory / "config.yaml").write_text(original)  # the change undone: nothing to do again
    assert planned_jobs(directory) == set()


def test_changing_a_dataset_reruns_its_jobs(small_run, tmp_path):
    directory = tmp_path / "copy"
    shutil.copytree(small_run, directory, symlinks=True)
    edit_config(directory, lambda c: c["datasets"]["titanic"].update(filter="fare > 0"))
    planned = planned_jobs(directory)
    assert ("clean_data", "dataset=titanic") in planned
    assert {rule for rule, _ in planned} >= {"fit_model", "fit_glmm", "predict", "count_table"}
    assert not {rule for rule, _ in planned} & {"simulate_cell", "gather_simulation", "simulate_demo"}


@pytest.mark.slow
def test_two_full_runs_give_identical_results(finished_run, tmp_path):
    second = copy_workflow(tmp_path / "second")
    snakemake(second, fresh=True)
    assert result_hashes(finished_run) == result_hashes(second)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["models"]["glm_fare"].update(formula="survived ~ 1 + fares"), "models.glm_fare.formula"),
        (lambda c: c["models"]["glm_fare"].update(dataset="titanics"), "models.glm_fare.dataset"),
        (lambda c: c["models"]["glm_fare"].update(family="gamma"), "family"),
        (
            lambda c: c["comparisons"]["sex_effect"].update(augmented="nope"),
            "comparisons.sex_effect.augmented",
        ),
        (lambda c: c["datasets"]["titanic"].update(path="resources/missing.csv"), "datasets.titanic.path"),
        (
            lambda c: c["interpretation"]["counts"]["survival_by_sex"].update(by=["gender"]),
            "counts.survival_by_sex",
        ),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, change, message):
    directory = copy_workflow(tmp_path / "bad")
    edit_config(directory, change)
    result = snakemake(directory, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (directory / "results").exists()


def test_checksum_mismatch_fails_the_data_job_and_leaves_nothing(tmp_path):
    directory = copy_workflow(tmp_path / "tampered")
    with (directory / "resources" / "titanic_train.csv").open("a") as handle:
        handle.write('892,1,3,"Extra, Mr. A",male,30,0,0,X,8.05,,S\n')
    result = snakemake(directory, "results/data/titanic.parquet", check=False)
    assert result.returncode != 0
    assert "titanic_train.csv: sha256 is" in result.stdout + result.stderr
    assert not (directory / "results" / "data" / "titanic.parquet").exists()


def test_general_mixed_models_run_in_the_workflow(finished_run):
    """The crossed and random-slope models of config.yaml: VarCorr as lme4's, the
    conditional modes per factor and term, the independent likelihood check."""
    shared = json.loads((ROOT / "tests" / "reference" / "glmm_general_reference.json").read_text())
    for model, reference in [("glmm_verbagg_crossed", "verbagg_crossed"), ("glmm_contraception_slope",
                                                                          "contraception_slope")]:  # fmt: skip
        folder = finished_run / "results" / "models" / model
        glance = json.loads((folder / "glance.json").read_text())
        exact = shared[reference]["exact"]
        assert glance["deviance"] <= min(exact["m2ll"], shared[reference]["glmmTMB"]["m2ll"]) + 1e-6
        assert glance["n_groups"] == shared[reference]["ngroups"] and not glance["singular"]
        varcorr = pd.read_csv(folder / "varcorr.csv")
        assert np.allclose(varcorr["vcov"], exact["varcorr"]["vcov"], rtol=1e-3)
        ranef = pd.read_csv(folder / "ranef.csv")
        terms_per_level = 2 if model == "glmm_contraception_slope" else 1  # (urban | district): intercept, urbanY
        assert len(ranef) == sum(n * terms_per_level for n in glance["n_groups"].values())
        check = json.loads((finished_run / "results" / "checks" / f"likelihood_{model}.json").read_text())
        assert check["ok"] and abs(check["difference"]) < 1e-8


def test_a_gamma_mixed_model_runs_in_the_workflow(finished_run):
    """A family with a dispersion as lme4's glmer fits it (tests/r/glmm_general.R's gamma_log):
    its optimum, sigma, VarCorr with the Residual row, the independent likelihood check."""
    reference = json.loads((ROOT / "tests" / "r" / "glmm_general_reference.json").read_text())["gamma_log"]
    folder = finished_run / "results" / "models" / "glmm_language_gamma"
    glance = json.loads((folder / "glance.json").read_text())
    assert float(reference["deviance"]) - 1e-4 <= glance["deviance"] <= float(reference["deviance"]) + 1e-6
    assert abs(glance["sigma"] - float(reference["sigma"])) <= 1e-4 * float(reference["sigma"])
    assert glance["df"] == 5 and glance["family"] == "Gamma" and glance["link"] == "log"
    varcorr = pd.read_csv(folder / "varcorr.csv")
    assert list(varcorr["grp"]) == ["school_nr", "Residual"]
    assert np.allclose(varcorr["vcov"], [float(v) for v in reference["varcorr"]["vcov"]], rtol=1e-3)
    assert "Residual" in (folder / "summary.txt").read_text()
    check = json.loads((finished_run / "results" / "checks" / "likelihood_glmm_language_gamma.json").read_text())
    assert check["ok"] and abs(check["difference"]) < 1e-8


def test_predict_and_compare_run_for_a_mixed_model(tmp_path):
    """The predict job reads a mixed model's tidy.csv and vcov.csv (fit_glmm's), the compare job
    its glance and augment: one targeted run of the small config, against the same calls in
    process (their numbers are checked against R in tests/test_grids_mixed.py)."""
    from glmflow.comparisons import compare_models
    from glmflow.datafile import read_dataset
    from glmflow.interpret import predictions

    directory = copy_workflow(tmp_path / "mixed", SMALL_CONFIG)
    glm = {"dataset": "titanic", "formula": "survived ~ sex", "family": "binomial"}
    prediction = {"model": "glmm_class", "at": {"sex": []}}

    def change(config):
        config["models"]["glm_sex"] = glm
        config["comparisons"]["class_effect"] = {"models": ["glm_sex", "glmm_class"]}
        config["interpretation"]["predictions"]["class_sex"] = prediction

    edit_config(directory, change)
    grid, anova = "results/interpretation/predictions/class_sex.csv", "results/comparisons/class_effect.json"
    snakemake(directory, grid, anova)
    config = yaml.safe_load((directory / "config.yaml").read_text())
    data = read_dataset(directory / "results" / "data" / "titanic.parquet")
    model = directory / "results" / "models" / "glmm_class"
    expected = predictions(data, config["models"]["glmm_class"], "glmm_class", pd.read_csv(model / "tidy.csv"),
                           pd.read_csv(model / "vcov.csv", index_col="term"), prediction["at"])  # fmt: skip
    written = pd.read_csv(directory / grid)
    assert written["sex"].tolist() == ["female", "male"]
    assert_close(written["link"], expected["link"], 1e-12, "link")
    table = json.loads((directory / anova).read_text())
    names = ["glm_sex", "glmm_class"]
    folders = [directory / "results" / "models" / name for name in names]
    again = compare_models(config["comparisons"]["class_effect"], config["models"],
                           [json.loads((f / "glance.json").read_text()) for f in folders],
                           [pd.read_csv(f / "augment.csv") for f in folders], data)  # fmt: skip
    assert table["models"] == names and table["npar"] == [2, 3] and table["Df"] == [None, 1]
    assert_close(table["Chisq"][1], again["Chisq"][1], 1e-12, "Chisq")
    assert table["Chisq"][1] > 0 and 0 <= table["p_value"][1] <= 1
