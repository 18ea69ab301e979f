"""glmflow used as a Snakemake module by another project, and a user's own config run alone:
the workflow's files (schema, scripts, captions, templates) come from the checkout, the data and
every result from the project where ``snakemake`` runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import ROOT, copy_workflow, planned_jobs, snakemake

from glmflow import jobserver
from glmflow.report import digits

# The user's project: their own names, so that nothing here can be the chapter's outputs.
USER_CONFIG = yaml.safe_load("""
datasets:
  passengers: {path: data/passengers.csv, clean_names: true, factors: [sex, pclass]}
models:
  survival: {dataset: passengers, formula: "survived ~ sex * fare", family: binomial}
  survival_by_class: {dataset: passengers, formula: "survived ~ sex + (1 | pclass)", family: binomial}
""")
# README: Use as a Snakemake module, with the checkout's Snakefile as a local path.
USER_SNAKEFILE = """\
configfile: "config/config.yaml"


module glmflow:
    snakefile: "{snakefile}"
    config: config


use rule * from glmflow as glmflow_*
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A new project with its own data and config, run once with ``snakemake --cores 2``."""
    directory = tmp_path_factory.mktemp("module") / "my_analysis"
    (directory / "config").mkdir(parents=True)
    (directory / "data").mkdir()
    shutil.copy(ROOT / "resources" / "titanic_train.csv", directory / "data" / "passengers.csv")
    (directory / "config" / "config.yaml").write_text(yaml.safe_dump(USER_CONFIG, sort_keys=False))
    (directory / "Snakefile").write_text(USER_SNAKEFILE.format(snakefile=ROOT / "Snakefile"))
    # Reruns by content: the project's own default profile, a copy of glmflow's (README)
    (directory / "profiles" / "default").mkdir(parents=True)
    shutil.copy(ROOT / "workflow" / "profiles" / "default" / "config.yaml", directory / "profiles" / "default")
    result = snakemake(directory)
    return directory, result.stdout + result.stderr


def ran_rules(log: str) -> set[str]:
    return set(re.findall(r"^(?:local)?rule (\w+):", log, flags=re.MULTILINE))


def test_the_prefixed_rules_run(project):
    _, log = project
    assert {
        "glmflow_clean_data",
        "glmflow_fit_model",
        "glmflow_fit_glmm",
        "glmflow_likelihood_check",
        "glmflow_glmm_likelihood_check",
        "glmflow_figure_caterpillar",
        "glmflow_report",
        "glmflow_provenance",
        "glmflow_all",
    } <= ran_rules(log)
    # the cheap steps stay local under their new names (a cluster run would not submit them)
    assert "localrules directive specifies rules that are not present" not in log


def test_results_are_in_the_project_not_in_the_checkout(project):
    directory, _ = project
    results = directory / "results"
    for model in ["survival", "survival_by_class"]:
        for name in ["tidy.csv", "glance.json", "summary.txt", "augment.csv", "vcov.csv"]:
            assert (results / "models" / model / name).is_file()
        assert (results / "checks" / f"likelihood_{model}.json").is_file()
        assert not (ROOT / "results" / "models" / model).exists()
    assert (results / "models" / "survival_by_class" / "varcorr.csv").is_file()
    assert (results / "data" / "passengers.parquet").is_file()
    log = (directory / "logs" / "data" / "passengers.log").read_text()
    assert "rule glmflow_clean_data" in log
    if jobserver.enabled():  # the warm job server ran it, in the project's directory
        assert "forked by the glmflow job server" in log
    assert not (ROOT / "results" / "data" / "passengers.parquet").exists()


def test_the_report_renders_the_users_models(project):
    directory, _ = project
    page = (directory / "results" / "report.html").read_text()
    assert page.rstrip().endswith("</html>")
    for model in ["survival", "survival_by_class"]:
        tidy = pd.read_csv(directory / "results" / "models" / model / "tidy.csv")
        # each coefficient under its term, at the report's 5 significant digits
        for text in [f'id="coefficients-{model}"', *tidy["term"], *digits(tidy["estimate"], 5)]:
            assert text in page, (model, text)
    assert 'id="varcorr-survival_by_class"' in page and 'id="figure-caterpillar_survival_by_class"' in page


def test_provenance_names_the_workflows_commit(project):
    """The commit is the checkout's that ran (the project here is no git repository)."""
    directory, _ = project
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if commit.returncode != 0:
        pytest.skip("the checkout is not a git repository")
    assert f"git commit {commit.stdout.strip()}" in (directory / "results" / "provenance.html").read_text()


def test_snakemakes_report_finds_the_captions(project):
    directory, _ = project
    snakemake(directory, "--report", "results/workflow-report.html")
    assert (directory / "results" / "workflow-report.html").stat().st_size > 0


def test_second_run_does_nothing(project):
    directory, _ = project
    assert planned_jobs(directory) == set()
    assert "Nothing to be done" in snakemake(directory).stderr


def test_the_projects_profile_is_used_and_touching_inputs_reruns_nothing(project):
    """The project's copy of glmflow's default profile (reruns by content) is read, and newer
    data, config and Snakefile than the results rerun nothing."""
    directory, log = project
    assert "Using workflow specific profile profiles/default" in log
    for path in [directory / "data" / "passengers.csv", directory / "config" / "config.yaml", directory / "Snakefile"]:
        os.utime(path)
    assert planned_jobs(directory) == set()


def test_a_missing_config_yaml_says_how_to_give_one(tmp_path):
    result = snakemake(tmp_path, "--snakefile", str(ROOT / "Snakefile"), "--dry-run", check=False)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert f"config.yaml: not found in {tmp_path.resolve()}" in message and "--configfile my.yaml" in message


@pytest.mark.parametrize("where", ["checkout", "own_directory"])
def test_configfile_alone_runs_only_the_users_config(tmp_path, where):
    """``--configfile`` replaces config.yaml (README: Your own data), in a copy of the checkout
    and from a directory of one's own with ``--snakefile``: the chapter's datasets and models
    are not planned."""
    if where == "checkout":
        directory, arguments = copy_workflow(tmp_path / "checkout"), []
    else:
        directory, arguments = tmp_path / "mine", ["--snakefile", str(ROOT / "Snakefile")]
    (directory / "data").mkdir(parents=True)
    shutil.copy(ROOT / "resources" / "titanic_train.csv", directory / "data" / "passengers.csv")
    (directory / "mine.yaml").write_text(yaml.safe_dump(USER_CONFIG, sort_keys=False))
    planned = planned_jobs(directory, *arguments, "--configfile", "mine.yaml")
    assert ("clean_data", "dataset=passengers") in planned
    assert ("fit_glmm", "model=survival_by_class") in planned
    values = {pair.split("=", 1)[1] for _, wildcards in planned for pair in wildcards.split(", ") if pair}
    chapter = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert values.isdisjoint([*chapter["datasets"], *chapter["models"]]), values
    assert {rule for rule, _ in planned}.isdisjoint({"simulate_cell", "simulate_demo", "compare_models"})
