rule fit_model:
    input:
        data=dataset_of_model,
    output:
        tidy=report(
            "results/models/{model}/tidy.csv",
            caption="../report/tidy.rst",
            category="2 Models",
            subcategory="{model}",
        ),
        glance="results/models/{model}/glance.json",
        summary=report(
            "results/models/{model}/summary.txt",
            caption="../report/summary.rst",
            category="2 Models",
            subcategory="{model}",
        ),
        augment="results/models/{model}/augment.csv",
        vcov="results/models/{model}/vcov.csv",
        frame="results/models/{model}/frame.parquet",
        frame_json="results/models/{model}/frame.json",
    log:
        "logs/models/{model}.log",
    benchmark:
        "benchmarks/models/{model}.tsv"
    wildcard_constraints:
        model=GLM_PATTERN,
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        spec=model_spec,
        code=code_of("fit_model.py"),
    script:
        "../scripts/fit_model.py"


rule fit_glmm:
    input:
        data=dataset_of_model,
        kernels="results/kernels/mixed_models.json",
    output:
        tidy=report(
            "results/models/{model}/tidy.csv",
            caption="../report/tidy.rst",
            category="6 Mixed models",
            subcategory="{model}",
        ),
        glance="results/models/{model}/glance.json",
        summary=report(
            "results/models/{model}/summary.txt",
            caption="../report/summary.rst",
            category="6 Mixed models",
            subcategory="{model}",
        ),
        augment="results/models/{model}/augment.csv",
        vcov="results/models/{model}/vcov.csv",
        frame="results/models/{model}/frame.parquet",
        frame_json="results/models/{model}/frame.json",
        ranef="results/models/{model}/ranef.csv",
        varcorr=report(
            "results/models/{model}/varcorr.csv",
            caption="../report/varcorr.rst",
            category="6 Mixed models",
            subcategory="{model}",
        ),
    log:
        "logs/models/{model}.log",
    benchmark:
        "benchmarks/models/{model}.tsv"
    wildcard_constraints:
        model=GLMM_PATTERN,
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        spec=model_spec,
        code=code_of("fit_glmm.py"),
    script:
        "../scripts/fit_glmm.py"
