"""What the report rule reads, decided from the config when the Snakefile is read: its named
inputs (``report_files``) and its params (``report_settings``). Kept apart from the rendering
(``glmflow.report``), whose imports (pandas' model frames, formulaic, scipy) every Snakemake
start would pay, on each cluster job's node too."""

# glmflow.report's imports were 0.75 s of a Snakemake start; a fresh dry run of the small config
# went from 3.17 to 2.34 CPU-s without them

from __future__ import annotations

from pathlib import Path

from glmflow.formula_syntax import random_effect_terms


def config_items(config: dict) -> dict[str, dict]:
    """The config's items by kind, under the kinds of glmflow.report_facts.CHAPTER."""
    interpretation, figures = config.get("interpretation", {}), config.get("figures", {})
    return {
        "datasets": config["datasets"],
        "models": config["models"],
        "comparisons": config.get("comparisons", {}),
        "predictions": interpretation.get("predictions", {}),
        "counts": interpretation.get("counts", {}),
        "fits": figures.get("fits", {}),
        "proportions": figures.get("proportions", {}),
    }


def frames_needed(config: dict) -> list[str]:
    """The models whose frames the report reads (written by their fit jobs): those with a filter
    (what it left out is described) and those of fitted curves and grids (what they hold the
    other predictors at, over the rows used)."""
    models = config["models"]
    items = config_items(config)
    used = [m for m, spec in models.items() if spec.get("filter")]
    used += [item["model"] for kind in ("fits", "predictions") for item in items[kind].values()]
    return sorted({m for m in used if m in models})


def report_files(config: dict, figures: list[str]) -> dict[str, str]:
    """Every file the report reads, under the name it reads it by: the report rule declares
    exactly these as its named inputs, and build_context reads nothing else."""
    files: dict[str, str] = {}
    for name in config["datasets"]:
        files[f"glimpse_{name}"] = f"results/data/{name}_glimpse.txt"
        files[f"head_{name}"] = f"results/data/{name}_head.csv"
    for name in frames_needed(config):
        files[f"frame_{name}"] = f"results/models/{name}/frame.parquet"
        files[f"frame_json_{name}"] = f"results/models/{name}/frame.json"
    for name in config["models"]:
        for part, file in [("tidy", "tidy.csv"), ("glance", "glance.json"), ("summary", "summary.txt")]:
            files[f"{part}_{name}"] = f"results/models/{name}/{file}"
        files[f"check_{name}"] = f"results/checks/likelihood_{name}.json"
        if random_effect_terms(config["models"][name]["formula"]):
            files[f"varcorr_{name}"] = f"results/models/{name}/varcorr.csv"
            files[f"ranef_{name}"] = f"results/models/{name}/ranef.csv"
    interpretation = config.get("interpretation", {})
    for name in interpretation.get("predictions", {}):
        files[f"prediction_{name}"] = f"results/interpretation/predictions/{name}.csv"
    for name in interpretation.get("counts", {}):
        files[f"counts_{name}"] = f"results/interpretation/counts/{name}.csv"
    for name in config.get("comparisons", {}):
        files[f"comparison_{name}"] = f"results/comparisons/{name}.json"
    simulation = config.get("simulation", {})
    if "demo" in simulation:
        demo = {"data": "data.csv", "tidy": "tidy.csv", "glance": "glance.json", "summary": "summary.txt",
                "likelihood": "likelihood.csv", "check": "likelihood_check.json"}  # fmt: skip
        files.update({f"demo_{k}": f"results/simulation/demo/{v}" for k, v in demo.items()})
    if "study" in simulation:
        files["study_summary"] = "results/simulation/summary.csv"
    for path in figures:
        files[f"figure_{Path(path).stem}"] = path
    return files


# The config sections the report shows or decides by (the template reads `config.figures`).
REPORT_SECTIONS = ["models", "comparisons", "interpretation", "simulation", "figures"]
# Of a dataset: `digits` prints its first rows; the others decide whether it is the chapter's.
REPORT_DATASET_KEYS = ["path", "sha256", "clean_names", "factors", "filter", "digits"]


def report_settings(config: dict) -> dict:
    """The part of the config the report reads: the report rule's params, so that changing any
    value the report prints reruns it (a `digits`, a caption's label), and the only config
    build_context is given, so that nothing it reads can escape the params."""
    settings = {key: config[key] for key in REPORT_SECTIONS if key in config}
    datasets = config["datasets"].items()
    settings["datasets"] = {name: {k: spec[k] for k in REPORT_DATASET_KEYS if k in spec} for name, spec in datasets}
    return settings
