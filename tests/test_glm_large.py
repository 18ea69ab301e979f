"""The blocked large-n path of glm.fit: the same numbers as glm.fit's QR path (the
one checked against R everywhere else), the same iterations, and the QR path where it declines;
and against R's own glm.fit on 250,000 rows drawn in R (tests/r/glm_large.R)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, assert_close

import glmflow.models as models
from glmflow import glm_large
from glmflow.errors import GlmflowError
from glmflow.families import LINKS, family
from glmflow.glm_large import NotForLargePath, glm_fit_large
from glmflow.rrandom import RRandom, plogis

N = 250_000  # above LARGE_ROWS


def dataset(kind: str, scale: float = 1.0):
    rng = np.random.default_rng(11)
    X = np.column_stack([np.ones(N), rng.standard_normal((N, 4))])
    X[:, 2] *= scale
    eta = X @ np.array([0.2, 0.5, -0.3 / scale, 0.1, 0.05])
    if kind == "poisson":
        return X, rng.poisson(np.exp(eta)).astype(float)
    return X, (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float)


def qr_path(X, y, fam, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(models, "LARGE_ROWS", 10**12)
        return models.glm_fit(X, y, fam)


@pytest.mark.parametrize(("kind", "link"), [("binomial", "logit"), ("binomial", "probit"), ("binomial", "cloglog"),
                                            ("poisson", "log")])  # fmt: skip
def test_the_blocked_path_equals_glm_fits_qr_path(kind, link, monkeypatch):
    X, y = dataset(kind)
    fam = family(kind, link)
    large, reference = models.glm_fit(X, y, fam), qr_path(X, y, fam, monkeypatch)
    assert (large.path, reference.path) == ("blocked", "qr")  # not the QR path twice
    assert large.iterations == reference.iterations and large.converged
    assert_close(large.coef, reference.coef, 1e-10, f"{kind}({link}) coefficients")
    assert_close(large.cov_unscaled, reference.cov_unscaled, 1e-9, "covariance")
    assert abs(large.deviance / reference.deviance - 1) < 1e-12
    assert_close(large.working_weights, reference.working_weights, 1e-9, "working weights")


def test_an_ill_conditioned_design_goes_to_the_qr_path(monkeypatch):
    X, y = dataset("binomial", scale=1e6)
    fam = family("binomial")
    with pytest.raises(NotForLargePath):
        glm_fit_large(X, y, fam, np.ones(N), np.zeros(N), fam.initialize(y, np.ones(N)).mustart, 1e-8, 25)
    fitted = models.glm_fit(X, y, fam)  # falls back by itself
    assert fitted.path == "qr"
    reference = qr_path(X, y, fam, monkeypatch)
    assert np.array_equal(fitted.coef, reference.coef)


def test_a_moderately_conditioned_design_is_refined_to_the_qr_solution(monkeypatch):
    X, y = dataset("binomial", scale=3e3)  # a Cholesky diagonal spread of about 3e3: the refined step
    fam = family("binomial")
    large, reference = models.glm_fit(X, y, fam), qr_path(X, y, fam, monkeypatch)
    assert large.path == "blocked" and large.iterations == reference.iterations
    assert_close(large.coef, reference.coef, 1e-10, "coefficients")
    assert_close(large.cov_unscaled, reference.cov_unscaled, 1e-8, "covariance")


R_LARGE = json.loads((ROOT / "tests" / "r" / "glm_large_reference.json").read_text())


@pytest.fixture(scope="module")
def r_data():
    """tests/r/glm_large.R's 250,000 rows, redrawn bit for bit with R's generator."""
    generator = RRandom(R_LARGE["seed"])
    n = R_LARGE["n"]
    x1, x2, x3, x4 = (generator.rnorm(n) for _ in range(4))
    eta = 0.2 + 0.5 * x1 - 0.3 * x2 + 0.1 * x3 + 0.05 * x4
    y = generator.rbinom1(plogis(eta)).astype(float)
    assert int(y.sum()) == R_LARGE["successes"]  # the same draws as R's
    return np.column_stack([np.ones(n), x1, x2, x3, x4]), y


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_the_blocked_path_equals_rs_glm_fit(r_data, link):
    X, y = r_data
    fit = models.glm_fit(X, y, family("binomial", link))
    reference = R_LARGE[link]
    assert fit.path == "blocked" and fit.iterations == reference["iter"]
    assert_close(fit.coef, np.array(reference["coef"], dtype=float), 1e-10, f"{link} coefficients against R")
    assert_close(np.sqrt(np.diag(fit.cov_unscaled)), np.array(reference["se"], dtype=float), 1e-9, "SEs against R")
    assert abs(fit.deviance / float(reference["deviance"]) - 1) < 1e-12


@pytest.fixture(scope="module")
def r_more(r_data):
    """The designs and responses tests/r/glm_large.R draws after r_data's, redrawn in the same order."""
    X, y = r_data
    generator = RRandom(R_LARGE["seed"])
    n = R_LARGE["n"]
    generator.rnorm(4 * n)  # x1..x4 (rnorm draws two uniforms each)
    generator.rbinom1(plogis(0.2 + 0.5 * X[:, 1] - 0.3 * X[:, 2] + 0.1 * X[:, 3] + 0.05 * X[:, 4]))
    u1, u2 = generator.runif(n), generator.runif(n)
    rare = generator.rbinom1(plogis(-1.8 + 0.5 * u1 - 0.3 * u2)).astype(float)
    p_count = plogis(-0.5 + u1 - 0.5 * u2)
    count = sum(generator.rbinom1(p_count) for _ in range(3)).astype(float)
    assert (int(rare.sum()), int(count.sum())) == (R_LARGE["more"]["rare"], R_LARGE["more"]["count"])
    return {"X": X, "y": y, "U": np.column_stack([np.ones(n), u1, u2]), "rare": rare, "count": count}


MORE = [name for name in R_LARGE["more"] if isinstance(R_LARGE["more"][name], dict)]


def test_every_family_and_link_the_blocked_path_serves_is_checked_against_r():
    checked = {("binomial", "logit"), ("binomial", "probit")}  # test_the_blocked_path_equals_rs_glm_fit
    checked |= {(R_LARGE["more"][name]["family"], R_LARGE["more"][name]["link"]) for name in MORE}
    served = set()
    for name in ["binomial", "poisson", "quasibinomial", "quasipoisson", "gaussian", "Gamma", "inverse.gaussian"]:
        for link in LINKS:
            try:
                fam = family(name, link)
            except GlmflowError:
                continue  # a link the family does not take
            if glm_large.applies(np.ones((N, 3)), fam):
                served.add((name, link))
    assert served == checked


@pytest.mark.parametrize("name", MORE)
def test_the_blocked_path_equals_rs_glm_fit_for_every_family_and_link(r_more, name):
    reference = R_LARGE["more"][name]
    X, y = r_more[reference["design"]], r_more[reference["response"]]
    fit = models.glm_fit(X, y, family(reference["family"], reference["link"]))
    assert fit.path == "blocked", f"{name}: glm_fit fell back to the QR path"
    assert fit.converged and fit.iterations == reference["iter"]
    assert_close(fit.coef, np.array(reference["coef"], dtype=float), 1e-10, f"{name} coefficients against R")
    assert_close(np.sqrt(np.diag(fit.cov_unscaled)), np.array(reference["se"], dtype=float), 1e-9, f"{name} SEs")
    assert abs(fit.deviance / float(reference["deviance"]) - 1) < 1e-12
