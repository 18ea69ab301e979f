rule predict:
    input:
        data=lambda w: f"results/data/{config['models'][prediction_model(w)]['dataset']}.parquet",
        tidy=lambda w: model_result(prediction_model(w), "tidy.csv"),
        vcov=lambda w: model_result(prediction_model(w), "vcov.csv"),
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
    conda:
        "../envs/stats.yaml"
    params:
        model=prediction_model,
        spec=lambda w: config["models"][prediction_model(w)],
        at=lambda w: config["interpretation"]["predictions"][w.name].get("at", {}),
    script:
        "../scripts/predict.py"


rule count_table:
    input:
        data=lambda w: f"results/data/{config['interpretation']['counts'][w.name]['dataset']}.parquet",
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
    conda:
        "../envs/stats.yaml"
    params:
        by=lambda w: config["interpretation"]["counts"][w.name]["by"],
    script:
        "../scripts/count_table.py"
