"""tests/forked_snakemake.py gives what `python -m snakemake` in a fresh process gives: the same
exit status and messages, Snakemake's own idea of the working directory, the caller's
environment and umask, and a signal's death reported as subprocess reports it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import forked_snakemake
import yaml
from conftest import SMALL_CONFIG, copy_workflow, failing_config


def both(directory, *arguments, env=None):
    env = {**os.environ, **(env or {})}
    fresh = subprocess.run([sys.executable, "-m", "snakemake", *arguments], cwd=directory, env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    forked = forked_snakemake.run(list(arguments), directory, env, timeout=300)
    return fresh, forked


def lines(text: str) -> list[str]:
    """Snakemake's output without what differs between any two runs: dates, the workflow's id,
    and the order of the jobs and of the files in a reason (set orders: Python's string hashing
    is seeded afresh in each process; forked runs share their server's seed)."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d{6}\.\d+|\[.*? \d\d:\d\d:\d\d \d{4}\]|Date: .*|Workflow ID: .*", "<when>", text)
    text = re.sub(r"(?<=: )([^:;\n]+, [^:;\n]+)", lambda m: ", ".join(sorted(m.group(1).split(", "))), text)
    return sorted(text.splitlines())


def test_a_refused_config_gives_the_same_status_and_message(tmp_path):
    config = failing_config(tmp_path / "config.yaml")
    config["models"]["glm_fare"]["formula"] = "survived ~ no_such_column"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    directory = copy_workflow(tmp_path / "refused", tmp_path / "config.yaml")
    fresh, forked = both(directory, "--cores", "1", "--dry-run")
    assert fresh.returncode == forked.returncode != 0
    assert "no_such_column" in fresh.stderr + fresh.stdout
    assert lines(forked.stdout) == lines(fresh.stdout)
    assert lines(forked.stderr) == lines(fresh.stderr)


def test_a_dry_run_plans_as_a_fresh_process_does(tmp_path):
    directory = copy_workflow(tmp_path / "plan", SMALL_CONFIG)
    fresh, forked = both(directory, "--cores", "1", "--dry-run")
    assert fresh.returncode == forked.returncode == 0
    assert f"Run directory: {directory}" in forked.stdout
    assert lines(forked.stdout) == lines(fresh.stdout)


def test_the_snakefile_sees_the_callers_process(tmp_path):
    """Directory, environment, umask, argv[0] and sys.path[0], as `python -m snakemake` has them."""
    (tmp_path / "Snakefile").write_text(
        "import os, sys\nmask = os.umask(0)\n"
        "print('SEEN', os.getcwd(), os.environ['MARK'], oct(mask), sys.argv[0], sys.path[0], file=sys.stderr)\n"
    )
    umask = os.umask(0o027)
    try:
        fresh, forked = both(tmp_path, "--cores", "1", env={"MARK": "the caller's"})
    finally:
        os.umask(umask)
    seen = [[line for line in run.stderr.splitlines() if line.startswith("SEEN")] for run in (fresh, forked)]
    assert seen[0] == seen[1] == [f"SEEN {tmp_path} the caller's 0o27 {forked_snakemake.MAIN} {tmp_path}"]


def test_a_child_killed_by_a_signal_is_reported_as_subprocess_does(tmp_path):
    (tmp_path / "Snakefile").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    fresh, forked = both(tmp_path, "--cores", "1")
    assert fresh.returncode == forked.returncode == -9
