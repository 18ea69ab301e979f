"""A seeded generator of random configurations for the differential test against R.

Each case is what a user could write in config.yaml (a dataset with declared factors or a
`levels:` order, and a model: formula, family, link, weights, offset, filter, nAGQ), drawn
over data sets that ship with R (tests/r/differential/*.csv, written by
tests/r/differential_data.R), plus prediction grids (effects::Effect) and anova chains on
them. `python tests/differential.py` writes tests/r/differential_cases.json;
`Rscript tests/r/differential.R` fits every case in R and writes
tests/r/differential_reference.json; tests/test_differential.py fits them in glmflow and
compares. The filter of each case is drawn twice in parallel, in glmflow's syntax and R's.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261130
N_CASES = 320
N_LMM = 80
HERE = Path(__file__).resolve().parent
DATA = HERE / "r" / "differential"
CASES = HERE / "r" / "differential_cases.json"

# Each data set's columns by role. binary: 0/1 (or a two-level text column, declared a
# factor); count: non-negative integers; positive: > 0; numeric: predictors; factors: text
# or integer-coded columns that are factors; groups: grouping factors of mixed models;
# weights: non-negative integer columns; cbind: (successes, failures) pairs; exposure: a
# column whose log is an offset of a count.
DATASETS = {
    "mtcars": dict(binary=["vs", "am"], count=["carb", "gear"], positive=["mpg", "disp", "hp", "wt", "qsec"],
                   numeric=["mpg", "disp", "hp", "drat", "wt", "qsec"], factors=["cyl", "gear", "am"],
                   groups=["cyl"], weights=["carb"]),
    "warpbreaks": dict(count=["breaks"], positive=["breaks"], numeric=[], factors=["wool", "tension"],
                       groups=["tension"]),
    "esoph": dict(count=["ncases"], numeric=["ncontrols"], factors=["agegp", "alcgp", "tobgp"],
                  cbind=[("ncases", "ncontrols")], groups=["agegp"], exposure=["ncontrols"]),
    "infert": dict(binary=["case"], count=["parity", "spontaneous"], positive=["age", "parity"],
                   numeric=["age", "parity"], factors=["education", "induced", "spontaneous"],
                   groups=["stratum", "pooled_stratum"], weights=["parity"]),
    "toothgrowth": dict(positive=["len"], numeric=["dose"], factors=["supp", "dose"], groups=["supp"]),
    "insectsprays": dict(count=["count"], numeric=[], factors=["spray"], groups=["spray"]),
    "airquality": dict(positive=["ozone", "wind", "temp"], count=["ozone"],
                       numeric=["solar_r", "wind", "temp", "day"], factors=["month"], groups=["month"]),
    "birthwt": dict(binary=["low", "smoke", "ht", "ui"], count=["ptl", "ftv"], positive=["bwt", "lwt", "age"],
                    numeric=["age", "lwt", "ptl"], factors=["race", "smoke", "ftv"], groups=["race"],
                    weights=["ftv"]),
    "quine": dict(count=["days"], numeric=[], factors=["eth", "sex", "age", "lrn"], groups=["age"]),
    "sleepstudy": dict(positive=["reaction"], numeric=["days"], factors=[], groups=["subject"]),
    "co2": dict(positive=["uptake", "conc"], numeric=["conc"], factors=["type", "treatment"], groups=["plant"]),
    "chickweight": dict(positive=["weight"], count=["weight"], numeric=["time"], factors=["diet"],
                        groups=["chick", "diet"]),
    "cbpp": dict(count=["incidence"], numeric=["size"], factors=["period"], groups=["herd"],
                 cbind=[("incidence", "size - incidence")], exposure=["size"]),
    "grouseticks": dict(count=["ticks"], numeric=["height", "cheight"], factors=["year"],
                        groups=["brood", "location"]),
    "contraception": dict(binary=["use", "urban"], numeric=["age"], factors=["livch", "urban"],
                          groups=["district"]),
    "penicillin": dict(positive=["diameter"], count=["diameter"], numeric=[], factors=[],
                       groups=["plate", "sample"]),
}  # fmt: skip

LINKS = {
    "binomial": ["logit"] * 6 + ["probit"] * 2 + ["cauchit", "cloglog", "cloglog", "log"],
    "quasibinomial": ["logit"],
    "poisson": ["log"] * 6 + ["sqrt", "identity"],
    "quasipoisson": ["log"],
    "Gamma": ["inverse", "log", "log", "identity"],
    "inverse.gaussian": ["1/mu^2", "log", "inverse", "identity"],
    "gaussian": ["identity"] * 4 + ["log", "inverse"],
}
GLMM_LINKS = {"binomial": ["logit"] * 4 + ["probit", "cloglog"], "poisson": ["log"] * 4 + ["sqrt"],
              "Gamma": ["log", "inverse"], "gaussian": ["log"], "inverse.gaussian": ["log"]}  # fmt: skip


def load(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"{name}.csv")


class Drawer:
    """One case's draws: every choice goes through the case's own generator. A kind added
    later draws from its own stream (Philox keyed by the kind), so that adding it leaves every
    earlier case's draws, and so R's committed answers for them, as they were."""

    def __init__(self, seed: int, index: int, stream: str | None = None):
        key = index if stream is None else (zlib.crc32(stream.encode()) << 32) | index
        self.rng = np.random.Generator(np.random.Philox(key=[seed, key]))

    def pick(self, options):
        options = list(options)
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def sample(self, options, k: int) -> list:
        options = list(options)
        chosen = self.rng.choice(len(options), size=min(k, len(options)), replace=False)
        return [options[i] for i in sorted(chosen)]


def _is_text(data: pd.DataFrame, column: str) -> bool:
    return not pd.api.types.is_numeric_dtype(data[column].dtype)


def response_for(d: Drawer, meta: dict, data: pd.DataFrame, family: str) -> str | None:
    """A response of the family's kind, or None when the data set has none."""
    if family in ("binomial", "quasibinomial"):
        options = [("binary", c) for c in meta.get("binary", [])] + [("cbind", p) for p in meta.get("cbind", [])]
        if not options:
            return None
        kind, value = d.pick(options)
        return f"cbind({value[0]}, {value[1]})" if kind == "cbind" else value
    if family in ("poisson", "quasipoisson"):
        return d.pick(meta["count"]) if meta.get("count") else None
    if family in ("Gamma", "inverse.gaussian"):
        return d.pick(meta["positive"]) if meta.get("positive") else None
    options = meta.get("positive", []) + meta.get("numeric", [])
    return d.pick(options) if options else None


def numeric_term(d: Drawer, data: pd.DataFrame, column: str) -> str:
    """A numeric predictor, sometimes through one of the formula's functions."""
    values = data[column].dropna()
    forms = [column] * 6 + [f"I({column}^2)"]
    if values.min() > 0:
        forms += [f"log({column})", f"log2({column})", f"log10({column})"]
    if values.min() >= 0:
        forms += [f"sqrt({column})", f"log1p({column})"]
    forms += [f"exp({column}/{int(max(1, np.ceil(values.abs().max())))})", f"abs({column})"]
    return d.pick(forms)


def factor_term(d: Drawer, data: pd.DataFrame, column: str, declared: set[str]) -> str:
    """A factor predictor: declared under `factors` (or text, made a factor as R does), or
    an integer-coded column through factor() in the formula."""
    if _is_text(data, column):
        if d.chance(0.5):
            declared.add(column)
        return column
    if d.chance(0.5):
        declared.add(column)
        return column
    return f"factor({column})"


def fixed_rhs(d: Drawer, meta: dict, data: pd.DataFrame, response: str, declared: set[str]) -> tuple[str, list]:
    """The fixed part's right-hand side and the predictors it uses."""
    taken = set(response.replace("cbind(", "").replace(")", "").replace("-", ",").replace(" ", "").split(","))
    numeric = [c for c in meta.get("numeric", []) if c not in taken]
    factors = [c for c in meta.get("factors", []) if c not in taken and c not in numeric]
    pool = [("n", c) for c in numeric] + [("f", c) for c in factors]
    if not pool:
        return "1", []
    chosen = d.sample(pool, d.pick([1, 1, 2, 2, 2, 3]))
    terms = [numeric_term(d, data, c) if kind == "n" else factor_term(d, data, c, declared) for kind, c in chosen]
    if len(terms) >= 2 and d.chance(0.35):
        rhs = " + ".join([f"{terms[0]} * {terms[1]}", *terms[2:]])
    elif len(terms) >= 2 and d.chance(0.2):
        rhs = " + ".join([*terms, f"{terms[0]}:{terms[1]}"])
    else:
        rhs = " + ".join(terms)
    if d.chance(0.08):
        rhs = rhs + " - 1"
    return rhs, [c for _, c in chosen]


def draw_filter(d: Drawer, data: pd.DataFrame, columns: list[str], declared: set[str]) -> tuple[str, str] | None:
    """A row filter in glmflow's syntax and the same in R's."""
    if not columns:
        return None
    column = d.pick(columns)
    values = data[column].dropna()
    if column in declared or _is_text(data, column):
        levels = sorted(values.astype(str).unique())
        if len(levels) < 3:
            return None
        chosen = d.sample(levels, 2)
        quoted = [f"'{v}'" if _is_text(data, column) else v for v in chosen]
        if d.chance(0.5):
            return f"{column} != {quoted[0]}", f"{column} != {_r_value(quoted[0])}"
        return (f"{column} in [{', '.join(quoted)}]",
                f"{column} %in% c({', '.join(_r_value(q) for q in quoted)})")  # fmt: skip
    cut = float(np.quantile(values, d.pick([0.1, 0.2, 0.3])))
    return f"{column} > {cut:g}", f"{column} > {cut:g}"


def _r_value(text: str) -> str:
    return text.replace("'", '"')


def base_case(d: Drawer, index: int, mixed: bool) -> dict | None:
    name = d.pick([n for n, m in DATASETS.items() if m.get("groups")] if mixed else list(DATASETS))
    meta, data = DATASETS[name], load(name)
    links = GLMM_LINKS if mixed else LINKS
    weights = {"binomial": 4, "poisson": 3, "gaussian": 2}
    families = [f for f in links if response_for(Drawer(0, 0), meta, data, f) is not None]
    family = d.pick([f for f in families for _ in range(weights.get(f, 1))])
    response = response_for(d, meta, data, family)
    declared: set[str] = set()
    if response in data.columns and _is_text(data, response):
        declared.add(response)  # a yes/no response: a factor, as R's binomial needs
    rhs, predictors = fixed_rhs(d, meta, data, response, declared)
    model = {"formula": f"{response} ~ {rhs}", "family": family, "link": d.pick(links[family])}
    r_subset = None
    if d.chance(0.2):
        drawn = draw_filter(d, data, predictors, declared)
        if drawn:
            model["filter"], r_subset = drawn
    if meta.get("weights") and not response.startswith("cbind") and d.chance(0.1):
        model["weights"] = d.pick(meta["weights"])
    if family in ("poisson", "quasipoisson") and meta.get("exposure") and d.chance(0.35):
        exposure = f"log({d.pick(meta['exposure'])})"
        if d.chance(0.5):
            model["formula"] += f" + offset({exposure})"
        else:
            model["offset"] = exposure
    case = {"id": f"case{index:03d}", "dataset": name, "factors": sorted(declared), "model": model,
            "r_subset": r_subset}  # fmt: skip
    ordered = [c for c in sorted(declared) if c not in response]
    if ordered and d.chance(0.12):
        column = d.pick(ordered)
        levels = sorted(data[column].dropna().unique().tolist(), key=str)
        case["levels"] = {column: [levels[i] for i in d.rng.permutation(len(levels))]}
    return case


def random_part(d: Drawer, meta: dict, data: pd.DataFrame, predictors: list[str]) -> str:
    groups = meta["groups"]
    numeric = [p for p in predictors if p in meta.get("numeric", [])]
    g = d.pick(groups)
    shape = d.pick(["int"] * 6 + ["slope", "uncorrelated", "crossed", "nested"])
    if shape == "slope" and numeric:
        return f"(1 + {numeric[0]} | {g})"
    if shape == "uncorrelated" and numeric:
        return f"({numeric[0]} || {g})"
    if shape == "crossed" and len(groups) > 1:
        return f"(1 | {groups[0]}) + (1 | {groups[1]})"
    if shape == "nested" and len(groups) > 1:
        return f"(1 | {groups[1]}/{groups[0]})"
    return f"(1 | {g})"


def mixed_case(d: Drawer, index: int) -> dict | None:
    case = base_case(d, index, mixed=True)
    if case is None:
        return None
    meta, data = DATASETS[case["dataset"]], load(case["dataset"])
    predictors = [c for c in meta.get("numeric", []) if c in case["model"]["formula"].split("~")[1]]
    bar = random_part(d, meta, data, predictors)
    case["model"]["formula"] += f" + {bar}"
    case["model"].pop("weights", None)
    scalar = bar.count("|") == 1 and bar.startswith("(1 |") and "/" not in bar
    if scalar and case["model"]["family"] in ("binomial", "poisson") and d.chance(0.25):
        case["model"]["nAGQ"] = d.pick([3, 5, 7])
    case["kind"] = "glmm"
    return case


def grid_case(d: Drawer, case: dict) -> dict | None:
    """effects::Effect on the case's model: one or two focal predictors."""
    data = load(case["dataset"])
    rhs = case["model"]["formula"].split("~")[1]
    meta = DATASETS[case["dataset"]]
    used = [c for c in meta.get("numeric", []) + meta.get("factors", []) if _mentions(rhs, c)]
    if not used or "offset" in case["model"] or "offset(" in rhs or "weights" in case["model"]:
        return None
    # effects refuses factor() in a formula: the grid's model declares its factors instead
    for column in used:
        if f"factor({column})" in rhs:
            case = {**case, "factors": sorted({*case["factors"], column})}
            case["model"] = {**case["model"], "formula": case["model"]["formula"].replace(f"factor({column})", column)}
    rhs = case["model"]["formula"].split("~")[1]
    at = {}
    for column in d.sample(used, d.pick([1, 1, 2])):
        if column in case["factors"] or _is_text(data, column) or f"factor({column})" in rhs:
            at[column] = []
        else:
            at[column] = [float(round(v, 3)) for v in np.quantile(data[column].dropna(), [0.1, 0.5, 0.9])]
    return {**case, "kind": "grid", "at": at}


def _mentions(rhs: str, column: str) -> bool:
    import re  # noqa: PLC0415

    return re.search(rf"(?<![A-Za-z0-9_.]){re.escape(column)}(?![A-Za-z0-9_.])", rhs) is not None


def anova_case(d: Drawer, case: dict) -> dict | None:
    """anova(m1, m2, test = ...): the case's model against a smaller one on the same rows."""
    response, rhs = (part.strip() for part in case["model"]["formula"].split("~"))
    terms = [t.strip() for t in rhs.split(" + ") if t.strip() and "offset(" not in t and "*" not in t]
    if len(terms) < 2 or rhs.endswith("- 1") or "offset" in case["model"] or "offset(" in rhs:
        return None
    smaller = f"{response} ~ {' + '.join(terms[:-1])}"
    tests = ["LRT", "Chisq", "F", "Rao"]
    return {**case, "kind": "anova", "formulas": [smaller, case["model"]["formula"]], "test": d.pick(tests)}


def lmm_case(d: Drawer, index: int) -> dict:
    """A linear mixed model (lmer: gaussian, identity link), REML or ML, sometimes with
    weights, an offset, a filter or NA rows (airquality's), or an anova of it against the
    same model less its last fixed term (lme4 refits REML fits by ML there)."""
    names = [n for n, m in DATASETS.items() if m.get("groups") and m.get("positive", []) + m.get("numeric", [])]
    name = d.pick(names)
    meta, data = DATASETS[name], load(name)
    response = response_for(d, meta, data, "gaussian")
    declared: set[str] = set()
    rhs, predictors = fixed_rhs(d, meta, data, response, declared)
    numeric = [p for p in predictors if p in meta.get("numeric", [])]
    bar = random_part(d, meta, data, numeric)
    model = {"formula": f"{response} ~ {rhs} + {bar}", "family": "gaussian", "link": "identity"}
    r_subset = None
    if d.chance(0.2):
        drawn = draw_filter(d, data, predictors, declared)
        if drawn:
            model["filter"], r_subset = drawn
    others = [c for c in meta.get("weights", []) + meta.get("positive", []) if c != response]
    if others and d.chance(0.15):
        model["weights"] = d.pick(others)
    offsets = [c for c in meta.get("numeric", []) if c != response and c not in predictors]
    if offsets and d.chance(0.15):
        model["offset"] = d.pick(offsets)
    if d.chance(0.35):
        model["REML"] = False
    case = {"id": f"lmm{index:03d}", "dataset": name, "factors": sorted(declared), "model": model,
            "r_subset": r_subset, "kind": "lmm"}  # fmt: skip
    terms = [t.strip() for t in rhs.split(" + ")]
    if d.chance(0.3) and rhs != "1" and "*" not in rhs and not rhs.endswith("- 1"):
        smaller = f"{response} ~ {' + '.join(terms[:-1]) or '1'} + {bar}"
        case.update(kind="lmm_anova", formulas=[smaller, model["formula"]])
    return case


def generate_lmm(seed: int = SEED, n: int = N_LMM) -> list[dict]:
    return [lmm_case(Drawer(seed, index, stream="lmm"), index) for index in range(n)]


def generate(seed: int = SEED, n: int = N_CASES) -> list[dict]:
    cases, index = [], 0
    while len(cases) < n:
        d = Drawer(seed, index)
        kind = d.pick(["glm"] * 10 + ["grid"] * 3 + ["anova"] * 2 + ["glmm"] * 4)
        case = mixed_case(d, index) if kind == "glmm" else base_case(d, index, mixed=False)
        if case is not None and kind in ("glm", "grid", "anova"):
            case["kind"] = "glm"
            if kind == "grid":
                case = grid_case(d, case)
            elif kind == "anova":
                case = anova_case(d, case)
        if case is not None:
            cases.append(case)
        index += 1
    return cases


if __name__ == "__main__":
    CASES.write_text(json.dumps(generate() + generate_lmm(), indent=1) + "\n")
    print(f"wrote {CASES}")
