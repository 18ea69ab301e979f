rule simulate_demo:
    output:
        data="results/simulation/demo/data.csv",
    log:
        "logs/simulation/demo_data.log",
    benchmark:
        "benchmarks/simulation/demo_data.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        spec=config["simulation"].get("demo"),
        code=code_of("simulate_demo.py"),
    script:
        "../scripts/simulate_demo.py"


rule fit_simulation_demo:
    input:
        data="results/simulation/demo/data.csv",
    output:
        tidy="results/simulation/demo/tidy.csv",
        glance="results/simulation/demo/glance.json",
        summary="results/simulation/demo/summary.txt",
        augment="results/simulation/demo/augment.csv",
        vcov="results/simulation/demo/vcov.csv",
        frame="results/simulation/demo/frame.parquet",
        frame_json="results/simulation/demo/frame.json",
        likelihood="results/simulation/demo/likelihood.csv",
        check="results/simulation/demo/likelihood_check.json",
    log:
        "logs/simulation/demo_fit.log",
    benchmark:
        "benchmarks/simulation/demo_fit.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        code=code_of("fit_simulation_demo.py"),
    script:
        "../scripts/fit_simulation_demo.py"


rule simulate_cell:
    input:
        kernels="results/kernels/study.json",
    output:
        "results/simulation/cells/{cell}.json",
    log:
        "logs/simulation/cells/{cell}.log",
    benchmark:
        "benchmarks/simulation/cells/{cell}.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        cell=study_cell_params,
        code=code_of("simulate_cell.py"),
    script:
        "../scripts/simulate_cell.py"


rule gather_simulation:
    input:
        expand("results/simulation/cells/{cell}.json", cell=SIMULATION_CELLS),
    output:
        report(
            "results/simulation/summary.csv",
            caption="../report/simulation.rst",
            category="5 Simulation",
        ),
    log:
        "logs/simulation/gather.log",
    benchmark:
        "benchmarks/simulation/gather.tsv"
    localrule: True
    conda:
        "../envs/stats.yaml"
    threads: 1
    params:
        code=code_of("gather_simulation.py"),
    script:
        "../scripts/gather_simulation.py"
