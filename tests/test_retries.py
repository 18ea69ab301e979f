"""Retries skip glmflow's own errors: a model that fails on bad input or a failed fit runs once
under Snakemake's --retries (the SLURM profile's `retries: 2`), since it would fail the same way
again, and its log ends with the message that the submitting run prints (glmflow/errors.py,
glmflow/snakemake_fixes.py). Locally, in seconds; tests/test_slurm.py checks the same on SLURM."""

from __future__ import annotations

import pytest
import yaml
from conftest import FAILING_MODEL, copy_workflow, failing_config, snakemake

from glmflow.datafile import read_dataset
from glmflow.errors import LOG_MARK, GlmflowError, error_in_log
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


def test_a_stale_glmflow_error_does_not_stop_the_retry_of_a_job_that_died(tmp_path):
    """A log that still holds an earlier run's glmflow error, and a step that dies before it
    writes its own log (as on a lost node): the step is retried, and the stale mark is gone
    (Snakemake removes a job's logs before it runs the job)."""
    failing_config(tmp_path / "config.yaml")
    directory = copy_workflow(tmp_path / "died", tmp_path / "config.yaml")
    script = directory / "workflow" / "scripts" / "fit_model.py"
    script.write_text('raise SystemExit("the node was lost")\n' + script.read_text())
    log = directory / "logs" / "models" / "glm_fare.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"INFO rule fit_model, wildcards {{'model': 'glm_fare'}}\n{LOG_MARK} an earlier run's error\n")
    result = snakemake(directory, "--retries", "1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Trying to restart" in output, output[-3000:]
    assert error_in_log(log) is None
