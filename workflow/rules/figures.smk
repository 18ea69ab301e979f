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
    threads: 1
    params:
        figure=fit_figure_settings,
        code=code_of("figure_fit.py"),
    script:
        "../scripts/figure_fit.py"


rule figure_proportions:
    input:
        proportions_counts,
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
    threads: 1
    params:
        figure=proportions_settings,
        code=code_of("figure_proportions.py"),
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
    threads: 1
    params:
        code=code_of("figure_study.py"),
    script:
        "../scripts/figure_study.py"


rule figure_caterpillar:
    input:
        "results/models/{model}/ranef.csv",
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
    threads: 1
    params:
        spec=model_spec,
        code=code_of("figure_caterpillar.py"),
    script:
        "../scripts/figure_caterpillar.py"
