"""The NMU (nalu_np.reference.nmu): factors selected by the weights, exact gradients at zero factors (by hand
and under hypothesis), binary weights select a product, overflow, its regularizer, projection and
initialisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nalu_np as nn
from nalu_np import reference as ref
from nalu_np.testing import check_gradients
from nalu_np.testing import strategies as st_nalu
from support.reference import check_regularizer_gradient, make


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


@settings(max_examples=15)
@given(case=st_nalu.layer_inputs(max_batch=4, max_in=4, max_out=3), zeros=st.lists(st.booleans(), min_size=4,
                                                                                     max_size=4))
def test_nmu_gradients_with_exact_zero_inputs(case, zeros):
    # NMU is a polynomial: zero inputs are no kink, and the leave-one-out products must stay exact there
    _, i, o, x, seed = case
    x = np.where(np.array(zeros[:i])[None, :], 0.0, x)
    report = check_gradients(make(nn.NMU, i, o, seed), x, rng=seed)
    assert report.ok, str(report)


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


def test_nmu_regularizer_values_and_gradient():
    W = np.array([[0.0, 0.2, 0.5], [0.9, 1.0, 0.6]])
    R, dR = ref.nmu_regularizer(W)
    np.testing.assert_allclose(R, (0.0 + 0.2 + 0.5 + 0.1 + 0.0 + 0.4) / 6)
    # the bounds W = 0 and W = 1 and the tie W = 1/2 get slope 0, as autograd gives the authors' code
    np.testing.assert_array_equal(dR, np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, -1.0]]) / 6)


def test_nmu_regularizer_outside_the_box_pulls_back():
    # without the projection: R = |W| below 0 and W - 1 above 1 (the authors' min(|W - 0|, |1 - W|))
    W = np.array([[-0.25, 1.5]])
    R, dR = ref.nmu_regularizer(W)
    np.testing.assert_allclose(R, (0.25 + 0.5) / 2)
    np.testing.assert_array_equal(dR, np.array([[-1.0, 1.0]]) / 2)


def test_nmu_regularizer_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    W = rng.uniform(0.05, 0.45, size=(3, 4)) + rng.choice([0.0, 0.5], size=(3, 4))  # off the kinks
    check_regularizer_gradient(ref.nmu_regularizer, W)


def test_projection_hooks_work_with_the_optimizer():
    optim = pytest.importorskip("nalu_np.optim")
    layer = nn.NMU(3, 2, rng=0)
    opt = optim.SGD(layer.params, lr=10.0, projections=layer.projections())
    opt.step({"W": np.full((3, 2), -1.0, dtype=np.float32)})  # a huge step out of [0, 1]
    np.testing.assert_array_equal(layer.params["W"], 1.0)


def test_nmu_init_range():
    W = nn.NMU(50, 40, rng=0, dtype="float64").params["W"]
    assert W.shape == (50, 40) and W.dtype == np.float64
    assert W.min() >= 0.25 and W.max() <= 0.75 and W.min() < 0.26 and W.max() > 0.74
