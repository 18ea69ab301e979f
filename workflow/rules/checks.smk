rule likelihood_check:
    input:
        augment=lambda w: model_result(w.model, "augment.csv"),
        glance=lambda w: model_result(w.model, "glance.json"),
    output:
        "results/checks/likelihood_{model}.json",
    log:
        "logs/checks/likelihood_{model}.log",
    benchmark:
        "benchmarks/checks/likelihood_{model}.tsv"
    wildcard_constraints:
        model=GLM_PATTERN,
    conda:
        "../envs/stats.yaml"
    params:
        spec=model_spec,
    script:
        "../scripts/likelihood_check.py"


rule compare_models:
    input:
        compact_glance=comparison_input("compact", "glance.json"),
        compact_augment=comparison_input("compact", "augment.csv"),
        augmented_glance=comparison_input("augmented", "glance.json"),
        augmented_augment=comparison_input("augmented", "augment.csv"),
    output:
        "results/comparisons/{name}.json",
    log:
        "logs/comparisons/{name}.log",
    benchmark:
        "benchmarks/comparisons/{name}.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        spec=lambda w: config["comparisons"][w.name],
    script:
        "../scripts/compare_models.py"


rule glmm_likelihood_check:
    input:
        data=dataset_of_model,
        glance=lambda w: model_result(w.model, "glance.json"),
        tidy=lambda w: model_result(w.model, "tidy.csv"),
    output:
        "results/checks/likelihood_{model}.json",
    log:
        "logs/checks/likelihood_{model}.log",
    benchmark:
        "benchmarks/checks/likelihood_{model}.tsv"
    wildcard_constraints:
        model=GLMM_PATTERN,
    conda:
        "../envs/stats.yaml"
    params:
        spec=model_spec,
    script:
        "../scripts/glmm_likelihood_check.py"
