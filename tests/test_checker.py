"""The gradient checker can fail: planted bugs are caught and named, kinks are told apart."""

from __future__ import annotations

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import reference as ref
from nalu_np.testing import check_gradients


class WrongEntry(nn.NAC):
    """A NAC whose W_hat gradient is 1% off at one entry."""

    entry = (123, 45)

    def backward(self, dy, cache):
        dx, grads = super().backward(dy, cache)
        grads["W_hat"][self.entry] *= 1.01
        return dx, grads


def test_one_wrong_entry_in_a_300x300_weight_gradient_is_named():
    layer = WrongEntry(300, 300, rng=0, dtype="float64", init="seed-000")
    x = np.random.default_rng(1).uniform(-2, 2, size=(4, 300))
    report = check_gradients(layer, x, rng=0, names=["W_hat", "M_hat"], groups=64)
    assert not report.ok
    assert [(f.name, f.index, f.size) for f in report.failures] == [("W_hat", WrongEntry.entry, 1)]
    assert report.failures[0].ratio > 10
    assert "W_hat[123, 45]" in str(report)
    # the same layer without the bug passes, and the parameters are restored bit for bit
    good = nn.NAC(300, 300, rng=0, dtype="float64", init="seed-000")
    before = {k: v.copy() for k, v in good.params.items()}
    report = check_gradients(good, x, rng=0, names=["W_hat", "M_hat"], groups=64)
    assert report.ok and report.worst_ratio < 1, str(report)
    for k in before:
        np.testing.assert_array_equal(good.params[k], before[k])


class WrongInputGradient(nn.NALU):
    def backward(self, dy, cache):
        dx, grads = super().backward(dy, cache)
        return dx * 1.001, grads


def test_wrong_input_gradient_is_caught():
    layer = WrongInputGradient(3, 2, rng=0, dtype="float64", init="seed-000")
    x = np.random.default_rng(1).uniform(0.5, 2.0, size=(4, 3))
    report = check_gradients(layer, x, rng=0)
    assert not report.ok
    assert {f.name for f in report.failures} == {"x"}
    assert len(report.failures) == x.size


@pytest.mark.parametrize("make", [
    lambda: nn.NAC(4, 3, rng=0, dtype="float64"),
    lambda: nn.NACMul(4, 3, rng=0, dtype="float64", init="seed-000"),
    lambda: nn.NALU.preset("seed-000", 4, 3, rng=0, dtype="float64"),
    lambda: nn.Sequential([nn.NAC(4, 3, rng=1, dtype="float64"), nn.NALU(3, 2, rng=2, dtype="float64")]),
])
def test_correct_layers_pass(make):
    x = np.random.default_rng(5).uniform(0.3, 2.0, size=(5, 4)) * np.array([1, -1, 1, -1])
    report = check_gradients(make(), x, rng=3)
    assert report.ok, str(report)
    assert 0 < report.worst_ratio < 1
    assert all(c.ok for c in report.structural)


def test_nacmul_at_zero_is_inconclusive_not_failed():
    layer = nn.NACMul(3, 2, rng=0, dtype="float64", init="seed-000")
    x = np.random.default_rng(2).uniform(0.5, 2.0, size=(3, 3))
    x[1, 2] = 0.0
    report = check_gradients(layer, x, rng=0)
    assert report.ok, str(report)
    assert [(r.name, r.index) for r in report.inconclusive] == [("x", (1, 2))]
    rec = report.inconclusive[0]
    assert rec.left * rec.right < 0  # the slopes of log(|x| + eps) on either side have opposite signs
    assert min(rec.left, rec.right) <= rec.analytic <= max(rec.left, rec.right)


class WrongSlopeAtZero(nn.NACMul):
    """Takes d|x|/dx = 2 at x = 0: outside the one-sided slopes [-1, 1] of the kink."""

    def backward(self, dy, cache):
        dx, grads = super().backward(dy, cache)
        x, eps = cache.data["x"], self.eps
        at_zero = x == 0
        dz = dy * cache.data["y"]
        dx[at_zero] = ((dz @ cache.data["W"].T) * 2.0 / eps)[at_zero]
        return dx, grads


def test_wrong_slope_at_the_kink_fails():
    layer = WrongSlopeAtZero(3, 2, rng=0, dtype="float64", init="seed-000")
    x = np.random.default_rng(2).uniform(0.5, 2.0, size=(3, 3))
    x[1, 2] = 0.0
    report = check_gradients(layer, x, rng=0)
    assert not report.ok
    assert [(f.name, f.index) for f in report.failures] == [("x", (1, 2))]


def test_function_pair():
    params = {"W_hat": np.array([[0.3, -0.2]]), "M_hat": np.array([[0.1, 0.4]])}
    x = np.array([[1.5], [-0.7]])
    report = check_gradients((ref.nacmul_forward, ref.nacmul_backward), x, params=params, rng=0)
    assert report.ok, str(report)

    def bad_backward(params, cache, dy, eps=1e-7):
        dx, g = ref.nacmul_backward(params, cache, dy, eps)
        return dx, {"W_hat": g["W_hat"], "M_hat": -g["M_hat"]}

    report = check_gradients((ref.nacmul_forward, bad_backward), x, params=params, rng=0)
    assert {f.name for f in report.failures} == {"M_hat"}


class Mutating(nn.NAC):
    def forward(self, x, backend=None):
        y, cache = super().forward(x, backend)
        x[0, 0] += 0.0 if x[0, 0] != x[0, 0] else 1e-3  # mutates its input
        return y, cache


class Nonlinear(nn.NAC):
    def backward(self, dy, cache):
        return super().backward(dy * np.abs(dy), cache)


class Nondeterministic(nn.NAC):
    calls = 0

    def backward(self, dy, cache):
        Nondeterministic.calls += 1
        dx, g = super().backward(dy, cache)
        return dx + 1e-13 * Nondeterministic.calls, g


@pytest.mark.parametrize("cls, check", [
    (Mutating, "inputs not mutated"),
    (Nonlinear, "linear in the upstream gradient"),
    (Nondeterministic, "repeated backward identical"),
])
def test_structural_checks_fail(cls, check):
    layer = cls(2, 2, rng=0, dtype="float64")
    x = np.random.default_rng(0).uniform(0.5, 2, size=(3, 2))
    report = check_gradients(layer, x, rng=0, names=["W_hat"])
    failed = {c.name for c in report.structural if not c.ok}
    assert check in failed and not report.ok


def test_refuses_float32_and_unknown_names():
    layer = nn.NAC(2, 2, rng=0)
    with pytest.raises(TypeError, match="float64 only"):
        check_gradients(layer, np.ones((2, 2), np.float32))
    layer64 = layer.astype("float64")
    with pytest.raises(ValueError, match="unknown tensor name"):
        check_gradients(layer64, np.ones((2, 2)), names=["W"])
    with pytest.raises(TypeError, match="layer protocol"):
        check_gradients(object(), np.ones((2, 2)))


def test_non_finite_forward_is_refused():
    layer = nn.NACMul(2, 1, dtype="float64")
    layer.params["W_hat"][:] = 30.0
    layer.params["M_hat"][:] = 40.0
    with pytest.raises(ValueError, match="not finite"):
        check_gradients(layer, np.array([[1e200, 1e200]]))
