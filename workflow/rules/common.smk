# Config validation and the helpers that turn config.yaml into targets and params.
from snakemake.utils import validate

from glmflow.data import sha256_of
from glmflow.fingerprint import code_fingerprint
from glmflow.kernels import GROUPS as KERNEL_GROUPS, group_file
from glmflow.plan import (
    check_key,
    checked_config,
    comparison_models,
    is_mixed,
    remember_checked,
)
from glmflow.report_plan import report_files, report_settings
from glmflow.study import DEMO_NAME, study_cells

SCHEMA = workflow.source_path("../schemas/config.schema.yaml")
CONFIG_KEY = check_key(config, SCHEMA)
CHECKED_CONFIG = checked_config(CONFIG_KEY)
if CHECKED_CONFIG is None:
    # Imported only when the config, its data files or the checks' code changed since the
    # checks last passed (glmflow.plan): glmflow.config imports formulaic and reads the data,
    # 0.36 s of every snakemake start.
    from glmflow.config import check_config, check_schema

    check_schema(config, SCHEMA)  # every problem under its key, in words
    validate(config, SCHEMA)  # fills the defaults
    check_config(config, ".")
    remember_checked(CONFIG_KEY, config)
else:
    # the same config, with the defaults validate() filled in when the checks passed
    config.update(CHECKED_CONFIG)

DATASETS = sorted(config["datasets"])
# Models with a `( | )` term are mixed models, fitted by their own rules.
GLM_MODELS = sorted(m for m, spec in config["models"].items() if not is_mixed(spec))
GLMM_MODELS = sorted(m for m, spec in config["models"].items() if is_mixed(spec))
GLMM_PATTERN = "|".join(GLMM_MODELS) or "no-model"
COMPARISONS = sorted(config.get("comparisons", {}))
PREDICTIONS = sorted(config["interpretation"].get("predictions", {}))
COUNTS = sorted(config["interpretation"].get("counts", {}))
MODEL_FILES = ["tidy.csv", "glance.json", "summary.txt", "augment.csv", "vcov.csv"]
MODEL_FILES += ["frame.parquet", "frame.json"]
SIMULATION = config.get("simulation", {})
STUDY_CELLS = (
    {c.label: c for c in study_cells(SIMULATION["study"])}
    if "study" in SIMULATION
    else {}
)
SIMULATION_CELLS = list(STUDY_CELLS)


GLM_PATTERN = "|".join(GLM_MODELS) or "no-model"


wildcard_constraints:
    dataset="|".join(DATASETS) or "no-dataset",


def code_of(script):
    """Content fingerprint of a rule's script and the glmflow modules it imports: a param, so
    that a job reruns exactly when the code it runs changes (workflow/profiles/default).
    """
    return code_fingerprint(workflow.source_path(f"../scripts/{script}"))


def kernels_code(wildcards):
    """A compile_kernels job's code: its script and its own group's module (glmflow.kernels),
    so that editing one group's kernels reruns that group's jobs alone."""
    group = code_fingerprint(str(group_file(wildcards.kernels)))
    return f"{code_of('compile_kernels.py')}-{group}"


def study_cell_params(wildcards):
    """One study cell's job gets its own cell's parameters, the seed and the replicate count,
    and nothing of the other cells: adding cells or values reruns only the new cells."""
    cell = STUDY_CELLS[wildcards.cell]
    study = SIMULATION["study"]
    return {"seed": study["seed"], "replicates": study["replicates"], "rng": study["rng"],
            "n": cell.n, "b0": cell.b0, "b1": cell.b1}  # fmt: skip


def dataset_spec(wildcards):
    return config["datasets"][wildcards.dataset]


def dataset_job_spec(wildcards):
    """The data job's settings: the dataset's, less `digits`, which only the report prints
    (the report's params carry it), so that changing it does not rerun every job downstream.
    """
    return {
        key: value for key, value in dataset_spec(wildcards).items() if key != "digits"
    }


def dataset_csv(wildcards):
    return dataset_spec(wildcards)["path"]


def dataset_content(wildcards):
    """The data file's sha256: from config where given (the data job checks it), else read
    here, so that editing the file reruns its jobs without relying on timestamps."""
    spec = dataset_spec(wildcards)
    return spec.get("sha256") or sha256_of(spec["path"])


def model_spec(wildcards):
    return config["models"][wildcards.model]


def dataset_of_model(wildcards):
    return f"results/data/{model_spec(wildcards)['dataset']}.parquet"


def model_result(model, name):
    return f"results/models/{model}/{name}"


def prediction_model(wildcards):
    return config["interpretation"]["predictions"][wildcards.name]["model"]


def prediction_at(wildcards):
    return config["interpretation"]["predictions"][wildcards.name]["at"]


def frame_files(folder, suffix=""):
    """A fit's model frame (glmflow.frame), which the jobs after the fit read instead of the data."""
    return {
        f"frame{suffix}": f"{folder}/frame.parquet",
        f"frame_json{suffix}": f"{folder}/frame.json",
    }


def prediction_inputs(wildcards):
    model = prediction_model(wildcards)
    return {
        **frame_files(f"results/models/{model}"),
        "tidy": model_result(model, "tidy.csv"),
        "vcov": model_result(model, "vcov.csv"),
    }


def counts_spec(wildcards):
    return config["interpretation"]["counts"][wildcards.name]


def counts_data(wildcards):
    return f"results/data/{counts_spec(wildcards)['dataset']}.parquet"


def counts_by(wildcards):
    return counts_spec(wildcards)["by"]


def comparison_spec(wildcards):
    return config["comparisons"][wildcards.name]


def comparison_names(wildcards):
    return comparison_models(comparison_spec(wildcards))


def comparison_inputs(wildcards):
    """Each compared model's glance, augment and model frame, in the comparison's order (the Rao
    test refits the smaller model's working residuals on the larger model's matrix)."""
    files = {}
    for i, name in enumerate(comparison_names(wildcards)):
        files[f"glance_{i}"] = model_result(name, "glance.json")
        files[f"augment_{i}"] = model_result(name, "augment.csv")
        files.update(frame_files(f"results/models/{name}", f"_{i}"))
    return files


def proportions_settings(wildcards):
    return config["figures"]["proportions"][wildcards.name]


def proportions_counts(wildcards):
    return (
        f"results/interpretation/counts/{proportions_settings(wildcards)['counts']}.csv"
    )


def _fit_figures():
    """Every fitted-curve figure: the configured ones and the simulated data set's."""
    figures = {}
    for name, figure in config.get("figures", {}).get("fits", {}).items():
        figures[name] = {
            "figure": figure,
            "results": f"results/models/{figure['model']}",
        }
    if "demo" in SIMULATION:
        figures[DEMO_NAME] = {
            "figure": {"x": "x", "y_label": "p(response)", "point_alpha": 0.1},
            "results": "results/simulation/demo",
        }
    return figures


FIT_FIGURES = _fit_figures()


def fit_figure_settings(wildcards):
    return FIT_FIGURES[wildcards.name]["figure"]


def fit_figure_inputs(wildcards):
    folder = FIT_FIGURES[wildcards.name]["results"]
    return {
        **frame_files(folder),
        "tidy": f"{folder}/tidy.csv",
        "vcov": f"{folder}/vcov.csv",
    }


def figure_targets():
    targets = expand("results/figures/fit_{name}.svg", name=sorted(FIT_FIGURES))
    targets += expand(
        "results/figures/proportions_{name}.svg",
        name=sorted(config["figures"].get("proportions", {})),
    )
    targets += expand("results/figures/caterpillar_{model}.svg", model=GLMM_MODELS)
    if SIMULATION_CELLS:
        targets.append("results/figures/simulation_study.svg")
    return targets


def all_targets():
    targets = expand(
        "results/data/{dataset}{suffix}",
        dataset=DATASETS,
        suffix=[".parquet", "_glimpse.txt", "_head.csv"],
    )
    targets += expand(
        "results/models/{model}/{file}", model=GLM_MODELS, file=MODEL_FILES
    )
    targets += expand(
        "results/models/{model}/{file}",
        model=GLMM_MODELS,
        file=MODEL_FILES + ["ranef.csv", "varcorr.csv"],
    )
    targets += expand(
        "results/checks/likelihood_{model}.json", model=GLM_MODELS + GLMM_MODELS
    )
    targets += expand("results/comparisons/{name}.json", name=COMPARISONS)
    targets += expand("results/interpretation/predictions/{name}.csv", name=PREDICTIONS)
    targets += expand("results/interpretation/counts/{name}.csv", name=COUNTS)
    if "demo" in SIMULATION:
        targets += expand(
            "results/simulation/demo/{file}",
            file=MODEL_FILES + ["data.csv", "likelihood.csv"],
        )
    if SIMULATION_CELLS:
        targets.append("results/simulation/summary.csv")
    return targets + figure_targets()


def report_inputs(wildcards):
    """The report's named inputs: every file it reads, under the name it reads it by."""
    svgs = [path for path in figure_targets() if path.endswith(".svg")]
    return report_files(config, svgs)
