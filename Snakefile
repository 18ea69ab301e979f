# glmflow: the logistic-regression chapter as a Snakemake workflow.
# Run `snakemake --cores all` in the project's environment (see README.md).
from snakemake.utils import min_version

from glmflow.config import load_config_yaml

min_version("9.0")

# A YAML syntax error is reported with its line and column (Snakemake's message has neither).
load_config_yaml("config.yaml")


configfile: "config.yaml"


# snakemake --report results/workflow-report.html: the figures and tables flagged with
# report() in the rules, captions in workflow/report/.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/checks.smk"
include: "workflow/rules/interpretation.smk"
include: "workflow/rules/simulation.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        "results/report.html",
        "results/provenance.html",
