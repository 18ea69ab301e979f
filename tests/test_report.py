"""The HTML report: the chapter's numbers at their printed digits, escaping, and a real browser."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, edit_config, snakemake

from glmflow.report import build_context, render_report
from glmflow.report_plan import report_files, report_settings

# Numbers the chapter prints, at the digits it prints them (tests/reference/chapter.Rmd.txt).
CHAPTER_NUMBERS = [
    "0.0025195", "6.12e-15", "0.3026994", "0.06621",  # lm
    "-0.941330", "0.095129", "9.79e-12", "1117.6", "1121.6",  # glm_fare
    "0.2806318",  # inverse logit of its intercept
    "-2.5137", "917.8", "921.8", "0.7420382", "0.1889081",  # glm_sex
    "-2.099345", "-0.011617", "0.050252", "879.85", "887.85",  # glm_sex_fare
    "0.4903402", "0.4658284",  # a male passenger at $200, with and without the outlier
    "0.6007108", "0.1556552", "0.9165428", "0.9997660", "0.9198098",  # allEffects
    "-0.06214", "0.92905", "1209.6",  # the simulated data's fit
    "-604.82", "1213.64", "1223.45",  # its logLik, AIC, BIC
    "1117.57", "884.31", "233.26", "< 2.2e-16",  # the likelihood-ratio test
    "0.2464", "0.206057",  # lme4's early-stopped GLMM, quoted beside ours
    "7.25", "71.28", "7.92", "53.10",  # the first rows, as kable(digits = 2)
    "0.09", "0.26", "0.74", "0.81",  # the sex x survived table, as kable(digits = 2)
    "-0.94", "-0.79", "6.66",  # glm_fare's predictions, as kable(digits = 2)
]  # fmt: skip
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]  # fmt: skip
SECTIONS = [
    "data",
    "linear-vs-logistic",
    "interpreting",
    "simulation",
    "likelihood",
    "testing",
    "mixed-model",
    "models",  # config.yaml's models beyond the chapter: crossed factors, a random slope, Gamma
    "provenance",
]
SCREENSHOTS = ROOT / ".pytest-artifacts"
# Every test here reads the whole workflow's run on the chapter's config.
pytestmark = pytest.mark.slow


def visible_text(page: str) -> str:
    """The report's text, without tags and inline SVG (whose path data is full of numbers)."""
    page = re.sub(r"<svg.*?</svg>", " ", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page).replace("&lt;", "<").replace("&gt;", ">")


@pytest.fixture(scope="module")
def report(finished_run) -> Path:
    return finished_run / "results" / "report.html"


def test_every_chapter_number_appears_at_its_printed_digits(report):
    text = visible_text(report.read_text())
    missing = [number for number in CHAPTER_NUMBERS if not re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", text)]
    assert missing == []


def test_report_is_self_contained(report):
    page = report.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert page.count("<svg") >= 9 and "data:image" not in page
    assert 'src="provenance.svg"' in page and 'href="provenance.html"' in page  # the parts that change between runs


def test_html_in_the_data_is_escaped(finished_run, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(finished_run / "results", results)
    head = pd.read_csv(results / "data" / "titanic_head.csv", keep_default_na=False)
    head.loc[0, "name"] = "<script>alert(1)</script>"
    head.to_csv(results / "data" / "titanic_head.csv", index=False)
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    figures = [str(path) for path in sorted((results / "figures").glob("*.svg"))]
    files = {key: str(tmp_path / path) for key, path in report_files(config, figures).items()}  # figures: absolute
    page = render_report(build_context(report_settings(config), files))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    (results / "report.html").write_text(page)
    dialogs, _, _ = open_in_browser(results / "report.html", None)
    assert dialogs == []


def open_in_browser(path: Path, screenshot: Path | None, script: str | None = None):
    """Dialogs, errors and facts of the page in headless Chromium (``script``'s result as
    facts["layout"]), and a full-page screenshot where asked."""
    from playwright import sync_api as playwright  # pinned in requirements.lock: a missing one is a failure

    chromium = shutil.which("chromium")
    assert chromium, "the browser test needs Debian's chromium (apt-get install chromium); .ci/run installs it"
    with playwright.sync_playwright() as session:
        browser = session.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs, errors = [], []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        facts = page.evaluate(
            """() => ({
                sections: [...document.querySelectorAll('main > section[id]')].map(s => s.id),
                tables: [...document.querySelectorAll('table')].map(t => [t.id, t.rows.length]),
                figures: [...document.querySelectorAll('figure svg')].map(s => {
                    const r = s.getBoundingClientRect(); return [s.closest('figure').id, r.width, r.height]; }),
                scrollWidth: document.documentElement.scrollWidth,
                wide: [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 1281
                       && !e.closest('.scroll') && !e.closest('pre')).map(e => e.tagName),
                // a heading followed by nothing, or by a heading of its level or above
                empty: [...document.querySelectorAll('h1, h2, h3, h4')].filter(h => {
                    let next = h.nextElementSibling;
                    while (next && next.classList.contains('top')) next = next.nextElementSibling;
                    return !next || (/^H[1-6]$/.test(next.tagName) && next.tagName <= h.tagName);
                }).map(h => h.textContent),
            })"""
        )
        facts["provenance"] = page.evaluate(
            "() => { const i = document.querySelector('img.provenance'); return i && [i.complete, i.naturalHeight]; }"
        )
        if script is not None:
            facts["layout"] = page.evaluate(script)
        if screenshot is not None:
            screenshot.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return dialogs, errors, facts


def test_report_renders_in_a_real_browser(report, config):
    _, errors, facts = open_in_browser(report, SCREENSHOTS / "report.png")
    assert errors == []
    assert facts["sections"][: len(SECTIONS)] == SECTIONS and facts["empty"] == []
    assert facts["scrollWidth"] <= 1280 and facts["wide"] == []
    tables = dict(facts["tables"])
    for model in config["models"]:
        assert tables[f"coefficients-{model}"] >= 2, model
    for name in ["head-titanic", "likelihood-rows", "likelihood-by-hand", "lrt-sex_effect",
                 "prediction-sex_fare_effects", "counts-survival_by_sex", "simulation-study",
                 "varcorr-glmm_repeatgr", "varcorr-glmm_verbagg_crossed",
                 "varcorr-glmm_contraception_slope"]:  # fmt: skip
        assert tables[name] >= 2, name
    figures = {name: (width, height) for name, width, height in facts["figures"]}
    expected = ["fit_lm_fare", "fit_glm_fare", "proportions_survival_by_sex", "fit_glm_sex_fare",
                "fit_glm_sex_fare_no_outlier", "fit_simulation_demo", "simulation_study",
                "caterpillar_glmm_repeatgr", "caterpillar_glmm_verbagg_crossed",
                "caterpillar_glmm_contraception_slope"]  # fmt: skip
    for name in expected:
        width, height = figures[f"figure-{name}"]
        assert width > 200 and height > 150, name
    assert facts["provenance"][0] and facts["provenance"][1] > 300  # the provenance image, loaded
    assert (SCREENSHOTS / "report.png").stat().st_size > 100_000


def test_a_users_items_beside_the_chapters_go_beside_their_models(finished_run, tmp_path):
    """Added to the chapter's config: a model gets a section under Models; a user's comparison
    and grid go beside their models, never into the chapter's Testing hypotheses or Effects."""
    directory = tmp_path / "extended"
    shutil.copytree(finished_run, directory, symlinks=True)

    def change(config):
        config["models"]["glm_class_age"] = {"dataset": "titanic", "formula": "survived ~ factor(pclass) + age",
                                             "family": "binomial"}  # fmt: skip
        config["models"]["glm_class_fare"] = {"dataset": "titanic", "formula": "survived ~ factor(pclass) + fare",
                                              "family": "binomial"}  # fmt: skip
        config["comparisons"]["class_effect"] = {"compact": "glm_fare", "augmented": "glm_class_fare"}
        config["interpretation"]["predictions"]["low_fares"] = {"model": "glm_sex_fare", "at": {"fare": [5, 10]}}

    edit_config(directory, change)
    snakemake(directory)
    report = directory / "results" / "report.html"
    page = report.read_text()
    assert "factor(pclass)2" in page and "177 dropped for missing values" in page
    places = {"model-glm_class_age": "models", "comparison-class_effect": "model-glm_class_fare",
              "predictions-low_fares": "model-glm_sex_fare", "comparison-sex_effect": "testing"}  # fmt: skip
    script = f"""() => {json.dumps(list(places))}.map(id => [...document.querySelectorAll('section[id]')]
        .filter(s => s.contains(document.getElementById(id))).map(s => s.id))"""
    _, errors, facts = open_in_browser(report, None, script)
    within = dict(zip(places, facts["layout"], strict=True))
    assert errors == []
    for item, place in places.items():
        assert place in within[item], (item, within[item])
    assert "testing" not in within["comparison-class_effect"] and "interpreting" in within["predictions-low_fares"]
    # the user's grid is inside glm_sex_fare's section, so never under the chapter's "Effects"
    assert page.index('id="predictions-low_fares"') < page.index("<h3>Effects</h3>")


def test_report_stays_true_after_config_reorderings(finished_run, tmp_path, r_ref):
    """A renamed or changed chapter item leaves the chapter's story (no sentence mislabelled) and
    is shown beside its model, its numbers under their own labels."""
    directory = tmp_path / "reordered"
    shutil.copytree(finished_run, directory, symlinks=True)
    config_path = directory / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    predictions = config["interpretation"]["predictions"]
    predictions["sex_probabilities"]["at"]["sex"] = ["male", "female"]  # reordered
    config["models"]["glm_gender"] = config["models"].pop("glm_sex")  # renamed
    predictions["sex_probabilities"]["model"] = "glm_gender"
    del predictions["fare_intercept"]  # removed
    predictions["male_fare200"]["at"]["fare"] = [100]  # no longer at $200
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake(directory)
    page = (directory / "results" / "report.html").read_text()
    table = pd.read_csv(directory / "results" / "interpretation" / "predictions" / "sex_probabilities.csv")
    assert table["sex"].tolist() == ["male", "female"]
    assert 'id="p-female"' not in page and 'id="p-intercept"' not in page and 'id="p-male-200"' not in page
    section = page[page.index('id="model-glm_gender"') :]
    grid = section[section.index('id="prediction-sex_probabilities"') :]
    probability = {sex: re.search(rf'<td class="text">{sex}</td>\s*<td>[^<]*</td>\s*<td>([^<]+)</td>', grid).group(1)
                   for sex in ["female", "male"]}  # fmt: skip
    assert probability == {"female": "0.7420382", "male": "0.1889081"}  # the chapter's, labels travel with them
    assert float(probability["female"]) == pytest.approx(r_ref["glm_sex"]["p_female"], rel=1e-6)
    assert 'id="predictions-male_fare200"' in page[page.index('id="model-glm_sex_fare"') :]
