rule figure_fit:
    input:
        unpack(fit_figure_inputs),
    output:
        report(
            "results/figures/fit_{name}.svg",
            caption="../report/fit.rst",
            category="2 Models",
            subcategory="Fitted curves",
        ),
    log:
        "logs/figures/fit_{name}.log",
    benchmark:
        "benchmarks/figures/fit_{name}.tsv"
    conda:
        "../envs/report.yaml"
    params:
        figure=lambda w: FIT_FIGURES[w.name]["figure"],
        spec=lambda w: FIT_FIGURES[w.name]["spec"],
        model=lambda w: FIT_FIGURES[w.name]["model"],
    script:
        "../scripts/figure_fit.py"


rule figure_proportions:
    input:
        lambda w: f"results/interpretation/counts/{config['figures']['proportions'][w.name]['counts']}.csv",
    output:
        report(
            "results/figures/proportions_{name}.svg",
            caption="../report/proportions.rst",
            category="3 Interpretation",
            subcategory="Counts",
        ),
    log:
        "logs/figures/proportions_{name}.log",
    benchmark:
        "benchmarks/figures/proportions_{name}.tsv"
    conda:
        "../envs/report.yaml"
    params:
        figure=lambda w: config["figures"]["proportions"][w.name],
    script:
        "../scripts/figure_proportions.py"


rule figure_study:
    input:
        "results/simulation/summary.csv",
    output:
        report(
            "results/figures/simulation_study.svg",
            caption="../report/study.rst",
            category="5 Simulation",
        ),
    log:
        "logs/figures/simulation_study.log",
    benchmark:
        "benchmarks/figures/simulation_study.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/figure_study.py"


rule figure_caterpillar:
    input:
        lambda w: model_result(w.model, "ranef.csv"),
    output:
        report(
            "results/figures/caterpillar_{model}.svg",
            caption="../report/caterpillar.rst",
            category="6 Mixed models",
            subcategory="{model}",
        ),
    log:
        "logs/figures/caterpillar_{model}.log",
    benchmark:
        "benchmarks/figures/caterpillar_{model}.tsv"
    wildcard_constraints:
        model=GLMM_PATTERN,
    conda:
        "../envs/report.yaml"
    params:
        spec=model_spec,
    script:
        "../scripts/figure_caterpillar.py"
