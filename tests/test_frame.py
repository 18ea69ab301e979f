"""The model frame (glmflow.frame): each fit job writes it, and the jobs after the fits
(predictions, fitted-curve figures, comparisons, the likelihood checks) read it instead of the
data. Against R (tests/r/model_frame.R -> tests/r/model_frame_reference.json): the rows of
model.frame(), the coefficients' labels, the factors' levels and contrasts, family and link."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, SMALL_CONFIG, snakemake

from glmflow.data import load_dataset
from glmflow.frame import fit_frame, model_frame, read_frame, write_frame
from glmflow.glmm import build_glmm_design, fit_glmm
from glmflow.interpret import frame_predictions, predictions
from glmflow.models import fit_model
from glmflow.plan import is_mixed
from glmflow.summaries import summary_text

REFERENCE = json.loads((ROOT / "tests" / "r" / "model_frame_reference.json").read_text())
CONFIG = yaml.safe_load(SMALL_CONFIG.read_text())
MODELS = CONFIG["models"]
# The rules whose jobs come after the fits and read their frames.
AFTER_THE_FITS = ["predict", "figure_fit", "likelihood_check", "glmm_likelihood_check", "compare_models"]


@pytest.fixture(scope="module")
def titanic():
    spec = CONFIG["datasets"]["titanic"]
    return load_dataset(ROOT / spec["path"], sha256=spec["sha256"], factors=spec["factors"], filter_=spec["filter"])


def fitter(spec):
    return fit_glmm if is_mixed(spec) else fit_model


def test_the_r_script_fits_the_small_configs_models():
    for name, spec in MODELS.items():
        assert {k: v for k, v in spec.items() if k != "dataset"} == REFERENCE[name]["spec"], name


@pytest.mark.parametrize("name", list(MODELS))
def test_fitting_the_frame_is_fitting_the_data(titanic, name):
    """The fit job fits the frame it writes: the same summary, estimates and augment as a fit
    of the whole dataset with the model's filter."""
    spec = MODELS[name]
    direct = fitter(spec)(titanic, spec, name)
    frame = model_frame(titanic, spec, name)
    fit = fit_frame(fitter(spec), frame)
    assert summary_text(fit) == summary_text(direct)
    pd.testing.assert_frame_equal(fit.tidy(), direct.tidy(), check_exact=True)
    pd.testing.assert_frame_equal(fit.augment(frame.data), direct.augment(titanic), check_exact=True)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_frame_read_back_gives_the_fits_design(titanic, tmp_path, name):
    spec = MODELS[name]
    frame = model_frame(titanic, spec, name)
    fit = fit_frame(fitter(spec), frame)
    files = tmp_path / "frame.parquet", tmp_path / "frame.json"
    write_frame(frame, fit, *files)
    first = [path.read_bytes() for path in files]
    write_frame(frame, fit, *files)
    assert [path.read_bytes() for path in files] == first  # the same bytes every time
    back = read_frame(*files)
    pd.testing.assert_frame_equal(back.data, frame.data, check_exact=True, check_categorical=True)
    if is_mixed(spec):
        design = build_glmm_design(
            spec["formula"], back.model_rows(), back.where, spec.get("weights"), spec.get("offset")
        )
        for built, fitted in zip(design.terms, fit.glmm_design.terms, strict=True):
            assert np.array_equal(built.levels, fitted.levels) and np.array_equal(built.codes, fitted.codes)
        design = design.design
    else:
        design = back.design()
    assert design.terms == fit.terms
    assert np.array_equal(design.X, fit.design.X) and np.array_equal(design.y, fit.design.y)
    assert np.array_equal(design.rows, fit.design.rows)


@pytest.mark.parametrize("name", ["glm_sex_fare", "poisson_sib_sp", "glmm_class"])
def test_predictions_from_the_frame_are_those_from_the_data(titanic, tmp_path, name):
    spec = MODELS[name]
    frame = model_frame(titanic, spec, name)
    fit = fit_frame(fitter(spec), frame)
    write_frame(frame, fit, tmp_path / "f.parquet", tmp_path / "f.json")
    at = {"sex": [], **({"age": [5, 30]} if "age" in spec["formula"] else {})}
    expected = predictions(titanic, spec, name, fit.tidy(), fit.vcov_frame(), at)
    table = frame_predictions(read_frame(tmp_path / "f.parquet", tmp_path / "f.json"), fit.tidy(),
                              fit.vcov_frame(), at)  # fmt: skip
    pd.testing.assert_frame_equal(table, expected, check_exact=True)


# --- in the workflow ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_the_fit_job_writes_rs_model_frame(small_run, name):
    """frame.json and frame.parquet of the small run against R's model.frame() of the same fit."""
    reference = REFERENCE[name]
    folder = small_run / "results" / "models" / name
    description = json.loads((folder / "frame.json").read_text())
    frame = pd.read_parquet(folder / "frame.parquet")
    assert description["rows"]["after_filter"] == reference["after_filter"] == len(frame)
    assert description["rows"]["used"] == reference["used"]
    assert description["terms"] == reference["terms"]
    assert description["levels"] == (reference["levels"] or {})
    assert description["contrasts"] == (reference["contrasts"] or {})
    assert (description["family"], description["link"]) == (reference["family"], reference["link"])
    assert description["filter"] == MODELS[name].get("filter") and "filter" not in description["spec"]
    augment = pd.read_csv(folder / "augment.csv")
    assert augment[".row"].tolist() == reference["rows"]  # the rows used, as R's row names
    assert set(reference["rows"]) <= set(frame[".row"])


def filter_applications(directory) -> dict[str, list[str]]:
    """Per filter (its config key), the job logs that say they applied it (glmflow.data.apply_filter)."""
    applied: dict[str, list[str]] = {}
    for log in sorted((directory / "logs").rglob("*.log")):
        for line in log.read_text().splitlines():
            match = re.match(r"INFO ((?:models|datasets)\.\w+\.filter)\b.*: filter '.*' keeps \d+ of \d+ rows$", line)
            if match:
                applied.setdefault(match.group(1), []).append(str(log.relative_to(directory)))
    return applied


def test_each_filter_is_applied_once_by_the_job_that_owns_it(small_run):
    """A model's filter by its fit job, a data set's by its data job, and by no other job: the
    predictions, figures, comparisons and checks read the frame."""
    expected = {f"models.{name}.filter": [f"logs/models/{name}.log"] for name, spec in MODELS.items()
                if spec.get("filter")}  # fmt: skip
    expected |= {f"datasets.{name}.filter": [f"logs/data/{name}.log"] for name, spec in CONFIG["datasets"].items()
                 if spec.get("filter")}  # fmt: skip
    assert len(expected) == 3  # two models' filters and the data set's
    assert filter_applications(small_run) == expected


def test_the_jobs_after_the_fits_never_read_the_data(small_run, tmp_path):
    """The cleaned data and the simulated data overwritten behind Snakemake's back (its rerun
    triggers do not look at a file's content, and its time is put back), then every job after the fits forced to run
    again: each writes the same bytes as before, from the frames."""
    directory = tmp_path / "frames"
    shutil.copytree(small_run, directory, symlinks=True)
    results = directory / "results"
    targets = sorted(
        [
            *results.glob("interpretation/predictions/*.csv"),
            *results.glob("figures/fit_*.svg"),
            *results.glob("checks/likelihood_*.json"),
            *results.glob("comparisons/*.json"),
        ]  # fmt: skip
    )
    before = {path: path.read_bytes() for path in targets}
    for data in [results / "data" / "titanic.parquet", results / "simulation" / "demo" / "data.csv"]:
        times = data.stat()
        data.write_bytes(b"not the data: a job that reads this file fails\n")
        os.utime(data, ns=(times.st_atime_ns, times.st_mtime_ns))  # Snakemake sees no update
    relative = [str(path.relative_to(directory)) for path in targets]
    result = snakemake(directory, "--forcerun", *AFTER_THE_FITS, "--", *relative)
    ran = set(re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, re.M))
    assert ran == set(AFTER_THE_FITS), ran
    assert {path: path.read_bytes() for path in targets} == before
