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


# The outputs that change between identical runs (dates, run times): their own files, which
# the report shows as an image, so that every other results file stays byte-identical.
rule provenance:
    input:
        all_targets(),
        "results/report.html",
    output:
        page=report(
            "results/provenance.html",
            caption="../report/provenance.rst",
            category="7 Provenance",
        ),
        # the same as an image, which the report shows: it renders in print and in a
        # full-page capture, where a frame does not
        image="results/provenance.svg",
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
