"""The NAU (nalu_np.reference.nau): a linear map by hand, its regularizer and the layer's, its initialisation."""

from __future__ import annotations

import numpy as np

import nalu_np as nn
from nalu_np import reference as ref
from support.reference import check_regularizer_gradient


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


def test_nau_regularizer_values_and_gradient():
    W = np.array([[0.0, 0.2, -0.3], [0.9, -1.0, 0.6]])
    R, dR = ref.nau_regularizer(W)
    np.testing.assert_allclose(R, (0.0 + 0.2 + 0.3 + 0.1 + 0.0 + 0.4) / 6)
    # W = -1 sits on the clip bound: the authors' |1 - |W|| has slope 0 there (torch's sign(0) = 0)
    np.testing.assert_array_equal(dR, np.array([[0.0, 1.0, -1.0], [-1.0, 0.0, -1.0]]) / 6)


def test_nau_regularizer_at_kinks_and_bounds_follows_autograd():
    # 0, the ties +-1/2 and the bounds +-1 get 0 (abs'(0) = 0; torch.min gives each side half at a tie)
    W = np.array([[0.0, 0.5, -0.5, 1.0, -1.0]])
    R, dR = ref.nau_regularizer(W)
    np.testing.assert_allclose(R, (0.0 + 0.5 + 0.5 + 0.0 + 0.0) / 5)
    np.testing.assert_array_equal(dR, np.zeros_like(W))


def test_nau_regularizer_beyond_the_bound_pulls_back():
    # without the projection: R = |W| - 1 >= 0 and slope sign(W), the authors' |1 - |W||
    W = np.array([[1.25, -1.5]])
    R, dR = ref.nau_regularizer(W)
    np.testing.assert_allclose(R, (0.25 + 0.5) / 2)
    np.testing.assert_array_equal(dR, np.array([[1.0, -1.0]]) / 2)


def test_nau_regularizer_keeps_the_dtype():
    R, dR = ref.nau_regularizer(np.array([[0.25, -1.0]], dtype=np.float32))
    assert R.dtype == np.float32 and dR.dtype == np.float32


def test_nau_regularizer_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    W = rng.uniform(0.05, 0.45, size=(3, 4)) + rng.choice([0.0, 0.5], size=(3, 4))  # off the kinks
    W *= rng.choice([-1.0, 1.0], size=W.shape)
    check_regularizer_gradient(ref.nau_regularizer, W)


def test_layer_regularizer_matches_reference():
    layer = nn.NAU(3, 2, rng=0, dtype="float64")
    R, grads = layer.regularizer()
    R2, dW = ref.nau_regularizer(layer.params["W"])
    assert R == R2 and list(grads) == ["W"]
    np.testing.assert_array_equal(grads["W"], dW)


def test_nau_init_range():
    for i, o, r in [(4, 3, 0.5), (100, 100, np.sqrt(6 / 200))]:
        W = nn.NAU(i, o, rng=1).params["W"]
        assert W.shape == (i, o) and W.dtype == np.float32
        assert np.all(np.abs(W) <= r) and np.abs(W).max() > 0.8 * r
