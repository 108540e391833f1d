"""The NPU and the RealNPU in the compiled training engine (:mod:`nalu_np.kernels.numba.train`), with and
without ``clamp_gate``, and the L1 term of the Primer's NPU recipe: the NPU block functions against the NumPy
reference, the compiled run against a step-by-step loop on the same uniforms, and the Primer's single-module
cells against the Python engine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

import nalu_np as nn  # noqa: E402
from nalu_np import compiled as nt  # noqa: E402
from nalu_np.optim import Adam  # noqa: E402
from support.engine import (  # noqa: E402
    assert_same_predictions, assert_same_run, assert_same_train, python_steps, rtol_of)

DTYPES = (np.float32, np.float64)
DTYPE_IDS = ["float32", "float64"]



# ---------------------------------------------------------------------------------------------------------
# the block functions against the reference
# ---------------------------------------------------------------------------------------------------------

def gate_outside_the_box(I: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """A gate with entries below 0 and above 1 (the first two), exactly at 0 and 1, and inside."""
    g = rng.uniform(-0.5, 1.5, I).astype(dtype)
    g[:4] = [-0.25, 1.25, 0.0, 1.0][:I]
    return g


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("clamp", [False, True])
@pytest.mark.parametrize("unit", [nn.NPU, nn.RealNPU])
def test_the_block_functions_are_the_reference(unit: Any, clamp: bool, need_dx: bool, dtype: Any) -> None:
    """``npu_block_forward`` and ``npu_block_backward`` on a transposed block (features, n) of random signed
    inputs: the layer's forward pass and gradients (with ``clamp``, of the gate ``clip(g, 0, 1)``; the chain rule
    of the clip, the mask, applied to ``dg``), accumulated onto what the accumulators held; ``dx`` only when
    asked for."""
    from nalu_np.kernels.numba.npu import npu_block_backward, npu_block_forward

    rng = np.random.default_rng(5)
    B, I, O, nb = 37, 6, 3, 40  # a block of 40 columns, 37 of them used
    layer = unit(I, O, rng=1, dtype=np.dtype(dtype).name, clamp_gate=clamp, eps=1e-6)
    p = layer.params
    p["W_r"][...] = rng.uniform(-1.5, 1.5, (I, O))
    if "W_i" in p:
        p["W_i"][...] = rng.uniform(-0.5, 0.5, (I, O))
    p["g"][...] = gate_outside_the_box(I, rng, dtype) if clamp else rng.uniform(0, 1, I)
    x = rng.uniform(-2, 2, (B, I)).astype(dtype)
    x[0, 0] = 0.0
    dy = rng.normal(size=(B, O)).astype(dtype)
    y, cache = layer.forward(x, backend="numpy")
    dx, grads = layer.backward(dy, cache)

    Wi = p.get("W_i")
    xT = np.zeros((I, nb), dtype)
    xT[:, :B] = x.T
    dT = np.zeros((O, nb), dtype)
    dT[:, :B] = dy.T
    ins = [np.full((I, nb), np.nan, dtype) for _ in range(6)]
    AT, PT, yT = (np.full((O, nb), np.nan, dtype) for _ in range(3))
    eps = dtype(layer.eps)
    npu_block_forward(xT, B, p["W_r"], Wi, p["g"], eps, clamp, *ins[:4], AT, PT, yT)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(yT[:, :B].T, y, rtol=rtol, atol=rtol)
    start = rng.normal(size=(I, O))
    accWr, accWi, accg = start.astype(dtype), start.astype(dtype), start[:, 0].astype(dtype)
    dxT = np.full((I, nb), 7.0, dtype)
    dAT, dPT = np.empty((O, nb), dtype), np.empty((O, nb), dtype)
    npu_block_backward(xT, dT, B, p["W_r"], Wi, p["g"], clamp, *ins[:4], AT, PT, dAT, dPT, ins[4], ins[5], accWr,
                       accWi, accg, dxT, need_dx)
    mask = (p["g"] >= 0) & (p["g"] <= 1) if clamp else np.ones(I, bool)
    np.testing.assert_allclose(accWr - start, grads["W_r"], rtol=rtol, atol=rtol * 10)
    np.testing.assert_allclose((accg - start[:, 0]) * mask, grads["g"], rtol=rtol, atol=rtol * 10)
    if Wi is None:
        np.testing.assert_array_equal(accWi, start.astype(dtype))
    else:
        np.testing.assert_allclose(accWi - start, grads["W_i"], rtol=rtol, atol=rtol * 10)
    if need_dx:
        np.testing.assert_allclose(dxT[:, :B].T, dx, rtol=rtol, atol=rtol)
    else:
        assert np.all(dxT == 7.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_the_regularizer_block_is_the_units_l1_mean(dtype: Any) -> None:
    from nalu_np.kernels.numba.npu import npu_regularizer

    layer = nn.NPU(5, 3, rng=2, dtype=np.dtype(dtype).name)
    layer.params["W_i"][...] = np.random.default_rng(0).normal(size=(5, 3))
    layer.params["W_r"][0, 0] = 0.0
    R, dR = layer.regularizer()
    total, lam = 0.0, 0.3
    got = {}
    for k in ("W_r", "W_i"):
        got[k] = np.full(15, 0.5, dtype)
        total += npu_regularizer(layer.params[k].ravel(), lam, got[k])
        np.testing.assert_allclose(got[k] - dtype(0.5), (dtype(lam) * dR[k]).ravel(), rtol=1e-6, atol=1e-7)
    assert total == pytest.approx(lam * float(R), rel=1e-6)
    assert got["W_r"][0] == dtype(0.5)  # sign(0) = 0


# ---------------------------------------------------------------------------------------------------------
# the compiled run against the step-by-step loop on the same uniforms
# ---------------------------------------------------------------------------------------------------------

#: the networks: layers (unit, clamp_gate); NPU layers with W_i != 0 and a gate inside [0, 1] (or, clamped,
#: partly outside it)
NETWORKS = {"NPU": ((nn.NPU, False),), "NPU-clamped": ((nn.NPU, True),), "RealNPU": ((nn.RealNPU, False),),
            "RealNPU-clamped": ((nn.RealNPU, True),), "NAU-NPU-clamped": ((nn.NAU, None), (nn.NPU, True)),
            "NPU-NAU": ((nn.NPU, False), (nn.NAU, None)), "NAU-RealNPU-NAU": ((nn.NAU, None), (nn.RealNPU, False),
                                                                         (nn.NAU, None))}


def make_model(net: str, dtype: Any, seed: int, in_features: int = 100) -> tuple[Any, Adam]:
    """``in_features -> 1``, ``in_features -> 2 -> 1`` or ``in_features -> 3 -> 2 -> 1``, eps 1e-6 (a larger
    one than the machine's keeps float32 rounding out of ``log r`` at 0), lr 5e-3 as the Primer's NPUs."""
    layers_of = NETWORKS[net]
    sizes = {1: [in_features, 1], 2: [in_features, 2, 1], 3: [in_features, 3, 2, 1]}[len(layers_of)]
    rng = np.random.default_rng(seed)
    layers = []
    for (unit, clamp), i, o in zip(layers_of, sizes, sizes[1:]):
        if clamp is None:
            layers.append(unit(i, o, rng=rng, dtype=np.dtype(dtype).name))
            continue
        layer = unit(i, o, rng=rng, dtype=np.dtype(dtype).name, clamp_gate=clamp, eps=1e-6)
        if "W_i" in layer.params:
            layer.params["W_i"][...] = rng.uniform(-0.2, 0.2, (i, o))
        layer.params["g"][...] = gate_outside_the_box(i, rng, dtype) if clamp else rng.uniform(0, 1, i)
        layers.append(layer)
    model = layers[0] if len(layers) == 1 else nn.Sequential(layers)
    return model, Adam(model.params, lr=5e-3, projections=model.projections())


#: the L1 term's pieces: off for the first 3 steps, then changing inside the calls of 11 steps
L1 = ([3, 9, 25], [1e-3, 1e-2, 3e-3])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("net,op,reg", [("NPU", "mul", None), ("NPU-clamped", "div", None),
                                        ("RealNPU", "mul", (0.5, 5.0, 20.0)), ("RealNPU-clamped", "mul", None),
                                        ("NAU-NPU-clamped", "div", (0.5, 5.0, 20.0)), ("NPU-NAU", "add", None),
                                        ("NAU-RealNPU-NAU", "sub", None)])
def test_the_npus_with_the_l1_term_match_the_python_loop(net: str, op: str, reg: Any, dtype: Any) -> None:
    """NPU and RealNPU layers, with and without ``clamp_gate``, alone, first, in the middle and last (an NPU after
    an NAU sees negative inputs): the Python loop's run with the L1 term crossing changes of its strength inside
    the compiled calls, the units' own regularizer where given, the projection of ``g`` (not with ``clamp_gate``),
    the in-kernel sparsity error over ``W_r``, ``W_i`` and the predictions."""
    from nalu_np.arithmetic import sparsity_error

    task = nt.SimpleFunction(op=op, offset=19)
    steps = 30
    py = make_model(net, dtype, 3)
    losses_py = python_steps(*py, task, np.random.default_rng(8), steps, regularizer=reg, l1=L1)
    jit = make_model(net, dtype, 3)
    losses_jit = nt.train(*jit, task, steps, np.random.default_rng(8), chunk=11, regularizer=reg, l1=L1)
    rtol = rtol_of(dtype)
    np.testing.assert_allclose(losses_jit, losses_py, rtol=rtol)
    assert_same_run(jit, py, rtol)
    assert losses_py[-1] != losses_py[0]
    gates = [k for k in jit[0].params if k.endswith("g")]
    clamped = "clamped" in net
    for k in gates:
        g = jit[0].params[k]
        assert (np.any(g < 0) or np.any(g > 1)) == clamped  # projected unless clamped
    x = np.random.default_rng(0).uniform(1, 2, (130, 100)).astype(dtype)
    run = nt.train_seeds([jit[0]], [jit[1]], [task], steps=1, states=nt.rng_state(1)[None], eval_sets=[
        (x, task.targets(x.astype(np.float64)).T)], eval_every=1)
    assert run.evaluations[0, 0, -1] == pytest.approx(sparsity_error(jit[0]), rel=1e-6)
    assert_same_predictions(jit[0], x, rtol)


def test_the_l1_term_changes_the_run_and_its_pieces_are_checked() -> None:
    task = nt.SimpleFunction(op="mul", offset=0)
    a, b = make_model("NPU", np.float64, 1), make_model("NPU", np.float64, 1)
    la = nt.train(*a, task, 5, np.random.default_rng(0))
    lb = nt.train(*b, task, 5, np.random.default_rng(0), l1=([0], [1e-2]))
    total = sum(float(np.abs(p).sum()) for p in make_model("NPU", np.float64, 1)[0].params.values())
    assert lb[0] == pytest.approx(la[0] + 1e-2 * total, rel=1e-12)  # the same first step, plus the term
    assert not np.array_equal(a[0].params["W_r"], b[0].params["W_r"])
    for bad in (([0, 0], [1.0, 2.0]), ([0, 5], [1.0]), ([0], [np.nan])):
        with pytest.raises(ValueError, match="increasing starts"):
            nt.train_steps(*a, task, steps=1, state=nt.rng_state(0), l1=bad)


# ---------------------------------------------------------------------------------------------------------
# the Primer's NPU cells
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps,every", [(50_000, 10_000), (60, 12), (7, 1), (100, 3)])
@pytest.mark.parametrize("op", ["mul", "div"])
def test_the_beta_schedule_pieces_are_its_values(op: str, steps: int, every: int) -> None:
    from dataclasses import replace

    from nalu_np.primer import PRIMER2022_MODELS

    schedule = replace(PRIMER2022_MODELS["NPU"].l1[op], every=every)
    starts, betas = schedule.pieces(steps)
    assert starts[0] == 0 and len(starts) <= 3 and starts.dtype == np.int64
    probe = sorted({t for s in starts for t in (s - 1, s, s + 1) if 0 <= t < steps} | {steps - 1})
    for t in (probe if steps > 1000 else range(steps)):
        assert betas[np.searchsorted(starts, t, side="right") - 1] == schedule(t), t


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("unit,op,rng_index", [("NPU", "mul", 6), ("RealNPU", "div", 1), ("NPU", "div", 4),
                                               ("RealNPU", "mul", 0)])
def test_the_primers_npu_cells_are_the_python_engines_run(unit: str, op: str, rng_index: int, dtype: Any) -> None:
    """The Primer's NPU recipe (lr 5e-3, ``clamp_gate``, eps the float32 machine epsilon, the L1 term over every
    parameter with its Decimal beta schedule, here growing at steps 12 and 24 inside the calls of 20 steps):
    the compiled engine on NumPy's draws is the Python engine's run to rounding, on positive, negative and
    mixed-sign ranges."""
    from nalu_np.arithmetic import SingleModuleTask
    from nalu_np.tasks import seed_rngs

    steps = 60
    task = SingleModuleTask(op, unit=unit, range=rng_index, steps=steps, eval_every=20, dtype=np.dtype(dtype).name)
    assert task.l1 is not None and task.l1.every == 12 and task.lr == 5e-3
    own = task.build_model(seed_rngs(2)[0])
    assert own.clamp_gate and nn.training.compiled_unsupported(own, task) is None
    runs = {engine: nn.train(task.build_model(seed_rngs(2)[0]), task, seed=2, engine=engine, draws="numpy",
                             progress=False) for engine in ("python", "compiled")}
    py, jit = runs["python"], runs["compiled"]
    assert_same_train(jit, py, dtype, [0, 20, 40, 60])


def test_the_sweep_runs_the_primers_npus_compiled() -> None:
    """``nalu-np reproduce primer2022``'s NPU and RealNPU cells go through the compiled engine, the seeds of a
    cell together, each as it trains alone."""
    from nalu_np import sweep

    for unit in ("NPU", "RealNPU"):
        config = sweep.Config("single-mul", unit, {"steps": 300, "eval_every": 100, "range": "U[-2,-1]"})
        records = sweep.run_seeds(config, [0, 1])
        assert [r["engine"] for r in records] == ["compiled", "compiled"]
        alone = sweep.run_seed(config, 1)
        assert alone["engine"] == "compiled"
        assert records[1]["run"]["loss_curve"] == alone["run"]["loss_curve"]
