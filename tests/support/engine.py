"""The step-by-step training loop the compiled engine is tested against (tests/training/test_compiled*.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pytest import approx as _approx

from nalu_np import compiled as nt
from nalu_np import reference as ref
from nalu_np.losses import mse
from nalu_np.optim import Optimizer


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


def assert_same_run(a: tuple[Any, Optimizer], b: tuple[Any, Optimizer], rtol: float) -> None:
    """The two (model, optimizer) pairs took the same steps: parameters and optimizer state (Adam's moments,
    SGD's momentum, RMSProp's mean square) within ``rtol`` (the state's absolute tolerance scaled by its largest
    finite value: NALU moments can overflow to inf)."""
    (ma, oa), (mb, ob) = a, b
    assert oa.t == ob.t and type(oa) is type(ob)
    for k in ma.params:
        np.testing.assert_allclose(ma.params[k], mb.params[k], rtol=rtol, atol=rtol, err_msg=k)
        for slot in oa.slots:
            sa, sb = oa.state[slot][k], ob.state[slot][k]
            scale = float(np.abs(sb[np.isfinite(sb)]).max(initial=0.0))
            np.testing.assert_allclose(sa, sb, rtol=rtol, atol=rtol * scale, err_msg=slot + k)


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
