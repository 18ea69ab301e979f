# glmflow: the logistic-regression chapter as a Snakemake workflow.
# Run `snakemake --cores all` in the project's environment (see README.md).
from snakemake.utils import min_version

from glmflow.plan import check_given_configfiles, load_config_yaml, read_config_yaml
from glmflow.runs import mark_run
from glmflow.snakemake_fixes import apply as apply_snakemake_fixes

min_version("9.0")
# SIGTERM without a deadlock in Snakemake's handler (glmflow/snakemake_fixes.py)
apply_snakemake_fixes()
# Jobs die with this run, and a job whose run has ended writes no output (glmflow/runs.py)
mark_run()

# Files of the workflow (schema, scripts, report captions) resolve from the rule files, so this
# Snakefile also runs as a module of another workflow (README: Use as a Snakemake module); data
# and results resolve from the working directory. The config is, in this order:
# - a module's `config:` (Snakemake then skips `configfile:`);
# - the files given with --configfile, alone: the chapter's config.yaml is not read under them,
#   so `snakemake --configfile my.yaml` runs only my.yaml (README: Your own data);
# - config.yaml in the working directory. A YAML syntax error is reported with its line and
#   column (Snakemake's message has neither), and YTE templating (`__use_yte__`: Python in
#   config) is refused before `configfile:` would run it. Files of --configfile are checked
#   alike (Snakemake's command line has read them already: a templated one stops the run).
if read_config_yaml(workflow):
    load_config_yaml("config.yaml")

    configfile: "config.yaml"

else:
    check_given_configfiles(workflow)


# snakemake --report results/workflow-report.html: the figures and tables flagged with
# report() in the rules, captions in workflow/report/.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/kernels.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/checks.smk"
include: "workflow/rules/interpretation.smk"
include: "workflow/rules/simulation.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


# Cheap steps that read a few result files (`localrule: True` in their rules: report,
# provenance, gathers, counts, predictions, likelihood checks, comparisons) run where Snakemake
# runs, not as cluster jobs (no effect on a local run). Marked per rule, not with `localrules:`,
# whose names a module's `use rule * ... as glmflow_*` would not rename.


rule all:
    default_target: True
    input:
        all_targets(),
        "results/report.html",
        "results/provenance.html",
    localrule: True
