"""Benchmarks: ``python -m glmflow.bench simulate`` (and more subcommands as they land).

Each benchmark times a baseline in the same process and prints ratios, since the
machines are shared and noisy; none of them asserts a time.
"""
