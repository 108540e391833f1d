"""The study's baselines in the reference (:mod:`nalu_np.baselines`, re-exported by :mod:`nalu_np.reference`):
the formula, the slope convention at the kinks, and the authors' initialisation."""

from __future__ import annotations

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import reference as ref
from nalu_np.testing import check_gradients


@pytest.mark.parametrize("kernel,lo,hi", [("dense", -np.inf, np.inf), ("relu", 0.0, np.inf), ("relu6", 0.0, 6.0)])
def test_the_formula(kernel, lo, hi):
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(4, 3)), "b": np.array([-2.0, 0.5, 7.0])}
    x = rng.normal(0, 2, (50, 4))
    y, cache = getattr(ref, f"{kernel}_forward")(params, x)
    z = x @ params["W"] + params["b"]
    np.testing.assert_array_equal(y, np.clip(z, lo, hi))
    dy = rng.normal(size=y.shape)
    dx, grads = getattr(ref, f"{kernel}_backward")(params, cache, dy)
    delta = dy * ((z > lo) & (z < hi))
    np.testing.assert_allclose(dx, delta @ params["W"].T, rtol=1e-14)
    np.testing.assert_allclose(grads["W"], x.T @ delta, rtol=1e-14)
    np.testing.assert_allclose(grads["b"], delta.sum(axis=0), rtol=1e-14)


@pytest.mark.parametrize("cls", [nn.Linear, nn.ReLU, nn.ReLU6])
def test_gradients_with_outputs_on_both_sides_of_the_kinks(cls):
    layer = cls(3, 4, rng=1, dtype="float64")
    layer.params["b"][:] = [-1.0, 0.5, 3.0, 6.5]
    x = np.random.default_rng(2).uniform(-2, 2, (20, 3))
    report = check_gradients(layer, x, rng=3)
    assert report.ok, str(report)


def test_the_authors_initialisation():
    """W xavier-uniform (gain 1) for Linear, kaiming-uniform ('relu') for ReLU and ReLU6, b = 0
    (stable_nalu/layer/basic.py)."""
    I, O = 100, 50
    lin, relu = nn.Linear(I, O, rng=0, dtype="float64"), nn.ReLU6(I, O, rng=0, dtype="float64")
    for layer, r in ((lin, np.sqrt(6 / (I + O))), (relu, np.sqrt(6 / I))):
        W = layer.params["W"]
        assert np.abs(W).max() <= r and np.abs(W).max() > 0.98 * r
        assert abs(W.var() - r * r / 3) < 0.05 * r * r / 3  # U(-r, r)
        assert np.all(layer.params["b"] == 0)
