"""The step-by-step training loop the compiled engine is tested against (tests/training/test_compiled*.py)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from pytest import approx as _approx

from nalu_np import compiled as nt
from nalu_np import reference as ref
from nalu_np.losses import mse
from nalu_np.optim import Optimizer
from nalu_np.sequential import Sequential

#: how many times the reference's own spread (:func:`reversed_steps`) a compiled run may stray from the reference
SPREAD = 8


def beta_at(t: int, l1: tuple[list[int], list[float]]) -> float:
    """The L1 term's strength at step ``t`` of the pieces ``(starts, betas)`` (0 before the first)."""
    starts, betas = l1
    return ([0.0] + [b for s, b in zip(starts, betas) if s <= t])[-1]


def python_steps(model: Any, opt: Optimizer, task: nt.SimpleFunction, rng: np.random.Generator, steps: int,
                 regularizer: tuple[float, float, float] | None = None,
                 l1: tuple[list[int], list[float]] | None = None, batch: int = 128) -> np.ndarray:
    """The step-by-step loop: draw, the layers' forward and backward passes on the reference, MSE, the units'
    regularizer ``lambda(t) R``, the L1 term ``beta(t) sum |p|`` as
    :meth:`nalu_np.arithmetic.SingleModuleTask.penalty` has it, the optimizer (Adam, SGD, RMSProp, with its
    clipping) with the layers' projections; returns the
    loss of every step."""
    dtype = next(iter(model.params.values())).dtype
    losses = []
    for _ in range(steps):
        x = task.inputs(rng.random((batch, task.in_features), dtype=dtype.type))
        y, cache = model.forward(x, backend="numpy")
        loss, dy = mse(y, task.targets(x))
        _, grads = model.backward(dy, cache)
        if regularizer is not None:
            lam = ref.linear_schedule(opt.t, *regularizer)
            R, dR = model.regularizer()  # the NAU / NMU / NPU layers' terms
            loss = loss + lam * float(R)
            grads = {k: g + dtype.type(lam) * dR[k] if k in dR else g for k, g in grads.items()}
        if l1 is not None:
            beta = beta_at(opt.t, l1)
            loss = loss + beta * sum(float(np.abs(p).sum()) for p in model.params.values())
            grads = {k: g + np.sign(model.params[k]) * dtype.type(beta) for k, g in grads.items()}
        losses.append(float(loss))
        opt.step(grads)
    return np.array(losses)


class _ReversedInputs:
    """``model`` fed its inputs in reverse order (its first layer's rows reversed by :func:`_reverse_inputs`)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.model.params

    def forward(self, x: np.ndarray, backend: str = "numpy") -> tuple[np.ndarray, Any]:
        return self.model.forward(np.ascontiguousarray(x[:, ::-1]), backend=backend)

    def backward(self, dy: np.ndarray, cache: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        dx, grads = self.model.backward(dy, cache)
        return dx[:, ::-1], grads

    def regularizer(self) -> Any:
        return self.model.regularizer()


def _reverse_inputs(model: Any, opt: Optimizer | None = None) -> None:
    """Reverse, in place, the rows of the first layer's input-indexed parameters (and their optimizer state)."""
    first = model.layers[0] if isinstance(model, Sequential) else model
    prefix = "0." if isinstance(model, Sequential) else ""
    if isinstance(first, Sequential) or first.in_features == first.out_features:
        raise ValueError("the first layer must be a unit with in_features != out_features")
    for k, v in first.params.items():
        if v.shape[0] == first.in_features:
            arrays = [v] + ([opt.state[slot][prefix + k] for slot in opt.slots] if opt is not None else [])
            for a in arrays:
                a[...] = a[::-1].copy()


def reversed_steps(model: Any, opt: Optimizer, task: nt.SimpleFunction, rng: np.random.Generator, steps: int,
                   **kw: Any) -> np.ndarray:
    """:func:`python_steps` on the inputs in reverse order: the same function and the same batches, every sum
    over the inputs taken in the other order.  ``model`` and ``opt`` (fresh, as for :func:`python_steps`) end
    in the input order.  How far this run lies from :func:`python_steps`'s is the rounding noise that the order of
    summation alone makes -- the spread within which any correct implementation agrees with the reference,
    the compiled engine's SIMD order included (an NAU's hidden unit near 0 under a NALU's ``log(|h| + eps)``
    amplifies it a thousandfold in one step).  The compiled engine has stayed within 1.3 times this spread on
    AVX2 and AVX-512 (tests/training/test_compiled_nalu_separate.py), hence ``SPREAD``."""
    _reverse_inputs(model)
    losses = python_steps(_ReversedInputs(model), opt, task, rng, steps, **kw)
    _reverse_inputs(model, opt)
    return losses


def reversed_forward(model: Any, x: np.ndarray) -> np.ndarray:
    """The reference forward pass of ``model`` on ``x``, its sums over the inputs in reverse order."""
    twin = copy.deepcopy(model)
    _reverse_inputs(twin)
    return _ReversedInputs(twin).forward(x)[0]


def assert_same_predictions(model: Any, x: np.ndarray, rtol: float) -> None:
    """The compiled engine's predictions (:func:`nalu_np.compiled.predict`) are the reference forward pass's
    within ``rtol`` and ``SPREAD`` times the reference's own spread over summation orders (a row whose output
    cancels hidden values 100 times its size carries their rounding)."""
    y = model.forward(x, backend="numpy")[0]
    np.testing.assert_allclose(nt.predict(model, x), y, rtol=rtol, atol=rtol + spread(reversed_forward(model, x), y))


def spread(a: np.ndarray | None, b: np.ndarray) -> float:
    """``SPREAD`` times the largest finite difference of two reference results (0 with ``a`` None)."""
    if a is None:
        return 0.0
    d = np.abs(np.asarray(a, dtype=np.float64) - b)
    return SPREAD * float(d[np.isfinite(d)].max(initial=0.0))


def assert_same_losses(a: np.ndarray, b: np.ndarray, rtol: float, rev: np.ndarray | None = None) -> None:
    """Two runs' losses agree step by step within ``rtol`` and, given ``b``'s losses on the reversed inputs
    ``rev``, within ``SPREAD`` times the largest distance of ``rev`` from ``b`` up to each step."""
    a, b = np.asarray(a), np.asarray(b)
    tol = rtol * np.abs(b) + (0.0 if rev is None else SPREAD * np.maximum.accumulate(np.abs(np.asarray(rev) - b)))
    bad = np.flatnonzero(~(np.abs(a - b) <= tol))
    assert bad.size == 0, f"losses differ at steps {bad[:5]}: {a[bad[:5]]} against {b[bad[:5]]}, tolerance {tol[bad[:5]]}"


def assert_same_run(a: tuple[Any, Optimizer], b: tuple[Any, Optimizer], rtol: float,
                    rev: tuple[Any, Optimizer] | None = None) -> None:
    """The two (model, optimizer) pairs took the same steps: parameters and optimizer state (Adam's moments,
    SGD's momentum, RMSProp's mean square) within ``rtol`` (the state's absolute tolerance scaled by its largest
    finite value: NALU moments can overflow to inf), and, given ``b``'s run on the reversed inputs ``rev``
    (:func:`reversed_steps`), within ``SPREAD`` times the distance of ``rev`` from ``b`` in each array."""
    (ma, oa), (mb, ob) = a, b
    assert oa.t == ob.t and type(oa) is type(ob)
    for k in ma.params:
        pr = None if rev is None else rev[0].params[k]
        np.testing.assert_allclose(ma.params[k], mb.params[k], rtol=rtol, atol=rtol + spread(pr, mb.params[k]),
                                   err_msg=k)
        for slot in oa.slots:
            sa, sb = oa.state[slot][k], ob.state[slot][k]
            scale = float(np.abs(sb[np.isfinite(sb)]).max(initial=0.0))
            sr = None if rev is None else rev[1].state[slot][k]
            np.testing.assert_allclose(sa, sb, rtol=rtol, atol=rtol * scale + spread(sr, sb), err_msg=slot + k)


def rtol_of(dtype: Any) -> float:
    """The tolerance of a compiled run against the step-by-step one in ``dtype``."""
    return 1e-9 if dtype == np.float64 else 2e-4


def assert_same_train(jit: Any, py: Any, dtype: Any, eval_steps: list[int]) -> None:
    """Two :class:`nalu_np.TrainResult` of one run, compiled and Python engine: the engines, the losses (which
    moved), the parameters and the evaluations (at ``eval_steps``) agree to :func:`rtol_of`."""
    assert (py.engine, jit.engine) == ("python", "compiled")
    rtol = rtol_of(dtype)
    np.testing.assert_allclose(jit.loss, py.loss, rtol=rtol)
    assert py.loss[-1] != py.loss[0]
    for k in py.model.params:
        np.testing.assert_allclose(jit.model.params[k], py.model.params[k], rtol=rtol, atol=rtol, err_msg=k)
    assert [e.step for e in jit.evaluations] == [e.step for e in py.evaluations] == eval_steps
    for a, b in zip(py.evaluations, jit.evaluations):
        assert set(a.metrics) == set(b.metrics)
        for k, v in a.metrics.items():
            assert b.metrics[k] == _approx(v, rel=1e-7 if dtype == np.float64 else 1e-3, abs=1e-12), k
