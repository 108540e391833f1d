"""The compiled training engine (:mod:`nalu_np.compiled`, :mod:`nalu_np.kernels.numba.train`) against a
step-by-step loop with the NumPy reference and nalu_np.optim.Adam."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

import nalu_np as nn  # noqa: E402
from nalu_np import compiled as nt  # noqa: E402
from nalu_np.optim import Adam  # noqa: E402
from support.engine import (  # noqa: E402
    assert_same_losses, assert_same_predictions, assert_same_run, python_steps, reversed_steps)

DTYPES = (np.float32, np.float64)


NETWORKS = {"NAU-NMU": (nn.NAU, nn.NMU), "NAU-NAU": (nn.NAU, nn.NAU), "NALU-NALU": (nn.NALU, nn.NALU),
            "NMU-NALU": (nn.NMU, nn.NALU), "Linear-Linear": (nn.Linear, nn.Linear), "ReLU-Linear": (nn.ReLU, nn.Linear),
            "ReLU6-Linear": (nn.ReLU6, nn.Linear), "NAU-ReLU6": (nn.NAU, nn.ReLU6), "NAC-NAC": (nn.NAC, nn.NAC),
            "NAC-NACMul": (nn.NAC, nn.NACMul), "NACMul-NAU": (nn.NACMul, nn.NAU),
            "NAU-ClippedNACMul": (nn.NAU, nn.ClippedNACMul), "NAC-SigmoidNACMul": (nn.NAC, nn.SigmoidNACMul),
            "Gated-Gated": (nn.GatedNAUNMU, nn.GatedNAUNMU), "ClippedNACMul-Gated": (nn.ClippedNACMul, nn.GatedNAUNMU),
            "SigmoidNACMul-NMU": (nn.SigmoidNACMul, nn.NMU),
            # one layer (a bare unit, or a Sequential of one with ``seq`` in make_model) and three layers
            "NAU": (nn.NAU,), "NMU": (nn.NMU,), "NALU": (nn.NALU,), "Linear": (nn.Linear,), "Gated": (nn.GatedNAUNMU,),
            "NAU-NAU-NMU": (nn.NAU, nn.NAU, nn.NMU), "ReLU-Gated-Linear": (nn.ReLU, nn.GatedNAUNMU, nn.Linear),
            "NALU-NAU-NAU": (nn.NALU, nn.NAU, nn.NAU), "NAC-ClippedNACMul-NAU": (nn.NAC, nn.ClippedNACMul, nn.NAU),
            "NAU-NMU-NAU": (nn.NAU, nn.NMU, nn.NAU), "GNALU-GNALU": (nn.GNALU, nn.GNALU), "NAU-GNALU": (nn.NAU, nn.GNALU)}


def make_model(dtype: Any, seed: int = 0, hidden: int = 2, net: str = "NAU-NMU", seq: bool = False,
               in_features: int = 100) -> tuple[Any, Adam]:
    """The network ``net`` of :data:`NETWORKS`: ``in_features -> hidden -> 1`` for two layers, ``in_features ->
    hidden + 1 -> hidden -> 1`` for three, layer ``l`` drawn with ``rng=seed + l``; one layer: the bare unit
    ``in_features -> 1`` (a Sequential of it with ``seq``)."""
    kinds = NETWORKS[net]
    sizes = {1: [in_features, 1], 2: [in_features, hidden, 1], 3: [in_features, hidden + 1, hidden, 1]}[len(kinds)]
    layers = [kind(i, o, rng=seed + n, dtype=dtype) for n, (kind, i, o) in enumerate(zip(kinds, sizes, sizes[1:]))]
    model = layers[0] if len(layers) == 1 and not seq else nn.Sequential(layers)
    return model, Adam(model.params, lr=1e-3, projections=model.projections())


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
@pytest.mark.parametrize("net,op", [("NAU-NMU", "mul"), ("NAU-NAU", "sub"), ("NALU-NALU", "mul"), ("NMU-NALU", "div")])
def test_regularizer_schedule_matches(net: str, op: str, dtype: Any) -> None:
    """Every kind of layer in either place, with the regularizer off, ramping and full within the run.

    NALU -> NALU runs only 8 steps (5 in float32): Adam divides each gradient by its own running scale, so a
    component that is tiny, whose sign rounding decides, moves by a whole step either way; from about step 10
    (float32: step 6, where the two runs agree to 1e-3 of the tolerance before and 0.6 of it after, depending on
    where LLVM fuses multiply-adds) the two runs drift apart by more than rounding, in float64 too (the exact
    steps agree to 1e-16 before that).
    """
    task = nt.SimpleFunction(op=op, offset=3)
    steps, reg = ((8 if dtype == np.float64 else 5), (0.5, 2.0, 6.0)) if net == "NALU-NALU" else (40, (0.5, 10.0, 30.0))
    py = make_model(dtype, seed=4, net=net)
    losses_py = python_steps(*py, task, np.random.default_rng(9), steps, regularizer=reg)
    jit = make_model(dtype, seed=4, net=net)
    losses_jit = nt.train(*jit, task, steps, np.random.default_rng(9), chunk=40, regularizer=reg)
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
    with pytest.raises(ValueError, match="shape"):
        nt.train_steps(model, opt, task, np.zeros((1, 2, 99)))
    with pytest.raises(TypeError, match="1 to 3 layers"):
        deep = nn.Sequential([nn.NAU(100, 2, dtype="float64")] + [nn.NAU(2, 2, dtype="float64") for _ in range(2)]
                             + [nn.NMU(2, 1, dtype="float64")])
        nt.train_steps(deep, Adam(deep.params, lr=1e-3), task, np.zeros((1, 2, 100)))
    with pytest.raises(ValueError, match="one target"):
        wide = nn.NAU(100, 2, dtype="float64")
        nt.train_steps(wide, Adam(wide.params, lr=1e-3), task, np.zeros((1, 2, 100)))
    with pytest.raises(TypeError, match="layers of"):  # a layer without a kind: a nested Sequential
        nt.predict(nn.Sequential([nn.Sequential([nn.NAU(100, 2)]), nn.NMU(2, 1)]), np.zeros((1, 100), np.float32))
    separate = nn.Sequential([nn.NALU(100, 2, shared_weights=False), nn.NMU(2, 1)])  # the SEPARATENALU kind
    assert nt.supports(separate) is None
    np.testing.assert_allclose(nt.predict(separate, np.zeros((1, 100), np.float32)),
                               separate.forward(np.zeros((1, 100), np.float32), backend="numpy")[0], rtol=2e-4)
    with pytest.raises(ValueError, match="either u"):
        nt.train_steps(model, opt, task)
    with pytest.raises(ValueError, match="both steps and state"):
        nt.train_steps(model, opt, task, steps=3)
    with pytest.raises(TypeError, match="rng_state"):
        nt.train_steps(model, opt, task, steps=3, state=np.zeros((4, 16), np.int64))
    with pytest.raises(ValueError, match="all zero"):
        nt.train_steps(model, opt, task, steps=3, state=np.zeros((4, 16), np.uint64))
    with pytest.raises(ValueError, match="seed"):
        nt.rng_state(-1)
    with pytest.raises(ValueError, match="dtype"):
        nt.predict(model, np.zeros((2, 100), np.float32))


# ---------------------------------------------------------------------------------------------------------
# the in-kernel generator and the compiled forward pass
# ---------------------------------------------------------------------------------------------------------

MASK = (1 << 64) - 1


def xoshiro256ss(s: list[int]) -> int:
    """xoshiro256** as its authors publish it, in Python integers (advances ``s``)."""
    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & MASK

    r = rotl(s[1] * 5 & MASK, 7) * 9 & MASK
    t = s[1] << 17 & MASK
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = rotl(s[3], 45)
    return r


@pytest.mark.parametrize("n", [64, 37, 1, 0, 100, 12800])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_uniforms_are_xoshiro256ss_bits(dtype: Any, n: int) -> None:
    state = nt.rng_state(7)
    streams = [[int(state[w, j]) for w in range(4)] for j in range(state.shape[1])]
    u = nt.uniforms(state, n, dtype)
    needed = (n + 1) // 2 if dtype == np.float32 else n
    words = [xoshiro256ss(streams[q % 16]) for q in range(-(-needed // 16) * 16)]  # whole blocks of 16
    if dtype == np.float64:
        expect = [(r >> 12) / 2**52 for r in words]
    else:
        expect = [v for r in words for v in ((r >> 41) / 2**23, (r >> 9 & 0x7FFFFF) / 2**23)]
    np.testing.assert_array_equal(u, np.array(expect[:n], dtype))
    assert [[int(state[w, j]) for w in range(4)] for j in range(16)] == streams  # every stream advanced as the reference


def test_uniforms_look_uniform() -> None:
    u = nt.uniforms(nt.rng_state(3), 200_000, np.float32).astype(np.float64)
    assert 0.0 <= u.min() and u.max() < 1.0
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    chi2 = float(((counts - 10_000) ** 2 / 10_000).sum())
    assert chi2 < 45.3  # chi-squared, 19 degrees of freedom, p = 0.001
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01
    assert not np.array_equal(nt.uniforms(nt.rng_state(3), 8), nt.uniforms(nt.rng_state(4), 8))


@pytest.mark.parametrize("net,op", [("NAU-NMU", "mul"), ("NALU-NALU", "mul"), ("NAU-NAU", "add")])
def test_in_kernel_draws_are_reproducible_and_split_freely(net: str, op: str) -> None:
    task = nt.SimpleFunction(op=op, offset=20)
    a, b = make_model(np.float32, net=net), make_model(np.float32, net=net)
    sa, sb = nt.rng_state(11), nt.rng_state(11)
    la = nt.train_steps(*a, task, steps=50, state=sa, batch_size=7, regularizer=(1.0, 5, 20))
    lb = np.concatenate([nt.train_steps(*b, task, steps=k, state=sb, batch_size=7, regularizer=(1.0, 5, 20))
                         for k in (13, 0, 37)])
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(sa, sb)
    assert_same_run(a, b, 0.0)
    assert np.all(np.isfinite(la)) and la[-1] != la[0]


@pytest.mark.parametrize("net", list(NETWORKS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_predict_matches_the_reference_forward(net: str, dtype: Any) -> None:
    model, _ = make_model(dtype, seed=2, hidden=3, net=net)
    x = np.random.default_rng(0).uniform(-3, 3, (33, 100)).astype(dtype)
    y = model.forward(x, backend="numpy")[0]
    np.testing.assert_allclose(nt.predict(model, x), y, rtol=1e-12 if dtype == np.float64 else 2e-4,
                               atol=1e-12 if dtype == np.float64 else 1e-4)
    evaluate = nt.predictor(model, x)
    for p in model.params.values():
        p *= p.dtype.type(0.5)  # the predictor sees the parameters of the moment
    np.testing.assert_allclose(evaluate(), model.forward(x, backend="numpy")[0],
                               rtol=1e-12 if dtype == np.float64 else 2e-4, atol=1e-12 if dtype == np.float64 else 1e-4)


def test_kind_codes_and_lazy_numba() -> None:
    """The engine's table of layers agrees with the kernel's codes, and importing it does not import Numba."""
    import subprocess
    import sys

    from nalu_np.kernels.numba import train as kernel

    assert nt.LAYER_KINDS == {"nau": kernel.NAU, "nmu": kernel.NMU, "nalu": kernel.NALU, "dense": kernel.LINEAR,
                              "relu": kernel.RELU, "relu6": kernel.RELU6, "nac": kernel.NAC, "nacmul": kernel.NACMUL,
                              "clippednacmul": kernel.CLIPPEDNACMUL, "sigmoidnacmul": kernel.SIGMOIDNACMUL,
                              "gatednaunmu": kernel.GATEDNAUNMU, "npu": kernel.NPU, "realnpu": kernel.REALNPU,
                              "gnalu": kernel.GNALU, "inalu": kernel.INALU}
    assert nt.CLAMPED_KINDS == {"npu": kernel.CLAMPEDNPU, "realnpu": kernel.CLAMPEDREALNPU}
    assert nt.SEPARATE_KINDS == {"nalu": kernel.SEPARATENALU}
    codes = list(nt.LAYER_KINDS.values()) + list(nt.CLAMPED_KINDS.values()) + list(nt.SEPARATE_KINDS.values())
    assert len(set(codes)) == len(codes)
    assert {nn.NAU.kernel, nn.NMU.kernel, nn.NALU.kernel, nn.Linear.kernel, nn.ReLU.kernel, nn.ReLU6.kernel,
            nn.NAC.kernel, nn.NACMul.kernel, nn.ClippedNACMul.kernel, nn.SigmoidNACMul.kernel,
            nn.GatedNAUNMU.kernel, nn.NPU.kernel, nn.RealNPU.kernel, nn.GNALU.kernel,
            nn.INALU.kernel} == set(nt.LAYER_KINDS)
    code = "import sys, nalu_np, nalu_np.compiled; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("op", ["squared", "root"])
def test_the_single_operand_ops_match_the_python_loop(op: str) -> None:
    """a * a and sqrt(a): the compiled step's targets and training equal the Python loop's (float64)."""
    task = nt.SimpleFunction(op=op, offset=11)
    x = task.inputs(np.random.default_rng(0).random((5, 100)))
    a = x[:, 11:36].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(task.targets(x), a * a if op == "squared" else np.sqrt(a), rtol=1e-15)
    py = make_model(np.float64, seed=2)
    losses_py = python_steps(*py, task, np.random.default_rng(5), 30)
    jit = make_model(np.float64, seed=2)
    losses_jit = nt.train(*jit, task, 30, np.random.default_rng(5), chunk=30)
    np.testing.assert_allclose(losses_jit, losses_py, rtol=1e-9)
    assert_same_run(jit, py, 1e-9)


# ---------------------------------------------------------------------------------------------------------
# many seeds per call (train_seeds), evaluation inside the call
# ---------------------------------------------------------------------------------------------------------

def seeds_setup(net: str, dtype: Any, seeds: list[int], offsets: list[int] | None = None):
    models = [make_model(dtype, seed=10 * s, net=net) for s in seeds]
    tasks = [nt.SimpleFunction(op="mul", offset=o) for o in (offsets or [3 * s % 60 for s in seeds])]
    states = np.stack([nt.rng_state(100 + s) for s in seeds])
    return [m for m, _ in models], [o for _, o in models], tasks, states


def eval_sets(dtype: Any, tasks: list[nt.SimpleFunction], n: int = 300) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for lo, hi in ((1.0, 2.0), (2.0, 6.0)):
        x = rng.uniform(lo, hi, (n, 100)).astype(dtype)
        out.append((x, np.stack([t.targets(x.astype(np.float64)).ravel() for t in tasks])))
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("net", ["NAU-NMU", "NALU-NALU", "NMU-NALU"])
def test_a_seed_is_the_same_alone_as_among_others_and_however_split(net: str, dtype: Any) -> None:
    seeds = [0, 1, 2, 3, 4]
    models, opts, tasks, states = seeds_setup(net, dtype, seeds)
    sets = eval_sets(dtype, tasks)
    reg = (1.0, 10, 40)
    together = nt.train_seeds(models, opts, tasks, steps=60, states=states, batch_size=16, regularizer=reg,
                              eval_sets=sets, eval_every=20, first_eval=True)
    assert together.done.tolist() == [60] * 5 and together.nevals.tolist() == [4] * 5
    for q in (0, 3):
        m, o, t, st = seeds_setup(net, dtype, [seeds[q]], [tasks[q].offset])
        one = [(x, tt[q:q + 1]) for x, tt in sets]
        parts = [nt.train_seeds(m, o, t, steps=k, states=st, batch_size=16, regularizer=reg, eval_sets=one,
                                eval_every=20, first_eval=first) for k, first in ((20, True), (0, False), (40, False))]
        np.testing.assert_array_equal(np.concatenate([p.losses[0] for p in parts]), together.losses[q])
        np.testing.assert_array_equal(np.concatenate([p.evaluations[0] for p in parts]), together.evaluations[q])
        assert np.concatenate([p.steps[0] for p in parts]).tolist() == together.steps[q].tolist() == [0, 20, 40, 60]
        np.testing.assert_array_equal(st[0], states[q])
        for k in models[q].params:
            np.testing.assert_array_equal(m[0].params[k], models[q].params[k])
            np.testing.assert_array_equal(o[0].state["exp_avg_sq"][k], opts[q].state["exp_avg_sq"][k])
        assert o[0].t == opts[q].t == 60


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("net", ["NAU-NMU", "NALU-NALU"])
def test_evaluation_inside_the_call_is_the_python_side_metrics(net: str, dtype: Any) -> None:
    """Each in-kernel evaluation equals MSE of the reference forward pass and nalu_np.arithmetic's sparsity
    error on the parameters of that step."""
    from nalu_np.arithmetic import sparsity_error

    models, opts, tasks, states = seeds_setup(net, dtype, [7, 8])
    sets = eval_sets(dtype, tasks, n=200)  # 200: the last block of 128 is padded
    rows = []
    for _ in range(3):  # 3 calls of 10 steps, each evaluated at its end
        run = nt.train_seeds(models, opts, tasks, steps=10, states=states, batch_size=128, eval_sets=sets,
                             eval_every=10)
        for q, model in enumerate(models):
            y = [model.forward(x, backend="numpy")[0].astype(np.float64).ravel() for x, _ in sets]
            expect = [np.mean((yj - t[q]) ** 2) for yj, (_, t) in zip(y, sets)] + [sparsity_error(model)]
            np.testing.assert_allclose(run.evaluations[q, 0], expect, rtol=1e-10 if dtype == np.float64 else 1e-4)
            rows.append(run.evaluations[q, 0])
    assert len({tuple(r) for r in rows}) == len(rows)  # the parameters moved between the evaluations


def test_a_diverging_seed_stops_at_its_next_evaluation_and_leaves_the_others_alone() -> None:
    models, opts, tasks, states = seeds_setup("NAU-NMU", np.float64, [0, 1, 2])
    ref_models, ref_opts, ref_tasks, ref_states = seeds_setup("NAU-NMU", np.float64, [0, 2])
    models[1].params["0.W"][0, 0] = np.nan
    sets = eval_sets(np.float64, tasks, n=50)
    run = nt.train_seeds(models, opts, tasks, steps=45, states=states, batch_size=8, eval_sets=sets,
                         eval_every=10, first_eval=True)
    assert run.done.tolist() == [45, 10, 45] and run.nevals.tolist() == [6, 2, 6]
    assert run.diverged.tolist() == [False, True, False] and opts[1].t == 10
    assert run.steps[1].tolist() == [0, 10] and run.steps[0].tolist() == [0, 10, 20, 30, 40, 45]
    alone = nt.train_seeds(ref_models, ref_opts, ref_tasks, steps=45, states=ref_states, batch_size=8,
                           eval_sets=[(x, t[[0, 2]]) for x, t in sets], eval_every=10, first_eval=True)
    np.testing.assert_array_equal(alone.losses, run.losses[[0, 2]])
    np.testing.assert_array_equal(alone.evaluations, run.evaluations[[0, 2]])


def test_train_seeds_refuses_what_it_cannot_batch() -> None:
    models, opts, tasks, states = seeds_setup("NAU-NMU", np.float32, [0, 1])
    with pytest.raises(ValueError, match="offset only"):
        nt.train_seeds(models, opts, [tasks[0], nt.SimpleFunction(op="add")], steps=5, states=states)
    with pytest.raises(ValueError, match="one optimizer and one task per model"):
        nt.train_seeds(models, opts[:1], tasks, steps=5, states=states)
    with pytest.raises(TypeError, match="2 generator states"):
        nt.train_seeds(models, opts, tasks, steps=5, states=states[:1])
    other = make_model(np.float64)
    with pytest.raises(ValueError, match="one structure, dtype"):
        nt.train_seeds([models[0], other[0]], [opts[0], other[1]], tasks, steps=5, states=states)
    opts[1].lr = 0.5
    with pytest.raises(ValueError, match="hyper-parameters"):
        nt.train_seeds(models, opts, tasks, steps=5, states=states)


def test_train_many_is_train_seed_by_seed() -> None:
    """nn.train_many gives each seed the run nn.train gives it alone: losses, evaluations, verdict, weights."""
    from nalu_np import sweep

    config = sweep.Config("simple-mul", "NMU", {"first_unit": "NAU", "steps": 3000, "eval_every": 1000})
    seeds = [0, 1, 2]
    alone = []
    for s in seeds:
        task, model = sweep._fresh_run(config, s)
        alone.append(nn.train(model, task, seed=s, engine="compiled", progress=False))
    runs = [sweep._fresh_run(config, s) for s in seeds]
    many = nn.train_many([m for _, m in runs], [t for t, _ in runs], seeds)
    assert len({t.offset for t, _ in runs}) > 1  # the seeds' subsets differ
    for a, b in zip(alone, many):
        np.testing.assert_array_equal(a.loss, b.loss)
        assert [(e.step, e.metrics) for e in a.evaluations] == [(e.step, e.metrics) for e in b.evaluations]
        assert [e.step for e in b.evaluations] == [0, 1000, 2000, 3000]
        assert (a.success, a.diverged, a.engine, a.seed) == (b.success, b.diverged, "compiled", b.seed)
        for k in a.model.params:
            np.testing.assert_array_equal(a.model.params[k], b.model.params[k])
    with pytest.raises(ValueError, match="compiled path trains layers"):
        nn.train_many([nn.Sequential([nn.NAU(100, 2), nn.Sequential([nn.NMU(2, 1)])])], ["simple-mul"], [0])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("net,op", [("Linear-Linear", "add"), ("ReLU-Linear", "mul"), ("ReLU6-Linear", "sub"),
                                    ("NAU-ReLU6", "div")])
def test_the_baselines_match_the_python_loop(net: str, op: str, dtype: Any) -> None:
    """The study's baselines (weights and biases, the ReLU / ReLU6 kinks) in the compiled step: the Python
    loop's run, and its evaluations' sparsity error over the weights without the biases."""
    from nalu_np.arithmetic import sparsity_error

    task = nt.SimpleFunction(op=op, offset=5)
    py = make_model(dtype, seed=6, net=net)
    losses_py = python_steps(*py, task, np.random.default_rng(2), 40)
    jit = make_model(dtype, seed=6, net=net)
    losses_jit = nt.train(*jit, task, 40, np.random.default_rng(2), chunk=15)
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(losses_jit, losses_py, rtol=rtol)
    assert_same_run(jit, py, rtol)
    assert np.any(jit[0].params["1.b"] != 0)  # the biases trained
    x = np.random.default_rng(0).uniform(1, 2, (130, 100)).astype(dtype)
    run = nt.train_seeds([jit[0]], [jit[1]], [task], steps=1, states=nt.rng_state(1)[None], eval_sets=[
        (x, task.targets(x.astype(np.float64)).T)], eval_every=1)
    assert run.evaluations[0, 0, -1] == pytest.approx(sparsity_error(jit[0]), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("net,op", [("NAC-NAC", "add"), ("NAC-NACMul", "mul"), ("NACMul-NAU", "sub")])
def test_the_nac_networks_match_the_python_loop(net: str, op: str, dtype: Any) -> None:
    """NAC and NACMul (Madsen & Johansen's NAC+ and NAC• models) in the compiled step: the Python loop's run,
    and the in-kernel sparsity error over tanh(W_hat) sigma(M_hat).

    NAC -> NACMul runs 3 steps (float32: 2): its hidden units cross 0 there, where ``log(|h| + eps)`` multiplies rounding
    by about 100 each step (largest parameter difference, float64: 3e-18 after one step, 1e-15 after three,
    2e-13 after four, 7e-7 after eight; float32: 4e-9, 2e-7 after three, 2e-5 after four)."""
    from nalu_np.arithmetic import sparsity_error

    task = nt.SimpleFunction(op=op, offset=9)
    steps = (3 if dtype == np.float64 else 2) if net == "NAC-NACMul" else 30
    py = make_model(dtype, seed=3, net=net)
    losses_py = python_steps(*py, task, np.random.default_rng(4), steps)
    jit = make_model(dtype, seed=3, net=net)
    losses_jit = nt.train(*jit, task, steps, np.random.default_rng(4), chunk=11)
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(losses_jit, losses_py, rtol=rtol)
    assert_same_run(jit, py, rtol)
    x = np.random.default_rng(0).uniform(1, 2, (130, 100)).astype(dtype)
    run = nt.train_seeds([jit[0]], [jit[1]], [task], steps=1, states=nt.rng_state(1)[None], eval_sets=[
        (x, task.targets(x.astype(np.float64)).T)], eval_every=1)
    assert run.evaluations[0, 0, -1] == pytest.approx(sparsity_error(jit[0]), rel=1e-6)
    assert_same_predictions(jit[0], x, rtol)


def check_against_python_loop(net: str, op: str, reg: Any, dtype: Any, *, offset: int, steps: int,
                              seeds: tuple[int, int], chunk: int, seq: bool = False) -> None:
    """The compiled step of the network ``net`` against the Python loop on the same batches (``seeds``: of
    the model, of the batches): the losses and the run, within the reference's own spread over summation
    orders too (:func:`support.engine.reversed_steps`), its evaluations' in-kernel sparsity error and its
    predictions; ``seq`` builds a one-layer network as a Sequential."""
    from nalu_np.arithmetic import sparsity_error

    task = nt.SimpleFunction(op=op, offset=offset)
    py = make_model(dtype, seed=seeds[0], net=net, seq=seq)
    assert isinstance(py[0], nn.Sequential) == (seq or "-" in net)
    losses_py = python_steps(*py, task, np.random.default_rng(seeds[1]), steps, regularizer=reg)
    rev = make_model(dtype, seed=seeds[0], net=net, seq=seq)
    losses_rev = reversed_steps(*rev, task, np.random.default_rng(seeds[1]), steps, regularizer=reg)
    jit = make_model(dtype, seed=seeds[0], net=net, seq=seq)
    losses_jit = nt.train(*jit, task, steps, np.random.default_rng(seeds[1]), chunk=chunk, regularizer=reg)
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    assert_same_losses(losses_jit, losses_py, rtol, losses_rev)
    assert_same_run(jit, py, rtol, rev)
    assert losses_py[-1] != losses_py[0]
    x = np.random.default_rng(0).uniform(1, 2, (130, 100)).astype(dtype)
    run = nt.train_seeds([jit[0]], [jit[1]], [task], steps=1, states=nt.rng_state(1)[None], eval_sets=[
        (x, task.targets(x.astype(np.float64)).T)], eval_every=1)
    assert run.evaluations[0, 0, -1] == pytest.approx(sparsity_error(jit[0]), rel=1e-6)
    assert_same_predictions(jit[0], x, rtol)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("net,op,reg", [("NAU-ClippedNACMul", "mul", (0.5, 5.0, 20.0)),
                                        ("NAC-SigmoidNACMul", "div", None), ("Gated-Gated", "add", (0.5, 5.0, 20.0)),
                                        ("ClippedNACMul-Gated", "sub", (0.5, 5.0, 20.0)),
                                        ("SigmoidNACMul-NMU", "mul", (0.5, 5.0, 20.0))])
def test_the_variants_match_the_python_loop(net: str, op: str, reg: Any, dtype: Any) -> None:
    """The study's variants (Madsen & Johansen's NAC•,NMU, NAC•,σ and Gated NAU/NMU, each in either place) in
    the compiled step: the Python loop's run with the regularizer off, ramping and full (the ClippedNACMul's
    and the GatedNAUNMU's, the latter's the sum of its NAU and NMU terms), the projections, and the in-kernel
    sparsity error over the weights the forward pass uses (``sigma(W_hat)``; ``W_add`` and ``W_mul``, not the
    gate)."""
    check_against_python_loop(net, op, reg, dtype, offset=7, steps=30, seeds=(5, 8), chunk=13)


def test_the_variants_projections_keep_their_weights_in_bounds() -> None:
    """A large step pushes the weights out; the compiled step clips W_add to [-1, 1], W_mul and the
    ClippedNACMul's W to [0, 1], and leaves the gate unbounded."""
    model = nn.Sequential([nn.GatedNAUNMU(100, 2, rng=0, dtype="float64"),
                           nn.ClippedNACMul(2, 1, rng=1, dtype="float64")])
    opt = Adam(model.params, lr=0.5, projections=model.projections())
    nt.train(model, opt, nt.SimpleFunction(op="mul"), 20, np.random.default_rng(0))
    p = model.params
    assert np.abs(p["0.W_add"]).max() <= 1.0 and np.any(np.abs(p["0.W_add"]) == 1.0)
    assert 0.0 <= p["0.W_mul"].min() and p["0.W_mul"].max() <= 1.0 and np.any(p["0.W_mul"] % 1.0 == 0.0)
    assert 0.0 <= p["1.W"].min() and p["1.W"].max() <= 1.0
    assert np.abs(p["0.G"]).max() > 1.0  # the gate has no box


# ---------------------------------------------------------------------------------------------------------
# one and three layers
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("net,op,seq,reg", [("NAU", "add", False, (0.5, 5.0, 20.0)),
                                            ("NMU", "mul", True, (0.5, 5.0, 20.0)),
                                            ("NALU", "mul", False, None), ("Linear", "sub", True, None),
                                            ("Gated", "add", False, (0.5, 5.0, 20.0))])
def test_one_layer_networks_match_the_python_loop(net: str, op: str, seq: bool, reg: Any, dtype: Any) -> None:
    """A bare unit (keys ``W``, ...) or a Sequential of one (keys ``0.W``, ...) mapping 100 -> 1 in the compiled
    step: the Python loop's run with the regularizer off, ramping and full, its evaluations' sparsity error and
    its predictions."""
    check_against_python_loop(net, op, reg, dtype, offset=21, steps=12 if net == "NALU" else 30, seeds=(7, 3),
                              chunk=7, seq=seq)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("net,op,reg", [("NAU-NAU-NMU", "mul", (0.5, 5.0, 20.0)),
                                        ("ReLU-Gated-Linear", "sub", (0.5, 5.0, 20.0)), ("NALU-NAU-NAU", "add", None),
                                        ("NAC-ClippedNACMul-NAU", "mul", (0.5, 5.0, 20.0)),
                                        ("NAU-NMU-NAU", "div", (0.5, 5.0, 20.0))])
def test_three_layer_networks_match_the_python_loop(net: str, op: str, reg: Any, dtype: Any) -> None:
    """Three layers (100 -> 3 -> 2 -> 1) of any kinds in any place, the log-space and NALU layers first or in the
    middle: the Python loop's run, the in-kernel sparsity error over all three layers, the predictions."""
    check_against_python_loop(net, op, reg, dtype, offset=13, steps=8 if net.startswith("NALU") else 30,
                              seeds=(11, 6), chunk=9)


@pytest.mark.parametrize("net", ["NMU", "NAU-NAU-NMU", "NALU-NAU-NAU"])
def test_one_and_three_layer_seeds_are_the_same_alone_as_among_others(net: str) -> None:
    seeds = [0, 1, 2, 3]
    models, opts, tasks, states = seeds_setup(net, np.float32, seeds)
    sets = eval_sets(np.float32, tasks)
    together = nt.train_seeds(models, opts, tasks, steps=40, states=states, batch_size=16, regularizer=(1.0, 10, 30),
                              eval_sets=sets, eval_every=20, first_eval=True)
    assert together.done.tolist() == [40] * 4 and together.nevals.tolist() == [3] * 4
    for q in (0, 2):
        m, o, t, st = seeds_setup(net, np.float32, [seeds[q]], [tasks[q].offset])
        one = nt.train_seeds(m, o, t, steps=40, states=st, batch_size=16, regularizer=(1.0, 10, 30),
                             eval_sets=[(x, tt[q:q + 1]) for x, tt in sets], eval_every=20, first_eval=True)
        np.testing.assert_array_equal(one.losses[0], together.losses[q])
        np.testing.assert_array_equal(one.evaluations[0], together.evaluations[q])
        for k in models[q].params:
            np.testing.assert_array_equal(m[0].params[k], models[q].params[k])


# ---------------------------------------------------------------------------------------------------------
# the single-module task (Mistry, Farrahi & Hare): one unit, t = x[0] op x[1]
# ---------------------------------------------------------------------------------------------------------

def test_the_single_module_spec_is_the_simple_function_of_two_inputs() -> None:
    spec = nt.SimpleFunction.single_module("div", -2.0, 2.0)
    x = spec.inputs(np.random.default_rng(0).random((50, 2)))
    assert -2.0 <= x.min() and x.max() < 2.0
    np.testing.assert_array_equal(spec.targets(x), x[:, :1] / x[:, 1:])
    from nalu_np.arithmetic import SINGLE_MODULE_RANGES

    assert not any(train.mirror for train, _ in SINGLE_MODULE_RANGES)  # only an extrapolation range is mirrored
    assert any(test.mirror for _, test in SINGLE_MODULE_RANGES)


SINGLE_CASES = [("mul", "NMU", 6), ("mul", "NMU", 4), ("add", "NAU", 0), ("sub", "NAU", 3), ("div", "NACMul", 1),
                ("add", "NAC", 8), ("mul", "NALU", 6), ("sub", "Linear", 2)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("op,unit,rng_index", SINGLE_CASES)
def test_the_single_module_task_matches_the_python_engine(op: str, unit: str, rng_index: int, dtype: Any) -> None:
    """nn.train on the single-module task (its model, lr, regularizer recipe, ranges with negative bounds and
    the mirrored extrapolation range of U[-2,2]): the compiled engine on NumPy's draws is the Python engine's run
    to rounding -- losses, parameters, every evaluation."""
    from nalu_np.arithmetic import SingleModuleTask
    from nalu_np.tasks import seed_rngs

    steps = 12 if unit in ("NALU", "NACMul") else 60
    task = SingleModuleTask(op, unit=unit, range=rng_index, steps=steps, eval_every=steps // 3,
                            reg_start=steps // 6, reg_end=2 * steps // 3, dtype=np.dtype(dtype).name)
    assert nn.training.compiled_unsupported(task.build_model(seed_rngs(1)[0]), task) is None
    runs = {}
    for engine in ("python", "compiled"):
        model = task.build_model(seed_rngs(1)[0])
        runs[engine] = nn.train(model, task, seed=1, engine=engine, draws="numpy", progress=False)
    py, jit = runs["python"], runs["compiled"]
    assert (py.engine, jit.engine) == ("python", "compiled")
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(jit.loss, py.loss, rtol=rtol)
    assert py.loss[-1] != py.loss[0]
    for k in py.model.params:
        np.testing.assert_allclose(jit.model.params[k], py.model.params[k], rtol=rtol, atol=rtol, err_msg=k)
    at = [0, steps // 3, 2 * steps // 3, steps]
    assert [e.step for e in jit.evaluations] == [e.step for e in py.evaluations] == at
    for a, b in zip(py.evaluations, jit.evaluations):
        assert set(a.metrics) == set(b.metrics)
        for k, v in a.metrics.items():
            assert b.metrics[k] == pytest.approx(v, rel=1e-7 if dtype == np.float64 else 1e-3, abs=1e-12), k


def test_the_single_module_regularizer_and_lr_are_the_tasks() -> None:
    """The task's recipe reaches the engine: lambda_hat and its ramp (a run with another lambda differs), and
    task.lr (the NMU's 1e-3 and a changed one)."""
    from nalu_np.arithmetic import SingleModuleTask
    from nalu_np.tasks import seed_rngs

    def run(**kw: Any) -> Any:
        task = SingleModuleTask("mul", unit="NMU", steps=40, eval_every=None, reg_start=0, reg_end=10)
        for k, v in kw.items():
            setattr(task, k, v)
        return nn.train(task.build_model(seed_rngs(0)[0]), task, seed=0, engine="compiled", progress=False)

    base = run()
    assert base.optimizer["hyper"]["lr"] == 1e-3
    other_lam = run(lambda_hat=0.0)
    assert not np.array_equal(base.loss, other_lam.loss)
    fast = run(lr=5e-2)
    assert fast.optimizer["hyper"]["lr"] == 5e-2 and not np.array_equal(base.loss, fast.loss)


def test_single_module_seeds_alone_and_together_and_the_sweep_uses_the_compiled_engine() -> None:
    from nalu_np import sweep

    config = sweep.Config("single-mul", "NMU", {"steps": 400, "eval_every": 200})
    seeds = [0, 1, 2]
    alone = [nn.train(m, t, seed=s, engine="compiled", progress=False)
             for s in seeds for t, m in [sweep._fresh_run(config, s)]]
    runs = [sweep._fresh_run(config, s) for s in seeds]
    many = nn.train_many([m for _, m in runs], [t for t, _ in runs], seeds)
    for a, b in zip(alone, many):
        np.testing.assert_array_equal(a.loss, b.loss)
        assert [(e.step, e.metrics) for e in a.evaluations] == [(e.step, e.metrics) for e in b.evaluations]
        for k in a.model.params:
            np.testing.assert_array_equal(a.model.params[k], b.model.params[k])
    records = sweep.run_seeds(config, [0, 1])
    assert [r["engine"] for r in records] == ["compiled", "compiled"]
    assert sweep.run_seed(config, 2)["engine"] == "compiled"
    assert records[0]["run"]["loss_curve"] == sweep.run_seed(config, 0)["run"]["loss_curve"]


@pytest.mark.parametrize("op,unit,model_unit", [("mul", "iNALU", "NALU"), ("add", "iNALU", "NAU")])
def test_the_recipes_run_on_the_compiled_engine(op: str, unit: str, model_unit: str) -> None:
    """A task with the iNALU's recipe (clipping, saturation regularizer, reinitialisation) is accepted for its
    own model and for any other model the engine trains, and "auto" trains it with the compiled engine (its
    equality with the Python engine: tests/training/test_compiled_inalu.py; the NPUs' L1 schedule:
    tests/training/test_compiled_npu.py; clipping alone runs compiled too)."""
    from nalu_np.arithmetic import SingleModuleTask

    task = SingleModuleTask(op, unit=unit, steps=20, eval_every=10)
    assert task.recipe is not None
    own = task.build_model(0)
    assert nn.training.compiled_unsupported(own, task) is None
    model = nn.layers.make_unit(model_unit, 2, 1, rng=0)
    assert nt.supports(model) is None
    assert nn.training.compiled_unsupported(model, task) is None
    assert nn.train(model, task, engine="compiled", progress=False).engine == "compiled"
    assert nn.train(own, task, engine="auto", progress=False).engine == "compiled"
    assert task.recipe_run is not None and task.recipe_run.reinits == 0
    clipped = SingleModuleTask("mul", unit="NMU", steps=20)
    clipped.clip_value = 0.1  # gradient clipping alone runs compiled (tests/training/test_compiled_optim.py)
    assert nn.training.compiled_unsupported(clipped.build_model(0), clipped) is None


def test_a_mirrored_training_range_or_a_wrong_shape_is_refused() -> None:
    from nalu_np.arithmetic import Range, SingleModuleTask

    task = SingleModuleTask("mul", unit="NMU", steps=20)
    model = task.build_model(0)
    assert nn.training.compiled_unsupported(model, task) is None
    task.interpolation_range = Range(2, 6, mirror=True)
    assert "mirrored" in nn.training.compiled_unsupported(model, task)
    task = SingleModuleTask("mul", unit="NMU", steps=20)
    assert "inputs to one target" in nn.training.compiled_unsupported(nn.NMU(3, 1), task)
    assert "1 to 3 layers" in nn.training.compiled_unsupported(
        nn.Sequential([nn.NAU(2, 2), nn.NAU(2, 2), nn.NAU(2, 2), nn.NMU(2, 1)]), task)
