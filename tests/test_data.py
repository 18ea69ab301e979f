"""Data loading and cleaning as the chapter's R code does it."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import ROOT
from test_models import chapter_outputs

from glmflow.data import clean_names, glimpse, load_dataset, sha256_of
from glmflow.errors import GlmflowError


def test_clean_names_as_janitor():
    raw = [
        "PassengerId",
        "SibSp",
        "schoolNR",
        "IQ.verb",
        "IQ.ver.cen",
        "avg.IQ.ver.cen",
        "aritPRET",
        "Minority",
    ]
    assert clean_names(raw) == [
        "passenger_id",
        "sib_sp",
        "school_nr",
        "iq_verb",
        "iq_ver_cen",
        "avg_iq_ver_cen",
        "arit_pret",
        "minority",
    ]
    assert clean_names(["a b", "A.B", "1st", "%"]) == ["a_b", "a_b_2", "x1st", "percent"]


def test_vendored_files_match_provenance(config):
    for spec in config["datasets"].values():
        assert sha256_of(ROOT / spec["path"]) == spec["sha256"]
    sums = (ROOT / "resources" / "SHA256SUMS").read_text()
    for spec in config["datasets"].values():
        assert spec["sha256"] in sums


def test_every_vendored_file_has_its_checksum_and_provenance():
    sums = dict(line.split()[::-1] for line in (ROOT / "resources" / "SHA256SUMS").read_text().splitlines())
    provenance = (ROOT / "resources" / "PROVENANCE.md").read_text()
    for path in sorted((ROOT / "resources").glob("*.csv")):
        assert sums.get(path.name) == sha256_of(path), path.name
        assert f"| {path.name} |" in provenance and sums[path.name] in provenance, path.name


def test_titanic_types_and_missing_values(titanic):
    assert titanic.shape == (891, 12)
    assert str(titanic["sex"].dtype) == "category" and list(titanic["sex"].cat.categories) == [
        "female",
        "male",
    ]
    assert titanic["age"].isna().sum() == 177  # blank numeric fields are NA, as read.csv
    assert (titanic["cabin"] == "").sum() == 687  # blank character fields stay "", as read.csv


def test_bdf_filter_leaves_the_chapters_pupils(bdf):
    assert len(bdf) == 2283 and bdf["school_nr"].nunique() == 131
    assert set(bdf["repeatgr"]) == {0, 1}


def test_glimpse_is_the_chapters(titanic, chapter_text):
    printed = next(block for block in chapter_outputs(chapter_text) if block.startswith("Observations"))
    assert glimpse(titanic).rstrip("\n") == printed


def test_checksum_mismatch_names_the_file(tmp_path, config):
    copy = tmp_path / "titanic.csv"
    shutil.copy(ROOT / config["datasets"]["titanic"]["path"], copy)
    with copy.open("a") as handle:
        handle.write('892,1,3,"Extra, Mr. A",male,30,0,0,X,8.05,,S\n')
    with pytest.raises(GlmflowError, match=re.escape(str(copy)) + ".*sha256"):
        load_dataset(copy, sha256=config["datasets"]["titanic"]["sha256"])


def test_unknown_factor_and_bad_filter_are_named(config):
    path = ROOT / config["datasets"]["titanic"]["path"]
    with pytest.raises(GlmflowError, match="factor column 'gender'"):
        load_dataset(path, name="titanic", factors=["gender"])
    with pytest.raises(GlmflowError, match="filter 'fare <<< 3'"):
        load_dataset(path, name="titanic", filter_="fare <<< 3")
