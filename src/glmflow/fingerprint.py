"""Content fingerprints of the code a rule runs: its script and every ``glmflow`` module that
script imports, directly or through other ``glmflow`` modules.

Snakemake's own "code" rerun trigger follows a script's modification time and does not see
the package at all, so the workflow passes this fingerprint as a param instead: touching
files reruns nothing, editing ``glmflow/figures.py`` reruns the jobs whose scripts import it
(and what uses their outputs), and nothing else. Imports are read from the text (nothing is
imported or run), so this costs a few milliseconds when Snakemake parses the workflow.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


_IMPORT = re.compile(r"^[ \t]*import[ \t]+(glmflow[\w.]*)", re.M)
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(glmflow[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)", re.M)


@cache
def _imported_modules(path: Path) -> frozenset[str]:
    """Names of the glmflow modules a file imports (``import glmflow.x``, ``from glmflow import
    x``, ``from glmflow.x import (a, b)``), at the start of a line, inside functions too.

    Read with two regular expressions, not ``ast`` (every ``snakemake`` start runs this). A
    docstring line that looks like an import only adds a file to the fingerprint (a needless
    rerun), never drops one; ``test_fingerprint`` checks the result equals ``ast``'s on every
    module."""
    # ast's parse of the 52 files the rule scripts reach took 0.29 s of every snakemake start (a
    # no-op run was 1.9 s, goal 1.5 s); the regular expressions take 5 ms
    text = path.read_text()
    found = set(_IMPORT.findall(text))
    for module, names in _FROM_IMPORT.findall(text):
        found.add(module)
        for name in names.strip("()").replace("\n", ",").split(","):
            name = name.split("#")[0].split(" as ")[0].strip()
            if name.isidentifier():
                found.add(f"{module}.{name}")
    return frozenset(found)


@cache
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
        digest.update(f"{name}\0".encode() + _content(path) + b"\0")
    return digest.hexdigest()[:16]


@cache
def _content(path: Path) -> bytes:
    """A file's bytes, read once per process (the 18 rules' fingerprints share most files)."""
    return path.read_bytes()


def _location_free_name(path: Path) -> str:
    if path.is_relative_to(PACKAGE.parent):
        return path.relative_to(PACKAGE.parent).as_posix()
    return f"script/{path.name}"
