"""NPU and RealNPU (nalu_np.reference.npu): powers of negative inputs, imaginary weights, the gate, zero input
and overflow, the RealNPU as an NPU without imaginary weights, shapes, the L1 regularizer, the gate's
projection and the initialisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nalu_np as nn
from nalu_np import reference as ref, units
from nalu_np.testing import strategies as st_nalu
from support.reference import ALL_UNITS, make, signed

#: the units of the table's npu family: NPU and RealNPU
NPU_UNITS = [cls for cls in ALL_UNITS if units.spec(cls.__name__).family == "npu"]


def _npu(unit, W_r, g=1.0, W_i=None):
    W_r = np.asarray(W_r, dtype=np.float64)
    layer = unit(*W_r.shape, rng=0, dtype="float64")
    layer.params["W_r"][...] = W_r
    layer.params["g"][...] = g
    if W_i is not None:
        layer.params["W_i"][...] = W_i
    return layer


@pytest.mark.parametrize("unit", NPU_UNITS)
def test_npu_powers_of_negative_inputs(unit):
    # columns: x0 * x1, x0**2, 1 / x0, sqrt(|x1|) * cos(pi / 2 [x1 < 0])
    layer = _npu(unit, [[1.0, 2.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.5]])
    x = np.array([[-2.0, 3.0], [-2.0, -4.0], [4.0, 9.0]])
    want = [[-6.0, 4.0, -0.5, np.sqrt(3.0)], [8.0, 4.0, -0.5, 0.0], [36.0, 16.0, 0.25, 3.0]]
    np.testing.assert_allclose(layer(x), want, rtol=1e-6, atol=1e-6)  # eps = 1e-7 shifts |x|


@settings(max_examples=25)
@given(x=st_nalu.off_kink_arrays((3, 3), margin=0.1, hi=3.0),
       powers=st.lists(st.integers(-2, 3), min_size=3, max_size=3))
def test_npu_integer_powers_keep_the_sign(x, powers):
    layer = _npu(nn.NPU, np.array(powers, dtype=np.float64)[:, None])
    want = np.prod(x ** np.array(powers, dtype=np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(layer(x), want, rtol=1e-5, atol=1e-9)


def test_npu_imaginary_weights():
    # W_i rotates: y = exp(-pi W_i [x<0]) cos(W_i log|x|) for W_r = 0
    layer = _npu(nn.NPU, [[0.0]], W_i=[[0.5]])
    x = np.array([[-2.0], [2.0]])
    want = [[np.exp(-np.pi / 2) * np.cos(0.5 * np.log(2.0))], [np.cos(0.5 * np.log(2.0))]]
    np.testing.assert_allclose(layer(x), want, rtol=1e-6)


@pytest.mark.parametrize("unit", NPU_UNITS)
def test_npu_gate_zero_ignores_the_input(unit):
    layer = _npu(unit, [[3.0], [1.0]], g=[0.0, 1.0])
    x = np.array([[-5.0, 2.0], [0.0, 2.0]])
    y, cache = layer.forward(x)
    np.testing.assert_allclose(y, [[2.0], [2.0]], rtol=1e-6)
    dx, _ = layer.backward(np.ones((2, 1)), cache)
    np.testing.assert_array_equal(dx[:, 0], 0.0)


@pytest.mark.parametrize("unit", NPU_UNITS)
def test_npu_at_zero_and_overflow(unit):
    layer = _npu(unit, [[-1.0], [1.0]])
    x = np.array([[0.0, 2.0]])  # 1 / (0 + eps): large but finite
    with np.errstate(all="raise"):
        y, cache = layer.forward(x)
        dx, grads = layer.backward(np.ones((1, 1)), cache)
    np.testing.assert_allclose(y, [[2.0 / layer.eps]], rtol=1e-6)
    assert dx[0, 0] == 0.0  # slope of |x| at 0 taken as 0
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    big = _npu(unit, [[800.0]])
    y, _ = big.forward(np.array([[3.0]]))  # exp(800 log 3) overflows: inf is the result, without a warning
    assert y[0, 0] == np.inf


def test_realnpu_is_npu_with_zero_imaginary_weights():
    rng = np.random.default_rng(0)
    real = make(nn.RealNPU, 4, 3, seed=2)
    npu = nn.NPU(4, 3, rng=0, dtype="float64")
    npu.params["W_r"][...] = real.params["W_r"]
    npu.params["g"][...] = real.params["g"]
    x = signed(rng, (5, 4))
    dy = rng.normal(size=(5, 3))
    (y1, c1), (y2, c2) = real.forward(x), npu.forward(x)
    np.testing.assert_allclose(y1, y2, rtol=1e-14)
    (dx1, g1), (dx2, g2) = real.backward(dy, c1), npu.backward(dy, c2)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-13)
    for k in ("W_r", "g"):
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-13)


def test_npu_gate_and_weight_shapes():
    layer = nn.NPU(4, 3, rng=0)
    assert {k: v.shape for k, v in layer.params.items()} == {"W_r": (4, 3), "W_i": (4, 3), "g": (4,)}
    assert {k: v.shape for k, v in nn.RealNPU(4, 3, rng=0).params.items()} == {"W_r": (4, 3), "g": (4,)}


def test_l1_regularizer():
    W = np.array([[0.0, -2.0], [0.5, 1.5]])
    R, dR = ref.l1_regularizer(W)
    assert R == pytest.approx(1.0)
    np.testing.assert_array_equal(dR, [[0.0, -0.25], [0.25, 0.25]])


@pytest.mark.parametrize(("unit", "names"), [(nn.NPU, ["W_r", "W_i"]), (nn.RealNPU, ["W_r"])])
def test_npu_regularizer_and_gate_projection(unit, names):
    layer = make(unit, 3, 2, seed=0)
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


def test_npu_init():
    layer = nn.NPU(30, 20, rng=0)
    r = np.sqrt(6 / 50)
    W = layer.params["W_r"]
    assert np.all(np.abs(W) <= r) and np.abs(W).max() > 0.95 * r
    np.testing.assert_array_equal(layer.params["W_i"], 0.0)
    np.testing.assert_array_equal(layer.params["g"], 0.5)
    assert all(v.dtype == np.float32 for v in layer.params.values())


def test_npu_eps_defaults_to_the_machine_epsilon_of_its_dtype():
    for cls in (nn.NPU, nn.RealNPU):
        assert cls(2, 1, dtype="float32").eps == float(np.finfo(np.float32).eps)  # eps(Float32) in the Julia code
        assert cls(2, 1, dtype="float64").eps == float(np.finfo(np.float64).eps)
        assert cls(2, 1, eps=1e-7).eps == 1e-7
        assert nn.checkpoint.build_model(cls(2, 1, dtype="float64").config()).eps == float(np.finfo(np.float64).eps)
