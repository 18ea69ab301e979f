# glmflow: the logistic-regression chapter as a Snakemake workflow.
# Run `snakemake --cores all` in the project's environment (see README.md).
from snakemake.utils import min_version

from glmflow.plan import load_config_yaml
from glmflow.snakemake_fixes import apply as apply_snakemake_fixes

min_version("9.0")
# SIGTERM without a deadlock in Snakemake's handler (glmflow/snakemake_fixes.py)
apply_snakemake_fixes()

# A YAML syntax error is reported with its line and column (Snakemake's message has neither);
# YTE templating (`__use_yte__`: Python in config) is refused before `configfile:` would run it.
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


# Cheap steps that read a few result files run where Snakemake runs, not as cluster jobs
# (no effect on a local run).
localrules:
    all,
    report,
    provenance,
    gather_simulation,
    count_table,
    predict,
    compare_models,
    likelihood_check,


rule all:
    default_target: True
    input:
        all_targets(),
        "results/report.html",
        "results/provenance.html",
