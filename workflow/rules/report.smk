rule report:
    input:
        all_targets(),
    output:
        "results/report.html",
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report.py"


# The one output that changes between identical runs (dates, run times): its own file, which
# the report shows in a frame, so that every other results file stays byte-identical.
rule provenance:
    input:
        all_targets(),
        "results/report.html",
    output:
        "results/provenance.html",
    log:
        "logs/provenance.log",
    benchmark:
        "benchmarks/provenance.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/provenance.py"
