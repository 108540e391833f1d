"""Optimizers against steps computed by hand, clipping, projections, state round trip and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nalu_np as nn
from nalu_np.losses import mse
from nalu_np.optim import SGD, Adam, RMSProp, array_module, create

@pytest.fixture(autouse=True)
def _numpy_backend():
    """These tests are about the loop and the files, not the kernels: run them on the NumPy reference."""
    with nn.use_backend("numpy"):
        yield


P0 = [0.5, -1.0, 2.0]
G1 = [0.1, -0.2, 0.3]
G2 = [-0.4, 0.05, 0.3]


def _params(dtype="float64"):
    return {"w": np.array(P0, dtype=dtype)}


def _grads(g, dtype="float64"):
    return {"w": np.array(g, dtype=dtype)}


def test_sgd_plain_step():
    params = _params()
    SGD(params, lr=0.1).step(_grads(G1))
    np.testing.assert_allclose(params["w"], [p - 0.1 * g for p, g in zip(P0, G1)], rtol=0, atol=1e-15)


def test_sgd_momentum_two_steps():
    params = _params()
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step(_grads(G1))
    opt.step(_grads(G2))
    want = []
    for p, g1, g2 in zip(P0, G1, G2):
        b = g1
        p -= 0.1 * b
        b = 0.9 * b + g2
        want.append(p - 0.1 * b)
    np.testing.assert_allclose(params["w"], want, rtol=1e-14)


def test_adam_two_steps_by_hand():
    params = _params()
    opt = Adam(params, lr=0.05, betas=(0.8, 0.95), eps=1e-3)
    opt.step(_grads(G1))
    opt.step(_grads(G2))
    want = []
    for p, g1, g2 in zip(P0, G1, G2):
        m = v = 0.0
        for t, g in ((1, g1), (2, g2)):
            m = 0.8 * m + 0.2 * g
            v = 0.95 * v + 0.05 * g * g
            m_hat, v_hat = m / (1 - 0.8**t), v / (1 - 0.95**t)
            p -= 0.05 * m_hat / (math.sqrt(v_hat) + 1e-3)  # eps outside the square root, after correction
        want.append(p)
    np.testing.assert_allclose(params["w"], want, rtol=1e-13)
    assert opt.t == 2


def test_adam_first_step_moves_each_weight_by_lr():
    params = _params()
    Adam(params, lr=0.01, eps=1e-12).step(_grads(G1))
    np.testing.assert_allclose(np.array(P0) - params["w"], 0.01 * np.sign(G1), rtol=1e-9)


def test_rmsprop_two_steps_by_hand():
    params = _params()
    opt = RMSProp(params, lr=0.01, alpha=0.9, eps=1e-4)
    opt.step(_grads(G1))
    opt.step(_grads(G2))
    want = []
    for p, g1, g2 in zip(P0, G1, G2):
        v = 0.0
        for g in (g1, g2):
            v = 0.9 * v + 0.1 * g * g
            p -= 0.01 * g / (math.sqrt(v) + 1e-4)
        want.append(p)
    np.testing.assert_allclose(params["w"], want, rtol=1e-13)


@pytest.mark.parametrize("cls", [SGD, Adam, RMSProp])
def test_float32_stays_float32_and_in_place(cls):
    params = _params("float32")
    w = params["w"]
    opt = cls(params, lr=0.1)
    opt.step(_grads(G1, "float32"))
    assert params["w"] is w and w.dtype == np.float32
    assert all(a.dtype == np.float32 for s in opt.state.values() for a in s.values())
    assert not np.array_equal(w, np.array(P0, dtype="float32"))


def test_clip_value_then_step():
    params = _params()
    grads = _grads([5.0, -0.2, -7.0])
    SGD(params, lr=1.0, clip_value=1.0).step(grads)
    np.testing.assert_allclose(params["w"], [0.5 - 1.0, -1.0 + 0.2, 2.0 + 1.0])
    np.testing.assert_array_equal(grads["w"], [5.0, -0.2, -7.0])  # the caller's gradients are untouched


def test_clip_norm_is_global_over_parameters():
    params = {"a": np.zeros(2), "b": np.zeros(1)}
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}  # global norm 5
    SGD(params, lr=1.0, clip_norm=1.0).step(grads)
    np.testing.assert_allclose(params["a"], [-0.6, 0.0], rtol=1e-15)
    np.testing.assert_allclose(params["b"], [-0.8], rtol=1e-15)
    small = {"a": np.zeros(2), "b": np.zeros(1)}
    SGD(small, lr=1.0, clip_norm=10.0).step(grads)  # under the limit: unchanged
    np.testing.assert_array_equal(small["a"], [-3.0, 0.0])


def test_projections_in_place_or_returned():
    params = {"a": np.array([0.5, -0.5]), "b": np.array([0.5, 0.9]), "c": np.array([0.0])}
    a, b = params["a"], params["b"]

    def clip_in_place(W):
        np.clip(W, 0.0, 1.0, out=W)  # returns None from this function

    opt = SGD(params, lr=1.0, projections={"a": lambda W: W.clip(-1.0, 1.0), "b": clip_in_place})
    opt.step({"a": np.array([-2.0, 2.0]), "b": np.array([1.0, -1.0]), "c": np.array([-3.0])})
    assert params["a"] is a and params["b"] is b
    np.testing.assert_array_equal(a, [1.0, -1.0])
    np.testing.assert_array_equal(b, [0.0, 1.0])
    np.testing.assert_array_equal(params["c"], [3.0])  # no projection


@pytest.mark.parametrize("make", [
    lambda p: SGD(p, lr=0.1, momentum=0.5),
    lambda p: Adam(p, lr=0.1, betas=(0.7, 0.9), clip_norm=3.0),
    lambda p: RMSProp(p, lr=0.1, alpha=0.8),
])
def test_state_round_trip_continues_bit_exactly(make):
    rng = np.random.default_rng(0)
    grads = [{"w": rng.normal(size=3), "v": rng.normal(size=(2, 2))} for _ in range(6)]
    p1 = {"w": np.array(P0), "v": np.eye(2)}
    o1 = make(p1)
    for g in grads[:3]:
        o1.step(g)
    state = o1.state_dict()
    p2 = {k: v.copy() for k, v in p1.items()}
    o2 = make(p2)
    o2.load_state_dict(state)
    assert o2.t == 3 and o2.hyper() == o1.hyper()
    for g in grads[3:]:
        o1.step(g)
        o2.step(g)
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])


def test_load_state_dict_restores_settings_and_refuses_others():
    opt = Adam(_params(), lr=0.3, betas=(0.5, 0.6), eps=1e-4)
    opt.step(_grads(G1))
    other = Adam(_params(), lr=0.001)
    other.load_state_dict(opt.state_dict())
    assert (other.lr, other.betas, other.eps) == (0.3, (0.5, 0.6), 1e-4)
    with pytest.raises(ValueError, match="Adam"):
        SGD(_params(), lr=0.1).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="shape"):
        Adam({"w": np.zeros(4)}).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="parameters"):
        Adam({"x": np.zeros(3)}).load_state_dict(opt.state_dict())


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="lr"):
        Adam(_params(), lr=-1)
    with pytest.raises(ValueError, match="betas"):
        Adam(_params(), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="non-empty"):
        SGD({}, lr=0.1)
    with pytest.raises(TypeError, match="float"):
        SGD({"w": np.arange(3)}, lr=0.1)
    with pytest.raises(KeyError, match="unknown parameter"):
        SGD(_params(), lr=0.1, projections={"nope": np.abs})
    opt = SGD(_params(), lr=0.1)
    with pytest.raises(KeyError, match="missing"):
        opt.step({})
    with pytest.raises(ValueError, match="shape|float32"):
        opt.step({"w": np.zeros(4)})
    with pytest.raises(ValueError, match="float32"):
        opt.step({"w": np.zeros(3, dtype=np.float32)})
    with pytest.raises(ValueError, match="unknown optimizer"):
        create("adagrad", _params())
    with pytest.raises(TypeError):
        array_module([1.0, 2.0])


def test_create_by_name_any_case():
    opt = create("ADAM", _params(), lr=0.2, betas=(0.5, 0.5))
    assert isinstance(opt, Adam) and opt.lr == 0.2
    assert isinstance(create("sgd", _params()), SGD)
    assert array_module(np.zeros(1)) is np


def test_adam_trains_a_nac_layer():
    layer = nn.NAC(2, 1, rng=0, dtype="float64")
    x = np.random.default_rng(1).uniform(-1, 1, size=(64, 2))
    t = x.sum(axis=1, keepdims=True)
    opt = Adam(layer.params, lr=0.05)
    losses = []
    for _ in range(300):
        y, cache = layer.forward(x)
        loss, dy = mse(y, t)
        losses.append(float(loss))
        opt.step(layer.backward(dy, cache)[1])
    assert losses[-1] < 1e-2 * losses[0]


def test_mse_value_gradient_and_checks():
    y = np.array([[1.0, 2.0], [3.0, 5.0]], dtype=np.float32)
    t = np.array([[1.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    loss, dy = mse(y, t)
    assert loss == pytest.approx((0 + 1 + 4 + 16) / 4) and loss.dtype == np.float32
    np.testing.assert_allclose(dy, 2 * (y - t) / 4)
    assert dy.dtype == np.float32
    with pytest.raises(ValueError, match="same shape"):
        mse(y, t[:, :1])
    with pytest.raises(TypeError, match="dtype"):
        mse(y, t.astype(np.float64))


def test_adam_with_an_overflowing_second_moment_keeps_training():
    """g**2 overflows float32: the gradient enters the moments clipped (no warning), the step is about lr
    against the gradient, and the parameter is not frozen afterwards (with v = inf every later step is 0)."""
    import warnings

    p = {"w": np.array([1.0, 1.0], np.float32)}
    opt = Adam(p, lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step({"w": np.array([1e20, 1.0], np.float32)})
    assert np.all(np.isfinite(opt.state["exp_avg_sq"]["w"])) and np.all(np.isfinite(p["w"]))
    assert 1.0 - 0.11 < p["w"][0] < 1.0 and p["w"][1] == pytest.approx(0.9, rel=1e-5)
    before = p["w"].copy()
    for _ in range(3):
        opt.step({"w": np.array([-1.0, -1.0], np.float32)})
    assert p["w"][0] != before[0] and p["w"][1] > before[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step({"w": np.array([np.nan, np.inf], np.float32)})
    assert np.isnan(p["w"][0]) and np.isfinite(p["w"][1]) and p["w"][1] < 1.0


def test_adam_propagating_an_overflow_is_pytorchs_adam():
    """``overflow="propagate"``: torch.optim.Adam's float32 arithmetic (measured with PyTorch 2.14, foreach and
    not, from p = 0 with lr 1e-3): gradients 3e19, 1e21 and inf give v = 9e35, inf, inf and p = -1e-3, 0, NaN;
    after a second step of gradient 1 the first weight is at -1.7e-3, the second is frozen at 0 (m / inf), the
    third stays NaN.  No warning."""
    import warnings

    p = {"w": np.zeros(3, np.float32)}
    opt = Adam(p, overflow="propagate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step({"w": np.array([3e19, 1e21, np.inf], np.float32)})
        np.testing.assert_allclose(opt.state["exp_avg_sq"]["w"], [9e35, np.inf, np.inf], rtol=1e-6)
        np.testing.assert_allclose(opt.state["exp_avg"]["w"], [3e18, 1e20, np.inf], rtol=1e-6)
        np.testing.assert_allclose(p["w"], [-1e-3, 0.0, np.nan], rtol=1e-5)
        opt.step({"w": np.ones(3, np.float32)})
    np.testing.assert_allclose(p["w"], [-1.7e-3, 0.0, np.nan], rtol=2e-2)
    assert p["w"][1] == 0.0 and opt.hyper()["overflow"] == "propagate"
    clipped = {"w": np.zeros(3, np.float32)}
    Adam(clipped).step({"w": np.array([3e19, 1e21, np.inf], np.float32)})
    assert np.isfinite(clipped["w"]).all()
    with pytest.raises(ValueError, match="unknown overflow 'ieee'; one of clip, propagate"):
        Adam(p, overflow="ieee")
