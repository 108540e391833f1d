"""The NALU (nalu_np.reference.nalu): the gate selects a path, shared weights are separate ones tied, the
seed articles' presets and their initial statistics; the G-NALU, the NALU in the golden-ratio base."""

from __future__ import annotations

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import arithmetic as ar


def test_nalu_gate_selects_path():
    x = np.array([[2.0, 3.0]])
    layer = nn.NALU(2, 1, dtype="float64", eps=1e-12)
    layer.params["W_hat"][:] = 30.0
    layer.params["M_hat"][:] = 40.0
    layer.params["G"][:] = 50.0  # g = sigma(250) = 1: addition
    np.testing.assert_allclose(layer(x), [[5.0]], rtol=1e-12)
    layer.params["G"][:] = -50.0  # g = 0: multiplication
    np.testing.assert_allclose(layer(x), [[6.0]], rtol=1e-10)


def test_nalu_shared_is_separate_with_tied_weights():
    shared = nn.NALU(3, 2, rng=0, dtype="float64")
    sep = nn.NALU(3, 2, rng=0, dtype="float64", shared_weights=False)
    for path in ("add", "mul"):
        sep.params[f"W_hat_{path}"][:] = shared.params["W_hat"]
        sep.params[f"M_hat_{path}"][:] = shared.params["M_hat"]
    sep.params["G"][:] = shared.params["G"]
    x = np.random.default_rng(2).normal(size=(4, 3))
    dy = np.random.default_rng(3).normal(size=(4, 2))
    ys, cs = shared.forward(x)
    yp, cp = sep.forward(x)
    np.testing.assert_array_equal(ys, yp)
    dxs, gs = shared.backward(dy, cs)
    dxp, gp = sep.backward(dy, cp)
    np.testing.assert_allclose(dxs, dxp, rtol=1e-14)
    np.testing.assert_allclose(gs["W_hat"], gp["W_hat_add"] + gp["W_hat_mul"], rtol=1e-12)
    np.testing.assert_allclose(gs["M_hat"], gp["M_hat_add"] + gp["M_hat_mul"], rtol=1e-12)


def test_presets_and_init_statistics():
    big = nn.NALU.preset("seed-003", 200, 200, rng=0, dtype="float64")
    assert big.eps == 1e-7 and big.shared_weights and set(big.params) == {"W_hat", "M_hat", "G"}
    for p in big.params.values():
        assert np.abs(p).max() <= 0.04 and abs(p.std() - 0.02 * 0.88) < 2e-3  # truncated at 2 sigma
    old = nn.NALU.preset("seed-000", 200, 200, rng=0, dtype="float64")
    assert old.eps == 1e-6 and not old.shared_weights
    assert set(old.params) == {"W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul", "G"}
    assert -2 <= old.params["W_hat_add"].min() < -1.9 and 1.9 < old.params["W_hat_add"].max() <= 2
    assert abs(old.params["G"].std() - 1.0) < 0.02
    a = nn.NALU(3, 2, rng=7)
    b = nn.NALU(3, 2, rng=np.random.default_rng(7))
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


# -- the G-NALU: the NALU in the golden-ratio base -----------------------------------------------------------


def test_gnalu_is_the_authors_golden_ratio_formulas():
    """The Primer's G-NALU (stable_nalu/functional/golden_ratio_base.py): ``tanh_phi(z) = (phi^2z - 1) /
    (phi^2z + 1)``, ``sigma_phi(z) = 1 / (1 + phi^-z)``, ``m = phi^((l @ W) / ln(phi))``; the layer's sparsity
    error is taken over ``tanh_phi(W_hat) sigma_phi(M_hat)``."""
    phi = (1.0 + np.sqrt(5.0)) / 2.0
    layer = nn.GNALU(4, 3, rng=0, dtype="float64")
    p = layer.params
    x = np.random.default_rng(1).uniform(-2.0, 3.0, (7, 4))
    W = (phi ** (2 * p["W_hat"]) - 1) / (phi ** (2 * p["W_hat"]) + 1) / (1 + phi ** -p["M_hat"])
    g = 1 / (1 + phi ** -(x @ p["G"]))
    m = phi ** ((np.log(np.abs(x) + 1e-7) @ W) / np.log(phi))
    np.testing.assert_allclose(layer(x), g * (x @ W) + (1 - g) * m, rtol=1e-13)
    np.testing.assert_allclose(ar.effective_weights(layer)["W_hat"], W, rtol=1e-14)
    assert ar.sparsity_error(layer) == pytest.approx(np.max(np.minimum(np.abs(W), np.abs(1 - np.abs(W)))))
    assert not np.allclose(layer(x), nn.NALU(4, 3, rng=0, dtype="float64")(x))  # the base matters


def test_gnalu_draws_the_primers_nalu_init():
    """The G-NALU runs ``--layer-type NALU``: its parameters are drawn as the NALU's ``madsen2020`` ones."""
    a, b = nn.GNALU(5, 2, rng=3), nn.NALU(5, 2, rng=3, init="madsen2020")
    assert a.init == "madsen2020" and sorted(a.params) == sorted(b.params)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
