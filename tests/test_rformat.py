"""R's number formatting: glmflow's formatters against R's own output for the same doubles
(tests/r/rformat.R writes tests/r/rformat_reference.json)."""

import json

import pytest
from conftest import ROOT

from glmflow.rdeparse import deparse_call
from glmflow.rformat import format_c, format_pval, format_real, r_round, zapsmall

R = json.loads((ROOT / "tests" / "r" / "rformat_reference.json").read_text())


def inputs(case) -> tuple[list[float], int]:
    """The R script writes each input as %.17g, so these are R's very doubles."""
    return [float(v) for v in case["x"]], case["digits"][0]


@pytest.mark.parametrize("case", R["format_real"])
def test_format_real_as_rs_format(case):
    values, digits = inputs(case)
    assert format_real(values, digits) == case["out"]


@pytest.mark.parametrize("case", R["format_pval"])
def test_format_pval_as_r(case):
    values, digits = inputs(case)
    assert format_pval(values, digits) == case["out"]


@pytest.mark.parametrize("case", R["r_round"])
def test_rounding_follows_r(case):
    values, digits = inputs(case)
    # exact equality: R's round() result written at 17 digits is one double
    assert r_round(values, digits).tolist() == [float(v) for v in case["out"]]


@pytest.mark.parametrize("case", R["zapsmall"])
def test_zapsmall_follows_r(case):
    values, digits = inputs(case)
    assert zapsmall(values, digits).tolist() == [float(v) for v in case["out"]]


@pytest.mark.parametrize("case", R["format_c"])
def test_format_c_as_rs_formatc(case):
    values, digits = inputs(case)
    assert [format_c(v, digits) for v in values] == case["out"]


def test_deparse_breaks_after_sixty_bytes():
    call = deparse_call("glm", [("formula", "survived ~ 1 + sex * fare"), ("family", '"binomial"'), ("data", "df")])
    assert call == R["deparse"]["call"][0]
