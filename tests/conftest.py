"""Shared fixtures: the R reference values and the vendored data, loaded once."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import forked_snakemake
import pytest
import yaml
from threadpoolctl import threadpool_limits

from glmflow.data import load_dataset
from glmflow.project import copy_project

ROOT = Path(__file__).resolve().parents[1]
# The chapter's R values (R 4.2, lme4 1.1-31) and text; see tests/reference/README.md.
CHAPTER_REFERENCE = ROOT / "tests" / "reference" / "chapter_r_reference.json"
CHAPTER_TEXT = ROOT / "tests" / "reference" / "chapter.Rmd.txt"
EXTRA_REFERENCE = ROOT / "tests" / "r" / "extra_reference.json"


# The files whose tests run the workflow (seconds to a minute each) first, longest first, and the
# tests that run in process (a second or less each) after them: pytest-xdist's worksteal gives
# each worker a contiguous half of the tests and balances by taking from the end of the other's,
# so short tests at the end let both workers finish together. In the files' own order one worker
# ran test_kernels' 52 s setup last and finished 46 s after the other.
WORKFLOW_FILES_FIRST = [
    "test_kernels.py", "test_workflow.py", "test_report.py", "test_faults.py", "test_jobserver.py",
    "test_bounded.py", "test_runs.py", "test_reruns.py", "test_trust.py", "test_forked_snakemake.py",
    "test_report_layout.py", "test_module.py", "test_hardening.py", "test_retries.py",
]  # fmt: skip


@pytest.hookimpl(tryfirst=True)  # before -m deselects: every session sees every test it collected
def pytest_collection_modifyitems(items):
    # make test's SLURM session collects tests/test_slurm.py alone (the rest's collection took 5 s
    # and 6 CPU-s at its start); a test marked slurm elsewhere would run in neither session
    marked = [item for item in items if item.get_closest_marker("slurm")]
    misplaced = [item.nodeid for item in marked if item.path.name != "test_slurm.py"]
    if misplaced:
        raise pytest.UsageError(f"tests marked slurm outside tests/test_slurm.py, which alone make test's SLURM "
                                f"session collects: {misplaced}")  # fmt: skip
    rank = {name: position for position, name in enumerate(WORKFLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file's own order kept


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    """The tests' own fits on one BLAS thread, as the workflow's jobs run theirs (threads: 1):
    OpenBLAS's idle threads spin between calls, and under `make test` (two workers and the SLURM
    tests on two cores) that spinning took the other processes' CPU."""
    # test_differential alone: 59.6 CPU-s with OpenBLAS's two threads, 46.8 with one
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.fixture(scope="session")
def r_ref():
    return json.loads(CHAPTER_REFERENCE.read_text())


@pytest.fixture(scope="session")
def extra_ref():
    return json.loads(EXTRA_REFERENCE.read_text())


@pytest.fixture(scope="session")
def chapter_text():
    return CHAPTER_TEXT.read_text()


@pytest.fixture(scope="session")
def titanic(config):
    spec = config["datasets"]["titanic"]
    return load_dataset(ROOT / spec["path"], sha256=spec["sha256"], factors=spec["factors"])


@pytest.fixture(scope="session")
def bdf(config):
    spec = config["datasets"]["bdf"]
    return load_dataset(ROOT / spec["path"], sha256=spec["sha256"], factors=spec["factors"], filter_=spec["filter"])


def assert_close(actual, expected, rtol, what=""):
    """Relative closeness elementwise, with the worst offender in the message."""
    import numpy as np

    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    relative = np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-300)
    worst = int(np.argmax(relative))
    assert relative.max() <= rtol, (
        f"{what}: relative error {relative.max():.3g} > {rtol:g} at {worst}: "
        f"{actual.ravel()[worst]!r} vs R {expected.ravel()[worst]!r}"
    )


# --- the real Snakemake on a temporary copy of the workflow ---------------------------------

# The small config (one model of each kind, a 2 x 2 study): for workflow tests that do not
# need the chapter's numbers. Tests on the full config are marked `slow` (CI runs them too).
SMALL_CONFIG = ROOT / "tests" / "config" / "small.yaml"
copy_workflow = copy_project


def snakemake(directory: Path, *arguments: str, check: bool = True, fresh: bool = False) -> subprocess.CompletedProcess:
    """The real Snakemake in ``directory``, forked from tests/forked_snakemake.py's server; in a
    process of its own where ``fresh`` (a string hash seed of its own, so another job order:
    for the tests that two runs agree) or where a ``src/`` there (a copy of the package, for
    tests that edit it) is imported instead of the installed one."""
    arguments = ("--cores", "2", *arguments)
    env = dict(os.environ)
    edited = (directory / "src" / "glmflow").is_dir()
    if edited:
        env["PYTHONPATH"] = str(directory / "src")
    if fresh or edited:
        command = [sys.executable, "-m", "snakemake", *arguments]
        result = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=900, env=env)
    else:  # the same command line, forked from a process that has imported Snakemake
        result = forked_snakemake.run(list(arguments), directory, env, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def planned_jobs(directory: Path, *arguments: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run plans, but the `all` target (and its module-prefixed
    name, glmflow_all)."""
    output = snakemake(directory, "--dry-run", *arguments).stdout
    jobs = set()
    for block in re.split(r"\n(?=rule \w+:)", output):
        match = re.match(r"rule (\w+):", block)
        if match and match.group(1) not in {"all", "glmflow_all"}:
            wildcards = re.search(r"wildcards: (.*)", block)
            jobs.add((match.group(1), wildcards.group(1) if wildcards else ""))
    return jobs


def edit_config(directory: Path, change) -> None:
    path = directory / "config.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def shared_run(tmp_path_factory, name: str, config: Path | None = None) -> Path:
    """A finished run of the workflow, made once per test session: under pytest-xdist by the
    first worker that asks (the others wait on its lock, then read it). Tests read it or copy it,
    never change it. Under GLMFLOW_SHARED_RUNS (a directory: `make test` gives its two pytest
    sessions one) it is made once for all the sessions that name that directory."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's own base; its parent is the session's
        root = root.parent
    if os.environ.get("GLMFLOW_SHARED_RUNS"):
        root = Path(os.environ["GLMFLOW_SHARED_RUNS"])
    directory, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            snakemake(copy_workflow(directory, config))
            done.touch()
    return directory


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The whole workflow on the chapter's config (slow: mark its tests `slow`)."""
    return shared_run(tmp_path_factory, "run", None)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """The whole workflow on tests/config/small.yaml (seconds)."""
    return shared_run(tmp_path_factory, "small", SMALL_CONFIG)


def result_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file under results/, but provenance.html and its image (dates, host)."""
    changing = {"provenance.html", "provenance.svg"}
    files = sorted(p for p in (directory / "results").rglob("*") if p.is_file() and p.name not in changing)
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def assert_coverage_as_rs(summary) -> None:
    """Each study cell's Wald coverage (a summary.csv-like table: n, b0, b1, used, coverage)
    against R's own Monte Carlo of the same cell (tests/r/study_coverage.R): two independent
    binomial estimates of one coverage, compared at two-sided 0.001 Bonferroni-corrected over
    the cells. A typed window would pass SEs that are off; this one follows the replicates."""
    import numpy as np
    from scipy import stats

    cells = json.loads((ROOT / "tests" / "r" / "study_coverage_reference.json").read_text())["cells"]
    r_cells = {(c["n"], float(c["b0"]), float(c["b1"])): c for c in cells}
    z = stats.norm.ppf(1 - 0.001 / (2 * len(summary)))
    total_difference, total_variance = 0.0, 0.0
    for row in summary.itertuples():
        r = r_cells[(row.n, float(row.b0), float(row.b1))]
        hits = row.coverage * row.used
        pooled = (hits + r["covered"]) / (row.used + r["used"])
        se = np.sqrt(pooled * (1 - pooled) * (1 / row.used + 1 / r["used"]))
        difference = row.coverage - r["covered"] / r["used"]
        assert abs(difference) <= z * se, (row.n, row.b1, row.coverage, r["covered"] / r["used"], se)
        total_difference += difference
        total_variance += se**2
    # a systematic shift (SEs a few per cent off) is within each cell's noise but not the sum's
    assert abs(total_difference) <= stats.norm.ppf(1 - 0.001 / 2) * np.sqrt(total_variance), total_difference


# R's glm(survived ~ fare, binomial(link = "log")) on the Titanic data stops (no valid starting
# values): a model that passes the config check and fails in its job, the same way each time.
FAILING_MODEL = {"dataset": "titanic", "formula": "survived ~ fare", "family": "binomial", "link": "log"}


def failing_config(path: Path) -> dict:
    """tests/config/small.yaml's dataset and glm_fare, written to ``path``; the caller adds
    FAILING_MODEL to it to make a later run fail."""
    small = yaml.safe_load(SMALL_CONFIG.read_text())
    config = {"datasets": small["datasets"], "models": {"glm_fare": small["models"]["glm_fare"]}}
    path.write_text(yaml.safe_dump(config))
    return config
