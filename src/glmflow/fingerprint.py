"""Content fingerprints of the code a rule runs: its script and every ``glmflow`` module that
script imports, directly or through other ``glmflow`` modules.

Snakemake's own "code" rerun trigger follows a script's modification time and does not see
the package at all, so the workflow passes this fingerprint as a param instead: touching
files reruns nothing, editing ``glmflow/figures.py`` reruns the jobs whose scripts import it
(and what uses their outputs), and nothing else. Imports are read with ``ast`` (nothing is
imported or run), so this costs a few milliseconds when Snakemake parses the workflow.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    """Names of the glmflow modules a file imports (``glmflow.x``, ``from glmflow import x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "glmflow"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "glmflow":
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    candidates = [PACKAGE.joinpath(*parts).with_suffix(".py"), PACKAGE.joinpath(*parts, "__init__.py")]
    if not parts:
        candidates = [PACKAGE / "__init__.py"]
    return next((path for path in candidates if path.is_file()), None)


@cache
def code_files(script: str) -> tuple[Path, ...]:
    """The script and the files of every glmflow module it reaches, sorted."""
    seen: set[Path] = set()
    pending = [Path(script).resolve()]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imported_modules(path):
            file = _module_file(module)
            if file is not None and file not in seen:
                pending.append(file)
    templates = PACKAGE / "templates"
    if any(path.name == "report.py" for path in seen) and templates.is_dir():
        seen |= set(templates.glob("*.j2"))  # the report's templates are its code too
    return tuple(sorted(seen))


@cache
def code_fingerprint(script: str) -> str:
    """sha256 (16 hex digits) of the content of ``code_files(script)``, each file under a name
    that does not depend on where the checkout or the package lies (``glmflow/figures.py``, the
    script's file name), in the order of those names.

    Sorting by absolute path made the digest depend on the location: a workflow copied to
    /tmp/... with the package installed from /ciB/src hashed the script first, the same files
    under one directory hashed it last, so every job reran (CI, stop 15)."""
    named = sorted((_location_free_name(path), path) for path in code_files(script))
    digest = hashlib.sha256()
    for name, path in named:
        digest.update(f"{name}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _location_free_name(path: Path) -> str:
    if path.is_relative_to(PACKAGE.parent):
        return path.relative_to(PACKAGE.parent).as_posix()
    return f"script/{path.name}"
