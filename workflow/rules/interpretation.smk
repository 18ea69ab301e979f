rule predict:
    input:
        unpack(prediction_inputs),
    output:
        report(
            "results/interpretation/predictions/{name}.csv",
            caption="../report/predictions.rst",
            category="3 Interpretation",
            subcategory="Predictions",
        ),
    log:
        "logs/interpretation/predictions/{name}.log",
    benchmark:
        "benchmarks/interpretation/predictions/{name}.tsv"
    localrule: True
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        at=prediction_at,
        code=code_of("predict.py"),
    script:
        "../scripts/predict.py"


rule count_table:
    input:
        data=counts_data,
    output:
        report(
            "results/interpretation/counts/{name}.csv",
            caption="../report/counts.rst",
            category="3 Interpretation",
            subcategory="Counts",
        ),
    log:
        "logs/interpretation/counts/{name}.log",
    benchmark:
        "benchmarks/interpretation/counts/{name}.tsv"
    localrule: True
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        by=counts_by,
        code=code_of("count_table.py"),
    script:
        "../scripts/count_table.py"
