"""The report laid out from the config: the chapter's story only around the chapter's own items,
everything else beside its dataset or its model, no empty heading, sentences computed from the
data, labelled caterpillar plots, and a provenance image that renders in a whole-page capture."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, copy_workflow, snakemake
from test_report import SCREENSHOTS, open_in_browser, visible_text

from glmflow.datafile import read_csv_like_r
from glmflow.figures import ALL_LABELS, EXTREME_LABELS, caterpillar
from glmflow.report import table_html
from glmflow.report_facts import CHAPTER, chapter_items, filter_facts, held_values
from glmflow.report_plan import config_items

# A user's own project: their data (the contraception survey under another name) and nothing
# of the chapter: two GLMs and a filtered one, a mixed model with 60 districts (too many to
# label) and one with 4 levels, a comparison, a grid, a count table and two figures.
USER_CONFIG = yaml.safe_load("""
datasets:
  survey: {path: data/survey.csv, factors: [district, use, livch, urban]}
models:
  use_age: {dataset: survey, formula: "use ~ age + urban", family: binomial}
  use_full: {dataset: survey, formula: "use ~ age + I(age^2) + urban + livch", family: binomial}
  use_young: {dataset: survey, formula: "use ~ age + urban", family: binomial, filter: "age < 0"}
  use_district: {dataset: survey, formula: "use ~ age + urban + (1 | district)", family: binomial}
  use_by_livch: {dataset: survey, formula: "use ~ age + (1 | livch)", family: binomial}
comparisons:
  full_vs_age: {compact: use_age, augmented: use_full}
interpretation:
  predictions:
    age_grid: {model: use_full, at: {age: [-10, 0, 10]}}
  counts:
    use_by_urban: {dataset: survey, by: [urban, use], digits: 2}
figures:
  fits:
    use_full_age: {model: use_full, x: age, by: urban, y_label: p(use)}
  proportions:
    use_by_urban: {counts: use_by_urban, x: urban, fill: use}
""")
# Where each of the user's items must be: inside the element with this id.
PLACES = {
    "comparison-full_vs_age": "model-use_full",
    "predictions-age_grid": "model-use_full",
    "figure-fit_use_full_age": "model-use_full",
    "figure-caterpillar_use_district": "model-use_district",
    "ranef-use_district-1": "model-use_district",
    "figure-caterpillar_use_by_livch": "model-use_by_livch",
    "counts-table-use_by_urban": "dataset-survey",
    "figure-proportions_use_by_urban": "dataset-survey",
    "check-use_young": "model-use_young",
}
# Words of the chapter's story, none of which may appear around a user's own data.
CHAPTER_WORDS = ["passenger", "fare", "chapter", "Titanic", "Linear vs logistic", "Interpreting the parameters",
                 "Binary predictor", "Testing hypotheses", "Logistic mixed model", "Simulating",
                 "Every number"]  # fmt: skip
CHAPTER_HEADINGS = {"Continuous predictor", "Several predictors", "Effects", "The likelihood"}
LAYOUT_FACTS = """() => {
    const headings = [...document.querySelectorAll('h1, h2, h3, h4')];
    const within = {};
    for (const id of PLACES) {
        const element = document.getElementById(id);
        within[id] = element ? [...document.querySelectorAll('section[id]')].filter(s => s.contains(element))
                                   .map(s => s.id) : null;
    }
    const cell = (table, row, column) => getComputedStyle(
        document.getElementById(table).rows[row].cells[column]).textAlign;
    const image = document.querySelector('img.provenance');
    const box = image.getBoundingClientRect();
    return {
        within, headings: headings.map(h => h.textContent.trim()),
        toc: [...document.querySelectorAll('nav a')].map(a => a.getAttribute('href')),
        tops: document.querySelectorAll('p.top a[href="#top"]').length,
        alignment: [cell('coefficients-use_full', 1, 0), cell('coefficients-use_full', 1, 1),
                    cell('head-survey', 1, 3), cell('head-survey', 1, 4)],
        image: {natural: [image.naturalWidth, image.naturalHeight], shown: [box.width, box.height],
                top: box.top + window.scrollY, left: box.left},
    };
}"""


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """The workflow on USER_CONFIG, with the survey as the user's own data file."""
    directory = copy_workflow(tmp_path_factory.mktemp("user_report"))
    (directory / "data").mkdir()
    shutil.copy(ROOT / "resources" / "contraception.csv", directory / "data" / "survey.csv")
    (directory / "config.yaml").write_text(yaml.safe_dump(USER_CONFIG, sort_keys=False))
    snakemake(directory)
    return directory


@pytest.fixture(scope="module")
def survey():
    return read_csv_like_r(ROOT / "resources" / "contraception.csv")


def test_the_chapter_items_are_config_yamls():
    """The report's copy of the chapter's items is config.yaml's, and config.yaml is all chapter
    but the models beyond it (which the report lays out from the config)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    items = config_items(config)
    for kind, chapter in CHAPTER.items():
        for name, spec in chapter.items():
            assert items[kind][name] == spec, (kind, name)
    found = chapter_items(config)
    assert {kind: sorted(names) for kind, names in found.items()} == {k: sorted(v) for k, v in CHAPTER.items()}


def test_a_renamed_or_changed_item_leaves_the_chapter():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["models"]["glm_gender"] = config["models"].pop("glm_sex")  # renamed
    config["models"]["glm_sex_fare"]["formula"] = "survived ~ sex + fare"  # changed
    config["interpretation"]["predictions"]["sex_probabilities"]["model"] = "glm_gender"
    config["models"]["glmm_repeatgr"]["nAGQ"] = 1  # the schema's default: the same model
    found = chapter_items(config)
    assert "glm_gender" not in found["models"] and "glm_sex_fare" not in found["models"]
    # what uses a model that left the chapter leaves it too
    assert {"sex_probabilities", "male_fare200", "sex_fare_effects"}.isdisjoint(found["predictions"])
    assert "glm_sex_fare" not in found["fits"]
    assert {"glm_fare", "glmm_repeatgr", "fare_values"} <= found["models"] | found["predictions"]


def test_text_columns_are_marked_for_left_alignment():
    frame = pd.DataFrame({"term": ["(Intercept)", "sexmale"], "estimate": ["1.5", "-2e-16"], "n": [1, 2],
                          "p-value": ["< 2.2e-16", "NA"], "95% CI": ["[1, 2]", "[-Inf, 0.5]"],
                          "ticket": ["A/5 21171", "113803"], "livch": ["3+", "0"]})  # fmt: skip
    page = table_html(frame, "t")
    header = re.findall(r"<th( class=\"text\")?>([^<]*)</th>", page)
    assert [name for marked, name in header if marked] == ["term", "ticket", "livch"]
    assert page.count('<td class="text">') == 6


def test_the_outlier_sentence_is_computed_from_the_data(titanic):
    """The chapter said 'One male passenger paid a fare above $500': three did, two men and a woman."""
    spec = CHAPTER["models"]["glm_sex_fare_no_outlier"]
    facts = filter_facts(titanic, spec, "glm_sex_fare_no_outlier")
    left_out = titanic[titanic["fare"] >= 500]
    assert facts["n"] == len(left_out) and facts["of"] == len(titanic)
    assert facts["columns"]["fare"] == [(f"{v:.7g}", n) for v, n in left_out["fare"].value_counts().items()]
    assert dict(facts["factors"]["sex"]) == left_out["sex"].astype(str).value_counts().to_dict()


def test_held_values_are_the_means_and_proportions_of_the_rows_used(survey):
    """Over the rows the model uses (here those its filter keeps), as effects::Effect holds them."""
    spec = {**USER_CONFIG["models"]["use_full"], "filter": "age < 0"}
    survey = survey.astype({name: "category" for name in ["district", "use", "livch", "urban"]})
    used = survey[survey["age"] < 0]
    held = held_values(survey, spec, "use_full", ["age"])
    shares = used["urban"].value_counts(normalize=True).sort_index()
    assert held[0] == f"urban at the proportions of its levels (N {shares['N']:.3g}, Y {shares['Y']:.3g})"
    assert held[1].startswith("livch at the proportions of its levels (0 ")
    held = held_values(survey, spec, "use_full", ["urban", "livch"])
    assert held == [f"age at its mean, {used['age'].mean():.4g}"]


@pytest.mark.parametrize("levels", [4, ALL_LABELS, ALL_LABELS + 1, 60])
def test_caterpillar_labels_every_level_that_fits_else_the_extremes(levels):
    values = np.sin(np.arange(levels) * 1.7)  # unsorted
    ranef = pd.DataFrame({"grp": "g", "level": [f"L{i}" for i in range(levels)], "term": "(Intercept)",
                          "condval": values, "condsd": 0.1})  # fmt: skip
    shown = set(re.findall(r"<!-- (L\d+) -->", caterpillar(ranef)))
    order = [f"L{i}" for i in np.argsort(values, kind="stable")]
    expected = order if levels <= ALL_LABELS else order[:EXTREME_LABELS] + order[-EXTREME_LABELS:]
    assert shown == set(expected)


def test_a_users_report_is_laid_out_from_the_config(user_run):
    """Only the user's data: no chapter text, no empty heading, each item beside its dataset or
    model, an entry per model in the contents, text left-aligned, and the whole page captured
    with its provenance image (SCREENSHOTS/report-user.png, looked at by eye)."""
    report = user_run / "results" / "report.html"
    page = report.read_text()
    text = visible_text(page.split('<section id="provenance">')[0])  # the config as run names files
    assert [word for word in CHAPTER_WORDS if word.lower() in text.lower()] == []
    screenshot = SCREENSHOTS / "report-user.png"
    _, errors, facts = open_in_browser(report, screenshot, LAYOUT_FACTS.replace("PLACES", repr(list(PLACES))))
    assert errors == []
    assert facts["sections"] == ["data", "models", "provenance"]
    layout = facts["layout"]
    assert facts["empty"] == [] and CHAPTER_HEADINGS.isdisjoint(layout["headings"])
    for item, place in PLACES.items():
        assert layout["within"][item] and place in layout["within"][item], (item, layout["within"][item])
    assert {f"#model-{m}" for m in USER_CONFIG["models"]} <= set(layout["toc"])
    assert layout["tops"] == 3  # one per section
    assert layout["alignment"] == ["left", "right", "left", "right"]  # term, estimate; livch, age
    _assert_image_rendered(screenshot, layout["image"])


def _assert_image_rendered(screenshot, image):
    """The provenance image shown whole (no fixed height cuts it) and drawn in the full-page
    capture: its last lines (the end of the config) are not blank."""
    from PIL import Image

    (width, height), (shown_width, shown_height) = image["natural"], image["shown"]
    inner_width, inner_height = shown_width - 2, shown_height - 2  # within its 1px border
    assert height > 300 and inner_height == pytest.approx(height * inner_width / width, abs=1)
    capture = np.asarray(Image.open(screenshot).convert("L"))
    top = int(image["top"] + shown_height * 0.8)
    bottom, left = int(image["top"] + shown_height - 4), int(image["left"]) + 4
    region = capture[top:bottom, left : left + int(shown_width) - 8]
    assert (region < 128).sum() > 200  # text, where a frame left white


def test_a_users_sentences_and_notes_come_from_their_data(user_run, survey):
    page = (user_run / "results" / "report.html").read_text()
    kept = int((survey["age"] < 0).sum())
    assert f"leaves out {len(survey) - kept} of the {len(survey)} rows" in page
    for model in ["use_district", "use_by_livch"]:
        note = re.search(rf'id="lme4-{model}">(.*?)</p>', page, re.S).group(1)
        assert "lme4's default" in note and "deriv12" in note and "conditional SE" in note
    caption = re.search(r'id="figure-fit_use_full_age">.*?<figcaption>(.*?)</figcaption>', page, re.S).group(1)
    assert "Held: livch at the proportions of its levels (0 " in caption
    table = re.search(r'id="ranef-use_district-1".*?</table>', page, re.S).group(0)
    assert table.count("<tr>") == survey["district"].nunique()  # every level beneath the figure (and a header row)
