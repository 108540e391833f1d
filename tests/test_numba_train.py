"""The compiled training path against a step-by-step loop with the NumPy reference and nalu_np.optim.Adam."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

import nalu_np as nn  # noqa: E402
from nalu_np import reference as ref  # noqa: E402
from nalu_np.kernels import numba_train as nt  # noqa: E402
from nalu_np.losses import mse  # noqa: E402
from nalu_np.optim import Adam  # noqa: E402

DTYPES = (np.float32, np.float64)


def make_model(dtype: Any, seed: int = 0, hidden: int = 2) -> tuple[Any, Adam]:
    model = nn.Sequential([nn.NAU(100, hidden, rng=seed, dtype=dtype), nn.NMU(hidden, 1, rng=seed + 1, dtype=dtype)])
    return model, Adam(model.params, lr=1e-3, projections=model.projections())


def python_steps(model: Any, opt: Adam, task: nt.SimpleFunction, rng: np.random.Generator, steps: int,
                 regularizer: tuple[float, float, float] | None = None, batch: int = 128) -> np.ndarray:
    """The step-by-step loop: draw, reference forward/backward, MSE, regularizer, Adam with projections."""
    dtype = model.layers[0].params["W"].dtype
    losses = []
    for _ in range(steps):
        x = task.inputs(rng.random((batch, task.in_features), dtype=dtype.type))
        t = task.targets(x)
        y, cache = model.forward(x, backend="numpy")
        loss, dy = mse(y, t)
        _, grads = model.backward(dy, cache)
        if regularizer is not None:
            lam = ref.linear_schedule(opt.t, *regularizer)
            r1, g1 = ref.nau_regularizer(model.params["0.W"])
            r2, g2 = ref.nmu_regularizer(model.params["1.W"])
            loss = loss + lam * (r1 + r2)
            grads = {"0.W": grads["0.W"] + dtype.type(lam) * g1, "1.W": grads["1.W"] + dtype.type(lam) * g2}
        losses.append(float(loss))
        opt.step(grads)
    return np.array(losses)


def assert_same_run(a: tuple[Any, Adam], b: tuple[Any, Adam], rtol: float) -> None:
    (ma, oa), (mb, ob) = a, b
    assert oa.t == ob.t
    for k in ma.params:
        np.testing.assert_allclose(ma.params[k], mb.params[k], rtol=rtol, atol=rtol, err_msg=k)
        for slot in ("exp_avg", "exp_avg_sq"):
            sa, sb = oa.state[slot][k], ob.state[slot][k]
            np.testing.assert_allclose(sa, sb, rtol=rtol, atol=rtol * float(np.abs(sb).max()), err_msg=slot + k)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("op", ["mul", "add", "sub"])
def test_compiled_run_matches_step_by_step_loop(op: str, dtype: Any) -> None:
    task = nt.SimpleFunction(op=op, offset=17)
    steps = 60
    py = make_model(dtype)
    losses_py = python_steps(*py, task, np.random.default_rng(42), steps)
    jit = make_model(dtype)
    losses_jit = nt.train(*jit, task, steps, np.random.default_rng(42), chunk=25)
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(losses_jit, losses_py, rtol=rtol)
    assert_same_run(jit, py, rtol)
    assert losses_py[-1] != losses_py[0]  # it did train


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_regularizer_schedule_matches(dtype: Any) -> None:
    task = nt.SimpleFunction(op="mul", offset=3)
    reg = (0.5, 10.0, 30.0)  # off, ramp, full within the run
    py = make_model(dtype, seed=4)
    losses_py = python_steps(*py, task, np.random.default_rng(9), 40, regularizer=reg)
    jit = make_model(dtype, seed=4)
    losses_jit = nt.train(*jit, task, 40, np.random.default_rng(9), chunk=40, regularizer=reg)
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(losses_jit, losses_py, rtol=rtol)
    assert_same_run(jit, py, rtol)


def test_chunking_and_mixing_with_python_steps() -> None:
    """Chunk size does not change the run; compiled and Python steps continue each other."""
    task = nt.SimpleFunction(op="add", offset=0)
    a, b = make_model(np.float64), make_model(np.float64)
    la = nt.train(*a, task, 30, np.random.default_rng(1), chunk=30)
    rng = np.random.default_rng(1)
    lb = np.concatenate([nt.train(*b, task, 10, rng, chunk=3), python_steps(*b, task, rng, 10),
                         nt.train(*b, task, 10, rng, chunk=10)])
    np.testing.assert_allclose(lb, la, rtol=1e-12)
    assert_same_run(a, b, 1e-12)


def test_projection_keeps_weights_in_bounds() -> None:
    model, opt = make_model(np.float64)
    model.params["0.W"][:] = 0.9999
    model.params["1.W"][:] = 0.9999
    opt.lr = 0.1
    nt.train(model, opt, nt.SimpleFunction(op="mul"), 20, np.random.default_rng(0))
    assert np.abs(model.params["0.W"]).max() <= 1.0
    assert model.params["1.W"].min() >= 0.0 and model.params["1.W"].max() <= 1.0


def test_draw_uniforms_is_the_per_step_stream() -> None:
    a = nt.draw_uniforms(np.random.default_rng(5), 3, 4, 7, np.float32)
    rng = np.random.default_rng(5)
    b = np.stack([rng.random((4, 7), dtype=np.float32) for _ in range(3)])
    np.testing.assert_array_equal(a, b)


def test_bad_arguments() -> None:
    model, opt = make_model(np.float64)
    task = nt.SimpleFunction()
    with pytest.raises(ValueError, match="unknown op"):
        nt.SimpleFunction(op="pow")
    with pytest.raises(ValueError, match="offset"):
        nt.SimpleFunction(offset=70)
    with pytest.raises(TypeError, match="Adam"):
        nt.train_steps(model, nn.optim.SGD(model.params, lr=0.1), task, np.zeros((1, 2, 100)))
    with pytest.raises(ValueError, match="shape"):
        nt.train_steps(model, opt, task, np.zeros((1, 2, 99)))
    with pytest.raises(TypeError, match="NAU"):
        nt.train_steps(nn.Sequential([nn.NMU(100, 1, dtype="float64")]), opt, task, np.zeros((1, 2, 100)))
