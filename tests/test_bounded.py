"""Absurd config is refused quickly, by its key, before any job: aliases that unfold to billions
of values, powers of numbers alone (Python computes them exactly), arithmetic on text, NaN and
Inf, names Snakemake takes for runaway wildcards, and data files without data. The workflow cases
run the real Snakemake on a copy of a finished run of tests/config/small.yaml (test_hardening's
`broken` fixture and `refused`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, edit_config, result_hashes, snakemake
from test_hardening import broken, refused  # noqa: F401 (broken: the fixture)

from glmflow.errors import GlmflowError
from glmflow.filters import FilterError, evaluate_filter, parse_filter
from glmflow.formula_syntax import check_formula_text
from glmflow.plan import MAX_CONFIG_VALUES, load_config_yaml
from glmflow.simulate import UNDEFINED_WITHOUT_FITS
from glmflow.study import CELL_BYTES_PER_REPLICATE, cell_memory

# Each level lists the one before ten times: 10^10 values from 600 bytes.
BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
)


def test_an_alias_bomb_is_refused_while_loading(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(BOMB)
    started = time.monotonic()
    with pytest.raises(GlmflowError, match=rf"line 5: its aliases \(\*name\) unfold to more than {MAX_CONFIG_VALUES}"):
        load_config_yaml(path)
    assert time.monotonic() - started < 5


def test_aliases_within_the_budget_load(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "a1: [" + ", ".join(["*a0"] * 1000) + "]\n")
    assert len(load_config_yaml(path)["a1"]) == 1000  # 11,000 values: a shared anchor is fine


def test_an_alias_bomb_stops_the_workflow_before_any_job(broken):  # noqa: F811
    output = refused(broken, text=lambda text: text + "".join("x" + line for line in BOMB.splitlines(True)))
    lines = (broken / "config.yaml").read_text().count("\n")
    assert f"config.yaml: line {lines - 5}: its aliases (*name) unfold to more than" in output  # the bomb's a5
    assert "write the values out" in output, output


NUMBERS = pd.DataFrame({"fare": [1.0, 2.0, 600.0], "name": ["a", "b", "c"]})


@pytest.mark.parametrize(
    "text, message",
    [
        ("fare < 9**9**9", "'9 ** 9 ** 9' is inf as a double (R gives Inf): write the number out"),
        ("fare * 9**9**9**9 > 1", "'9 ** 9 ** 9' is inf as a double"),
        ("fare < (10**200) * (10**200)", "'10 ** 200 * 10 ** 200' is inf as a double"),
        ("name == 'a' * 10**12", "\"'a' * 10 ** 12\": arithmetic on text is not allowed"),
    ],
)
def test_a_filter_s_absurd_arithmetic_is_refused_when_parsed(text, message):
    started = time.monotonic()
    with pytest.raises(FilterError, match=re.escape(message)):
        parse_filter(text)
    assert time.monotonic() - started < 5


def test_arithmetic_on_a_text_column_is_refused():
    """pandas would repeat every name (`name * 10**12`: a terabyte a row; R: non-numeric argument to
    binary operator). Refused by type, so a small count shows it without the risk."""
    with pytest.raises(FilterError, match="'name \\* 3': arithmetic on text is not allowed"):
        evaluate_filter(NUMBERS, "name * 3 == 'aaa'")


def test_a_filter_s_finite_arithmetic_still_works():
    assert list(evaluate_filter(NUMBERS, "fare < 2**10 and fare >= 10**-300 * 2")) == [True, True, True]
    assert list(evaluate_filter(NUMBERS, "fare * 2 < 1000 - 2 ** 3")) == [True, True, False]


@pytest.mark.parametrize(
    "formula, power",
    [
        ("y ~ I(9^9^9^9)", "9^9^9^9"),
        ("y ~ I(9**9**9)", "9^9 ^ 9"),  # ** as R reads it: a power
        ("y ~ x + I(fare^9^9^9)", "9^9^9"),
        ("y ~ I((9^9)^1024)", "(9^9)^1024"),
        ("y ~ I(2^2000)", "2^2000"),
    ],
)
def test_a_power_of_numbers_alone_is_refused_in_a_formula(formula, power):
    started = time.monotonic()
    with pytest.raises(GlmflowError, match=f"models.m: formula .*: the power {re.escape(power)} of numbers alone"):
        check_formula_text(formula, "models.m")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y ~ (a + b + c + d)^999999999", "a power of 4 term(s) beyond 4 gives the same model in R; write ^4"),
        ("y ~ a^999999999", "a^999999999: a power of 1 term(s) beyond 1"),
        ("y ~ (a + b + c + d + e + f + g)^6", "expands to 7^6 products of terms, more than 50000"),
        ("y ~ (a + b)^x", "the power (a + b)^x of terms needs a whole number exponent"),
    ],
)
def test_a_power_of_terms_is_bounded(formula, message):
    """formulaic multiplies the terms out k times: (a + b + c + d)^10 ran 40 s, ^999999999 for ever."""
    started = time.monotonic()
    with pytest.raises(GlmflowError, match=re.escape(message)):
        check_formula_text(formula, "models.m")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("formula", ["y ~ a^2", "y ~ (a + b + c + d)^4", "y ~ (a + log(b))^2", "y ~ I(fare^2)",
                                     "y ~ I(x^-1)", "y ~ I(2^10 * x)", "y ~ (a + b)^2", "y ~ I(x^(1/2))",
                                     "y ~ I(10^-3 * x)"])  # fmt: skip
def test_powers_with_a_column_or_small_numbers_pass(formula):
    check_formula_text(formula, "models.m")


def test_absurd_values_are_refused_by_the_schema_by_key(broken):  # noqa: F811
    """NaN passes the schema's bounds (every comparison with it is false); Snakemake's
    PeriodicityDetector stops on a wildcard value that ends in one substring 20 times over."""
    glm = {"dataset": "titanic", "formula": "survived ~ fare", "family": "binomial"}

    def change(config):
        config["simulation"]["demo"]["b1"] = float("nan")
        config["interpretation"]["predictions"]["fare_by_sex"]["at"]["fare"] = [0, float("inf")]
        config["models"]["m" + "x" * 20] = glm
        config["models"]["m" + "ab" * 20] = glm
        config["models"]["m" + "x" * 19] = glm  # one short of it: allowed

    output = refused(broken, change)
    assert "simulation.demo.b1: nan is not a number glmflow can use; give a finite number" in output, output
    assert "interpretation.predictions.fare_by_sex.at.fare[1]: inf is not a number glmflow can use" in output, output
    for name in ["m" + "x" * 20, "m" + "ab" * 20]:
        assert f"models: the name {name!r} is not allowed" in output, output
    assert f"'m{'x' * 19}'" not in output, output
    assert "not ending in the same character or characters 20 times over" in output, output


def test_absurd_formulas_filters_and_data_are_refused_by_key(broken):  # noqa: F811
    (broken / "resources" / "header_only.csv").write_text("y,x\n")

    def change(config):
        models = config["models"]
        models["tower"] = {"dataset": "titanic", "formula": "survived ~ I(9^9^9^9)", "family": "binomial"}
        models["poisson_sib_sp"]["filter"] = "age < 9**9**9"
        config["datasets"]["titanic"]["filter"] = "name == 'a' * 10**12"
        config["datasets"]["header_only"] = {"path": "resources/header_only.csv"}
        models["on_nothing"] = {"dataset": "header_only", "formula": "y ~ x", "family": "gaussian"}

    started = time.monotonic()
    output = refused(broken, change)
    assert time.monotonic() - started < 120  # seconds, where each of these alone ran for ever
    expected = [
        "models.tower.formula: formula 'survived ~ I(9^9^9^9)': the power 9^9^9^9 of numbers alone is refused",
        "models.poisson_sib_sp.filter: 'age < 9**9**9': '9 ** 9 ** 9' is inf as a double",
        "datasets.titanic.filter: \"name == 'a' * 10**12\": \"'a' * 10 ** 12\": arithmetic on text",
        "datasets.header_only.path: resources/header_only.csv: the file has a header line but no data rows",
    ]
    assert [message for message in expected if message not in output] == [], output


def test_a_mixed_model_beyond_memory_is_refused_before_any_job(broken):  # noqa: F811
    # two factors of 100,000 levels crossed: the dense block beyond the largest term alone is
    # at least 4 x 8 x 1e10 bytes (the config check's lower bound), more than any machine here
    n = 200_000
    rows = np.random.default_rng(3).permutation(n)
    pd.DataFrame({"y": rows % 2, "x": rows / n, "a": rows % 100_000, "b": (rows // 2) % 100_000}).to_csv(
        broken / "resources" / "huge.csv", index=False
    )

    def change(config):
        config["datasets"]["huge"] = {"path": "resources/huge.csv", "factors": ["a", "b"]}
        config["models"]["huge_glmm"] = {
            "dataset": "huge",
            "formula": "y ~ x + (1 | a) + (1 | b)",
            "family": "binomial",
        }

    output = refused(broken, change)
    assert re.search(
        r"models\.huge_glmm\.formula: the mixed model needs at least about 29\d\.\d GiB \(200000 rows; "
        r"a: 100000 levels x 1, b: 100000 levels x 1; a dense block of 100000 x 100000",
        output,
    ), output


# lme4's limits on nAGQ (tests/r/nagq_limits.R)
NAGQ = json.loads((ROOT / "tests" / "r" / "nagq_limits_reference.json").read_text())


def test_nagq_beyond_lme4_s_is_refused_by_key(broken):  # noqa: F811
    """glmer's GHrule stops beyond 100 nodes and a fraction is truncated silently: both refused."""
    mixed = {"dataset": "titanic", "formula": "survived ~ sex + (1 | pclass)", "family": "binomial"}

    def change(config):
        config["models"]["too_many"] = {**mixed, "nAGQ": NAGQ["largest_accepted"] + 1}
        config["models"]["fraction"] = {**mixed, "nAGQ": 2.5}
        config["models"]["most"] = {**mixed, "nAGQ": NAGQ["largest_accepted"]}  # allowed

    output = refused(broken, change)
    hint = f"nAGQ is a whole number of quadrature nodes from 1 to {NAGQ['largest_accepted']}, as lme4's glmer"
    assert f"models.too_many.nAGQ: 101 is greater than the maximum of 100: {hint}" in output, output
    assert f"(beyond 100, lme4 stops: '{NAGQ['beyond_largest']}'; a fraction, it truncates silently)" in output
    assert NAGQ["fraction_fits_as_its_integer"]
    assert f"models.fraction.nAGQ: 2.5 is not of type 'integer': {hint}" in output
    assert "models.most" not in output


def test_nan_and_inf_in_the_study_grid_are_refused_by_key(broken):  # noqa: F811
    def change(config):
        config["simulation"]["study"].update(b1=[0, float("nan")], b0=[float("-inf")])

    output = refused(broken, change)
    for key, value in [("b1[1]", "nan"), ("b0[0]", "-inf")]:
        assert f"simulation.study.{key}: {value} is not a number glmflow can use; give a finite number" in output


def test_a_study_that_cannot_fit_in_memory_is_refused_with_the_estimate(broken):  # noqa: F811
    replicates = 10**15
    have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    most = (have - cell_memory(0, 100)) // CELL_BYTES_PER_REPLICATE
    output = refused(broken, lambda config: config["simulation"]["study"].update(replicates=replicates))
    assert (
        f"simulation.study.replicates: {replicates} replicates at n = 100 need about "
        f"{cell_memory(replicates, 100) / 2**30:.1f} GiB in each cell's job (128 bytes a replicate, 32 a row of n), "
        f"more than this machine's {have / 2**30:.1f} GiB of memory: use at most {most} replicates"
    ) in output, output


def test_a_cell_s_memory_is_within_its_estimate():
    """The estimate the refusal gives is an upper bound of a cell job's peak, and not a loose one
    (within 2x). The peak is the bytes allocated (tracemalloc, which numpy reports to): the
    resident-size difference varied from 64 to 94 bytes a replicate between runs, as pages
    touched before count or not. Rows of 50: the per-replicate term is what matters (2e6
    replicates, 256 MB); the peak was 0.914 of the estimate at n = 50 and at n = 100, in 6 s
    instead of the 66 s n = 1000 took."""
    code = (
        "import tracemalloc\nfrom glmflow.simulate import run_cell\nfrom glmflow.study import Cell\n"
        "run_cell(7, Cell(50, 0.0, 0.5), 100)\ntracemalloc.start()\n"
        "run_cell(7, Cell(50, 0.0, 0.5), 2_000_000)\nprint(tracemalloc.get_traced_memory()[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    peak, estimate = int(result.stdout), cell_memory(2_000_000, 50)
    assert estimate / 2 <= peak <= estimate, (peak, estimate)


def test_a_study_whose_every_replicate_is_separated_is_reported(broken):  # noqa: F811
    """At n = 3 or 4 and b1 = 60 or 100 every replicate is separated: no estimate exists, and the
    report stopped on KeyError 'bias'. Each cell's row has every column, NaN where nothing was fitted."""
    before = result_hashes(broken)
    edit_config(broken, lambda c: c["simulation"]["study"].update(n=[3, 4], b1=[60, 100]))
    snakemake(broken)
    summary = pd.read_csv(broken / "results" / "simulation" / "summary.csv")
    assert (summary["separated"] == summary["replicates"]).all() and len(summary) == 4
    without_fits = [*UNDEFINED_WITHOUT_FITS, "power_without_separated", "power_without_separated_mcse"]
    assert summary.columns[summary.isna().any()].tolist() == without_fits
    assert summary[without_fits].isna().all().all()
    html = (broken / "results" / "report.html").read_text()
    separated_row = "<td>3</td>\n      <td>60.0</td>\n      <td>0</td>\n      <td>200</td>\n" + "      <td></td>\n" * 5
    assert separated_row in html  # used 0, separated 200: no estimate, bias, RMSE, ratio or coverage
    kept = [path for path in before if path.startswith(("results/models/", "results/data/"))]
    assert {path: result_hashes(broken)[path] for path in kept} == {path: before[path] for path in kept}
