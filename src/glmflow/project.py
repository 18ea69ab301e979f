"""The workflow's own files, for the tests and benchmarks that run a copy of it."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout (glmflow is installed editable from src/)
WORKFLOW_FILES = ["Snakefile", "config.yaml", "workflow", "resources", "profiles"]


def copy_project(destination: Path, config: Path | None = None) -> Path:
    """A copy of the workflow in ``destination`` (links kept as links); ``config`` replaces its
    config.yaml."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = ROOT / name
        if source.is_symlink():
            (destination / name).symlink_to(source.readlink())
        elif source.is_dir():
            shutil.copytree(source, destination / name)
        else:
            shutil.copy(source, destination / name)
    if config is not None:
        shutil.copy(config, destination / "config.yaml")
    return destination
