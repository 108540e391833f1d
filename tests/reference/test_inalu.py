"""The iNALU (nalu_np.reference.inalu): products and quotients of negative numbers, the gate, a loop
implementation, the clip at omega, zero input, the gate's shape and the authors' initialisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nalu_np as nn
from nalu_np.testing import strategies as st_nalu
from support.reference import make


def _inalu_selecting(W_mul, gate, dtype=np.float64):
    """An iNALU whose multiplicative weights are exactly ``W_mul`` (entries -1, 0, 1) and whose gate is ``gate``:
    tanh(40) and sigma(40) round to 1 and sigma(-40) to 0 in float32 and float64."""
    W_mul = np.asarray(W_mul, dtype=dtype)
    I, O = W_mul.shape
    layer = nn.INALU(I, O, rng=0, dtype=dtype)
    layer.params["W_hat_mul"][...] = 40.0 * W_mul
    layer.params["M_hat_mul"][...] = np.where(W_mul != 0, 40.0, -40.0)
    layer.params["W_hat_add"][...] = 40.0 * W_mul
    layer.params["M_hat_add"][...] = np.where(W_mul != 0, 40.0, -40.0)
    layer.params["g"][...] = gate
    return layer


def _additive_path(params):
    """The effective additive weights W_a and the gate sigma(g) of an iNALU."""
    Wa = np.tanh(params["W_hat_add"]) / (1 + np.exp(-params["M_hat_add"]))
    G = 1 / (1 + np.exp(-params["g"]))
    return Wa, G


def test_inalu_multiplies_and_divides_negative_numbers():
    layer = _inalu_selecting([[1.0, 1.0], [1.0, -1.0]], gate=-40.0)  # gate 0: the multiplicative path
    x = np.array([[-2.0, 3.0], [-2.0, -4.0], [5.0, 0.5]])
    y = layer(x)
    np.testing.assert_allclose(y, [[-6.0, -2.0 / 3.0], [8.0, 0.5], [2.5, 10.0]], rtol=1e-12)


def test_inalu_gate_one_is_the_additive_path():
    layer = _inalu_selecting([[1.0, 1.0], [1.0, -1.0]], gate=40.0)
    x = np.array([[-2.0, 3.0], [1.0, 4.0]])
    np.testing.assert_allclose(layer(x), [[1.0, -5.0], [5.0, -3.0]], rtol=1e-12)


@settings(max_examples=25)
@given(x=st_nalu.off_kink_arrays((3, 3), margin=0.1, hi=3.0),
       select=st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=3, max_size=3))
def test_inalu_products_and_quotients_of_signed_inputs(x, select):
    layer = _inalu_selecting(np.array(select)[:, None], gate=-40.0)
    want = np.prod(x ** np.array(select), axis=1, keepdims=True)
    np.testing.assert_allclose(layer(x), want, rtol=1e-12)


def test_inalu_forward_matches_a_loop_implementation():
    layer = make(nn.INALU, 3, 2, seed=4)
    x = np.array([[-1.5, 0.0, 2.0], [0.3, -0.7, -1.1]])
    p = layer.params
    Wa, G = _additive_path(p)
    Wm = np.tanh(p["W_hat_mul"]) / (1 + np.exp(-p["M_hat_mul"]))
    want = np.zeros((2, 2))
    for b in range(2):
        for o in range(2):
            a = sum(x[b, i] * Wa[i, o] for i in range(3))
            z = sum(np.log(max(abs(x[b, i]), 1e-7)) * Wm[i, o] for i in range(3))
            s = np.prod([np.sign(x[b, i]) * abs(Wm[i, o]) + 1 - abs(Wm[i, o]) for i in range(3)])
            want[b, o] = G[o] * a + (1 - G[o]) * np.exp(min(z, 20.0)) * s
    np.testing.assert_allclose(layer(x), want, rtol=1e-12)


def test_inalu_sign_term_at_saturated_weights():
    layer = _inalu_selecting([[1.0], [1.0]], gate=-40.0)
    x = np.array([[1e10, 1e10], [-1e10, 1e10]])  # log-space sum 46 > omega = 20
    with np.errstate(all="raise"):
        y, cache = layer.forward(x)
        dx, _ = layer.backward(np.ones((2, 1)), cache)
    np.testing.assert_allclose(y, [[np.exp(20.0)], [-np.exp(20.0)]], rtol=1e-12)
    # past the clip the log path passes no gradient to x (it would be about exp(46) / 1e10 without it)
    assert np.all(np.abs(dx) < 1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inalu_clips_large_inputs_at_omega(dtype):
    layer = make(nn.INALU, 2, 1, seed=0, dtype=dtype)
    p = layer.params
    p["W_hat_mul"][...] = 2.0  # W_m = tanh(2) sigma(2) = 0.84, not saturated
    p["M_hat_mul"][...] = 2.0
    x = np.full((1, 2), 1e30, dtype=dtype)  # log-space sum 117 > omega = 20; positive, so the sign term is 1
    with np.errstate(all="raise"):
        y, cache = layer.forward(x)
        dx, grads = layer.backward(np.ones((1, 1), dtype=dtype), cache)
    Wa, G = _additive_path(p)
    np.testing.assert_allclose(y, G * (x @ Wa) + (1 - G) * np.exp(20.0), rtol=1e-5)
    # the clipped log path passes no gradient: the multiplicative weights get none, x only the additive one
    np.testing.assert_array_equal(grads["W_hat_mul"], 0.0)
    np.testing.assert_array_equal(grads["M_hat_mul"], 0.0)
    np.testing.assert_allclose(dx, (G * Wa).T, rtol=1e-6)
    assert grads["g"].dtype == np.dtype(dtype) and np.all(np.isfinite(grads["g"]))


def test_inalu_at_zero_input():
    layer = make(nn.INALU, 3, 2, seed=5)
    x = np.array([[0.0, 1.0, -2.0]])
    with np.errstate(all="raise"):
        y, cache = layer.forward(x)
        dx, grads = layer.backward(np.ones((1, 2)), cache)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    # log(max(|x|, eps)) is flat at 0, so only the additive path reaches x[0]
    Wa, G = _additive_path(layer.params)
    np.testing.assert_allclose(dx[0, 0], (G * Wa[0]).sum(), rtol=1e-12)


def test_inalu_gate_has_one_entry_per_output():
    layer = nn.INALU(4, 3, rng=0)
    assert layer.params["g"].shape == (3,)
    assert {k: v.shape for k, v in layer.params.items() if k != "g"} == {
        k: (4, 3) for k in ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul")}


def test_inalu_init_follows_the_authors_code():
    p = nn.INALU(60, 50, rng=0, dtype="float64").params
    for k, mean in [("W_hat_add", 0.88), ("W_hat_mul", 0.88), ("M_hat_add", 0.5), ("M_hat_mul", 0.5)]:
        assert p[k].mean() == pytest.approx(mean, abs=0.01) and p[k].std() == pytest.approx(0.2, abs=0.01)
    g = nn.INALU(2, 2000, rng=0, dtype="float64").params["g"]
    assert g.mean() == pytest.approx(0.0, abs=0.02) and g.std() == pytest.approx(0.2, abs=0.02)
