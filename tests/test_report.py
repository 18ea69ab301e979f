"""The HTML report: the chapter's numbers at their printed digits, escaping, and a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, snakemake

from glmflow.report import build_context, render_report, report_files, report_settings

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
    "other-models",  # config.yaml's crossed and random-slope mixed models
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
    assert 'src="provenance.html"' in page  # the one part that changes between runs


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


def open_in_browser(path: Path, screenshot: Path | None):
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
            })"""
        )
        # file:// pages are separate origins: the frame's document is read through Playwright
        frames = [frame for frame in page.frames if frame.url.endswith("/provenance.html")]
        facts["frames"] = [frame.locator("table").count() for frame in frames]
        if screenshot is not None:
            screenshot.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return dialogs, errors, facts


def test_report_renders_in_a_real_browser(report, config):
    _, errors, facts = open_in_browser(report, SCREENSHOTS / "report.png")
    assert errors == []
    assert facts["sections"][: len(SECTIONS)] == SECTIONS
    assert facts["scrollWidth"] <= 1280 and facts["wide"] == []
    tables = dict(facts["tables"])
    for model in config["models"]:
        assert tables[f"coefficients-{model}"] >= 2, model
    for name in ["head-titanic", "likelihood-rows", "likelihood-by-hand", "likelihood-checks", "lrt-sex_effect",
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
    assert facts["frames"] and facts["frames"][0] >= 2  # provenance: versions, checksums
    assert (SCREENSHOTS / "report.png").stat().st_size > 100_000


def test_a_new_model_in_the_config_gets_a_section(finished_run, tmp_path):
    directory = tmp_path / "extended"
    shutil.copytree(finished_run, directory, symlinks=True)
    config_path = directory / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["models"]["glm_class_age"] = {
        "dataset": "titanic",
        "formula": "survived ~ factor(pclass) + age",
        "family": "binomial",
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake(directory)
    page = (directory / "results" / "report.html").read_text()
    assert 'id="other-models"' in page and 'id="model-glm_class_age"' in page
    assert "factor(pclass)2" in page and "177 dropped for missing values" in page


def test_report_stays_true_after_config_reorderings(finished_run, tmp_path, r_ref):
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
    female = re.search(r'id="p-female">([^<]+)<', page).group(1)
    male = re.search(r'id="p-male">([^<]+)<', page).group(1)
    assert (female, male) == ("0.7420382", "0.1889081")  # the chapter's, labels travel with the numbers
    assert float(female) == pytest.approx(r_ref["glm_sex"]["p_female"], rel=1e-6)
    assert 'id="p-intercept"' not in page and 'id="p-male-200"' not in page  # left out, not mislabelled
    assert 'id="model-glm_gender"' in page and "<code>glm_gender</code>" in page
