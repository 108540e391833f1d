"""NAU, NMU, iNALU, NPU, RealNPU: the NumPy reference against hand-computed values, the gradient checker
(fixed cases and hypothesis), regularizers, projections, initialisations, dtypes, extremes and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, target
from hypothesis import strategies as st

import nalu_np as nn
from nalu_np import reference as ref
from nalu_np.testing import check_gradients
from nalu_np.testing import strategies as st_nalu

UNITS = [nn.NAU, nn.NMU, nn.INALU, nn.NPU, nn.RealNPU]


def _signed(rng, shape, lo=0.1, hi=2.0):
    """Magnitudes in [lo, hi] with random signs: off the kinks at 0."""
    return rng.uniform(lo, hi, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def _make(unit, i, o, seed, dtype="float64"):
    """A layer with parameters away from the kinks and boundaries and with every path exercised:
    iNALU multiplicative weights of both signs (|W_hat_mul| >= 0.3), NPU gates in [0.1, 0.9] and W_i != 0."""
    rng = np.random.default_rng(seed)
    layer = unit(i, o, rng=rng, dtype=dtype)
    p = layer.params
    if unit is nn.INALU:
        p["W_hat_mul"][...] = _signed(rng, (i, o), 0.3, 2.0)
    if "g" in p and unit is not nn.INALU:
        p["g"][...] = rng.uniform(0.1, 0.9, size=i)
    if "W_i" in p:
        p["W_i"][...] = rng.uniform(-0.5, 0.5, size=(i, o))
    return layer


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
    loo = ref.leave_one_out_products(f)
    for i in range(5):
        np.testing.assert_allclose(loo[:, i], np.prod(np.delete(f, i, axis=1), axis=1), rtol=1e-12)


def test_leave_one_out_products_single_input_is_one():
    f = np.full((2, 1, 3), 7.0)
    np.testing.assert_array_equal(ref.leave_one_out_products(f), np.ones((2, 1, 3)))


# -- iNALU ---------------------------------------------------------------------------------------------------


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


def test_inalu_multiplies_and_divides_negative_numbers():
    layer = _inalu_selecting([[1.0, 1.0], [1.0, -1.0]], gate=-40.0)  # gate 0: the multiplicative path
    x = np.array([[-2.0, 3.0], [-2.0, -4.0], [5.0, 0.5]])
    y = layer(x)
    np.testing.assert_allclose(y, [[-6.0, -2.0 / 3.0], [8.0, 0.5], [2.5, 10.0]], rtol=1e-12)


def test_inalu_gate_one_is_the_additive_path():
    layer = _inalu_selecting([[1.0, 1.0], [1.0, -1.0]], gate=40.0)
    x = np.array([[-2.0, 3.0], [1.0, 4.0]])
    np.testing.assert_allclose(layer(x), [[1.0, -5.0], [5.0, -3.0]], rtol=1e-12)


def test_inalu_forward_matches_a_loop_implementation():
    layer = _make(nn.INALU, 3, 2, seed=4)
    x = np.array([[-1.5, 0.0, 2.0], [0.3, -0.7, -1.1]])
    p = layer.params
    Wa = np.tanh(p["W_hat_add"]) / (1 + np.exp(-p["M_hat_add"]))
    Wm = np.tanh(p["W_hat_mul"]) / (1 + np.exp(-p["M_hat_mul"]))
    G = 1 / (1 + np.exp(-p["g"]))
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
    layer = _make(nn.INALU, 2, 1, seed=0, dtype=dtype)
    p = layer.params
    p["W_hat_mul"][...] = 2.0  # W_m = tanh(2) sigma(2) = 0.84, not saturated
    p["M_hat_mul"][...] = 2.0
    x = np.full((1, 2), 1e30, dtype=dtype)  # log-space sum 117 > omega = 20; positive, so the sign term is 1
    with np.errstate(all="raise"):
        y, cache = layer.forward(x)
        dx, grads = layer.backward(np.ones((1, 1), dtype=dtype), cache)
    Wa = np.tanh(p["W_hat_add"]) / (1 + np.exp(-p["M_hat_add"]))
    G = 1 / (1 + np.exp(-p["g"]))
    np.testing.assert_allclose(y, G * (x @ Wa) + (1 - G) * np.exp(20.0), rtol=1e-5)
    # the clipped log path passes no gradient: the multiplicative weights get none, x only the additive one
    np.testing.assert_array_equal(grads["W_hat_mul"], 0.0)
    np.testing.assert_array_equal(grads["M_hat_mul"], 0.0)
    np.testing.assert_allclose(dx, (G * Wa).T, rtol=1e-6)
    assert grads["g"].dtype == np.dtype(dtype) and np.all(np.isfinite(grads["g"]))


def test_inalu_at_zero_input():
    layer = _make(nn.INALU, 3, 2, seed=5)
    x = np.array([[0.0, 1.0, -2.0]])
    with np.errstate(all="raise"):
        y, cache = layer.forward(x)
        dx, grads = layer.backward(np.ones((1, 2)), cache)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    # log(max(|x|, eps)) is flat at 0, so only the additive path reaches x[0]
    Wa = np.tanh(layer.params["W_hat_add"]) / (1 + np.exp(-layer.params["M_hat_add"]))
    G = 1 / (1 + np.exp(-layer.params["g"]))
    np.testing.assert_allclose(dx[0, 0], (G * Wa[0]).sum(), rtol=1e-12)


def test_inalu_gate_has_one_entry_per_output():
    layer = nn.INALU(4, 3, rng=0)
    assert layer.params["g"].shape == (3,)
    assert {k: v.shape for k, v in layer.params.items() if k != "g"} == {
        k: (4, 3) for k in ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul")}


# -- NPU and RealNPU ---------------------------------------------------------------------------------------------


def _npu(unit, W_r, g=1.0, W_i=None):
    W_r = np.asarray(W_r, dtype=np.float64)
    layer = unit(*W_r.shape, rng=0, dtype="float64")
    layer.params["W_r"][...] = W_r
    layer.params["g"][...] = g
    if W_i is not None:
        layer.params["W_i"][...] = W_i
    return layer


@pytest.mark.parametrize("unit", [nn.NPU, nn.RealNPU])
def test_npu_powers_of_negative_inputs(unit):
    # columns: x0 * x1, x0**2, 1 / x0, sqrt(|x1|) * cos(pi / 2 [x1 < 0])
    layer = _npu(unit, [[1.0, 2.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.5]])
    x = np.array([[-2.0, 3.0], [-2.0, -4.0], [4.0, 9.0]])
    want = [[-6.0, 4.0, -0.5, np.sqrt(3.0)], [8.0, 4.0, -0.5, 0.0], [36.0, 16.0, 0.25, 3.0]]
    np.testing.assert_allclose(layer(x), want, rtol=1e-6, atol=1e-6)  # eps = 1e-7 shifts |x|


def test_npu_imaginary_weights():
    # W_i rotates: y = exp(-pi W_i [x<0]) cos(W_i log|x|) for W_r = 0
    layer = _npu(nn.NPU, [[0.0]], W_i=[[0.5]])
    x = np.array([[-2.0], [2.0]])
    want = [[np.exp(-np.pi / 2) * np.cos(0.5 * np.log(2.0))], [np.cos(0.5 * np.log(2.0))]]
    np.testing.assert_allclose(layer(x), want, rtol=1e-6)


@pytest.mark.parametrize("unit", [nn.NPU, nn.RealNPU])
def test_npu_gate_zero_ignores_the_input(unit):
    layer = _npu(unit, [[3.0], [1.0]], g=[0.0, 1.0])
    x = np.array([[-5.0, 2.0], [0.0, 2.0]])
    y, cache = layer.forward(x)
    np.testing.assert_allclose(y, [[2.0], [2.0]], rtol=1e-6)
    dx, _ = layer.backward(np.ones((2, 1)), cache)
    np.testing.assert_array_equal(dx[:, 0], 0.0)


@pytest.mark.parametrize("unit", [nn.NPU, nn.RealNPU])
def test_npu_at_zero_and_overflow(unit):
    layer = _npu(unit, [[-1.0], [1.0]])
    x = np.array([[0.0, 2.0]])  # 1 / (0 + eps): large but finite
    with np.errstate(all="raise"):
        y, cache = layer.forward(x)
        dx, grads = layer.backward(np.ones((1, 1)), cache)
    np.testing.assert_allclose(y, [[2.0 / 1e-7]], rtol=1e-6)
    assert dx[0, 0] == 0.0  # slope of |x| at 0 taken as 0
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    big = _npu(unit, [[800.0]])
    y, _ = big.forward(np.array([[3.0]]))  # exp(800 log 3) overflows: inf is the result, without a warning
    assert y[0, 0] == np.inf


def test_npu_gate_and_weight_shapes():
    layer = nn.NPU(4, 3, rng=0)
    assert {k: v.shape for k, v in layer.params.items()} == {"W_r": (4, 3), "W_i": (4, 3), "g": (4,)}
    assert {k: v.shape for k, v in nn.RealNPU(4, 3, rng=0).params.items()} == {"W_r": (4, 3), "g": (4,)}


def test_realnpu_is_npu_with_zero_imaginary_weights():
    rng = np.random.default_rng(0)
    real = _make(nn.RealNPU, 4, 3, seed=2)
    npu = nn.NPU(4, 3, rng=0, dtype="float64")
    npu.params["W_r"][...] = real.params["W_r"]
    npu.params["g"][...] = real.params["g"]
    x = _signed(rng, (5, 4))
    dy = rng.normal(size=(5, 3))
    (y1, c1), (y2, c2) = real.forward(x), npu.forward(x)
    np.testing.assert_allclose(y1, y2, rtol=1e-14)
    (dx1, g1), (dx2, g2) = real.backward(dy, c1), npu.backward(dy, c2)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-13)
    for k in ("W_r", "g"):
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-13)


# -- gradients: the checker on fixed cases and under hypothesis ---------------------------------------------------


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("seed", range(3))
def test_gradients_fixed_cases(unit, seed):
    rng = np.random.default_rng(seed)
    layer = _make(unit, 4, 3, seed)
    report = check_gradients(layer, _signed(rng, (5, 4)), rng=seed)
    assert report.ok, str(report)


@pytest.mark.parametrize("unit", UNITS)
@settings(max_examples=15)
@given(case=st_nalu.layer_inputs(max_batch=5, max_in=4, max_out=3))
def test_gradients_hypothesis(unit, case):
    _, i, o, x, seed = case
    report = check_gradients(_make(unit, i, o, seed), x, rng=seed)
    target(report.worst_ratio)
    assert report.ok, str(report)


@settings(max_examples=15)
@given(case=st_nalu.layer_inputs(max_batch=4, max_in=4, max_out=3), zeros=st.lists(st.booleans(), min_size=4,
                                                                                     max_size=4))
def test_nmu_gradients_with_exact_zero_inputs(case, zeros):
    # NMU is a polynomial: zero inputs are no kink, and the leave-one-out products must stay exact there
    _, i, o, x, seed = case
    x = np.where(np.array(zeros[:i])[None, :], 0.0, x)
    report = check_gradients(_make(nn.NMU, i, o, seed), x, rng=seed)
    assert report.ok, str(report)


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


def test_l1_regularizer():
    W = np.array([[0.0, -2.0], [0.5, 1.5]])
    R, dR = ref.l1_regularizer(W)
    assert R == pytest.approx(1.0)
    np.testing.assert_array_equal(dR, [[0.0, -0.25], [0.25, 0.25]])


@pytest.mark.parametrize(("unit", "names"), [(nn.NPU, ["W_r", "W_i"]), (nn.RealNPU, ["W_r"])])
def test_npu_regularizer_and_gate_projection(unit, names):
    layer = _make(unit, 3, 2, seed=0)
    R, grads = layer.regularizer()
    assert list(grads) == names
    assert R == pytest.approx(sum(np.abs(layer.params[k]).mean() for k in names))
    for k in names:
        np.testing.assert_array_equal(grads[k], np.sign(layer.params[k]) / 6)
    assert list(layer.projections()) == ["g"]
    g = layer.params["g"]
    g[...] = [-0.5, 0.5, 1.5]
    layer.project()
    assert layer.params["g"] is g
    np.testing.assert_array_equal(g, [0.0, 0.5, 1.0])


def test_projection_hooks_work_with_the_optimizer():
    optim = pytest.importorskip("nalu_np.optim")
    layer = nn.NMU(3, 2, rng=0)
    opt = optim.SGD(layer.params, lr=10.0, projections=layer.projections())
    opt.step({"W": np.full((3, 2), -1.0, dtype=np.float32)})  # a huge step out of [0, 1]
    np.testing.assert_array_equal(layer.params["W"], 1.0)


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


def test_inalu_init_follows_the_authors_code():
    p = nn.INALU(60, 50, rng=0, dtype="float64").params
    for k, mean in [("W_hat_add", 0.88), ("W_hat_mul", 0.88), ("M_hat_add", 0.5), ("M_hat_mul", 0.5)]:
        assert p[k].mean() == pytest.approx(mean, abs=0.01) and p[k].std() == pytest.approx(0.2, abs=0.01)
    g = nn.INALU(2, 2000, rng=0, dtype="float64").params["g"]
    assert g.mean() == pytest.approx(0.0, abs=0.02) and g.std() == pytest.approx(0.2, abs=0.02)


def test_npu_init():
    layer = nn.NPU(30, 20, rng=0)
    r = np.sqrt(6 / 50)
    W = layer.params["W_r"]
    assert np.all(np.abs(W) <= r) and np.abs(W).max() > 0.95 * r
    np.testing.assert_array_equal(layer.params["W_i"], 0.0)
    np.testing.assert_array_equal(layer.params["g"], 0.5)
    assert all(v.dtype == np.float32 for v in layer.params.values())


@pytest.mark.parametrize("unit", UNITS)
def test_init_is_reproducible(unit):
    a, b = unit(3, 2, rng=7).params, unit(3, 2, rng=7).params
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("unit", UNITS)
def test_float32_matches_float64(unit):
    rng = np.random.default_rng(3)
    l64 = _make(unit, 5, 3, seed=0)
    l32 = l64.astype("float32")
    x = _signed(rng, (4, 5))
    dy = rng.normal(size=(4, 3))
    y64, c64 = l64.forward(x)
    y32, c32 = l32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32 and y32.shape == (4, 3)
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    dx64, g64 = l64.backward(dy, c64)
    dx32, g32 = l32.backward(dy.astype(np.float32), c32)
    assert dx32.dtype == np.float32 and dx32.shape == (4, 5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-3, atol=1e-4)
    assert list(g32) == list(l32.params)
    for k, g in g32.items():
        assert g.dtype == np.float32 and g.shape == l32.params[k].shape
        np.testing.assert_allclose(g, g64[k], rtol=1e-3, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("unit", UNITS)
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


@pytest.mark.parametrize("unit", [nn.INALU, nn.NPU, nn.RealNPU])
def test_bad_hyper_parameters(unit):
    with pytest.raises(ValueError, match="eps"):
        unit(3, 2, eps=0.0)
    if unit is nn.INALU:
        with pytest.raises(ValueError, match="omega"):
            unit(3, 2, omega=-1.0)


@pytest.mark.parametrize("unit", UNITS)
def test_config_names_the_unit_and_its_hyper_parameters(unit):
    layer = unit(3, 2, rng=0)
    cfg = layer.config()
    assert cfg["unit"] == unit.__name__ and cfg["in_features"] == 3 and cfg["out_features"] == 2
    assert {k: cfg[k] for k in layer.hyper()} == layer.hyper()
    assert nn.Sequential([unit(3, 2, rng=0), nn.NAU(2, 1, rng=0)])(np.ones((2, 3), np.float32)).shape == (2, 1)


# -- the units compute the arithmetic they are named for (property tests) ------------------------------------


@settings(max_examples=25)
@given(x=st_nalu.off_kink_arrays((3, 3), margin=0.1, hi=3.0),
       powers=st.lists(st.integers(-2, 3), min_size=3, max_size=3))
def test_npu_integer_powers_keep_the_sign(x, powers):
    layer = _npu(nn.NPU, np.array(powers, dtype=np.float64)[:, None])
    want = np.prod(x ** np.array(powers, dtype=np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-9)


@settings(max_examples=25)
@given(x=st_nalu.off_kink_arrays((3, 3), margin=0.1, hi=3.0),
       select=st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=3, max_size=3))
def test_inalu_products_and_quotients_of_signed_inputs(x, select):
    layer = _inalu_selecting(np.array(select)[:, None], gate=-40.0)
    want = np.prod(x ** np.array(select), axis=1, keepdims=True)
    np.testing.assert_allclose(layer(x), want, rtol=1e-12)


@settings(max_examples=25)
@given(x=st_nalu.off_kink_arrays((3, 4), margin=0.0 + 1e-3, hi=3.0),
       select=st.lists(st.booleans(), min_size=4, max_size=4))
def test_nmu_binary_weights_select_a_product(x, select):
    layer = nn.NMU(4, 1, rng=0, dtype="float64")
    layer.params["W"][...] = np.array(select, dtype=np.float64)[:, None]
    np.testing.assert_allclose(layer(x), np.prod(np.where(select, x, 1.0), axis=1, keepdims=True), rtol=1e-14)


def test_nmu_overflow_is_a_result():
    layer = nn.NMU(2, 1, rng=0, dtype="float64")
    layer.params["W"][...] = 1.0
    x = np.array([[1e200, 1e200], [0.0, 1e200]])
    with np.errstate(all="raise"):  # no warning: inf is the product
        y, cache = layer.forward(x)
    assert y[0, 0] == np.inf and y[1, 0] == 0.0
    with np.errstate(over="ignore"):
        dx, grads = layer.backward(np.ones((2, 1)), cache)
    np.testing.assert_array_equal(dx, [[1e200, 1e200], [1e200, 0.0]])  # leave-one-out products stay finite
    assert np.isposinf(grads["W"]).all()  # dW_i = sum_b loo * (x_i - 1) holds 1e200 * (1e200 - 1)
