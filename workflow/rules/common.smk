# Config validation and the helpers that turn config.yaml into targets and params.
from snakemake.utils import validate

from glmflow.config import check_config, check_schema, is_mixed
from glmflow.study import study_cells

SCHEMA = workflow.source_path("../schemas/config.schema.yaml")
check_schema(config, SCHEMA)  # every problem under its key, in words
validate(config, SCHEMA)  # fills the defaults
check_config(config, ".")

DATASETS = sorted(config["datasets"])
# Models with a `( | )` term are mixed models, fitted by their own rules.
GLM_MODELS = sorted(m for m, spec in config["models"].items() if not is_mixed(spec))
GLMM_MODELS = sorted(m for m, spec in config["models"].items() if is_mixed(spec))
GLMM_PATTERN = "|".join(GLMM_MODELS) or "no-model"
COMPARISONS = sorted(config.get("comparisons", {}))
PREDICTIONS = sorted(config["interpretation"].get("predictions", {}))
COUNTS = sorted(config["interpretation"].get("counts", {}))
MODEL_FILES = ["tidy.csv", "glance.json", "summary.txt", "augment.csv", "vcov.csv"]
SIMULATION = config.get("simulation", {})
SIMULATION_CELLS = (
    [c.label for c in study_cells(SIMULATION["study"])] if "study" in SIMULATION else []
)


GLM_PATTERN = "|".join(GLM_MODELS) or "no-model"


wildcard_constraints:
    dataset="|".join(DATASETS) or "no-dataset",


def model_spec(wildcards):
    return config["models"][wildcards.model]


def dataset_of_model(wildcards):
    return f"results/data/{model_spec(wildcards)['dataset']}.parquet"


def model_result(model, name):
    return f"results/models/{model}/{name}"


def prediction_model(wildcards):
    return config["interpretation"]["predictions"][wildcards.name]["model"]


def comparison_input(role, file):
    return lambda w: model_result(config["comparisons"][w.name][role], file)


def _fit_figures():
    """Every fitted-curve figure: the configured ones and the simulated data set's."""
    figures = {}
    for name, figure in config.get("figures", {}).get("fits", {}).items():
        model = figure["model"]
        spec = config["models"][model]
        figures[name] = {
            "figure": figure,
            "spec": spec,
            "model": model,
            "data": f"results/data/{spec['dataset']}.parquet",
            "results": f"results/models/{model}",
        }
    if "demo" in SIMULATION:
        figures["simulation_demo"] = {
            "figure": {"x": "x", "y_label": "p(response)", "point_alpha": 0.1},
            "spec": {
                "dataset": "simulated",
                "formula": "response ~ 1 + x",
                "family": "binomial",
            },
            "model": "simulation_demo",
            "data": "results/simulation/demo/data.csv",
            "results": "results/simulation/demo",
        }
    return figures


FIT_FIGURES = _fit_figures()


def fit_figure_inputs(wildcards):
    figure = FIT_FIGURES[wildcards.name]
    return {
        "data": figure["data"],
        "tidy": f"{figure['results']}/tidy.csv",
        "vcov": f"{figure['results']}/vcov.csv",
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
        file=MODEL_FILES + ["ranef.csv"],
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
