"""The NALU with separate weights (``shared_weights=False``: ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``,
``M_hat_mul``, ``G``) in the compiled training engine, the ``SEPARATENALU`` kind of
:mod:`nalu_np.kernels.numba.kinds`: the compiled step against a step-by-step loop with the NumPy reference on the
same uniforms, alone and in networks, on the simple function task and the single-module task, and its seeds alone
against together."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

import nalu_np as nn  # noqa: E402
from nalu_np import compiled as nt  # noqa: E402
from nalu_np.arithmetic import SimpleFunctionTask, SingleModuleTask, sparsity_error  # noqa: E402
from nalu_np.optim import Adam  # noqa: E402
from nalu_np.tasks import seed_rngs  # noqa: E402
from support.engine import (  # noqa: E402
    assert_same_losses, assert_same_predictions, assert_same_run, assert_same_train, python_steps, reversed_steps,
    rtol_of)

DTYPES = (np.float32, np.float64)
DTYPE_IDS = ["float32", "float64"]



def separate_nalu(i: int, o: int, rng: int, dtype: Any, preset: str | None) -> nn.NALU:
    """A NALU with separate weights: the default initialisation, or the seed-000 preset (U(-2, 2), eps 1e-6)."""
    if preset is None:
        return nn.NALU(i, o, rng=rng, dtype=dtype, shared_weights=False)
    layer = nn.NALU.preset(preset, i, o, rng=rng, dtype=dtype)
    assert not layer.shared_weights
    return layer


#: the networks: one layer (``"NALUs"`` a bare unit, ``"[NALUs]"`` a Sequential of one), NALU(separate) ->
#: NALU(separate), NAU -> NALU(separate), and the shared NALU next to the separate one
NETS = {"NALUs": ["NALUs"], "[NALUs]": ["NALUs"], "NALUs-NALUs": ["NALUs", "NALUs"], "NAU-NALUs": ["NAU", "NALUs"],
        "NALU-NALUs": ["NALU", "NALUs"]}


def make(net: str, dtype: Any, in_features: int = 100, seed: int = 0, preset: str | None = None,
         hidden: int = 2) -> tuple[Any, Adam]:
    """``net`` of :data:`NETS` mapping ``in_features`` -> 1 (hidden size ``hidden``), layer ``l`` drawn with
    ``rng=seed + l``, and Adam (lr 1e-3) with the model's projections."""
    kinds = NETS[net]
    sizes = [in_features] + [hidden] * (len(kinds) - 1) + [1]
    layers = []
    for n, (kind, i, o) in enumerate(zip(kinds, sizes, sizes[1:])):
        if kind == "NALUs":
            layers.append(separate_nalu(i, o, seed + n, dtype, preset))
        else:
            layers.append(nn.layers.unit_class(kind)(i, o, rng=seed + n, dtype=dtype))
    model = layers[0] if net == "NALUs" else nn.Sequential(layers)
    return model, Adam(model.params, lr=1e-3, projections=model.projections())


def test_the_separate_nalu_is_a_kind_of_its_own() -> None:
    """Its own code (unique among the codes: tests/training/test_compiled.py), the packing of its five arrays in
    the order of ``params``, next to a shared-weights NALU too, and supports() accepts it."""
    from nalu_np.kernels.numba import kinds

    model, _ = make("NAU-NALUs", np.float32)
    assert nt.supports(model) is None
    pk = nt._packing(model)
    assert pk.kinds.tolist() == [nt.LAYER_KINDS["nau"], kinds.SEPARATENALU]
    assert pk.keys == ["0.W", "1.W_hat_add", "1.M_hat_add", "1.W_hat_mul", "1.M_hat_mul", "1.G"]
    assert pk.offs.tolist() == [0, 200, 200 + 5 * 2]
    shared, _ = make("NALU-NALUs", np.float32)
    assert nt._packing(shared).kinds.tolist() == [nt.LAYER_KINDS["nalu"], kinds.SEPARATENALU]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("net,op,preset,steps", [
    ("NALUs", "mul", None, (12, 12)), ("[NALUs]", "add", "seed-000", (12, 12)),
    ("NALUs-NALUs", "mul", None, (6, 6)), ("NALUs-NALUs", "mul", "seed-000", (2, 8)),
    ("NAU-NALUs", "mul", None, (5, 5)), ("NAU-NALUs", "div", "seed-000", (30, 30)),
    ("NALU-NALUs", "sub", None, (6, 6))])
def test_the_separate_nalu_matches_the_python_loop(net: str, op: str, preset: str | None,
                                                   steps: tuple[int, int], dtype: Any) -> None:
    """The compiled step against the step-by-step loop on the same uniforms (simple function task), ``steps``
    (float32, float64): losses, parameters and Adam's moments of both paths and the gate, the in-kernel sparsity
    error over both paths' weights, and the compiled forward pass.

    As for the shared NALU -> NALU (tests/training/test_compiled.py), two NALU layers run only a few steps:
    Adam divides each gradient component by its own running scale, so a component that is tiny (1e-7 of the
    largest), whose rounding decides it, moves by a sizeable step either way, and from then on the two runs
    drift apart by more than rounding (default init: at step 7 in both dtypes, from 4e-7 to 3e-4 of the largest
    moment in float32, 1e-15 to 2e-11 in float64; seed-000 in float32: at step 3, to 2e-3).  NAU -> NALU from
    the default init does the same, with shared weights as with separate ones (float32 on ``div``: from 5e-6 of
    the largest moment at step 3 to 1e-3 at step 4 with separate weights, 2e-6 to 1e-4 with shared ones; float64
    on ``mul``: the parameters' difference grows about tenfold per step from step 6 on), so it runs 5; with
    the seed-000 preset it runs 30.  Those figures are of an AVX2 machine (Zen 3).  With AVX-512 the NAU's sums
    run in another order, and NAU -> NALU on ``div`` (seed-000) differs after one step by 2.4e-4 of the largest
    moment of the NAU's weights in float32 and 5.6e-12 in float64, where its hidden units near 0 amplify
    rounding under ``log(|h| + eps)``; the reference summing the inputs in reverse order differs from itself by
    as much (within a factor 1.3 over the 30 steps), so the tolerances add ``SPREAD`` times that spread
    (:func:`support.engine.reversed_steps`)."""
    steps = steps[dtype == np.float64]
    task = nt.SimpleFunction(op=op, offset=19)
    py = make(net, dtype, seed=3, preset=preset)
    losses_py = python_steps(*py, task, np.random.default_rng(8), steps)
    rev = make(net, dtype, seed=3, preset=preset)
    losses_rev = reversed_steps(*rev, task, np.random.default_rng(8), steps)
    jit = make(net, dtype, seed=3, preset=preset)
    losses_jit = nt.train(*jit, task, steps, np.random.default_rng(8), chunk=5)
    rtol = rtol_of(dtype)
    assert_same_losses(losses_jit, losses_py, rtol, losses_rev)
    assert_same_run(jit, py, rtol, rev)
    assert losses_py[-1] != losses_py[0]
    for k in jit[0].params:  # every one of the separate arrays trained
        if "hat" in k or k.endswith("G"):
            assert not np.array_equal(jit[0].params[k], make(net, dtype, seed=3, preset=preset)[0].params[k]), k
    x = np.random.default_rng(0).uniform(1, 2, (130, 100)).astype(dtype)
    run = nt.train_seeds([jit[0]], [jit[1]], [task], steps=1, states=nt.rng_state(1)[None], eval_sets=[
        (x, task.targets(x.astype(np.float64)).T)], eval_every=1)
    assert run.evaluations[0, 0, -1] == pytest.approx(sparsity_error(jit[0]), rel=1e-6)
    assert_same_predictions(jit[0], x, rtol)


def test_the_sparsity_error_sees_the_multiplicative_path() -> None:
    """The in-kernel sparsity error takes both paths' weights: with the additive path exact (``W_a = 1``) the
    error is the multiplicative path's."""
    model, _ = make("NALUs", np.float64)
    model.params["W_hat_add"][:] = 30.0
    model.params["M_hat_add"][:] = 40.0
    model.params["W_hat_mul"][:] = 0.3
    x = np.ones((4, 100))
    task = nt.SimpleFunction(op="add", offset=0)
    opt = Adam(model.params, lr=1e-3)
    run = nt.train_seeds([model], [opt], [task], steps=0, states=nt.rng_state(0)[None],
                         eval_sets=[(x, task.targets(x).T)], eval_every=1, first_eval=True)
    expect = sparsity_error(model)
    assert expect > 0.05
    assert run.evaluations[0, 0, -1] == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("op,range_index", [("mul", 6), ("add", 0), ("div", 1)])
def test_the_single_module_task_matches_the_python_engine(op: str, range_index: int, dtype: Any) -> None:
    """nn.train on the single-module task with the seed-000 NALU (separate weights): engine="auto" picks the
    compiled engine, and on NumPy's draws its run is the Python engine's to rounding -- losses, parameters,
    every evaluation."""
    steps = 12
    task = SingleModuleTask(op, unit="NALU", range=range_index, steps=steps, eval_every=steps // 3,
                            reg_start=steps // 6, reg_end=2 * steps // 3, dtype=np.dtype(dtype).name)
    model = task.build_model(seed_rngs(1)[0], preset="seed-000")
    assert isinstance(model, nn.NALU) and not model.shared_weights
    assert nn.training.compiled_unsupported(model, task) is None
    runs = {}
    for engine in ("python", "auto"):
        runs[engine] = nn.train(task.build_model(seed_rngs(1)[0], preset="seed-000"), task, seed=1, engine=engine,
                                draws="numpy", progress=False)
    py, jit = runs["python"], runs["auto"]
    assert_same_train(jit, py, dtype, [0, 4, 8, 12])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_the_simple_function_task_matches_the_python_engine(dtype: Any) -> None:
    """nn.train on the simple function task with NALU(separate) -> NALU(separate) (the seed-000 preset on both
    layers): engine="auto" picks the compiled engine, and its run is the Python engine's to rounding."""
    steps = 5
    task = SimpleFunctionTask("mul", unit="NALU", steps=steps, eval_every=steps, dtype=np.dtype(dtype).name)

    def model() -> Any:
        m = task.build_model(seed_rngs(2)[0], preset="seed-000")
        assert all(not layer.shared_weights for layer in m.layers)
        return m

    assert nn.training.compiled_unsupported(model(), task) is None
    py = nn.train(model(), task, seed=2, engine="python", draws="numpy", progress=False)
    jit = nn.train(model(), task, seed=2, engine="auto", draws="numpy", progress=False)
    assert (py.engine, jit.engine) == ("python", "compiled")
    rtol = rtol_of(dtype)
    np.testing.assert_allclose(jit.loss, py.loss, rtol=rtol)
    for k in py.model.params:
        np.testing.assert_allclose(jit.model.params[k], py.model.params[k], rtol=rtol, atol=rtol, err_msg=k)
    assert [e.step for e in jit.evaluations] == [e.step for e in py.evaluations]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("net", ["NALUs-NALUs", "NAU-NALUs"])
def test_a_seed_is_the_same_alone_as_among_others(net: str, dtype: Any) -> None:
    """Seeds trained together in one call (over the threads) and each alone, the alone one in split calls: bit
    for bit the same losses, evaluations, generator states, parameters and moments (NALU -> NALU with the
    seed-000 preset, NAU -> NALU with the default initialisation)."""
    seeds = [0, 1, 2, 3]
    preset = "seed-000" if net == "NALUs-NALUs" else None

    def setup(qs: list[int]) -> tuple[list[Any], list[Adam], list[nt.SimpleFunction], np.ndarray]:
        pairs = [make(net, dtype, seed=10 * q, preset=preset) for q in qs]
        tasks = [nt.SimpleFunction(op="mul", offset=7 * q % 60) for q in qs]
        return [m for m, _ in pairs], [o for _, o in pairs], tasks, np.stack([nt.rng_state(50 + q) for q in qs])

    models, opts, tasks, states = setup(seeds)
    rng = np.random.default_rng(0)
    xs = [rng.uniform(lo, hi, (150, 100)).astype(dtype) for lo, hi in ((1.0, 2.0), (2.0, 6.0))]
    sets = [(x, np.stack([t.targets(x.astype(np.float64)).ravel() for t in tasks])) for x in xs]
    together = nt.train_seeds(models, opts, tasks, steps=30, states=states, batch_size=16, eval_sets=sets,
                              eval_every=10, first_eval=True)
    assert together.done.tolist() == [30] * 4 and together.nevals.tolist() == [4] * 4
    for q in (0, 3):
        m, o, t, st = setup([seeds[q]])
        one = [(x, tt[q:q + 1]) for x, tt in sets]
        parts = [nt.train_seeds(m, o, t, steps=k, states=st, batch_size=16, eval_sets=one, eval_every=10,
                                first_eval=first) for k, first in ((10, True), (0, False), (20, False))]
        np.testing.assert_array_equal(np.concatenate([p.losses[0] for p in parts]), together.losses[q])
        np.testing.assert_array_equal(np.concatenate([p.evaluations[0] for p in parts]), together.evaluations[q])
        np.testing.assert_array_equal(st[0], states[q])
        for k in models[q].params:
            np.testing.assert_array_equal(m[0].params[k], models[q].params[k])
            for slot in o[0].slots:
                np.testing.assert_array_equal(o[0].state[slot][k], opts[q].state[slot][k])
        assert o[0].t == opts[q].t == 30
