rule report:
    input:
        unpack(report_inputs),
    output:
        report(
            "results/report.html",
            caption="../report/chapter.rst",
            category="0 Chapter report",
        ),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    localrule: True
    conda:
        "../envs/report.yaml"
    threads: 1
    params:
        code=code_of("report.py"),
        settings=report_settings(config),
    script:
        "../scripts/report.py"


# The one output that changes between identical runs (dates, run times): its own file, which
# the report shows in a frame, so that every other results file stays byte-identical.
rule provenance:
    input:
        all_targets(),
        "results/report.html",
    output:
        report(
            "results/provenance.html",
            caption="../report/provenance.rst",
            category="7 Provenance",
        ),
    log:
        "logs/provenance.log",
    benchmark:
        "benchmarks/provenance.tsv"
    localrule: True
    conda:
        "../envs/report.yaml"
    threads: 1
    params:
        code=code_of("provenance.py"),
        # It prints the whole config as run.
        config=config,
    script:
        "../scripts/provenance.py"
