"""The code fingerprint that decides reruns (issue 8) depends on content only: not on where the
checkout, the package or the workflow copy lies."""

from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import ROOT

PACKAGE_FILES = shutil.ignore_patterns("__pycache__", "*.egg-info")


def fingerprint(package_root, workflow_root, script="fit_model.py"):
    """code_fingerprint of a script in ``workflow_root`` with glmflow imported from ``package_root``."""
    code = "import sys; from glmflow.fingerprint import code_fingerprint; print(code_fingerprint(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", code, str(workflow_root / "workflow" / "scripts" / script)],
        env={"PYTHONPATH": str(package_root / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def layout(directory):
    shutil.copytree(ROOT / "src", directory / "src", ignore=PACKAGE_FILES)
    shutil.copytree(ROOT / "workflow" / "scripts", directory / "workflow" / "scripts")
    return directory


def test_the_fingerprint_does_not_depend_on_where_things_lie(tmp_path):
    a, z = layout(tmp_path / "a"), layout(tmp_path / "z")
    # package path before the script's, after it, and both in one directory (as the rerun tests)
    prints = {fingerprint(a, z), fingerprint(z, a), fingerprint(a, a), fingerprint(z, z)}
    assert len(prints) == 1, prints


def test_the_fingerprint_follows_the_content_of_imported_modules_only(tmp_path):
    a = layout(tmp_path / "a")
    before = {script: fingerprint(a, a, script) for script in ("fit_model.py", "figure_fit.py")}
    with (a / "src" / "glmflow" / "figures.py").open("a") as file:
        file.write("\n# edited\n")
    after = {script: fingerprint(a, a, script) for script in before}
    assert after["figure_fit.py"] != before["figure_fit.py"]
    assert after["fit_model.py"] == before["fit_model.py"]
