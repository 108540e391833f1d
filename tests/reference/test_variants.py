"""Madsen & Johansen's variants in the reference (:mod:`nalu_np.variants`, re-exported by :mod:`nalu_np.reference`):
SigmoidNACMul, ClippedNACMul and GatedNAUNMU -- their formulas on hand-checkable cases, the authors'
initialisations, the projections, the regularizers and the weights their sparsity error is taken over.

The generic checks (gradients against finite differences, float32 against float64, shapes, IEEE) run on them in
``test_all_units.py``, which takes every unit of the table."""

from __future__ import annotations

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import arithmetic as ar
from nalu_np import reference as ref
from nalu_np import units
from nalu_np.testing import check_gradients
from support.reference import check_regularizer_gradient


# -- the formulas --------------------------------------------------------------------------------------------


def test_clipped_nacmul_multiplies_selects_and_takes_roots():
    """``W = [[1, 1, 0.5], [1, 0, 0]]``: output 0 is ``|x1| |x2|``, output 1 is ``|x1|``, output 2 ``sqrt|x1|``
    (with ``|x| + eps`` for ``|x|``)."""
    eps = 1e-7
    params = {"W": np.array([[1.0, 1.0, 0.5], [1.0, 0.0, 0.0]])}
    x = np.array([[3.0, -4.0], [0.5, 2.0], [0.0, 5.0]])
    y, _ = ref.clippednacmul_forward(params, x, eps)
    a = np.abs(x) + eps
    np.testing.assert_allclose(y, np.stack([a[:, 0] * a[:, 1], a[:, 0], np.sqrt(a[:, 0])], axis=1), rtol=1e-14)
    assert y[0, 0] == pytest.approx(12.0, rel=1e-6) and y[2, 0] == pytest.approx(5e-7, rel=1e-6)


def test_clipped_nacmul_gradient_by_hand():
    """One input, one output, ``y = (x + eps)^w``: ``dy/dx = w y / (x + eps)``, ``dy/dw = y log(x + eps)``; at
    ``x = 0`` the slope of ``log(|x| + eps)`` is taken as 0."""
    eps, w = 1e-7, 0.7
    params = {"W": np.array([[w]])}
    x = np.array([[2.5], [-2.5], [0.0]])
    y, cache = ref.clippednacmul_forward(params, x, eps)
    dx, grads = ref.clippednacmul_backward(params, cache, np.ones_like(y), eps)
    a = 2.5 + eps
    np.testing.assert_allclose(y[:, 0], [a**w, a**w, eps**w], rtol=1e-14)
    np.testing.assert_allclose(dx[:, 0], [w * a**w / a, -w * a**w / a, 0.0], rtol=1e-13)
    np.testing.assert_allclose(grads["W"], [[2 * a**w * np.log(a) + eps**w * np.log(eps)]], rtol=1e-13)


def test_sigmoid_nacmul_is_the_clipped_one_on_sigmoid_weights():
    """``SigmoidNACMul(W_hat) = ClippedNACMul(sigma(W_hat))``; ``W_hat = 0`` is the square root, large ``W_hat``
    the product; ``dW_hat = dW sigma'(W_hat)``."""
    rng = np.random.default_rng(0)
    W_hat = rng.normal(0, 2, (3, 2))
    x = rng.uniform(0.2, 3, (6, 3)) * rng.choice([-1, 1], (6, 3))
    y, cache = ref.sigmoidnacmul_forward({"W_hat": W_hat}, x)
    y_c, cache_c = ref.clippednacmul_forward({"W": ref.sigmoid(W_hat)}, x)
    np.testing.assert_allclose(y, y_c, rtol=1e-14)
    dy = rng.normal(size=y.shape)
    dx, g = ref.sigmoidnacmul_backward({"W_hat": W_hat}, cache, dy)
    dx_c, g_c = ref.clippednacmul_backward({"W": ref.sigmoid(W_hat)}, cache_c, dy)
    s = ref.sigmoid(W_hat)
    np.testing.assert_allclose(dx, dx_c, rtol=1e-14)
    np.testing.assert_allclose(g["W_hat"], g_c["W"] * s * (1 - s), rtol=1e-14)
    half, _ = ref.sigmoidnacmul_forward({"W_hat": np.zeros((1, 1))}, np.array([[9.0]]))
    assert half[0, 0] == pytest.approx(3.0, rel=1e-7)
    prod, _ = ref.sigmoidnacmul_forward({"W_hat": np.full((2, 1), 40.0)}, np.array([[3.0, -5.0]]))
    assert prod[0, 0] == pytest.approx(15.0, rel=1e-7)


def test_gated_nau_nmu_is_the_nau_or_the_nmu_as_its_gate_says():
    """``g = sigma(x G)``: ``G = 0`` gives the mean of the NAU's and the NMU's outputs; a saturated gate one of
    them; the NMU's product is exact with a factor 0 (``W_mul = 1``, ``x = 0``)."""
    rng = np.random.default_rng(1)
    W_add, W_mul = rng.uniform(-1, 1, (3, 2)), rng.uniform(0, 1, (3, 2))
    W_mul[1, 0] = 1.0
    x = rng.uniform(0.5, 2, (5, 3))
    x[2, 1] = 0.0
    a = x @ W_add
    m = np.prod(x[:, :, None] * W_mul + 1 - W_mul, axis=1)
    assert m[2, 0] == 0.0
    for G, want in ((np.zeros((3, 2)), 0.5 * a + 0.5 * m), (np.full((3, 2), 60.0), a), (np.full((3, 2), -60.0), m)):
        y, _ = ref.gatednaunmu_forward({"W_add": W_add, "W_mul": W_mul, "G": G}, x)
        np.testing.assert_allclose(y, want, rtol=1e-13, atol=1e-15)
    params = {"W_add": W_add, "W_mul": W_mul, "G": rng.normal(0, 1, (3, 2))}
    y, cache = ref.gatednaunmu_forward(params, x)
    dx, grads = ref.gatednaunmu_backward(params, cache, np.ones_like(y))
    assert np.isfinite(dx).all() and all(np.isfinite(v).all() for v in grads.values())  # no 0/0 at the zero factor
    layer = nn.GatedNAUNMU(3, 2, rng=0, dtype="float64")
    layer.params.update({k: v.copy() for k, v in params.items()})
    report = check_gradients(layer, x, rng=0)
    assert report.ok, str(report)


def test_gated_gradient_of_the_gate_by_hand():
    """One input, one output: ``y = g a + (1 - g) m`` with ``a = w_a x``, ``m = w_m x + 1 - w_m``,
    ``g = sigma(G x)``: ``dy/dG = x g (1 - g) (a - m)``, ``dy/dw_a = g x``, ``dy/dw_m = (1 - g) (x - 1)``."""
    wa, wm, G, xv = 0.3, 0.8, 0.4, 1.7
    params = {"W_add": np.array([[wa]]), "W_mul": np.array([[wm]]), "G": np.array([[G]])}
    y, cache = ref.gatednaunmu_forward(params, np.array([[xv]]))
    dx, grads = ref.gatednaunmu_backward(params, cache, np.ones_like(y))
    g = 1 / (1 + np.exp(-G * xv))
    a, m = wa * xv, wm * xv + 1 - wm
    assert y[0, 0] == pytest.approx(g * a + (1 - g) * m, rel=1e-14)
    assert grads["G"][0, 0] == pytest.approx(xv * g * (1 - g) * (a - m), rel=1e-13)
    assert grads["W_add"][0, 0] == pytest.approx(g * xv, rel=1e-14)
    assert grads["W_mul"][0, 0] == pytest.approx((1 - g) * (xv - 1), rel=1e-14)
    assert dx[0, 0] == pytest.approx(g * wa + (1 - g) * wm + G * g * (1 - g) * (a - m), rel=1e-13)


# -- the authors' initialisations -------------------------------------------------------------------------------


def test_sigmoid_nacmul_init_is_xavier_normal():
    I, O = 300, 100
    layer = nn.SigmoidNACMul(I, O, rng=0, dtype="float64")
    W_hat = layer.params["W_hat"]
    std = np.sqrt(2 / (I + O))
    assert abs(W_hat.mean()) < 0.03 * std and abs(W_hat.std() - std) < 0.02 * std
    assert abs(np.mean(np.abs(W_hat) < std) - 0.6827) < 0.01  # normal, not uniform (0.577 within one std)
    assert layer.eps == 1e-7 and layer.init == "madsen2020"


def test_clipped_nacmul_init_is_the_nmus():
    a = nn.ClippedNACMul(40, 30, rng=4, dtype="float64").params["W"]
    b = nn.NMU(40, 30, rng=4, dtype="float64").params["W"]
    np.testing.assert_array_equal(a, b)
    assert 0.25 <= a.min() < 0.26 and 0.74 < a.max() <= 0.75


@pytest.mark.parametrize("I, O", [(100, 2), (2, 1)])  # (2, 1): the NAU's r is capped at 0.5, the gate's is not
def test_gated_init_draws_the_nau_then_the_nmu_then_the_gate(I, O):
    layer = nn.GatedNAUNMU(I, O, rng=np.random.default_rng(5), dtype="float64")
    rng = np.random.default_rng(5)
    r, g = min(0.5, np.sqrt(6 / (I + O))), np.sqrt(6 / (I + O))
    expect = {"W_add": rng.uniform(-r, r, (I, O)), "W_mul": rng.uniform(0.25, 0.75, (I, O)),
              "G": rng.uniform(-g, g, (I, O))}
    assert list(layer.params) == ["W_add", "W_mul", "G"]
    for k, v in expect.items():
        np.testing.assert_array_equal(layer.params[k], v, err_msg=k)


# -- projections, regularizers, the weights of the sparsity error -----------------------------------------------


def test_gated_projections_clip_each_weight_to_its_box_and_leave_the_gate():
    layer = nn.GatedNAUNMU(2, 2, rng=0, dtype="float64")
    for k in layer.params:
        layer.params[k][...] = [[-3.0, 0.4], [1.5, -0.2]]
    arrays = {k: v for k, v in layer.params.items()}
    assert set(layer.projections()) == {"W_add", "W_mul"}
    layer.project()
    np.testing.assert_array_equal(layer.params["W_add"], [[-1.0, 0.4], [1.0, -0.2]])
    np.testing.assert_array_equal(layer.params["W_mul"], [[0.0, 0.4], [1.0, 0.0]])
    np.testing.assert_array_equal(layer.params["G"], [[-3.0, 0.4], [1.5, -0.2]])
    assert all(layer.params[k] is arrays[k] for k in arrays)  # in place


def test_clipped_nacmul_projection_and_regularizer_are_the_nmus():
    layer = nn.ClippedNACMul(4, 3, rng=1, dtype="float64")
    assert layer.bounds == {"W": (0.0, 1.0)}
    R, grads = layer.regularizer()
    R0, dW = ref.nmu_regularizer(layer.params["W"])
    assert R == R0 and list(grads) == ["W"]
    np.testing.assert_array_equal(grads["W"], dW)
    assert nn.SigmoidNACMul(4, 3).regularizer() == (0.0, {}) and nn.SigmoidNACMul(4, 3).bounds == {}


def test_gated_regularizer_is_the_sum_of_the_nau_and_the_nmu_terms():
    layer = nn.GatedNAUNMU(4, 3, rng=2, dtype="float64")
    p = layer.params
    p["W_add"][...] = np.random.default_rng(0).uniform(-1.2, 1.2, (4, 3))
    p["W_mul"][...] = np.random.default_rng(1).uniform(-0.2, 1.2, (4, 3))
    R, grads = layer.regularizer()
    (Ra, dWa), (Rm, dWm) = ref.nau_regularizer(p["W_add"]), ref.nmu_regularizer(p["W_mul"])
    assert R == pytest.approx(Ra + Rm, rel=1e-15) and Ra > 0 and Rm > 0
    assert sorted(grads) == ["W_add", "W_mul"]  # the gate is not regularized
    np.testing.assert_array_equal(grads["W_add"], dWa)
    np.testing.assert_array_equal(grads["W_mul"], dWm)
    for k in ("W_add", "W_mul"):  # each gradient is that of the sum against a central difference

        def R_of(W, k=k):
            R, g = units.spec("GatedNAUNMU").regularizer({**p, k: W})
            return R, g[k]

        check_regularizer_gradient(R_of, p[k].copy())


def test_the_sparsity_error_is_over_the_weights_the_forward_pass_uses():
    sig = nn.SigmoidNACMul(3, 2, rng=0, dtype="float64")
    w = units.effective_weights(sig.params)
    np.testing.assert_allclose(w["W_hat"], ref.sigmoid(sig.params["W_hat"]), rtol=1e-15)
    sig.params["W_hat"][...] = 40.0  # W = 1: sparse
    assert ar.sparsity_error(sig) < 1e-15
    gated = nn.GatedNAUNMU(3, 2, rng=0, dtype="float64")
    gated.params["W_add"][...] = [[1, 0], [-1, 0], [0, 1]]
    gated.params["W_mul"][...] = [[1, 0], [0, 1], [0, 0]]
    gated.params["G"][...] = 0.3  # the gate is left out
    assert set(units.effective_weights(gated.params)) == {"W_add", "W_mul"}
    assert ar.sparsity_error(gated) == 0.0
    gated.params["W_mul"][2, 1] = 0.4
    assert ar.sparsity_error(gated) == pytest.approx(0.4)
    nau, clipped = nn.NAU(3, 2, rng=0, dtype="float64"), nn.ClippedNACMul(2, 1, rng=0, dtype="float64")
    nau.params["W"][...] = 1.0
    clipped.params["W"][...] = [[0.9], [0.2]]
    assert ar.sparsity_error(nn.Sequential([nau, clipped])) == pytest.approx(0.2)
