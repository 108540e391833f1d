"""The optimizers of the compiled training engine (:mod:`nalu_np.compiled`, :mod:`nalu_np.kernels.numba.train`):
Adam, SGD (with and without momentum) and RMSProp, with and without ``clip_value`` and ``clip_norm``, against a
step-by-step loop with the NumPy reference and the same :mod:`nalu_np.optim` optimizer on the same uniforms;
their state carried between compiled and Python steps; what the engine refuses.  (The block functions
themselves: tests/kernels/test_numba_common.py.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

import nalu_np as nn  # noqa: E402
from nalu_np import compiled as nt  # noqa: E402
from nalu_np.optim import SGD, Adam, Optimizer, RMSProp  # noqa: E402
from support.engine import assert_same_run, python_steps  # noqa: E402

DTYPES = (np.float32, np.float64)

#: the optimizers the engine steps with, each with and without gradient clipping (limits that the gradients of
#: these runs exceed), and the network and op each is tried on
CASES = {
    "Adam-clip_value": ((Adam, {"lr": 1e-2, "clip_value": 0.05}), "NAU-NMU", "mul"),
    "Adam-clip_norm": ((Adam, {"lr": 1e-2, "clip_norm": 1.0}), "NAU-NAU", "sub"),
    "SGD": ((SGD, {"lr": 1e-4}), "NAU-NAU", "add"),
    "SGD-momentum-clip_norm": ((SGD, {"lr": 1e-2, "momentum": 0.9, "clip_norm": 1.0}), "NAU-NMU", "mul"),
    "RMSProp": ((RMSProp, {"lr": 1e-3}), "NAU-NMU", "mul"),
    "RMSProp-clip_value-clip_norm": ((RMSProp, {"lr": 1e-2, "clip_value": 0.5, "clip_norm": 2.0}), "NAU-NAU", "add"),
}


def make_model(dtype: Any, optimizer: tuple[type, dict[str, Any]], net: str = "NAU-NMU",
               seed: int = 1) -> tuple[Any, Optimizer]:
    """``net`` (``"NAU-NMU"`` or ``"NAU-NAU"``, 100 -> 2 -> 1, layer ``l`` drawn with ``rng=seed + l``) and its
    optimizer ``(class, keyword arguments)`` with the model's projections."""
    second = {"NAU-NMU": nn.NMU, "NAU-NAU": nn.NAU}[net]
    model = nn.Sequential([nn.NAU(100, 2, rng=seed, dtype=dtype), second(2, 1, rng=seed + 1, dtype=dtype)])
    cls, kwargs = optimizer
    return model, cls(model.params, projections=model.projections(), **kwargs)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_every_optimizer_and_clipping_matches_the_python_loop(case: str, dtype: Any) -> None:
    """Adam, SGD (with and without momentum) and RMSProp, with clip_value, clip_norm, both or neither, in the
    compiled step: the Python loop's run on the same batches (losses, parameters, the optimizer's state), and
    the clipping did act (the run without it differs)."""
    (cls, kwargs), net, op = CASES[case]
    task = nt.SimpleFunction(op=op, offset=8)
    steps = 20
    py = make_model(dtype, (cls, kwargs), net)
    losses_py = python_steps(*py, task, np.random.default_rng(6), steps)
    jit = make_model(dtype, (cls, kwargs), net)
    losses_jit = nt.train(*jit, task, steps, np.random.default_rng(6), chunk=7)
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    assert np.all(np.isfinite(losses_py)) and losses_py[-1] != losses_py[0]
    np.testing.assert_allclose(losses_jit, losses_py, rtol=rtol)
    assert_same_run(jit, py, rtol)
    moved = {bool(np.any(a != 0)) for a in jit[1].state[jit[1].slots[0]].values()}
    assert moved == {case != "SGD"}  # plain SGD leaves its momentum buffer 0, as nalu_np.optim.SGD
    unclipped = {k: v for k, v in kwargs.items() if not k.startswith("clip")}
    if unclipped != kwargs:
        free = make_model(dtype, (cls, unclipped), net)
        assert not np.allclose(nt.train(*free, task, steps, np.random.default_rng(6)), losses_jit, rtol=1e-3)


@pytest.mark.parametrize("case", ["SGD-momentum-clip_norm", "RMSProp-clip_value-clip_norm"])
def test_compiled_and_python_steps_continue_each_other(case: str) -> None:
    """Compiled, Python, compiled steps are one compiled run: the optimizer's state (SGD's momentum buffer, with
    ``b = g`` at the first step only; RMSProp's mean square) and step count go back and forth."""
    task = nt.SimpleFunction(op="add", offset=0)
    optimizer, net, _ = CASES[case]
    a, b = make_model(np.float64, optimizer, net), make_model(np.float64, optimizer, net)
    la = nt.train(*a, task, 30, np.random.default_rng(1), chunk=30)
    rng = np.random.default_rng(1)
    lb = np.concatenate([python_steps(*b, task, rng, 5), nt.train(*b, task, 10, rng, chunk=3),
                         python_steps(*b, task, rng, 5), nt.train(*b, task, 10, rng, chunk=10)])
    np.testing.assert_allclose(lb, la, rtol=1e-12)
    assert_same_run(a, b, 1e-12)


def test_seeds_with_sgd_are_the_same_alone_as_together() -> None:
    """train_seeds with in-kernel draws: each seed's SGD run (momentum, clipping) is its run alone."""
    optimizer = CASES["SGD-momentum-clip_norm"][0]
    tasks = [nt.SimpleFunction(op="mul", offset=o) for o in (0, 30, 60)]
    runs = [make_model(np.float32, optimizer, seed=10 * q) for q in range(3)]
    together = nt.train_seeds([m for m, _ in runs], [o for _, o in runs], tasks, steps=25,
                              states=np.stack([nt.rng_state(q) for q in range(3)]), batch_size=16)
    assert np.all(np.isfinite(together.losses)) and together.done.tolist() == [25] * 3
    for q in (0, 2):
        m, o = make_model(np.float32, optimizer, seed=10 * q)
        alone = nt.train_seeds([m], [o], [tasks[q]], steps=25, states=nt.rng_state(q)[None], batch_size=16)
        np.testing.assert_array_equal(alone.losses[0], together.losses[q])
        assert_same_run((m, o), runs[q], 0.0)


def test_the_engine_refuses_what_it_cannot_step_with() -> None:
    model, opt = make_model(np.float64, (Adam, {"lr": 1e-3}))
    task = nt.SimpleFunction()

    class Nesterov(SGD):  # another update rule: the compiled step would not be its run
        pass

    for other in (Nesterov(model.params, lr=0.1), object()):
        with pytest.raises(TypeError, match=r"Adam, SGD, RMSProp \(not a subclass\), got .*(Nesterov|object)"):
            nt.train_steps(model, other, task, np.zeros((1, 2, 100)))
    with pytest.raises(ValueError, match="built on model.params"):
        nt.train_steps(model, SGD({k: v.copy() for k, v in model.params.items()}), task, np.zeros((1, 2, 100)))
    (m0, o0), (m1, o1) = make_model(np.float32, (SGD, {"momentum": 0.5})), make_model(np.float32, (SGD, {}))
    states = np.stack([nt.rng_state(0), nt.rng_state(1)])
    tasks = [nt.SimpleFunction(), nt.SimpleFunction()]
    with pytest.raises(ValueError, match="hyper-parameters"):  # momentum
        nt.train_seeds([m0, m1], [o0, o1], tasks, steps=5, states=states)
    with pytest.raises(ValueError, match="of one type"):
        nt.train_seeds([m0, m1], [o0, RMSProp(m1.params)], tasks, steps=5, states=states)
    o1.momentum, o1.clip_norm = 0.5, 1.0
    with pytest.raises(ValueError, match=r"hyper-parameters \(clipping included\)"):
        nt.train_seeds([m0, m1], [o0, o1], tasks, steps=5, states=states)


def test_the_optimizer_codes_are_the_kernels() -> None:
    from nalu_np.kernels.numba import train as kernel

    assert nt.OPTIMIZER_KINDS == {"Adam": kernel.ADAM, "SGD": kernel.SGD, "RMSProp": kernel.RMSPROP}
    assert set(nt.OPTIMIZER_KINDS) == {cls.__name__ for cls in nn.optim.OPTIMIZERS.values()}
    params = make_model(np.float32, (Adam, {}))[0].params
    for cls in (Adam, SGD, RMSProp):
        code, hyper = nt._hyper(cls(params, clip_norm=3.0))
        assert code == nt.OPTIMIZER_KINDS[cls.__name__] and hyper.shape == (kernel.HYPER,)
        assert hyper[0] == cls(params).lr and hyper[-2:].tolist() == [np.inf, 3.0]


@pytest.mark.parametrize("optimizer, clip", [("sgd", {"clip_value": 0.05}), ("rmsprop", {"clip_norm": 0.5})])
def test_nn_train_runs_the_optimizers_and_clipping_compiled_as_the_python_engine(optimizer: str,
                                                                                 clip: dict[str, Any]) -> None:
    """``nn.train`` picks the compiled engine for SGD and RMSProp with clipping (``"auto"``), and with the
    Python engine's draws (``draws="numpy"``) trains the Python engine's run to rounding."""
    from nalu_np.arithmetic import SingleModuleTask

    task = SingleModuleTask("mul", unit="NMU", steps=60, eval_every=30)
    runs = {engine: nn.train(task.build_model(0), task, seed=3, optimizer=optimizer, lr=1e-2, engine=engine,
                             draws="numpy", progress=False, **clip)
            for engine in ("auto", "python")}
    assert runs["auto"].engine == "compiled" and runs["python"].engine == "python"
    assert runs["auto"].optimizer == runs["python"].optimizer
    np.testing.assert_allclose(runs["auto"].loss, runs["python"].loss, rtol=1e-4)
    for k, v in runs["python"].model.params.items():
        np.testing.assert_allclose(runs["auto"].model.params[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    with pytest.raises(ValueError, match="projections"):
        nn.train(task.build_model(0), task, steps=2, engine="compiled", progress=False,
                 projections={"W": nn.reference.clip_projection(0.0, 1.0)})


def test_train_many_clips_as_the_task_says() -> None:
    """``nn.train_many`` on a task with ``clip_value`` trains what ``nn.train`` does for each seed (the clipping
    included: a run without it differs)."""
    from nalu_np.arithmetic import SingleModuleTask

    task = SingleModuleTask("mul", unit="NMU", steps=40, eval_every=None)
    task.clip_value = 1e-3
    many = nn.train_many([task.build_model(0), task.build_model(1)], [task, task], [3, 4])
    alone = nn.train(task.build_model(1), task, seed=4, engine="compiled", progress=False)
    np.testing.assert_array_equal(many[1].loss, alone.loss)
    assert many[1].optimizer["hyper"]["clip_value"] == 1e-3
    task.clip_value = None
    free = nn.train(task.build_model(1), task, seed=4, engine="compiled", progress=False)
    assert not np.array_equal(free.loss, alone.loss)




def test_a_run_from_a_stepped_optimizer_keys_its_schedules_on_its_own_steps() -> None:
    """With an optimizer that has taken steps before (a checkpoint's), both engines ramp the regularizer and
    label the evaluations by the run's own steps from 0, so they train the same run (Adam's bias correction
    goes on from the optimizer's count in both)."""
    from nalu_np.arithmetic import SingleModuleTask

    task = SingleModuleTask("mul", unit="NMU", steps=60, eval_every=30)
    task.reg_start, task.reg_end = 10, 40
    runs = {}
    for engine in ("compiled", "python"):
        model = task.build_model(0)
        opt = Adam(model.params, lr=1e-2, projections=model.projections(), overflow="propagate")
        opt.t = 5000
        runs[engine] = nn.train(model, task, seed=3, optimizer=opt, engine=engine, draws="numpy", progress=False)
        assert opt.t == 5060
    for run in runs.values():
        assert [e.step for e in run.evaluations] == [0, 30, 60]
    np.testing.assert_allclose(runs["compiled"].loss, runs["python"].loss, rtol=1e-4)
    for k, v in runs["python"].model.params.items():
        np.testing.assert_allclose(runs["compiled"].model.params[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("overflow", nn.optim.ADAM_OVERFLOW)
def test_the_gated_model_overflows_adam_as_the_authors_pytorch(overflow: str) -> None:
    """Madsen & Johansen's task trains with Adam's ``overflow="propagate"`` (:attr:`optimizer_options`, PyTorch's
    float32 arithmetic), and both engines step alike under either setting.  The gated NAU/NMU's first gradients
    overflow the second moment: in seed 3 the moments of some 400 weights overflow by step 130 under
    ``"propagate"`` and those weights stop (as in the authors' PyTorch, bench/RESULTS.md); under ``"clip"`` none
    does.  Seed 1's first gradients are infinite: every weight is NaN after one step and the run diverges."""
    from nalu_np.arithmetic import SimpleFunctionTask
    from nalu_np.taskbase import seed_rngs

    task = SimpleFunctionTask("add", unit="GatedNAUNMU", first_unit="GatedNAUNMU", steps=130, eval_every=None)
    assert task.optimizer_options == {"overflow": "propagate"}
    runs, states = {}, {}
    for engine in ("compiled", "python"):
        model = task.build_model(seed_rngs(3)[0])  # the initial weights of run 3, as nalu-np draws them
        opt = Adam(model.params, projections=model.projections(), overflow=overflow)
        runs[engine] = nn.train(model, task, seed=3, engine=engine, draws="numpy", progress=False, optimizer=opt)
        states[engine] = np.concatenate([v.ravel() for v in opt.state["exp_avg_sq"].values()])
        assert runs[engine].optimizer["hyper"]["overflow"] == overflow and not runs[engine].diverged
    np.testing.assert_allclose(runs["compiled"].loss, runs["python"].loss, rtol=1e-4)
    for k, v in runs["python"].model.params.items():
        np.testing.assert_allclose(runs["compiled"].model.params[k], v, rtol=1e-4, atol=1e-6, err_msg=k)
    np.testing.assert_array_equal(np.isinf(states["compiled"]), np.isinf(states["python"]))
    assert (np.isinf(states["python"]).sum() > 300) == (overflow == "propagate")
    assert np.isfinite(states["python"]).all() == (overflow == "clip")
    default = {e: nn.train(task.build_model(seed_rngs(1)[0]), task, seed=1, engine=e, draws="numpy", progress=False)
               for e in ("compiled", "python")}
    for run in default.values():
        assert run.optimizer["hyper"]["overflow"] == "propagate" and run.diverged and np.isinf(run.loss[1])
        assert all(np.isnan(v).all() for v in run.model.params.values())
