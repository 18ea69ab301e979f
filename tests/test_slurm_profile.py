"""The SLURM profile's plan, read from a dry run (no SLURM needed): the partition and account
set the documented way (README: Running on a cluster) reach every job, and every job keeps the
profile's runtime and cpus_per_task. `--default-resources` on the command line would replace
the profile's whole list; tests/test_slurm.py checks what sbatch was given on a real SLURM."""

from __future__ import annotations

import os
import re

import forked_snakemake
import yaml
from conftest import ROOT, SMALL_CONFIG, copy_workflow

PROFILE = ROOT / "workflow" / "profiles" / "slurm"
SITE = {"GLMFLOW_SLURM_PARTITION": "short_q", "GLMFLOW_SLURM_ACCOUNT": "lab_42"}


def planned_resources(directory, *arguments, env=None) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of each job that a forced dry run with the SLURM profile plans."""
    arguments = ["-n", "-F", "--workflow-profile", str(PROFILE), *arguments]
    result = forked_snakemake.run(arguments, directory, {**os.environ, **(env or {})}, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    plan, rule = [], None
    for line in result.stdout.splitlines():
        if found := re.match(r"\s*(?:local)?rule (\w+):", line):
            rule = found.group(1)
        elif (found := re.match(r"\s*resources: (.*)", line)) and rule is not None:
            plan.append((rule, dict(item.split("=", 1) for item in found.group(1).split(", "))))
            rule = None
    return plan


def expected(rule: str, name: str, profile: dict) -> str:
    return str(profile.get("set-resources", {}).get(rule, {}).get(name, profile["default-resources"][name]))


def test_partition_and_account_keep_the_profiles_resources(tmp_path):
    directory = copy_workflow(tmp_path / "plan", SMALL_CONFIG)
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    plan = planned_resources(directory, env=SITE)
    assert {rule for rule, _ in plan} >= {"fit_model", "fit_glmm", "simulate_cell", "clean_data"}
    for rule, resources in plan:
        assert resources["slurm_partition"] == SITE["GLMFLOW_SLURM_PARTITION"], (rule, resources)
        assert resources["slurm_account"] == SITE["GLMFLOW_SLURM_ACCOUNT"], (rule, resources)
        for name in ("runtime", "cpus_per_task", "mem_mb"):
            assert resources.get(name) == expected(rule, name, profile), (rule, name, resources)


def test_without_the_variables_the_clusters_defaults_are_asked_for(tmp_path):
    """Unset: empty values, which the SLURM plugin reads as the default partition and its
    guessed account (no literal '$GLMFLOW_SLURM_PARTITION' sent to sbatch)."""
    directory = copy_workflow(tmp_path / "plan", SMALL_CONFIG)
    environment = {name: "" for name in SITE}
    for rule, resources in planned_resources(directory, env=environment):
        assert resources["slurm_partition"] == "" and resources["slurm_account"] == "", (rule, resources)
        assert resources["runtime"] and resources["cpus_per_task"], (rule, resources)
