rule likelihood_check:
    input:
        augment="results/models/{model}/augment.csv",
        glance="results/models/{model}/glance.json",
        frame_json="results/models/{model}/frame.json",
    output:
        report(
            "results/checks/likelihood_{model}.json",
            caption="../report/likelihood.rst",
            category="4 Likelihood",
        ),
    log:
        "logs/checks/likelihood_{model}.log",
    benchmark:
        "benchmarks/checks/likelihood_{model}.tsv"
    wildcard_constraints:
        model=GLM_PATTERN,
    localrule: True
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        code=code_of("likelihood_check.py"),
    script:
        "../scripts/likelihood_check.py"


rule compare_models:
    input:
        unpack(comparison_inputs),
    output:
        report(
            "results/comparisons/{name}.json",
            caption="../report/comparison.rst",
            category="4 Likelihood",
            subcategory="Likelihood-ratio tests",
        ),
    log:
        "logs/comparisons/{name}.log",
    benchmark:
        "benchmarks/comparisons/{name}.tsv"
    localrule: True
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        spec=comparison_spec,
        names=comparison_names,
        code=code_of("compare_models.py"),
    script:
        "../scripts/compare_models.py"


rule glmm_likelihood_check:
    input:
        frame="results/models/{model}/frame.parquet",
        frame_json="results/models/{model}/frame.json",
        glance="results/models/{model}/glance.json",
        tidy="results/models/{model}/tidy.csv",
    output:
        report(
            "results/checks/likelihood_{model}.json",
            caption="../report/likelihood.rst",
            category="4 Likelihood",
        ),
    log:
        "logs/checks/likelihood_{model}.log",
    benchmark:
        "benchmarks/checks/likelihood_{model}.tsv"
    wildcard_constraints:
        model=GLMM_PATTERN,
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        code=code_of("glmm_likelihood_check.py"),
    script:
        "../scripts/glmm_likelihood_check.py"
