"""The HTML report: one self-contained page rendered with jinja2 from the results files.

Nothing is refitted here: every number comes from a file that a rule wrote. Numbers are
printed as R prints them (``rformat``), so the chapter's printed digits appear as printed.
Tables are pandas' ``to_html`` (escaped, with fixed ids); figures are inline SVG.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pandas as pd

from glmflow.rformat import format_number, format_pval, format_real

# The chapter's models, in the order its narrative uses them; any other model gets a
# generic section.
CHAPTER_MODELS = [
    "lm_fare",
    "glm_fare",
    "glm_sex",
    "glm_sex_fare",
    "glm_sex_fare_no_outlier",
    "glm_sex_plus_fare",
    "glmm_repeatgr",
    "glmm_repeatgr_agq10",
]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("glmflow", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def table_html(frame: pd.DataFrame, table_id: str) -> str:
    """An escaped HTML table with a fixed id (no random uuids), numbers already formatted."""
    return frame.to_html(index=False, table_id=table_id, classes="data", border=0, escape=True, na_rep="")


def digits(values, significant: int = 7) -> list[str]:
    """Each number as R prints it alone with ``digits`` significant digits."""
    return [format_number(float(v), significant).strip() for v in values]


def column(values, significant: int = 7) -> list[str]:
    """A column as R prints a data frame's: common decimals, ``digits`` significant digits."""
    return [v.strip() for v in format_real([float(v) for v in values], significant)]


def coefficient_frame(tidy: pd.DataFrame) -> pd.DataFrame:
    """A readable coefficient table: R's digits, p-values as ``format.pval`` writes them."""
    frame = pd.DataFrame(
        {
            "term": tidy["term"],
            "estimate": digits(tidy["estimate"], 5),
            "std. error": digits(tidy["std_error"], 5),
            "statistic": [s.strip() for s in format_real(tidy["statistic"].round(3), 5)],
            "p-value": [p.strip() for p in format_pval(tidy["p_value"], 3)],
            "95% CI": [
                f"[{a}, {b}]" for a, b in zip(digits(tidy["conf_low"], 4), digits(tidy["conf_high"], 4), strict=True)
            ],
        }
    )
    if "std_error_conditional" in tidy:
        frame.insert(3, "conditional SE", digits(tidy["std_error_conditional"], 5))
    return frame


@dataclass
class ModelView:
    name: str
    spec: dict
    glance: dict
    coefficients: str
    summary: str
    mixed: bool
    extra: dict = field(default_factory=dict)


def read_model(folder: Path, name: str, spec: dict) -> ModelView:
    tidy = pd.read_csv(folder / "tidy.csv")
    glance = json.loads((folder / "glance.json").read_text())
    return ModelView(
        name=name,
        spec=spec,
        glance=glance,
        coefficients=table_html(coefficient_frame(tidy), f"coefficients-{name}"),
        summary=(folder / "summary.txt").read_text(),
        mixed="nAGQ" in glance,
        extra={"tidy": tidy},
    )


def lrt_table(test: dict, table_id: str) -> str:
    """``anova(compact, augmented, test = "LRT")`` as a table, with R's digits."""
    deviances = [d.strip() for d in format_real(test["resid_dev"], 5)]
    frame = pd.DataFrame(
        {
            "model": [test["compact"], test["augmented"]],
            "Resid. Df": [str(d) for d in test["resid_df"]],
            "Resid. Dev": deviances,
            "Df": ["", str(test["df"])],
            "Deviance": ["", format_number(test["deviance"], 5).strip()],
            "Pr(>Chi)": ["", format_pval([test["p_value"]], 4)[0] if test["p_value"] is not None else ""],
        }
    )
    return table_html(frame, table_id)


def likelihood_rows(table: pd.DataFrame, rows: int = 10) -> str:
    head = table.head(rows).copy()
    for column in head.columns[1:]:
        head[column] = [f"{v:.2f}" for v in head[column]]
    return table_html(head, "likelihood-rows")


def render_report(context: dict) -> str:
    return _environment().get_template("report.html.j2").render(**context)


def render_provenance(context: dict) -> str:
    return _environment().get_template("provenance.html.j2").render(**context)


def svg_inline(text: str) -> str:
    """An SVG file's markup for inlining: without the XML declaration and DOCTYPE."""
    start = text.find("<svg")
    return text[start:]


def _read_json(path: Path):
    return json.loads(path.read_text())


def build_context(config: dict, results: Path) -> dict:
    """Everything the template shows, read from the results files that the rules wrote."""
    models = {}
    for name, spec in config["models"].items():
        models[name] = read_model(results / "models" / name, name, spec)
    figures = {path.stem: svg_inline(path.read_text()) for path in sorted((results / "figures").glob("*.svg"))}
    interpretation = config.get("interpretation", {})
    predictions = {}
    for name in interpretation.get("predictions", {}):
        frame = pd.read_csv(results / "interpretation" / "predictions" / f"{name}.csv")
        shown = frame.drop(columns=["se_link"]).copy()
        for name_ in ["link", "prob", "conf_low", "conf_high"]:
            shown[name_] = column(frame[name_])
        predictions[name] = {"frame": frame, "html": table_html(shown, f"prediction-{name}")}
    counts = {}
    for name in interpretation.get("counts", {}):
        frame = pd.read_csv(results / "interpretation" / "counts" / f"{name}.csv")
        shown = frame.copy()
        for name_ in frame.columns[len(interpretation["counts"][name]["by"]) + 1 :]:
            shown[name_] = column(frame[name_])
        counts[name] = table_html(shown, f"counts-{name}")
    comparisons = {
        name: {
            "test": (test := _read_json(results / "comparisons" / f"{name}.json")),
            "html": lrt_table(test, f"lrt-{name}"),
        }
        for name in config.get("comparisons", {})
    }
    checks = {name: _read_json(results / "checks" / f"likelihood_{name}.json") for name in config["models"]}
    datasets = {
        name: {
            "glimpse": (results / "data" / f"{name}_glimpse.txt").read_text(),
            "head": table_html(
                pd.read_csv(results / "data" / f"{name}_head.csv", keep_default_na=False), f"head-{name}"
            ),
        }
        for name in config["datasets"]
    }
    simulation = {}
    demo_folder = results / "simulation" / "demo"
    if (demo_folder / "data.csv").exists():
        data = pd.read_csv(demo_folder / "data.csv")
        head = data.head(10).copy()
        head["x"], head["p"] = column(data["x"].head(10)), column(data["p"].head(10))
        demo = read_model(demo_folder, "simulation_demo", {"formula": "response ~ 1 + x", "family": "binomial"})
        simulation = {
            "spec": config["simulation"]["demo"],
            "head": table_html(head, "simulation-head"),
            "model": demo,
            "likelihood_rows": likelihood_rows(pd.read_csv(demo_folder / "likelihood.csv")),
            "check": _read_json(demo_folder / "likelihood_check.json"),
        }
    study = None
    if (results / "simulation" / "summary.csv").exists():
        summary = pd.read_csv(results / "simulation" / "summary.csv")
        columns = ["n", "b1", "used", "separated", "mean_estimate", "bias", "rmse", "se_sd_ratio", "coverage",
                   "power_all", "power_without_separated"]  # fmt: skip
        shown = summary[columns].copy()
        for name_ in columns[4:]:
            shown[name_] = [
                f"{format_number(v, 3).strip()} ({format_number(e, 2).strip()})" if pd.notna(v) else ""
                for v, e in zip(summary[name_], summary[f"{name_}_mcse"], strict=True)
            ]
        study = {"spec": config["simulation"]["study"], "html": table_html(shown, "simulation-study")}
    extra_models = [name for name in config["models"] if name not in CHAPTER_MODELS]
    return {
        "models": models,
        "figures": figures,
        "predictions": predictions,
        "counts": counts,
        "comparisons": comparisons,
        "checks": checks,
        "datasets": datasets,
        "simulation": simulation,
        "study": study,
        "extra_models": extra_models,
        "digits": digits,
        "fmt": lambda value, significant=7: format_number(float(value), significant).strip(),
        "fixed": lambda value, places=2: f"{float(value):.{places}f}",
    }


def provenance_context(config: dict, root: Path) -> dict:
    """What the provenance page shows and Snakemake's report does not: the config as run,
    checksums, package versions, the git commit."""
    import datetime
    import importlib.metadata
    import platform
    import subprocess

    import yaml

    from glmflow.data import sha256_of

    packages = ["glmflow", "snakemake", "numpy", "pandas", "scipy", "statsmodels", "formulaic", "numba",
                "matplotlib", "jinja2", "pyarrow"]  # fmt: skip
    versions = {"python": platform.python_version()}
    versions.update({name: importlib.metadata.version(name) for name in packages})
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "none (not a git checkout)"
    checksums = [
        {"name": name, "path": spec["path"], "sha256": sha256_of(root / spec["path"])}
        for name, spec in config["datasets"].items()
    ]
    return {
        "generated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "host": platform.node(),
        "commit": commit,
        "versions": versions,
        "checksums": checksums,
        "config_yaml": yaml.safe_dump(config, sort_keys=False),
    }
