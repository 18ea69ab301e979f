"""The HTML report: one self-contained page rendered with jinja2 from the results files.

Nothing is refitted here: every number comes from a file that a rule wrote. Numbers are
printed as R prints them (``rformat``), so the chapter's printed digits appear as printed.
Tables are pandas' ``to_html`` (escaped, with fixed ids); figures are inline SVG.
"""

from __future__ import annotations

import datetime
import html
import importlib.metadata
import json
import math
import platform
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import yaml

from glmflow.data import sha256_of
from glmflow.frame import read_frame
from glmflow.plan import comparison_models
from glmflow.report_facts import chapter_items, held_values, lme4_note
from glmflow.report_plan import config_items, frames_needed
from glmflow.rformat import format_number, format_pval, format_real, r_round
from glmflow.study import DEMO_MODEL, DEMO_NAME


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("glmflow", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# A cell that reads as a number: R's printed numbers, p-values (< 2e-16), NA and Inf,
# intervals ([a, b]) and estimates with their Monte Carlo SE (a (b)).
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?%?|NA|NaN|-?Inf"
NUMBER_CELL = re.compile(rf"<?\s*(?:{_NUMBER})|\[(?:{_NUMBER}), (?:{_NUMBER})\]|(?:{_NUMBER}) \((?:{_NUMBER})\)")


def is_text_column(values: pd.Series) -> bool:
    """Whether a column holds text (names, terms, levels), aligned left; numbers align right."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return False
    cells = [str(v).strip() for v in values if pd.notna(v) and str(v).strip() != ""]
    return not all(NUMBER_CELL.fullmatch(cell) for cell in cells)


def table_html(frame: pd.DataFrame, table_id: str) -> str:
    """An escaped HTML table with a fixed id (no random uuids), numbers already formatted; the
    cells of text columns have class ``text`` (left-aligned)."""
    # pandas writes table_id into the id attribute unescaped: escape it here.
    table = frame.to_html(index=False, table_id=html.escape(table_id), classes="data", border=0, escape=True,
                          na_rep="")  # fmt: skip
    text = [is_text_column(frame.iloc[:, i]) for i in range(frame.shape[1])]
    if not any(text):
        return table

    def mark(row: re.Match) -> str:
        cells = iter(text)
        return re.sub(r"<(t[dh])>", lambda cell: f'<{cell.group(1)} class="text">' if next(cells) else
                      cell.group(0), row.group(0))  # fmt: skip

    # pandas escapes the cells' text, so a "<td>" inside this table is always a cell
    return re.sub(r"<tr[^>]*>.*?</tr>", mark, table, flags=re.S)


def fmt(value, significant: int = 7) -> str:
    """One number as R prints it; a missing one (a quasi family's logLik) as NA."""
    value = float(value)
    return "NA" if math.isnan(value) else format_number(value, significant).strip()


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
    if "df" in tidy:  # a linear mixed model's Satterthwaite df (lmerTest)
        frame.insert(4, "df", digits(tidy["df"], 5))
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


def lrt_table(test: dict, table_id: str) -> str:
    """``anova(m1, m2, ..., test = ...)`` as a table, with R's digits; both comparison forms."""
    if "npar" in test:
        return _mixed_anova_html(test, table_id)
    if "models" in test:
        models, steps = test["models"], test
    else:  # compact/augmented: one step, scalar entries
        models = [test["compact"], test["augmented"]]
        steps = {key: [None, test[key]] for key in ["df", "deviance", "p_value", test["test"]] if key in test}

    def cells(values, show):
        return ["" if v is None else show(v) for v in values]

    frame = pd.DataFrame(
        {
            "model": models,
            "Resid. Df": [str(d) for d in test["resid_df"]],
            "Resid. Dev": [d.strip() for d in format_real(test["resid_dev"], 5)],
            "Df": cells(steps["df"], str),
            "Deviance": cells(steps["deviance"], lambda v: format_number(v, 5).strip()),
        }
    )
    if test["test"] in ("F", "Rao"):
        frame[test["test"]] = cells(steps[test["test"]], lambda v: format_number(v, 5).strip())
    label = "Pr(>F)" if test["test"] == "F" else "Pr(>Chi)"
    frame[label] = cells(steps["p_value"], lambda v: format_pval([v], 4)[0])
    return table_html(frame, table_id)


def _mixed_anova_html(test: dict, table_id: str) -> str:
    """lme4's ``anova.merMod`` table, each column as R prints it (5 significant digits)."""

    def column(values):
        shown = iter(format_real([v for v in values if v is not None], 5))
        return ["" if v is None else next(shown).strip() for v in values]

    frame = pd.DataFrame({"model": test["models"], "npar": [str(n) for n in test["npar"]]})
    for name in ["AIC", "BIC", "logLik", "deviance", "Chisq"]:
        frame[name] = column(test[name])
    frame["Df"] = ["" if d is None else str(d) for d in test["Df"]]
    frame["Pr(>Chisq)"] = ["" if p is None else format_pval([p], 4)[0] for p in test["p_value"]]
    return table_html(frame, table_id)


def kable(frame: pd.DataFrame, digits: int | None, table_id: str) -> str:
    """A data table as the chapter prints it with ``kable(digits = d)``: numbers rounded to d
    decimals, each column with common decimals (``53.10``, ``22``), NA as ``NA``; with
    ``digits`` None, R's default 7 significant digits. The full precision is a click away."""
    shown = frame.copy()
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_float_dtype(values.dtype):
            numbers = values.to_numpy(dtype=float)
            rounded = r_round(numbers, digits) if digits is not None else numbers
            text = [s.strip() for s in format_real(rounded, 7)]
            shown[name] = ["NA" if np.isnan(v) else t for v, t in zip(numbers, text, strict=True)]
    table = table_html(shown, table_id)
    if digits is None:
        return table
    full = frame.copy()
    for name in frame.columns:
        if pd.api.types.is_float_dtype(frame[name].dtype):
            full[name] = [repr(float(v)) if pd.notna(v) else "NA" for v in frame[name]]
    return f"{table}<details><summary>full precision</summary>{table_html(full, table_id + '-full')}</details>"


def lookup(frame: pd.DataFrame, column: str, **at) -> float | None:
    """``column`` of the one row whose labelled values equal ``at`` (as text), or None: numbers
    quoted in sentences are found by their labels, never by their position in a file."""
    rows = frame
    for name, value in at.items():
        if name not in rows:
            return None
        column_values = rows[name]
        if pd.api.types.is_numeric_dtype(column_values.dtype) and not isinstance(value, str):
            rows = rows[column_values == value]
        else:
            rows = rows[column_values.astype(str) == str(value)]
    return float(rows[column].iloc[0]) if len(rows) == 1 else None


def render_report(context: dict) -> str:
    return _environment().get_template("report.html.j2").render(**context)


def render_provenance(context: dict) -> str:
    return _environment().get_template("provenance.html.j2").render(**context)


# The provenance image's monospace text: DejaVu Sans Mono's advance is 0.602 em.
SVG_FONT, SVG_ADVANCE, SVG_LINE, SVG_MARGIN = 13, 0.602, 17, 12


def render_provenance_svg(context: dict) -> str:
    """The provenance page as an SVG image of text lines, sized to its content: the report shows
    it as an image, which renders in print and in whole-page captures (a frame does neither:
    Chromium leaves a frame below the first screen blank in a full-page capture, and prints it
    cut at its fixed height)."""
    lines = [("Provenance", True), (f"Generated {context['generated']} on {context['host']}; git commit "
                                    f"{context['commit']}.", False), ("", False), ("Software", True)]  # fmt: skip
    lines += [(f"  {name:<12} {version}", False) for name, version in context["versions"].items()]
    lines += [("", False), ("Data (sha256)", True)]
    lines += [(f"  {row['name']}  {row['path']}  {row['sha256']}", False) for row in context["checksums"]]
    lines += [("", False), ("Configuration as run", True)]
    lines += [(f"  {line}", False) for line in context["config_yaml"].splitlines()]
    longest = max(len(text) for text, _ in lines)
    return (
        _environment()
        .get_template("provenance.svg.j2")
        .render(
            lines=[{"text": text, "heading": heading} for text, heading in lines],
            width=math.ceil(longest * SVG_FONT * SVG_ADVANCE + 2 * SVG_MARGIN),
            height=(len(lines) + 1) * SVG_LINE + 2 * SVG_MARGIN,
            font_size=SVG_FONT,
            line_height=SVG_LINE,
            margin=SVG_MARGIN,
        )
    )


def svg_inline(text: str) -> str:
    """An SVG file's markup for inlining: without the XML declaration and DOCTYPE."""
    start = text.find("<svg")
    return text[start:]


def _read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def _model_view(files, name: str, spec: dict, prefix: str = "") -> ModelView:
    """A model's section from the files ``{prefix}tidy``, ``{prefix}glance``, ``{prefix}summary``
    (prefix ``tidy_<model>`` style for configured models, ``demo_tidy`` for the simulated fit)."""
    key = (lambda part: f"{part}_{name}") if not prefix else (lambda part: f"{prefix}{part}")
    tidy = pd.read_csv(files[key("tidy")])
    glance = _read_json(files[key("glance")])
    extra = {"tidy": tidy}
    if key("varcorr") in files:
        extra["varcorr"] = table_html(varcorr_frame(pd.read_csv(files[key("varcorr")])), f"varcorr-{name}")
        extra["note"] = lme4_note(spec, glance, "std_error_conditional" in tidy)
    if key("ranef") in files:
        extra["ranef_tables"] = ranef_tables(pd.read_csv(files[key("ranef")], keep_default_na=False), name)
    return ModelView(
        name=name,
        spec=spec,
        glance=glance,
        coefficients=table_html(coefficient_frame(tidy), f"coefficients-{name}"),
        summary=Path(files[key("summary")]).read_text(),
        mixed="theta" in glance,
        extra=extra,
    )


def ranef_tables(ranef: pd.DataFrame, model: str) -> list[dict]:
    """For each caterpillar panel too large to label every level: every level in the panel's
    order, with its conditional mode, SD and 95% interval, for the table beneath the figure."""
    from glmflow.figures import caterpillar_labels_all, caterpillar_panels  # matplotlib: see build_context

    tables = []
    for index, (group, term, rows) in enumerate(caterpillar_panels(ranef)):
        if caterpillar_labels_all(len(rows)):
            continue
        frame = pd.DataFrame({
            "rank": [str(i + 1) for i in range(len(rows))],
            group: rows["level"].astype(str),
            "conditional mode": digits(rows["condval"], 4),
            "conditional SD": digits(rows["condsd"], 4),
            "95% interval": [f"[{a}, {b}]" for a, b in zip(digits(rows["condval"] - 1.96 * rows["condsd"], 4),
                                                           digits(rows["condval"] + 1.96 * rows["condsd"], 4),
                                                           strict=True)],
        })  # fmt: skip
        tables.append({"group": group, "term": term, "levels": len(rows),
                       "html": table_html(frame, f"ranef-{model}-{index + 1}")})  # fmt: skip
    return tables


def varcorr_frame(varcorr: pd.DataFrame) -> pd.DataFrame:
    """VarCorr as lme4 prints it: per grouping factor and term the variance and SD, and the
    correlations (rows with a second term) with 2 decimals."""
    shown = pd.DataFrame({
        "group": varcorr["grp"],
        "term": [a if pd.isna(b) else f"{a} : {b}" for a, b in zip(varcorr["var1"], varcorr["var2"], strict=True)],
        "variance / covariance": digits(varcorr["vcov"], 5),
        "SD / correlation": [format_number(v, 4 if pd.isna(b) else 2).strip()
                             for v, b in zip(varcorr["sdcor"], varcorr["var2"], strict=True)],
    })  # fmt: skip
    return shown


def _datasets(config: dict, files: dict, chapter: dict) -> tuple[dict, dict]:
    """Each dataset's glimpse, warnings, first rows and the count tables made from it (the
    chapter's own count table is in its story instead)."""
    interpretation = config.get("interpretation", {})
    datasets = {}
    for name, spec in config["datasets"].items():
        lines = Path(files[f"glimpse_{name}"]).read_text().splitlines()
        head = pd.read_csv(files[f"head_{name}"], keep_default_na=False, na_values=[""])
        datasets[name] = {
            "glimpse": "\n".join(line for line in lines if not line.startswith("Warning: ")) + "\n",
            "warnings": [line.removeprefix("Warning: ") for line in lines if line.startswith("Warning: ")],
            "head": kable(head, spec.get("digits"), f"head-{name}"),
            "counts": [c for c, table in interpretation.get("counts", {}).items()
                       if table["dataset"] == name and c not in chapter["counts"]],
        }  # fmt: skip
    return datasets


def _attach(config: dict, chapter: dict) -> dict[str, dict[str, list]]:
    """What each model's section shows besides its fit: the config's fitted curves, grids and
    comparisons that use it and are not the chapter's (a comparison beside the last of its
    models, the others linking to it), and the comparisons shown elsewhere that it is part of."""
    items = config_items(config)
    attached = {m: {"fits": [], "predictions": [], "comparisons": [], "compared_in": []} for m in config["models"]}
    for kind in ("fits", "predictions"):
        for name, item in items[kind].items():
            if name not in chapter[kind]:
                attached[item["model"]][kind].append(name)
    for name, comparison in items["comparisons"].items():
        models = comparison_models(comparison)
        if name not in chapter["comparisons"]:
            attached[models[-1]]["comparisons"].append(name)
        for model in dict.fromkeys(models[:-1]):
            attached[model]["compared_in"].append(name)
    return attached


def _predictions_and_counts(config: dict, files: dict) -> tuple[dict, dict]:
    interpretation = config.get("interpretation", {})
    predictions = {}
    for name, prediction in interpretation.get("predictions", {}).items():
        frame = pd.read_csv(files[f"prediction_{name}"])
        predictions[name] = {
            "frame": frame,
            "spec": prediction,
            "model": prediction["model"],
            "html": kable(frame.drop(columns=["se_link"]), prediction.get("digits"), f"prediction-{name}"),
        }
    counts = {}
    for name, table in interpretation.get("counts", {}).items():
        frame = pd.read_csv(files[f"counts_{name}"])
        counts[name] = kable(frame, table.get("digits"), f"counts-{name}")
    return predictions, counts


def _simulation(config: dict, files: dict) -> tuple[dict, dict | None]:
    simulation = {}
    if "demo_data" in files:
        data = pd.read_csv(files["demo_data"])
        demo_spec = config["simulation"]["demo"]
        simulation = {
            "spec": demo_spec,
            "head": kable(data.head(10), None, "simulation-head"),
            "model": _model_view(files, DEMO_NAME, DEMO_MODEL, prefix="demo_"),  # fmt: skip
            "likelihood_rows": kable(pd.read_csv(files["demo_likelihood"]).head(10), 2, "likelihood-rows"),
            "check": _read_json(files["demo_check"]),
        }
    study = None
    if "study_summary" in files:
        summary = pd.read_csv(files["study_summary"])
        columns = ["n", "b1", "used", "separated", "mean_estimate", "bias", "rmse", "se_sd_ratio", "coverage",
                   "power_all", "power_without_separated"]  # fmt: skip
        shown = summary[columns].copy()
        for name_ in columns[4:]:
            shown[name_] = [
                f"{format_number(v, 3).strip()} ({format_number(e, 2).strip()})" if pd.notna(v) else ""
                for v, e in zip(summary[name_], summary[f"{name_}_mcse"], strict=True)
            ]
        study = {"spec": config["simulation"]["study"], "html": table_html(shown, "simulation-study")}
    return simulation, study


def _data_sentences(config: dict, files: dict) -> tuple[dict, dict]:
    """Computed from the data, as the fit jobs wrote it in the model frames: what each model's
    filter left out, and what each fitted curve and grid holds its other predictors at."""
    items = config_items(config)
    frames = {m: read_frame(files[f"frame_{m}"], files[f"frame_json_{m}"]) for m in frames_needed(config)}
    filters = {m: frame.left_out for m, frame in frames.items() if frame.left_out is not None}
    held = {}
    for kind in ("fits", "predictions"):
        for name, item in items[kind].items():
            frame = frames[item["model"]]
            focal = [item["x"], item.get("by")] if kind == "fits" else list(item["at"])
            held[f"{kind}:{name}"] = held_values(frame.data, frame.spec, item["model"], focal)
    return filters, held


def _contents(config: dict, chapter: dict, sections: dict) -> list[dict]:
    """The table of contents: the sections present, in the page's order, and an entry per model."""
    entries = [{"id": "data", "title": "The data",
                "children": [(f"dataset-{d}", d) for d in config["datasets"]]}]  # fmt: skip
    titles = {"linear-vs-logistic": "Linear vs logistic regression", "interpreting": "Interpreting the parameters",
              "simulation": "Simulating a logistic regression", "likelihood": "The likelihood",
              "testing": "Testing hypotheses", "mixed-model": "Logistic mixed model"}  # fmt: skip
    for section, title in titles.items():
        if sections[section]:
            entries.append({"id": section, "title": title, "children": []})
    models = [(f"model-{m}", m + (" (chapter)" if m in chapter["models"] else "")) for m in config["models"]]
    entries.append({"id": "models" if sections["models"] else models[0][0], "title": "Models", "children": models})
    entries.append({"id": "provenance", "title": "Provenance", "children": []})
    return entries


def _sections(config: dict, chapter: dict, files: dict, predictions: dict) -> dict[str, bool]:
    """Which of the page's sections have something to show (a heading is never left empty)."""
    models, chosen = chapter["models"], chapter["predictions"]
    return {
        "linear-vs-logistic": bool({"lm_fare", "glm_fare"} & models),
        "interpreting": bool({"glm_sex", "glm_sex_fare", "glm_sex_fare_no_outlier"} & models or chosen
                             or chapter["counts"] or chapter["proportions"]),
        "simulation": "demo_data" in files or "study_summary" in files,
        "likelihood": "demo_data" in files,
        "testing": bool(chapter["comparisons"]) or "glm_sex_plus_fare" in models,
        "mixed-model": bool({"glmm_repeatgr", "glmm_repeatgr_agq10"} & models),
        "models": any(m not in models for m in config["models"]),
    }  # fmt: skip


def build_context(config: dict, files) -> dict:
    """Everything the template shows, read from the files named in ``files`` (the report
    rule's named inputs, ``report_files``) and from ``config``, the report's settings
    (``report_settings``)."""
    # Imported here, not at the top: the Snakefile imports this module for report_files, and
    # every Snakemake start (each test's, each cluster job's) would load matplotlib for nothing.
    from glmflow.figures import ALL_LABELS, EXTREME_LABELS

    files = dict(files.items())  # snakemake's Namedlist: `in` tests its values, not its names
    chapter = chapter_items(config)
    models = {name: _model_view(files, name, spec) for name, spec in config["models"].items()}
    figures = {
        key.removeprefix("figure_"): svg_inline(Path(files[key]).read_text())
        for key in sorted(files.keys())
        if key.startswith("figure_")
    }
    predictions, counts = _predictions_and_counts(config, files)
    comparisons = {}
    for name in config.get("comparisons", {}):
        test = _read_json(files[f"comparison_{name}"])
        comparisons[name] = {"test": test, "html": lrt_table(test, f"lrt-{name}")}
    checks = {name: _read_json(files[f"check_{name}"]) for name in config["models"]}
    datasets = _datasets(config, files, chapter)
    filters, held = _data_sentences(config, files)
    simulation, study = _simulation(config, files)
    sections = _sections(config, chapter, files, predictions)
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
        "chapter": chapter,
        "chapter_only": all(m in chapter["models"] for m in config["models"]),
        "attached": _attach(config, chapter),
        "filters": filters,
        "held": held,
        "sections": sections,
        "contents": _contents(config, chapter, sections),
        "items": config_items(config),
        "all_labels": ALL_LABELS,
        "extreme_labels": EXTREME_LABELS,
        "config": config,
        "lookup": lookup,
        "digits": digits,
        "fmt": fmt,
        "fixed": lambda value, places=2: f"{float(value):.{places}f}",
    }


def provenance_context(config: dict, root: Path, workflow_root: Path | None = None) -> dict:
    """What the provenance page shows and Snakemake's report does not: the config as run,
    checksums of the data (paths relative to ``root``, the project), package versions, and the git
    commit of the workflow's code (``workflow_root``, where it differs from the project: glmflow
    run as a module of another workflow)."""
    packages = ["glmflow", "snakemake", "numpy", "pandas", "scipy", "statsmodels", "formulaic", "numba",
                "matplotlib", "jinja2", "pyarrow"]  # fmt: skip
    versions = {"python": platform.python_version()}
    versions.update({name: importlib.metadata.version(name) for name in packages})
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=workflow_root or root, capture_output=True, text=True, check=True
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
