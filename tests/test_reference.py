"""The NumPy reference: gradients against finite differences, float32 against float64, known values, IEEE."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nalu_np as nn
from nalu_np import reference as ref
from nalu_np.testing import check_gradients
from nalu_np.testing import strategies as nst

UNITS = {
    "NAC-003": lambda i, o, rng, dt: nn.NAC(i, o, rng=rng, dtype=dt),
    "NAC-000": lambda i, o, rng, dt: nn.NAC(i, o, rng=rng, dtype=dt, init="seed-000"),
    "NACMul-003": lambda i, o, rng, dt: nn.NACMul(i, o, rng=rng, dtype=dt),
    "NACMul-000": lambda i, o, rng, dt: nn.NACMul(i, o, rng=rng, dtype=dt, eps=1e-6, init="seed-000"),
    "NALU-shared-003": lambda i, o, rng, dt: nn.NALU.preset("seed-003", i, o, rng=rng, dtype=dt),
    "NALU-separate-000": lambda i, o, rng, dt: nn.NALU.preset("seed-000", i, o, rng=rng, dtype=dt),
    "NALU-shared-000init": lambda i, o, rng, dt: nn.NALU(i, o, rng=rng, dtype=dt, init="seed-000"),
    "NALU-separate-003init": lambda i, o, rng, dt: nn.NALU(i, o, rng=rng, dtype=dt, shared_weights=False),
}


@pytest.mark.parametrize("unit", list(UNITS))
@given(case=nst.layer_inputs(max_batch=5, max_in=4, max_out=3))
def test_gradients_match_finite_differences(unit, case):
    batch, i, o, x, seed = case
    layer = UNITS[unit](i, o, seed, "float64")
    report = check_gradients(layer, x, rng=seed)
    assert report.ok, str(report)
    assert not report.inconclusive  # inputs are off the kink


@pytest.mark.parametrize("unit", list(UNITS))
@given(case=nst.layer_inputs(max_batch=7, max_in=6, max_out=4))
def test_float32_matches_float64(unit, case):
    batch, i, o, x, seed = case
    l64 = UNITS[unit](i, o, seed, "float64")
    l32 = l64.astype("float32")
    y64, c64 = l64.forward(x)
    y32, c32 = l32.forward(x.astype(np.float32))
    dy = np.random.default_rng(seed).normal(size=y64.shape)
    dx64, g64 = l64.backward(dy, c64)
    dx32, g32 = l32.backward(dy.astype(np.float32), c32)
    assert y32.dtype == dx32.dtype == np.float32 and all(g.dtype == np.float32 for g in g32.values())
    # float32 error is relative to the size of the terms that enter each result: log(|x| + eps) near |x| = 1
    # loses all relative precision in float32 (an absolute error of ~1e-7), so a gradient that is small
    # because l is small is compared against the scale of dy, y and x, not its own size
    scale = np.linalg.norm(dy) * (np.linalg.norm(y64) + np.linalg.norm(x) + 1.0)
    for a32, a64 in [(y32, y64), (dx32, dx64)] + [(g32[k], g64[k]) for k in g64]:
        assert a32.shape == a64.shape
        np.testing.assert_allclose(a32, a64, rtol=0, atol=2e-5 * np.linalg.norm(a64) + 1e-6 * scale)


@pytest.mark.parametrize("unit", list(UNITS))
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 3, 2), (5, 1, 1), (2, 1, 4)])
def test_shapes_and_dtypes(unit, shape):
    batch, i, o = shape
    for dt in ("float32", "float64"):
        layer = UNITS[unit](i, o, 0, dt)
        x = np.random.default_rng(1).uniform(0.5, 2, size=(batch, i)).astype(dt)
        y, cache = layer.forward(x)
        assert y.shape == (batch, o) and y.dtype == np.dtype(dt)
        dx, grads = layer.backward(np.ones_like(y), cache)
        assert dx.shape == x.shape and dx.dtype == np.dtype(dt)
        assert set(grads) == set(layer.params)
        for k, g in grads.items():
            assert g.shape == layer.params[k].shape and g.dtype == np.dtype(dt)
        for k, p in layer.params.items():
            assert p.shape == (i, o), k


def test_nac_saturated_weights_add_and_subtract():
    layer = nn.NAC(2, 2, dtype="float64")
    layer.params["W_hat"][:] = [[30.0, 30.0], [30.0, -30.0]]
    layer.params["M_hat"][:] = 40.0
    x = np.array([[3.0, 4.0], [-1.5, 10.0]])
    np.testing.assert_allclose(layer(x), [[7.0, -1.0], [8.5, -11.5]], rtol=1e-15)


def test_nacmul_saturated_weights_multiply_and_divide():
    layer = nn.NACMul(2, 2, dtype="float64", eps=1e-12)
    layer.params["W_hat"][:] = [[30.0, 30.0], [30.0, -30.0]]
    layer.params["M_hat"][:] = 40.0
    x = np.array([[3.0, 4.0], [-1.5, 10.0]])
    np.testing.assert_allclose(layer(x), [[12.0, 0.75], [15.0, 0.15]], rtol=1e-10)


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


@given(z=st.floats(allow_nan=False, allow_subnormal=False))
def test_sigmoid_is_stable(z):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = float(ref.sigmoid(np.array(z)))
    assert 0.0 <= s <= 1.0
    if abs(z) < 30:
        assert s == pytest.approx(1.0 / (1.0 + np.exp(-z)), rel=1e-14)
    assert (s > 0.5) <= (z > 0) and (s < 0.5) <= (z < 0)  # monotone about 0.5


def test_sigmoid_extremes():
    z = np.array([-np.inf, -1000.0, 0.0, 1000.0, np.inf, np.nan])
    s = ref.sigmoid(z)
    np.testing.assert_array_equal(s[:5], [0.0, 0.0, 0.5, 1.0, 1.0])
    assert np.isnan(s[5])


def test_nacmul_overflow_is_inf_without_warning():
    layer = nn.NACMul(2, 1, dtype="float64")
    layer.params["W_hat"][:] = 30.0
    layer.params["M_hat"][:] = 40.0
    x = np.array([[1e200, 1e200], [2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, cache = layer.forward(x)
    assert y[0, 0] == np.inf and y[1, 0] == pytest.approx(6.0)


def test_non_finite_inputs_propagate():
    for layer in (nn.NAC(2, 2, rng=0, dtype="float64"), nn.NALU(2, 2, rng=0, dtype="float64")):
        x = np.array([[np.nan, 1.0], [1.0, 2.0]])
        y, cache = layer.forward(x)
        assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()
        dx, grads = layer.backward(np.ones_like(y), cache)
        assert np.isfinite(dx[1]).all()
        assert all(np.isnan(g).any() for g in grads.values())  # x.T @ dy carries the NaN into the weights
    layer = nn.NAC(1, 1, dtype="float64")
    layer.params["W_hat"][:] = 30.0
    layer.params["M_hat"][:] = 40.0
    assert layer(np.array([[np.inf]]))[0, 0] == np.inf


def test_log_path_slope_at_zero_is_one_over_eps():
    # d/dx log(|x| + eps) just right of 0 is 1/eps; at 0 itself the reference takes 0 (between -1/eps and 1/eps)
    eps = 1e-6
    x = np.array([[0.0], [1e-300]])
    g = ref.log_input_grad(x, eps)
    assert g[0, 0] == 0.0 and g[1, 0] == pytest.approx(1 / eps)


def test_backward_does_not_mutate_and_reuses_cache():
    layer = nn.NALU.preset("seed-000", 3, 2, rng=0, dtype="float64")
    x = np.random.default_rng(0).normal(size=(4, 3))
    x0, p0 = x.copy(), {k: v.copy() for k, v in layer.params.items()}
    y, cache = layer.forward(x)
    dy = np.ones_like(y)
    a = layer.backward(dy, cache)
    b = layer.backward(dy, cache)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(x, x0)
    for k in p0:
        np.testing.assert_array_equal(layer.params[k], p0[k])


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
