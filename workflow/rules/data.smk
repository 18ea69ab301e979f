rule clean_data:
    input:
        csv=dataset_csv,
    output:
        data="results/data/{dataset}.parquet",
        glimpse="results/data/{dataset}_glimpse.txt",
        head=report(
            "results/data/{dataset}_head.csv",
            caption="../report/head.rst",
            category="1 Data",
        ),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        spec=dataset_job_spec,
        content=dataset_content,
        code=code_of("clean_data.py"),
    script:
        "../scripts/clean_data.py"
