rule clean_data:
    input:
        csv=lambda w: config["datasets"][w.dataset]["path"],
    output:
        data="results/data/{dataset}.parquet",
        glimpse="results/data/{dataset}_glimpse.txt",
        head="results/data/{dataset}_head.csv",
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    conda:
        "../envs/stats.yaml"
    params:
        spec=lambda w: config["datasets"][w.dataset],
    script:
        "../scripts/clean_data.py"
