"""The code fingerprint that decides reruns depends on content only: not on where the
checkout, the package or the workflow copy lies."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys

from conftest import ROOT

from glmflow.fingerprint import _imported_modules

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


def _ast_imports(path):
    """The glmflow modules a file imports, as Python's own parser reads them."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "glmflow"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "glmflow":
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_imports_read_from_the_text_are_pythons():
    """The fingerprint reads imports with regular expressions (0.29 s of ast parsing saved at every
    snakemake start): on every module and rule script they find what ast finds, no less."""
    files = sorted((ROOT / "src" / "glmflow").rglob("*.py")) + sorted((ROOT / "workflow" / "scripts").glob("*.py"))
    assert len(files) > 40
    for path in files:
        assert _ast_imports(path) <= _imported_modules(path), path
    # more only where a string holds an import line (bench/glm.py's code for a subprocess)
    extra = [path.name for path in files if _imported_modules(path) != _ast_imports(path)]
    assert extra == ["glm.py"], extra
