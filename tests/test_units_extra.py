"""NAU, NMU, iNALU, NPU, RealNPU: the NumPy reference against hand-computed values, finite differences,
regularizers, projections, initialisations and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import reference as ref


# -- a small central-difference oracle (float64) ---------------------------------------------------------------


def _numeric_vjp(layer, x, dy, h=1e-6):
    """Central differences of ``sum(forward(x) * dy)`` for x and every parameter (float64 layers only)."""

    def loss():
        return float((layer.forward(x)[0] * dy).sum())

    out = {}
    for name, a in [("x", x), *layer.params.items()]:
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + h
            up = loss()
            a[idx] = old - h
            down = loss()
            a[idx] = old
            g[idx] = (up - down) / (2 * h)
        out[name] = g
    return out


def _assert_grads_match(layer, x, rng, rtol=1e-5, atol=1e-7):
    dy = rng.normal(size=(x.shape[0], layer.out_features))
    y, cache = layer.forward(x)
    dx, grads = layer.backward(dy, cache)
    assert set(grads) == set(layer.params)
    num = _numeric_vjp(layer, x, dy)
    np.testing.assert_allclose(dx, num["x"], rtol=rtol, atol=atol, err_msg="x")
    for k, g in grads.items():
        assert g.shape == layer.params[k].shape and g.dtype == layer.dtype
        np.testing.assert_allclose(g, num[k], rtol=rtol, atol=atol, err_msg=k)


def _signed(rng, shape, lo=0.1, hi=2.0):
    """Magnitudes in [lo, hi] with random signs: off the kinks at 0."""
    return rng.uniform(lo, hi, size=shape) * rng.choice([-1.0, 1.0], size=shape)


# -- NAU -----------------------------------------------------------------------------------------------------


def test_nau_forward_is_linear():
    W = np.array([[1.0, -1.0], [1.0, 0.0], [0.0, 1.0]])
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    y, _ = ref.nau_forward({"W": W}, x)
    np.testing.assert_array_equal(y, [[3.0, 2.0], [-0.5, 1.0]])


def test_nau_backward_by_hand():
    W = np.array([[1.0, -1.0], [0.5, 0.0]])
    x = np.array([[2.0, 3.0]])
    _, cache = ref.nau_forward({"W": W}, x)
    dx, grads = ref.nau_backward({"W": W}, cache, np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(dx, [[1.0 - 2.0, 0.5]])
    np.testing.assert_array_equal(grads["W"], [[2.0, 4.0], [3.0, 6.0]])


# -- NMU -----------------------------------------------------------------------------------------------------


def test_nmu_forward_selects_factors():
    # W = 1 takes the input, W = 0 replaces it by 1, W = 1/2 gives (x + 1) / 2
    W = np.array([[1.0, 0.0], [1.0, 0.5], [0.0, 1.0]])
    x = np.array([[2.0, 3.0, 5.0]])
    y, _ = ref.nmu_forward({"W": W}, x)
    np.testing.assert_allclose(y, [[6.0, 1.0 * 2.0 * 5.0]])


def test_nmu_backward_exact_with_a_zero_factor():
    # f = [0, 3, 1.5]: y = 0, leave-one-out products [4.5, 0, 0]; y / f would be 0 / 0 for the first input
    W = np.array([[1.0], [1.0], [0.5]])
    x = np.array([[0.0, 3.0, 2.0]])
    y, cache = ref.nmu_forward({"W": W}, x)
    assert y[0, 0] == 0.0
    with np.errstate(all="raise"):
        dx, grads = ref.nmu_backward({"W": W}, cache, np.ones((1, 1)))
    np.testing.assert_array_equal(dx, [[4.5, 0.0, 0.0]])  # dx_i = loo_i * W_i
    np.testing.assert_array_equal(grads["W"], [[-4.5], [0.0], [0.0]])  # dW_i = loo_i * (x_i - 1)


def test_nmu_backward_two_zero_factors_give_zero_gradients():
    W = np.array([[1.0], [1.0], [1.0]])
    x = np.array([[0.0, 0.0, 2.0]])
    _, cache = ref.nmu_forward({"W": W}, x)
    dx, grads = ref.nmu_backward({"W": W}, cache, np.ones((1, 1)))
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(grads["W"], [[0.0], [0.0], [0.0]])


def test_leave_one_out_products_match_explicit_products():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(3, 5, 2))
    f[0, 2, 1] = 0.0
    loo = ref._leave_one_out_products(f)
    for i in range(5):
        np.testing.assert_allclose(loo[:, i], np.prod(np.delete(f, i, axis=1), axis=1), rtol=1e-12)


def test_leave_one_out_products_single_input_is_one():
    f = np.full((2, 1, 3), 7.0)
    np.testing.assert_array_equal(ref._leave_one_out_products(f), np.ones((2, 1, 3)))


# -- gradients against finite differences ------------------------------------------------------------------


@pytest.mark.parametrize("unit", [nn.NAU, nn.NMU])
@pytest.mark.parametrize("seed", range(3))
def test_gradients_match_finite_differences(unit, seed):
    rng = np.random.default_rng(seed)
    layer = unit(4, 3, rng=seed, dtype="float64")
    _assert_grads_match(layer, _signed(rng, (5, 4)), rng)


# -- regularizers, projections, schedule -------------------------------------------------------------------


def test_nau_regularizer_values_and_gradient():
    W = np.array([[0.0, 0.2, -0.3], [0.9, -1.0, 0.6]])
    R, dR = ref.nau_regularizer(W)
    np.testing.assert_allclose(R, (0.0 + 0.2 + 0.3 + 0.1 + 0.0 + 0.4) / 6)
    np.testing.assert_array_equal(dR, np.array([[0.0, 1.0, -1.0], [-1.0, 1.0, -1.0]]) / 6)


def test_nmu_regularizer_values_and_gradient():
    W = np.array([[0.0, 0.2, 0.5], [0.9, 1.0, 0.6]])
    R, dR = ref.nmu_regularizer(W)
    np.testing.assert_allclose(R, (0.0 + 0.2 + 0.5 + 0.1 + 0.0 + 0.4) / 6)
    np.testing.assert_array_equal(dR, np.array([[1.0, 1.0, 0.0], [-1.0, -1.0, -1.0]]) / 6)


@pytest.mark.parametrize("reg", [ref.nau_regularizer, ref.nmu_regularizer])
def test_regularizer_gradients_match_finite_differences(reg):
    rng = np.random.default_rng(1)
    W = rng.uniform(0.05, 0.45, size=(3, 4)) + rng.choice([0.0, 0.5], size=(3, 4))  # off the kinks
    if reg is ref.nau_regularizer:
        W *= rng.choice([-1.0, 1.0], size=W.shape)
    _, dR = reg(W)
    h = 1e-6
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += h
        Wm[idx] -= h
        assert dR[idx] == pytest.approx((reg(Wp)[0] - reg(Wm)[0]) / (2 * h), rel=1e-6)


def test_clip_projection():
    p = ref.clip_projection(-1, 1)
    W = np.array([[-2.0, 0.5], [1.5, -1.0]], dtype=np.float32)
    out = p(W)
    np.testing.assert_array_equal(out, [[-1.0, 0.5], [1.0, -1.0]])
    assert out.dtype == np.float32
    assert W[0, 0] == -2.0  # pure: the input is not changed
    with pytest.raises(ValueError, match="lo <= hi"):
        ref.clip_projection(1, 0)


@pytest.mark.parametrize(("unit", "lo", "hi"), [(nn.NAU, -1.0, 1.0), (nn.NMU, 0.0, 1.0)])
def test_layer_projection_hooks(unit, lo, hi):
    layer = unit(3, 2, rng=0)
    W = layer.params["W"]
    W[...] = [[-3.0, 3.0], [0.1, 0.9], [2.0, -2.0]]
    (name, project), = layer.projections().items()
    assert name == "W"
    layer.params[name][...] = project(layer.params[name])
    assert layer.params["W"] is W  # in place, the optimizer's array
    np.testing.assert_array_equal(W, np.clip([[-3.0, 3.0], [0.1, 0.9], [2.0, -2.0]], lo, hi).astype(np.float32))
    W[0, 0] = 5.0
    layer.project()
    assert W[0, 0] == hi


def test_layer_regularizer_matches_reference():
    layer = nn.NAU(3, 2, rng=0, dtype="float64")
    R, grads = layer.regularizer()
    R2, dW = ref.nau_regularizer(layer.params["W"])
    assert R == R2 and list(grads) == ["W"]
    np.testing.assert_array_equal(grads["W"], dW)


def test_linear_schedule():
    s = ref.linear_schedule
    assert s(0, 10.0, 100, 200) == 0.0
    assert s(100, 10.0, 100, 200) == 0.0
    assert s(150, 10.0, 100, 200) == pytest.approx(5.0)
    assert s(200, 10.0, 100, 200) == 10.0
    assert s(10_000, 10.0, 100, 200) == 10.0
    assert s(99, 2.0, 100, 100) == 0.0 and s(100, 2.0, 100, 100) == 2.0
    with pytest.raises(ValueError, match="start <= end"):
        s(0, 1.0, 200, 100)


# -- initialisation, dtypes, bad input ---------------------------------------------------------------------


def test_nau_init_range():
    for i, o, r in [(4, 3, 0.5), (100, 100, np.sqrt(6 / 200))]:
        W = nn.NAU(i, o, rng=1).params["W"]
        assert W.shape == (i, o) and W.dtype == np.float32
        assert np.all(np.abs(W) <= r) and np.abs(W).max() > 0.8 * r


def test_nmu_init_range():
    W = nn.NMU(50, 40, rng=0, dtype="float64").params["W"]
    assert W.shape == (50, 40) and W.dtype == np.float64
    assert W.min() >= 0.25 and W.max() <= 0.75 and W.min() < 0.26 and W.max() > 0.74


def test_init_is_reproducible():
    np.testing.assert_array_equal(nn.NMU(3, 2, rng=7).params["W"], nn.NMU(3, 2, rng=7).params["W"])


@pytest.mark.parametrize("unit", [nn.NAU, nn.NMU])
def test_float32_matches_float64(unit):
    rng = np.random.default_rng(3)
    l64 = unit(5, 3, rng=0, dtype="float64")
    l32 = l64.astype("float32")
    x = _signed(rng, (4, 5))
    dy = rng.normal(size=(4, 3))
    y64, c64 = l64.forward(x)
    y32, c32 = l32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32 and y32.shape == (4, 3)
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)
    dx64, g64 = l64.backward(dy, c64)
    dx32, g32 = l32.backward(dy.astype(np.float32), c32)
    assert dx32.dtype == np.float32 and g32["W"].dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g32["W"], g64["W"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("unit", [nn.NAU, nn.NMU])
def test_bad_input(unit):
    layer = unit(3, 2, rng=0)
    with pytest.raises(ValueError, match="shape"):
        layer.forward(np.ones((4, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype"):
        layer.forward(np.ones((4, 3), dtype=np.float64))
    with pytest.raises(TypeError, match="dtype"):
        layer.forward(np.ones((4, 3), dtype=np.int64))
    _, cache = layer.forward(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones((4, 3), dtype=np.float32), cache)
    with pytest.raises(TypeError):
        unit(3, 2, dtype="float16")
    with pytest.raises(ValueError):
        unit(0, 2)
