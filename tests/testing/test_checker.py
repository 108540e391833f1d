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


# -- blind spots (issue "Nothing silently wrong"): the planted bugs below (mutated dy, malformed gradients, wrong sign
# on a tiny output, dropped eps) all passed or raised on the checker before the fix; the correct cases next to them
# guard against false alarms of the fix


@pytest.mark.parametrize("mutate", [
    lambda dy: np.multiply(dy, 2.0, out=dy),
    lambda dy: dy.fill(0.0),
], ids=["scaled", "zeroed"])
def test_backward_that_mutates_dy_is_one_structural_failure(mutate):
    class MutatesDy(nn.NAC):
        def backward(self, dy, cache):
            dx, grads = super().backward(dy, cache)
            mutate(dy)  # after use: the gradients are right, the caller's dy is not
            return dx, grads

    layer = MutatesDy(3, 2, rng=0, dtype="float64")
    x = np.random.default_rng(0).uniform(0.5, 2, size=(4, 3))
    report = check_gradients(layer, x, rng=0)
    assert [c.name for c in report.structural if not c.ok] == ["backward leaves dy unchanged"], str(report)
    assert "backward mutates dy" in str(report)
    assert report.failures == [] and report.inconclusive == [], str(report)


def linear_forward(params, x):
    return x @ params["W"] + params["b"], {"x": x}


def linear_backward(params, cache, dy):
    return dy @ params["W"].T, {"W": cache["x"].T @ dy, "b": dy.sum(axis=0)}


LINEAR = {"W": np.array([[0.5, -1.2, 0.3], [0.8, 0.1, -0.7]]), "b": np.array([0.1, -0.2, 0.3])}


def keepdims_bias(params, cache, dy):
    dx, grads = linear_backward(params, cache, dy)
    return dx, {**grads, "b": dy.sum(axis=0, keepdims=True)}


def missing_bias(params, cache, dy):
    dx, grads = linear_backward(params, cache, dy)
    return dx, {"W": grads["W"]}


def flat_dx(params, cache, dy):
    dx, grads = linear_backward(params, cache, dy)
    return dx.reshape(-1), grads


@pytest.mark.parametrize("backward, named", [
    (keepdims_bias, ["b", "(1, 3)", "(3,)"]),
    (missing_bias, ["b", "missing"]),
    (flat_dx, ["x", "(8,)", "(4, 2)"]),
], ids=["keepdims", "missing", "flat-dx"])
def test_malformed_gradient_is_one_structural_failure_naming_the_tensor(backward, named):
    x = np.random.default_rng(0).uniform(-2, 2, size=(4, 2))
    params = {k: v.copy() for k, v in LINEAR.items()}
    report = check_gradients((linear_forward, backward), x, params=params, rng=0)
    failed = [c for c in report.structural if not c.ok]
    assert [c.name for c in failed] == ["gradients match the tensors"], str(report)
    assert all(s in failed[0].detail for s in named), failed[0].detail
    assert report.failures == [], str(report)
    # the well-formed gradients are still checked
    assert "W" in report.n_checked


def test_correct_linear_layer_passes():
    x = np.random.default_rng(0).uniform(-2, 2, size=(4, 2))
    report = check_gradients((linear_forward, linear_backward), x, params=dict(LINEAR), rng=0)
    assert report.ok and report.worst_ratio < 1, str(report)


#: one output column of size ~1e6, the other ~1e-9
MIXED_SCALES = {"W": np.array([[2e6, 3e-9], [-1e6, 1e-9]]), "b": np.array([5e5, -2e-9])}


def wrong_sign_on_the_tiny_output(params, cache, dy):
    dx, grads = linear_backward(params, cache, dy)
    W = params["W"]
    return dy[:, :1] @ W[:, :1].T - dy[:, 1:] @ W[:, 1:].T, grads


@pytest.mark.parametrize("backward, wrong", [(linear_backward, False), (wrong_sign_on_the_tiny_output, True)],
                         ids=["correct", "wrong-sign"])
def test_wrong_sign_on_an_output_tiny_beside_others_is_caught(backward, wrong):
    x = np.random.default_rng(0).uniform(0.5, 2, size=(3, 2)) * np.array([1, -1])
    report = check_gradients((linear_forward, backward), x, params=dict(MIXED_SCALES), rng=0)
    if wrong:
        assert not report.ok
        assert sorted((f.name, f.index) for f in report.failures) == [("x", i) for i in np.ndindex(x.shape)]
    else:
        assert report.ok and report.worst_ratio < 1, str(report)


def nacmul_backward_without_eps(params, cache, dy, eps=1e-7):
    x = cache["x"]
    dz = dy * cache["y"]
    dW_hat, dM_hat = ref.nac_weight_backward(ref.log_input(x, eps).T @ dz, cache["t"], cache["s"])
    return (dz @ cache["W"].T) * np.sign(x) / np.abs(x), {"W_hat": dW_hat, "M_hat": dM_hat}


@pytest.mark.parametrize("backward, wrong", [(ref.nacmul_backward, False), (nacmul_backward_without_eps, True)],
                         ids=["correct", "dropped-eps"])
def test_dropped_eps_at_inputs_near_the_step_size_is_caught(backward, wrong):
    # |x| in [2e-5, 1e-4]: the step 6e-6 max(1, |x|) is a large fraction of |x|; without eps = 1e-7 in
    # d log(|x| + eps)/dx the input gradient is 0.1% to 0.5% off
    rng = np.random.default_rng(3)
    x = rng.uniform(2e-5, 1e-4, size=(3, 3)) * rng.choice([-1.0, 1.0], size=(3, 3))
    params = {"W_hat": rng.uniform(-1, 1, size=(3, 2)), "M_hat": rng.uniform(-1, 1, size=(3, 2))}
    report = check_gradients((ref.nacmul_forward, backward), x, params=params, rng=0, names=["x"])
    if wrong:
        assert sorted(f.index for f in report.failures) == list(np.ndindex(x.shape)), str(report)
        # caught with the step relative to |x|, far below the step 6e-6 that hid the error
        assert all(f.step < 1e-4 * abs(f.value) for f in report.failures), str(report)
    else:
        assert report.ok and report.worst_ratio < 1 and not report.inconclusive, str(report)


def wrong_sign_on_column_1_of_W(params, cache, dy):
    dx, grads = linear_backward(params, cache, dy)
    return dx, {**grads, "W": grads["W"] * np.array([1.0, -1.0])}


def test_an_all_zero_output_column_is_still_checked():
    # column 1 of y is exactly 0 (no size to weight its upstream by), but its W gradient x.T @ dy is not
    params = {"W": np.array([[2e6, 0.0], [-1e6, 0.0]]), "b": np.array([5e5, 0.0])}
    x = np.random.default_rng(0).uniform(0.5, 2, size=(3, 2))
    report = check_gradients((linear_forward, wrong_sign_on_column_1_of_W), x, params=params, rng=0)
    assert sorted((f.name, f.index) for f in report.failures) == [("W", (0, 1)), ("W", (1, 1))], str(report)
    report = check_gradients((linear_forward, linear_backward), x, params=params, rng=0)
    assert report.ok and report.worst_ratio < 1, str(report)


@pytest.mark.parametrize("seed", range(10))
def test_an_output_small_because_its_terms_cancel_is_no_false_alarm(seed):
    # column 0 is a - b with a ~ b: small beside column 1, but its rounding error is that of a and b, so
    # weighting its upstream up by its small size alone would make rounding look like an error
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2, size=(4, 1))
    x = np.hstack([a, a * (1 + 1e-8 * rng.uniform(0.5, 1.5, size=(4, 1)))])
    params = {"W": np.array([[1.0, 0.3], [-1.0, 0.5]]), "b": np.zeros(2)}
    report = check_gradients((linear_forward, linear_backward), x, params=params, rng=seed)
    assert report.ok, str(report)
