"""Project hygiene: pinned environments agree, linters are clean, README's commands are CI's."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

BIN = Path(sys.executable).parent


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_requirement_is_pinned():
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line), line


@pytest.mark.parametrize("env_file", sorted((ROOT / "workflow" / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_conda_envs_use_the_locked_versions(env_file):
    pins = locked_versions()
    dependencies = yaml.safe_load(env_file.read_text())["dependencies"]
    conda_pins = [d for d in dependencies if isinstance(d, str) and "=" in d and not d.startswith("python=")]
    assert conda_pins, env_file
    for dependency in conda_pins:
        name, version = dependency.split("=")
        assert pins.get(name.lower()) == version, f"{env_file.name}: {dependency} but the lock has {pins.get(name)}"


def test_every_rule_has_log_and_benchmark():
    for rules in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule )", rules.read_text()):
            if block.startswith("rule "):
                assert "    log:" in block and "    benchmark:" in block, f"{rules.name}: {block.splitlines()[0]}"
                assert "    threads:" in block, f"{rules.name}: {block.splitlines()[0]} declares no threads"
                assert "lambda" not in block, f"{rules.name}: {block.splitlines()[0]}: name the function in common.smk"


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```(?:sh|bash)?\n(.*?)```", readme, flags=re.S)[0].split("\n")
    commands = [c for c in commands if c.strip()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["snakefmt", "--check", "."],
        ["snakemake", "--lint"],
    ],
    ids=lambda c: " ".join(c),
)
def test_linters_are_clean(command):
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    if command[0] == "snakemake":
        assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_rule_scripts_start_the_job_first():
    """A rule script's first statement after its docstring hands its job to the warm job server
    (glmflow.job.start): anything imported before it (pandas: 0.4 s) would be paid in every job,
    and numpy must not load before the thread pools are sized."""
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        tree = ast.parse(script.read_text())
        body = tree.body[1:] if ast.get_docstring(tree) else tree.body
        assert ast.unparse(body[0]) == "from glmflow.job import start", script.name
        assert ast.unparse(body[1]) == "start(snakemake)", script.name
