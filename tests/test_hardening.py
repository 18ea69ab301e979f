"""Config that Snakemake or the fit would take silently, or as code, is refused before any job
runs, by its key, with what to do, and no earlier result is lost. Every case runs the real
Snakemake on a copy of a finished run of tests/config/small.yaml."""

from __future__ import annotations

import shutil

import pytest
from conftest import edit_config, result_hashes, snakemake


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
