# numba's kernels compiled once, into its cache beside the package's sources, before the
# mixed-model fits and the study's cells that use them (glmflow/kernels.py); started first
# (priority), as every one of those jobs waits for it. Without it, the jobs of a first run
# that Snakemake starts together each compiled the same kernels.
rule compile_kernels:
    output:
        "results/kernels/{kernels}.json",
    log:
        "logs/kernels/{kernels}.log",
    benchmark:
        "benchmarks/kernels/{kernels}.tsv"
    wildcard_constraints:
        kernels="|".join(KERNEL_GROUPS),
    priority: 1
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        code=kernels_code,
    script:
        "../scripts/compile_kernels.py"
