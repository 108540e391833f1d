"""The iNALU in the compiled training engine (the ``INALU`` kind of :mod:`nalu_np.kernels.numba.kinds`) and the
iNALU's training recipe there (:func:`nalu_np.training._train_recipe`): the compiled step against a step-by-step
loop with the NumPy reference, the recipe's stall search against :meth:`nalu_np.primer.InaluRecipe.stalled` step by
step, and the Primer's iNALU runs (clipping, saturation regularizer, reinitialisation) against the Python engine."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

import nalu_np as nn  # noqa: E402
from nalu_np import compiled as nt  # noqa: E402
from nalu_np import primer  # noqa: E402
from nalu_np.arithmetic import SingleModuleTask, sparsity_error  # noqa: E402
from nalu_np.optim import Adam  # noqa: E402
from nalu_np.tasks import seed_rngs  # noqa: E402
from support.engine import assert_same_predictions, assert_same_run, python_steps  # noqa: E402

DTYPES = (np.float32, np.float64)
DTYPE_IDS = ["float32", "float64"]


def rtol_of(dtype: Any) -> float:
    return 1e-9 if dtype == np.float64 else 2e-4


# ---------------------------------------------------------------------------------------------------------
# the INALU kind of the compiled step
# ---------------------------------------------------------------------------------------------------------

NETS = {"INALU": [nn.INALU], "NAU-INALU": [nn.NAU, nn.INALU], "INALU-NAU": [nn.INALU, nn.NAU],
        "INALU-INALU": [nn.INALU, nn.INALU]}


def make(net: str, dtype: Any, in_features: int, seed: int = 1, clip_value: float | None = None) -> tuple[Any, Adam]:
    """``net`` mapping ``in_features`` -> 1 (hidden size 3), layer ``l`` drawn with ``rng=seed + l``, and Adam."""
    kinds = NETS[net]
    sizes = [in_features] + [3] * (len(kinds) - 1) + [1]
    layers = [k(i, o, rng=seed + n, dtype=dtype) for n, (k, i, o) in enumerate(zip(kinds, sizes, sizes[1:]))]
    model = layers[0] if len(layers) == 1 else nn.Sequential(layers)
    return model, Adam(model.params, lr=1e-2, projections=model.projections(), clip_value=clip_value)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("net,task,clip", [
    ("INALU", nt.SimpleFunction.single_module("mul", -2.0, 2.0), 0.1),  # negative inputs: the sign term
    ("INALU", nt.SimpleFunction.single_module("div", 0.1, 0.2), None),
    ("NAU-INALU", nt.SimpleFunction(op="mul", offset=4), None),  # the INALU's input gradient
    ("INALU-NAU", nt.SimpleFunction(op="add", offset=30), 0.1),
    ("INALU-INALU", nt.SimpleFunction.single_module("sub", -1.0, 3.0), None)])
def test_the_inalu_kind_matches_the_python_loop(net: str, task: Any, clip: float | None, dtype: Any) -> None:
    """The INALU in either place of a network, on positive and mixed-sign inputs, with and without the recipe's
    clipping: the Python loop's run on the same batches, the in-kernel sparsity error over both paths' weights
    and the compiled forward pass."""
    steps = 30
    py = make(net, dtype, task.in_features, clip_value=clip)
    losses_py = python_steps(*py, task, np.random.default_rng(7), steps)
    jit = make(net, dtype, task.in_features, clip_value=clip)
    losses_jit = nt.train(*jit, task, steps, np.random.default_rng(7), chunk=11)
    rtol = rtol_of(dtype)
    np.testing.assert_allclose(losses_jit, losses_py, rtol=rtol)
    assert_same_run(jit, py, rtol)
    assert losses_py[-1] != losses_py[0]
    x = np.random.default_rng(0).uniform(-3, 3, (130, task.in_features)).astype(dtype)
    run = nt.train_seeds([jit[0]], [jit[1]], [task], steps=1, states=nt.rng_state(1)[None], eval_sets=[
        (x, task.targets(x.astype(np.float64)).T)], eval_every=1)
    assert run.evaluations[0, 0, -1] == pytest.approx(sparsity_error(jit[0]), rel=1e-6)
    assert_same_predictions(jit[0], x, rtol)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_the_saturation_term_is_the_primers(dtype: Any) -> None:
    """``saturation=(weight, omega, start)``: the loss and the update of ``weight * R``
    (:func:`nalu_np.primer.saturation_regularizer`) from step ``start`` on, one parameter saturated (no gradient
    there) and the others not."""
    task = nt.SimpleFunction.single_module("add", 1.0, 2.0)
    py = make("INALU", dtype, 2)
    py[0].params["W_hat_add"][0, 0] = 25.0  # |p| >= omega: outside the regularizer
    rng = np.random.default_rng(3)
    losses_py = list(python_steps(*py, task, rng, 4))
    for _ in range(4):  # python_steps, with the saturation term
        x = task.inputs(rng.random((128, 2), dtype=dtype))
        y, cache = py[0].forward(x, backend="numpy")
        loss, dy = nn.losses.mse(y, task.targets(x))
        _, grads = py[0].backward(dy, cache)
        value, dR = primer.saturation_regularizer(py[0].params, 20.0)
        losses_py.append(float(loss) + 0.5 * value)
        py[1].step({k: g + dR[k] * dtype(0.5) for k, g in grads.items()})
    jit = make("INALU", dtype, 2)
    jit[0].params["W_hat_add"][0, 0] = 25.0
    u = nt.draw_uniforms(np.random.default_rng(3), 8, 128, 2, dtype)[None]
    run = nt.train_seeds([jit[0]], [jit[1]], [task], u, saturation=(0.5, 20.0, 4))
    rtol = rtol_of(dtype)
    np.testing.assert_allclose(run.losses[0], losses_py, rtol=rtol)
    assert_same_run(jit, py, rtol)
    assert jit[0].params["W_hat_add"][0, 0] == 25.0


# ---------------------------------------------------------------------------------------------------------
# the recipe's stall search
# ---------------------------------------------------------------------------------------------------------

def stalls_step_by_step(recipe: primer.InaluRecipe, start: int, count: int, store: list[float],
                        value: float) -> int | None:
    losses = list(store)
    for t in range(start, start + count):
        losses.append(value)
        if recipe.stalled(t, losses):
            return t
    return None


@pytest.mark.parametrize("case", range(60))
def test_first_stall_is_the_step_by_step_check(case: int) -> None:
    """:meth:`InaluRecipe.first_stall` on random stores of constant pieces (rising, falling, flat -- ties
    included --, with a NaN) is the first step at which :meth:`InaluRecipe.stalled` holds, step by step."""
    rng = np.random.default_rng(case)
    recipe = primer.InaluRecipe(check_every=int(rng.choice([1, 3, 10])), min_losses=int(rng.integers(0, 40)),
                                loss_threshold=float(rng.choice([-1.0, 0.5, 1.0])))
    pieces = int(rng.integers(0, 6))
    kind = case % 4
    base = rng.uniform(0.2, 3.0, pieces + 1)
    values = {0: base, 1: np.sort(base), 2: np.sort(base)[::-1], 3: np.full(pieces + 1, 1.7)}[kind]
    if case % 15 == 7 and pieces:
        values[0] = np.nan
    counts = [int(c) for c in rng.integers(1, 25, pieces)]
    start = sum(counts) + int(rng.integers(0, 30))
    count = int(rng.integers(1, 80))
    store = [float(v) for v, c in zip(values[:-1], counts) for _ in range(c)]
    expect = stalls_step_by_step(recipe, start, count, store, float(values[-1]))
    assert recipe.first_stall(start, count, values[:-1], counts, float(values[-1])) == expect


# ---------------------------------------------------------------------------------------------------------
# the recipe: the compiled engine against the Python engine
# ---------------------------------------------------------------------------------------------------------

STEPS = 300


def recipe_task(dtype: Any, **changes: Any) -> SingleModuleTask:
    """The Primer's iNALU on ``x1 * x2`` (its range 4), shortened: evaluations every 10 steps, the saturation
    regularizer (weight 10: it drives the run off, so that it stalls) from step 31 while the MSE is below 10, and
    the stall check every 10 steps once 40 MSEs are stored (threshold 0)."""
    task = SingleModuleTask("mul", unit="INALU", range=4, steps=STEPS, eval_every=10, dtype=np.dtype(dtype).name)
    settings = dict(after=30, below=10.0, weight=10.0, min_losses=40, check_every=10, loss_threshold=0.0)
    task.recipe = dataclasses.replace(task.recipe, **{**settings, **changes})
    return task


def recipe_run(engine: str, dtype: Any, seed: int = 3, **changes: Any) -> tuple[Any, Any]:
    task = recipe_task(dtype, **changes)
    model = task.build_model(seed_rngs(seed)[0])
    return nn.train(model, task, seed=seed, engine=engine, draws="numpy", progress=False), task


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_the_recipe_runs_compiled_as_the_python_engine(dtype: Any) -> None:
    """nn.train of the Primer's iNALU with its recipe: the compiled engine on NumPy's draws is the Python engine's
    run to rounding -- losses, every evaluation, parameters, the reinitialisations and the stored MSEs, the
    verdict -- and both switched the saturation regularizer on and re-initialised the run."""
    (py, py_task), (jit, jit_task) = recipe_run("python", dtype), recipe_run("compiled", dtype)
    assert (py.engine, jit.engine) == ("python", "compiled")
    assert py.optimizer == jit.optimizer and jit.optimizer["hyper"]["clip_value"] == 0.1
    rtol = rtol_of(dtype)
    np.testing.assert_allclose(jit.loss, py.loss, rtol=rtol)
    for k in py.model.params:
        np.testing.assert_allclose(jit.model.params[k], py.model.params[k], rtol=rtol, atol=rtol, err_msg=k)
    assert [e.step for e in jit.evaluations] == [e.step for e in py.evaluations] == list(range(0, STEPS + 1, 10))
    for a, b in zip(py.evaluations, jit.evaluations):
        for k, v in a.metrics.items():
            assert b.metrics[k] == pytest.approx(v, rel=1e-7 if dtype == np.float64 else 1e-3, abs=1e-12), k
    assert jit_task.recipe_run.reinits == py_task.recipe_run.reinits >= 1
    np.testing.assert_allclose(jit_task.recipe_run.losses, py_task.recipe_run.losses, rtol=1e-7 if dtype == np.float64
                               else 1e-3)
    assert (jit.success, jit.diverged) == (py.success, py.diverged)
    # the saturation term: the same run without it is the same up to step 31 and differs from there on
    off, _ = recipe_run("compiled", dtype, after=STEPS)
    np.testing.assert_array_equal(off.loss[:31], jit.loss[:31])
    assert np.all(off.loss[31:40] != jit.loss[31:40])


def test_recipe_seeds_alone_and_together_and_the_sweep() -> None:
    """train_many trains a recipe's seeds one per call, on threads: each seed's result is bit for bit the one
    it gets alone; the sweep picks the compiled engine for the Primer's iNALU."""
    from nalu_np import sweep

    seeds = [0, 1, 2]
    alone = []
    for s in seeds:
        task = recipe_task(np.float32)
        alone.append((nn.train(task.build_model(seed_rngs(s)[0]), task, seed=s, progress=False), task))
    tasks = [recipe_task(np.float32) for _ in seeds]
    many = nn.train_many([t.build_model(seed_rngs(s)[0]) for t, s in zip(tasks, seeds)], tasks, seeds)
    for (a, task_a), b, task_b in zip(alone, many, tasks):
        assert (a.engine, b.engine) == ("compiled", "compiled")
        np.testing.assert_array_equal(a.loss, b.loss)
        assert [(e.step, e.metrics) for e in a.evaluations] == [(e.step, e.metrics) for e in b.evaluations]
        for k in a.model.params:
            np.testing.assert_array_equal(a.model.params[k], b.model.params[k])
        assert task_a.recipe_run.reinits == task_b.recipe_run.reinits
    assert sum(t.recipe_run.reinits for t in tasks) >= 1
    config = sweep.Config("single-add", "INALU", {"steps": 40, "eval_every": 20})
    assert [r["engine"] for r in sweep.run_seeds(config, [0, 1])] == ["compiled", "compiled"]
