"""Each family class against R's family object (tests/r/family_objects.R ->
tests/r/family_objects_reference.json): R's name, links and default link, the variance,
make.link's functions beyond their clamps, valideta/validmu, dev.resids, aic, initialize's
mustart, warnings and errors, and what summary.glm (t or z), AIC (NA) and glmer (quasi refused)
make of the family; and that the compiled kernels, given the classes' codes, compute the
classes' links and variances."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, assert_close

from glmflow.compiled_links import mean_and_slope
from glmflow.errors import GlmflowError
from glmflow.families import FAMILIES, LINKS, family
from glmflow.glmm.pirls import _row

REFERENCE = json.loads((ROOT / "tests" / "r" / "family_objects_reference.json").read_text())
NAMES = [name for name in REFERENCE if name != "r_version"]
CASES = [(name, link) for name in NAMES for link in REFERENCE[name]["link_values"]]
RTOL = 1e-13  # R's functions, written alike; the JSON carries 15 significant digits
# The compiled kernels against numpy: erfc for ndtr, and one polynomial exp for the canonical
# logit (glmflow.elementary, 1e-13 relative)
KERNEL_RTOL = 1e-12


def _values(name, link):
    reference = REFERENCE[name]["link_values"][link]
    return reference, *(np.asarray(reference[key], dtype=float) for key in ("mu", "y", "wt", "eta"))


def _as_list(value):
    # jsonlite writes a vector of one as a scalar, an empty one as []
    return [value] if isinstance(value, str) else list(value)


def test_the_classes_are_rs_families():
    assert set(FAMILIES) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_family_answers_as_r(name):
    cls, reference = FAMILIES[name], REFERENCE[name]
    assert cls.links[0] == reference["default_link"]
    assert set(cls.links) == set(reference["links_accepted"])
    # summary.glm's t column where it estimates the dispersion; z where it takes 1
    assert cls.dispersion_estimated == (reference["test_column"] == "t value")
    assert cls.has_likelihood == (not reference["aic_is_na"])
    assert cls.glmer == (reference["glmer_error"] is None)
    # no compiled code for a family glmer refuses (its kernels know the others)
    assert (cls.code is None) == (not cls.glmer)


@pytest.mark.parametrize("name, link", CASES)
def test_family_and_link_functions_are_rs(name, link):
    reference, mu, y, wt, eta = _values(name, link)
    chosen = family(name, link)
    assert (chosen.name, chosen.link.name) == (reference["family"], reference["link"])
    where = f"{name}({link})"
    assert_close(chosen.variance(mu), reference["variance"], RTOL, f"{where} variance")
    assert_close(chosen.linkfun(mu), reference["linkfun"], RTOL, f"{where} linkfun")
    assert_close(chosen.linkinv(eta), reference["linkinv"], RTOL, f"{where} linkinv")
    assert_close(chosen.mu_eta(eta), reference["mu_eta"], RTOL, f"{where} mu.eta")
    assert chosen.link.valideta(eta) == reference["valideta"]
    assert chosen.validmu(mu) == reference["validmu"]
    dev_resids = chosen.dev_resids(y, mu, wt)
    assert_close(dev_resids, reference["dev_resids"], RTOL, f"{where} dev.resids")
    aic = chosen.aic(y, np.ones(len(y)), mu, wt, float(np.sum(dev_resids)))
    if reference["aic"] is None:
        assert np.isnan(aic), f"{where}: aic {aic} where R's is NA"
    else:
        assert_close(aic, reference["aic"], RTOL, f"{where} aic")


@pytest.mark.parametrize("name, link", CASES)
def test_initialize_is_rs(name, link):
    reference, _, y, wt, _ = _values(name, link)
    chosen = family(name, link)
    start = chosen.initialize(y, wt)
    assert_close(start.mustart, reference["mustart"], RTOL, f"{name}({link}) mustart")
    # glmflow prints R's warning with its call, as R's warnings() does
    assert [w.split(" : ", 1)[1] for w in start.warnings] == _as_list(reference["initialize_warnings"])
    bad = np.asarray(reference["initialize_error_y"], dtype=float)
    if reference["initialize_error"] is None:
        chosen.initialize(bad, np.ones(len(bad)))
    else:
        with pytest.raises(GlmflowError, match=reference["initialize_error"].replace("^", r"\^")):
            chosen.initialize(bad, np.ones(len(bad)))


@pytest.mark.parametrize("link", list(LINKS))
def test_compiled_link_code_computes_the_class_link(link):
    chosen = LINKS[link]
    eta = np.concatenate([_values(n, k)[4] for n, k in CASES if k == link])
    compiled = np.array([mean_and_slope(chosen.code, e) for e in eta])
    assert_close(compiled[:, 0], chosen.linkinv(eta), KERNEL_RTOL, f"{link} compiled linkinv")
    assert_close(compiled[:, 1], chosen.mu_eta(eta), KERNEL_RTOL, f"{link} compiled mu.eta")


@pytest.mark.parametrize("name, link", [(n, k) for n, k in CASES if FAMILIES[n].code is not None])
def test_compiled_family_code_computes_the_class_variance(name, link):
    """PIRLS's row kernel, given the family's and the link's codes: the Fisher weight
    prior mu.eta^2 / V(mu) and the score prior (y - mu) mu.eta / V(mu) of the class."""
    _, _, y, wt, eta = _values(name, link)
    chosen = family(name, link)
    compiled = np.array([_row(chosen.code, chosen.link.code, y[i], eta[i], wt[i], 0.0)[:2] for i in range(len(y))])
    mu, mu_eta = chosen.linkinv(eta[: len(y)]), chosen.mu_eta(eta[: len(y)])
    variance = chosen.variance(mu)
    assert_close(compiled[:, 0], wt * mu_eta**2 / variance, KERNEL_RTOL, f"{name}({link}) weight")
    assert_close(compiled[:, 1], wt * (y - mu) * mu_eta / variance, KERNEL_RTOL, f"{name}({link}) score")
