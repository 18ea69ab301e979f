"""R's number formatting, on values whose R output was checked in R 4.2."""

from glmflow.rdeparse import deparse_call
from glmflow.rformat import format_c, format_pval, format_real, r_round, zapsmall


def test_format_real_common_decimals_and_scientific():
    assert format_real([-0.94133, 0.095129, 0.015197, 0.002232], 4) == [
        "-0.941330",
        " 0.095129",
        " 0.015197",
        " 0.002232",
    ]
    assert format_real([6.120189e-15], 3) == ["6.12e-15"]
    assert format_real([1186.655, 917.804], 5) == ["1186.7", " 917.8"]
    assert format_real([0.60835], 4) == ["0.6083"]  # 0.60835 is 0.608349999... in binary


def test_format_pval_as_r():
    assert format_pval([1.9e-51, 6.12e-15], 3) == ["< 2e-16", "6.12e-15"]
    assert format_pval([0.369076, 1.2e-31], 3) == ["0.369", "<2e-16"]
    assert format_pval([0.0315841, 7.8e-20, 0.000215, 0.0502524], 3) == [
        "0.031584",
        "< 2e-16",
        "0.000215",
        "0.050252",
    ]


def test_rounding_and_zapsmall_follow_r():
    assert r_round([0.15, -0.60835], 1).tolist() == [0.1, -0.6]
    assert r_round([2.5, 0.5, 3.5], 0).tolist() == [2.0, 0.0, 4.0]
    assert zapsmall([-2.152369115722911, -0.608351854344215, 2.392856643974444], 5).tolist() == [
        -2.15237,
        -0.60835,
        2.39286,
    ]


def test_format_c_pads_to_digits_plus_one():
    assert [format_c(v, 4) for v in [144.0412, 63.03, 0.06621, 5]] == ["  144", "63.03", "0.06621", "    5"]


def test_deparse_breaks_after_sixty_bytes():
    call = deparse_call("glm", [("formula", "survived ~ 1 + sex * fare"), ("family", '"binomial"'), ("data", "df")])
    assert call == 'glm(formula = survived ~ 1 + sex * fare, family = "binomial", \n    data = df)'
