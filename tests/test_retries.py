"""Retries skip glmflow's own errors: a model that fails on bad input or a failed fit runs once
under Snakemake's --retries (the SLURM profile's `retries: 2`), since it would fail the same way
again, and its log ends with the message that the submitting run prints (glmflow/errors.py,
glmflow/snakemake_fixes.py). Locally, in seconds; tests/test_slurm.py checks the same on SLURM."""

from __future__ import annotations

import pytest
import yaml
from conftest import FAILING_MODEL, copy_workflow, failing_config, snakemake

from glmflow.datafile import read_dataset
from glmflow.errors import GlmflowError, error_in_log
from glmflow.models import fit_model


def test_a_glmflow_error_is_not_retried_and_its_log_ends_with_it(tmp_path):
    config = failing_config(tmp_path / "config.yaml")
    config["models"]["glm_log_fare"] = FAILING_MODEL
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    directory = copy_workflow(tmp_path / "failing", tmp_path / "config.yaml")
    result = snakemake(directory, "--retries", "2", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Trying to restart" not in output, output[-3000:]
    with pytest.raises(GlmflowError) as error:
        fit_model(read_dataset(directory / "results/data/titanic.parquet"), FAILING_MODEL, "glm_log_fare")
    assert error_in_log(directory / "logs/models/glm_log_fare.log") == str(error.value)
    assert error_in_log(directory / "logs/models/glm_fare.log") is None
