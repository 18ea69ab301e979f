"""Config that Snakemake or the fit would take silently, or as code, is refused before any job
runs, by its key, with what to do, and no earlier result is lost. Every case runs the real
Snakemake on a copy of a finished run of tests/config/small.yaml."""

from __future__ import annotations

import json
import os
import re
import shutil

import pandas as pd
import pytest
from conftest import ROOT, edit_config, result_hashes, snakemake

from glmflow.errors import GlmflowError
from glmflow.models import fit_model
from glmflow.plan import load_config_yaml
from glmflow.rrandom import RRandom

# R's draws and messages (tests/r/simulation.R)
DRAWS = json.loads((ROOT / "tests" / "r" / "simulation_reference.json").read_text())


@pytest.fixture
def broken(small_run, tmp_path):
    """A copy of a finished small run, to break its config and check nothing is lost."""
    directory = tmp_path / "broken"
    shutil.copytree(small_run, directory, symlinks=True)
    return directory


def refused(directory, change=None, text=None) -> str:
    """Run Snakemake after a config change (a function of the parsed config, or of its text);
    assert it failed before any job with no result changed, and return what it printed."""
    before = result_hashes(directory)
    if change is not None:
        edit_config(directory, change)
    if text is not None:
        path = directory / "config.yaml"
        path.write_text(text(path.read_text()))
    result = snakemake(directory, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert result_hashes(directory) == before  # no earlier result lost or changed
    assert "nothing was run" in output
    return output


def test_yte_templating_is_refused_before_it_runs(broken, tmp_path):
    """With ``__use_yte__: true`` Snakemake's configfile: would evaluate ``?expr`` as Python."""
    marker = tmp_path / "yte-ran"

    def change(config):
        config["simulation"]["demo"]["seed"] = f"?__import__('pathlib').Path('{marker}').touch() or 1"
        return config

    output = refused(broken, text=lambda text: "__use_yte__: true\n" + text, change=change)
    assert "config.yaml: __use_yte__: YTE templating is refused (nothing was run)" in output
    assert "remove __use_yte__" in output
    assert not marker.exists()


def test_yte_templating_in_a_given_configfile_stops_the_run(broken):
    """Files of --configfile are read by Snakemake's command line, YTE and all, before the
    Snakefile runs: glmflow cannot refuse them first, but refuses the run before any job."""
    before = result_hashes(broken)
    given = broken / "my.yaml"
    given.write_text("__use_yte__: true\n" + (broken / "config.yaml").read_text())
    result = snakemake(broken, "--configfile", "my.yaml", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        f"{given}: __use_yte__: YTE templating is refused (nothing was run): Snakemake's command line has "
        "already run its ?expressions as Python code"
    ) in output, output[-3000:]
    assert "pass only files you trust to --configfile" in output
    assert result_hashes(broken) == before
    given.write_text((broken / "config.yaml").read_text())  # the same file without it runs
    assert snakemake(broken, "--configfile", "my.yaml", "--dry-run").returncode == 0


CALLS_OF_EXPRESSIONS = {
    "poly_in_i": ("survived ~ I((poly)(fare, 2))", "'(poly)'"),
    "lag": ("survived ~ (lag)(fare)", "'(lag)'"),
    "nested_parentheses": ("survived ~ ((lag))(fare)", "'((lag))'"),
    "call_of_a_call": ("survived ~ I(fare)(2)", "'I(fare)'"),
    "number": ("survived ~ 2(fare)", "'2'"),
    "random_term": ("survived ~ fare + ((lag)(fare) | pclass)", "'(lag)'"),
}


def test_a_call_needs_a_bare_allowed_name(broken):
    """A parenthesised callee slipped past the allow-list (formulaic looked `poly` up and ran it).
    Every case is a model of its own, in one run: each is named under its key."""

    def change(config):
        for name, (formula, _) in CALLS_OF_EXPRESSIONS.items():
            config["models"][name] = {"dataset": "titanic", "formula": formula, "family": "binomial"}

    output = refused(broken, change)
    for name, (formula, callee) in CALLS_OF_EXPRESSIONS.items():
        expected = (
            f"models.{name}.formula: formula {formula!r}: a call of {callee} is not allowed: call a formula "
            "function by its bare name (allowed: C, I, abs"
        )
        assert expected in output, name


def test_seeds_beyond_r_integers_are_refused(broken):
    """R's set.seed() stops beyond +-(2^31 - 1); glmflow's draws wrapped at 2^32 (seed 2^32 + 1
    drew seed 1's data). Both seeds in one run, each under its key, with R's own words."""
    r_message = DRAWS["seed_beyond_max"]

    def change(config):
        config["simulation"]["demo"]["seed"] = 2**32 + 1
        config["simulation"]["study"]["seed"] = -(2**31)

    output = refused(broken, change)
    assert r_message == "supplied seed is not a valid integer"
    for key, value, bound in [
        ("demo", 2**32 + 1, "greater than the maximum of"),
        ("study", -(2**31), "less than the minimum of"),
    ]:
        assert f"simulation.{key}.seed: {value} is {bound} " in output
    assert output.count(f"within +-2147483647 (2^31 - 1), as set.seed() takes it (beyond, R stops: '{r_message}')") == 2


def test_a_negative_seed_for_numpy_is_refused(broken):
    def change(config):
        config["simulation"]["demo"].update(seed=-5, rng="numpy")

    assert "simulation.demo.seed: -5: numpy's generator takes a seed >= 0" in refused(broken, change)


@pytest.mark.parametrize("end", ["max", "min"])
def test_the_ends_of_the_seed_range_draw_rs_numbers(end):
    """The seeds the schema lets through draw R's numbers, bit for bit, up to its ends."""
    seed = 2147483647 if end == "max" else -2147483647
    assert RRandom(seed).rnorm(20).tolist() == [float(v) for v in DRAWS[f"rnorm_seed_{end}"]]


def test_a_key_given_twice_is_refused_with_both_lines(broken):
    """YAML keeps the last of two equal keys, silently: a model given twice lost the first."""
    lines = {}

    def text(config):
        out = config.replace(
            "\nmodels:\n", '\nmodels:\n  glm_fare: {dataset: titanic, formula: "survived ~ sex", family: binomial}\n', 1
        )
        numbered = out.splitlines()
        lines["first"] = (
            numbered.index('  glm_fare: {dataset: titanic, formula: "survived ~ sex", family: binomial}') + 1
        )
        lines["second"] = next(
            i for i, line in enumerate(numbered, 1) if i > lines["first"] and line.startswith("  glm_fare:")
        )
        return out

    output = refused(broken, text=text)
    assert (
        f"config.yaml: models.glm_fare: the key is given twice, at lines {lines['first']} and {lines['second']} "
        "(nothing was run): YAML would keep the last one silently; remove one or rename it"
    ) in output


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: {b: 1, c: 2, b: 3}\n", "a.b: the key is given twice, on line 1"),
        ("a: [{k: 1}, {k: 2,\n  k: 3}]\n", "a[1].k: the key is given twice, at lines 1 and 2"),
        ("base: &b {x: 1}\na: {<<: *b, x: 2}\nc: {<<: {y: 1, y: 2}}\n", "c.y: the key is given twice, on line 3"),
        ("a: {1: x, 1.0: y}\n", "a.1.0: the key is given twice, on line 1"),
    ],
)
def test_duplicate_keys_anywhere(tmp_path, text, message):
    """Nested, in lists, equal as Python keys, inside merges; a merge's keys may be overridden."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(GlmflowError, match=re.escape(f"{path}: {message}")):
        load_config_yaml(path)


def test_a_merge_overrides_without_a_duplicate(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("base: &b {x: 1, y: 2}\na: {<<: *b, x: 3}\n")
    assert load_config_yaml(path)["a"] == {"x": 3, "y": 2}


def test_a_value_listed_twice_in_the_study_grid_is_refused(broken):
    def change(config):
        config["simulation"]["study"]["b1"] = [0, 1, 1.0]
        config["simulation"]["study"]["n"] = [50, 100, 50]

    output = refused(broken, change)
    for key, values in [("b1", "[0, 1, 1.0]"), ("n", "[50, 100, 50]")]:
        assert (
            f"simulation.study.{key}: {values} has non-unique elements: each value of the grid makes cells "
            "(jobs, files) of its own; list it once"
        ) in output


def test_close_study_values_get_cells_of_their_own(broken):
    """``:g`` labelled b1 = 0.5 and 0.5000001 alike, and one cell stood for both. A label now
    reads back as its number; the ordinary values' labels, jobs and files stay as they were."""
    cells = broken / "results" / "simulation" / "cells"
    before = {path.name: path.read_bytes() for path in cells.iterdir()}
    assert "n50_b00_b11.json" in before
    edit_config(broken, lambda c: c["simulation"]["study"].update(b1=[0, 1, 0.5, 0.5000001]))
    output = snakemake(broken, "results/simulation/summary.csv").stderr
    assert output.count("rule simulate_cell:") == 4  # the new cells only
    after = {path.name: path.read_bytes() for path in cells.iterdir()}
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {f"n{n}_b00_b1{b1}.json" for n in (50, 100) for b1 in ("0.5", "0.5000001")}
    summary = pd.read_csv(broken / "results" / "simulation" / "summary.csv")
    assert sorted(summary["b1"].tolist()) == [0, 0, 0.5, 0.5, 0.5000001, 0.5000001, 1, 1]
    assert summary["cell"].is_unique


def test_built_in_names_are_refused(broken):
    """A model or fitted-curve figure named as the simulated data's replaced the built-in figure
    (the same file) or duplicated its report ids. Both in one run, each under its key."""

    def change(config):
        config["models"]["simulation_demo"] = dict(config["models"]["glm_fare"])
        config["figures"]["fits"]["simulation_demo"] = dict(config["figures"]["fits"]["glm_sex_fare"])

    output = refused(broken, change)
    for key in ["models", "figures.fits"]:
        assert (
            f"{key}.simulation_demo: the name 'simulation_demo' is built in (the simulated data's fit and its "
            "figure): a second one would replace it or share its files and report ids; choose another name"
        ) in output


# What R says of Inf in a response or a predictor (tests/r/nonfinite.R)
NONFINITE = json.loads((ROOT / "tests" / "r" / "nonfinite_reference.json").read_text())


def test_inf_in_a_model_s_columns_is_refused_as_r_stops(broken):
    """R's lm.fit and glm.fit stop on Inf in y or x; glmflow's lm gave Inf estimates. Refused
    before any job by model, column and data row; an Inf on a row that na.omit drops is no problem."""
    (broken / "resources" / "inf.csv").write_text(
        "y,x,x_inf,w\n1,1,1,1\n2,2,-Inf,1\nInf,3,3,2\n4,4,4,1\n5,5,5,1\n3,NA,Inf,1\n"
    )

    def change(config):
        config["datasets"]["inf"] = {"path": "resources/inf.csv"}
        config["models"]["inf_y"] = {"dataset": "inf", "formula": "y ~ x", "family": "gaussian"}
        config["models"]["inf_x"] = {"dataset": "inf", "formula": "x ~ x_inf", "family": "gaussian"}
        config["models"]["inf_x_glm"] = {"dataset": "inf", "formula": "w ~ x_inf", "family": "poisson"}
        config["models"]["inf_weights"] = {
            "dataset": "inf",
            "formula": "x ~ y",
            "family": "gaussian",
            "weights": "x_inf",
            "filter": "y < 5",
        }

    output = refused(broken, change)
    assert NONFINITE["lm_y"] == NONFINITE["glm_gaussian_y"] and NONFINITE["lm_x"] == NONFINITE["glm_gaussian_x"]
    for model, column, rows, role in [
        ("inf_y", "y", "3", "y"),
        ("inf_x", "x_inf", "2", "x"),
        ("inf_x_glm", "x_inf", "2, 6", "x"),
    ]:
        assert (
            f"models.{model}.formula: column {column!r} holds Inf or -Inf in data rows {rows} (R's lm and glm stop: "
            f"{NONFINITE[f'lm_{role}']}); filter those rows out or correct the data"
        ) in output, model
    assert (
        "models.inf_weights.weights: column 'x_inf' holds Inf or -Inf in data rows 2 (weights must be finite)" in output
    )


def test_a_transformed_column_that_is_not_finite_stops_the_fit_as_r():
    """What the config check cannot see without building the design (log(0)): the fit says it,
    in R's words, naming the model matrix's column and the data row."""
    data = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 7], "y": [1.0, 2, float("inf"), 4, 5, 3]})
    spec = {"dataset": "d", "formula": "x ~ log(x - 1)", "family": "gaussian"}
    with pytest.raises(
        GlmflowError, match=re.escape(f"{NONFINITE['glm_log_of_zero_x']} (R's lm.fit and glm.fit stop")
    ) as error:
        fit_model(data, spec, "m")
    assert "'log(x - 1)' not finite in data rows 1; filter those rows out" in str(error.value)
    with pytest.raises(GlmflowError, match=re.escape(f"{NONFINITE['glm_gaussian_y']} (R's lm.fit")):
        fit_model(data, {**spec, "formula": "y ~ x", "family": "gaussian", "link": "log"}, "m")


def test_data_paths_outside_the_project_and_odd_files_are_refused(broken, tmp_path):
    """A config could make the workflow read any file (and its errors echoed the first line):
    paths that resolve outside the project are refused unless the dataset opts in, and only a
    regular file is read. All in one run, each under its dataset's key, no content printed."""
    secret = tmp_path / "secret.csv"
    secret.write_text("SECRET_TOKEN_1234,x\n1,2\n")
    (broken / "resources" / "link.csv").symlink_to(secret)
    os.mkfifo(broken / "resources" / "pipe.csv")  # reading it would wait for ever
    (broken / "resources" / "empty.csv").write_text("")
    (broken / "resources" / "binary.csv").write_bytes(b"y,\xff\xfex\n1,2\n")
    up = "../" * len(broken.resolve().parts)
    paths = {
        "passwd": f"{up}etc/passwd",
        "environ": "/proc/self/environ",
        "link": "resources/link.csv",
        "null": "/dev/null",
        "pipe": "resources/pipe.csv",
        "folder": "resources",
        "empty": "resources/empty.csv",
        "binary": "resources/binary.csv",
    }

    def change(config):
        for name, path in paths.items():
            config["datasets"][name] = {"path": path, "allow_outside_project": name == "null"}
            config["models"][f"model_{name}"] = {"dataset": name, "formula": "y ~ x", "family": "gaussian"}

    output = refused(broken, change)
    project = broken.resolve()
    outside = (
        "copy the file into the project, or set allow_outside_project: true for this dataset to read it where it is"
    )
    expected = {
        "passwd": f"{paths['passwd']} is outside the project directory {project}: {outside}",
        "environ": f"/proc/self/environ is outside the project directory {project} (it resolves to /proc/",
        "link": f"resources/link.csv is outside the project directory {project} (it resolves to {secret}): {outside}",
        "null": "/dev/null is not a regular file (a character device): give the path of a CSV file",
        "pipe": "resources/pipe.csv is not a regular file (a pipe): give the path of a CSV file",
        "folder": "resources is not a regular file (a directory): give the path of a CSV file",
        "empty": "resources/empty.csv: the file is empty: a CSV file needs a header line",
        "binary": "resources/binary.csv: not a UTF-8 text file: give a CSV file",
    }
    for name, message in expected.items():
        assert f"datasets.{name}.path: {message}" in output, name
    for content in ["SECRET_TOKEN", "secret_token", "root:", "root_x", "PATH=", "HOME="]:
        assert content not in output


def test_a_dataset_may_opt_in_to_a_path_outside_the_project(small_run, tmp_path):
    directory = tmp_path / "opted-in"
    shutil.copytree(small_run, directory, symlinks=True)
    outside = tmp_path / "outside.csv"
    outside.write_text("y,x\n1,2\n3,4\n")
    edit_config(
        directory, lambda c: c["datasets"].update(outside={"path": str(outside), "allow_outside_project": True})
    )
    snakemake(directory, "results/data/outside.parquet")
    assert pd.read_parquet(directory / "results" / "data" / "outside.parquet")["x"].tolist() == [2, 4]
