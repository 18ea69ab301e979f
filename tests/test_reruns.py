"""Reruns follow content: what Snakemake plans (--dry-run) after each kind of change,
on a finished run of the small config: with its own copy of the glmflow package for the changes
to code (``run_with_package``; each dry run a fresh Snakemake process that imports the copy),
with the installed package, whose content is the same, for the changes to config and data
(``run``; dry runs forked from tests/forked_snakemake.py's server)."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest
from conftest import ROOT, edit_config, planned_jobs, snakemake

PACKAGE_FILES = shutil.ignore_patterns("__pycache__", "*.egg-info")


@pytest.fixture(scope="module")
def run(small_run, tmp_path_factory):
    directory = tmp_path_factory.mktemp("reruns") / "run"
    shutil.copytree(small_run, directory, symlinks=True)
    assert planned_jobs(directory) == set()
    return directory


@pytest.fixture(scope="module")
def run_with_package(small_run, tmp_path_factory):
    directory = tmp_path_factory.mktemp("reruns") / "code"
    shutil.copytree(small_run, directory, symlinks=True)
    shutil.copytree(ROOT / "src", directory / "src", ignore=PACKAGE_FILES)
    assert planned_jobs(directory) == set()  # the package copy has the same content: nothing to do
    return directory


def rules(planned):
    return {rule for rule, _ in planned}


def test_touching_every_file_reruns_nothing(run_with_package):
    for path in run_with_package.rglob("*"):
        if path.is_file() and ".snakemake" not in path.parts:
            os.utime(path)
    assert planned_jobs(run_with_package) == set()


def edited(path, text="\n# edited\n"):
    original = path.read_text()
    path.write_text(original + text)
    return original


def test_editing_the_figure_code_reruns_the_figures_only(run_with_package):
    path = run_with_package / "src" / "glmflow" / "figures.py"
    original = edited(path)
    try:
        planned = planned_jobs(run_with_package)
        assert rules(planned) == {"figure_fit", "figure_proportions", "figure_study", "figure_caterpillar",
                                  "report", "provenance"}  # fmt: skip
        assert len(planned) == 8  # 6 figures (two fitted curves, bars, study, two caterpillars), report, provenance
    finally:
        path.write_text(original)
    assert planned_jobs(run_with_package) == set()


def test_editing_the_mixed_model_code_reruns_the_mixed_models_only(run_with_package):
    path = run_with_package / "src" / "glmflow" / "glmm" / "pirls.py"
    original = edited(path)
    try:
        assert planned_jobs(run_with_package) == {
            ("compile_kernels", "kernels=mixed_models"),
            ("fit_glmm", "model=glmm_class"),
            ("glmm_likelihood_check", "model=glmm_class"),
            ("figure_caterpillar", "model=glmm_class"),
            ("fit_glmm", "model=glmm_aliased"),
            ("glmm_likelihood_check", "model=glmm_aliased"),
            ("figure_caterpillar", "model=glmm_aliased"),
            ("report", ""),
            ("provenance", ""),
        }
    finally:
        path.write_text(original)


def test_editing_the_studys_kernels_reruns_their_compile_job_not_the_mixed_models(run_with_package):
    """Each compile_kernels job's fingerprint holds its own group's code (glmflow.kernels)."""
    path = run_with_package / "src" / "glmflow" / "philox.py"
    original = edited(path)
    try:
        planned = planned_jobs(run_with_package)
        assert ("compile_kernels", "kernels=study") in planned and "simulate_cell" in rules(planned)
        assert not {"fit_glmm", "fit_model"} & rules(planned)
        assert ("compile_kernels", "kernels=mixed_models") not in planned
    finally:
        path.write_text(original)


def test_editing_a_data_file_with_its_new_checksum_reruns_its_jobs(run):
    path = run / "resources" / "titanic_train.csv"
    original = path.read_bytes()
    config = (run / "config.yaml").read_text()
    try:
        path.write_bytes(original + b'892,1,3,"Extra, Mr. A",male,30,0,0,X,8.05,,S\n')
        edit_config(
            run, lambda c: c["datasets"]["titanic"].update(sha256=hashlib.sha256(path.read_bytes()).hexdigest())
        )
        planned = planned_jobs(run)
        assert ("clean_data", "dataset=titanic") in planned
        assert {"fit_model", "fit_glmm", "predict", "count_table"} <= rules(planned)
        assert not {"simulate_cell", "simulate_demo", "gather_simulation"} & rules(planned)
    finally:
        path.write_bytes(original)
        (run / "config.yaml").write_text(config)
    assert planned_jobs(run) == set()


def test_changing_a_models_filter_reruns_its_fit_then_the_jobs_that_read_its_frame(run):
    """The jobs after a fit take no part of the model's config: they rerun because the fit does,
    and read the frame it writes (glmflow.frame)."""
    config = (run / "config.yaml").read_text()
    try:
        edit_config(run, lambda c: c["models"]["poisson_sib_sp"].update(filter="age < 50"))
        assert planned_jobs(run) == {
            ("fit_model", "model=poisson_sib_sp"),
            ("likelihood_check", "model=poisson_sib_sp"),
            ("predict", "name=sib_sp_by_age"),
            ("report", ""),
            ("provenance", ""),
        }
    finally:
        (run / "config.yaml").write_text(config)
    assert planned_jobs(run) == set()


def test_adding_a_study_value_reruns_only_the_new_cells(run):
    config = (run / "config.yaml").read_text()
    try:
        edit_config(run, lambda c: c["simulation"]["study"]["b1"].append(2))
        assert planned_jobs(run) == {
            ("simulate_cell", "cell=n50_b00_b12"),
            ("simulate_cell", "cell=n100_b00_b12"),
            ("gather_simulation", ""),
            ("figure_study", ""),
            ("report", ""),
            ("provenance", ""),
        }
    finally:
        (run / "config.yaml").write_text(config)


@pytest.mark.parametrize(
    "key",
    ["interpretation.counts.survival_by_sex.digits", "interpretation.predictions.fare_by_sex.digits",
     "datasets.titanic.digits"],
)  # fmt: skip
def test_changing_a_value_only_the_report_prints_reruns_the_report_only(run, key):
    config = (run / "config.yaml").read_text()

    def change(c):
        *parents, last = key.split(".")
        for part in parents:
            c = c[part]
        c[last] = 1

    try:
        edit_config(run, change)
        assert planned_jobs(run) == {("report", ""), ("provenance", "")}
    finally:
        (run / "config.yaml").write_text(config)
    assert planned_jobs(run) == set()


def test_a_plain_run_uses_the_default_profile(run):
    result = snakemake(run, "--dry-run")
    assert "Using workflow specific profile profiles/default" in result.stdout + result.stderr
