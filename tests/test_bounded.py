"""Absurd config is refused quickly, by its key, before any job: aliases that unfold to billions
of values, powers of numbers alone (Python computes them exactly), arithmetic on text, NaN and
Inf, names Snakemake takes for runaway wildcards, and data files without data. The workflow cases
run the real Snakemake on a copy of a finished run of tests/config/small.yaml (test_hardening's
`broken` fixture and `refused`)."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest
from test_hardening import broken, refused  # noqa: F401 (broken: the fixture)

from glmflow.errors import GlmflowError
from glmflow.filters import FilterError, evaluate_filter, parse_filter
from glmflow.formula_syntax import check_formula_text
from glmflow.plan import MAX_CONFIG_VALUES, load_config_yaml

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
