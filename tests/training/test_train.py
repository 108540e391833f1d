"""The training loop, the task protocol and the seed tasks."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

import nalu_np as nn
from nalu_np.optim import SGD
from nalu_np.tasks import Evaluation, SeedTask, Task, get_task, make_unit, seed_rngs


@pytest.fixture(autouse=True)
def _numpy_backend():
    """These tests are about the loop and the files, not the kernels: run them on the NumPy reference."""
    with nn.use_backend("numpy"):
        yield


class SumTask(Task):
    """A sampling task: y = x1 + x2 with x ~ U(1, 2) drawn fresh each step; tests in U(1, 2) and U(2, 6)."""

    name = "sum-sampled"
    description = "test task"
    in_features, out_features = 2, 1
    unit, preset = "NAC", "seed-003"
    steps, lr, batch_size, eval_every = 200, 0.05, 16, 50

    def __init__(self, penalty_value=None, **kw):
        super().__init__(**kw)
        self.penalty_value = penalty_value
        self.penalty_steps = []

    def sample(self, rng, batch_size):
        x = rng.uniform(1, 2, size=(batch_size, 2)).astype(self.dtype)
        return x, x.sum(axis=1, keepdims=True)

    def eval_sets(self):
        rng = np.random.default_rng(123)
        sets = {}
        for name, (lo, hi) in (("interpolation", (1, 2)), ("extrapolation", (2, 6))):
            x = rng.uniform(lo, hi, size=(32, 2)).astype(self.dtype)
            sets[name] = (x, x.sum(axis=1, keepdims=True, dtype=np.float64))
        return sets

    def penalty(self, model, step):
        self.penalty_steps.append(step)
        if self.penalty_value is None:
            return None
        return self.penalty_value, {k: np.zeros_like(v) for k, v in model.params.items()}

    def success(self, evaluations):
        best = min(evaluations, key=lambda e: e.metrics["interpolation_mse"])
        return best.metrics["extrapolation_mse"] < 1e-2


def _run(seed=0, steps=300, task="add", backend=None):
    t = get_task(task)
    init_rng, _ = seed_rngs(seed)
    return nn.train(t.build_model(init_rng), t, steps=steps, seed=seed, backend=backend)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_same_seed_same_backend_is_bit_identical(backend):
    if backend not in nn.available_backends():
        pytest.skip(f"backend {backend} is not available here")
    a, b = _run(seed=3, task="mul", backend=backend), _run(seed=3, task="mul", backend=backend)
    np.testing.assert_array_equal(a.loss, b.loss)
    for k in a.model.params:
        np.testing.assert_array_equal(a.model.params[k], b.model.params[k])
    assert [e.metrics for e in a.evaluations] == [e.metrics for e in b.evaluations]
    c = _run(seed=4, task="mul", backend=backend)
    assert not np.array_equal(a.loss, c.loss)


def test_sampling_task_is_reproducible_and_uses_the_seed():
    def run(seed):
        task = SumTask()
        return nn.train(task.build_model(seed_rngs(0)[0]), task, seed=seed)

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert not np.array_equal(a.loss, c.loss)  # same model, other batches


def test_result_fields_and_periodic_evaluation():
    task = SumTask()
    model = task.build_model(seed_rngs(0)[0])
    before = {k: v.copy() for k, v in model.params.items()}
    r = nn.train(model, task, seed=0)
    assert r.model is model and r.task == "sum-sampled" and r.backend == "numpy"
    assert r.steps == r.steps_done == 200 and r.loss.shape == (200,) and r.loss.dtype == np.float64
    assert [e.step for e in r.evaluations] == [0, 50, 100, 150, 200]
    assert r.final["interpolation_mse"] < r.initial["interpolation_mse"]
    assert r.loss[-20:].mean() < r.loss[:20].mean()
    assert not np.array_equal(before["W_hat"], model.params["W_hat"])  # trained in place
    assert task.penalty_steps == list(range(200))
    assert r.optimizer == {"type": "Adam", "hyper": {"lr": 0.05, "clip_norm": None, "clip_value": None,
                                                     "betas": [0.9, 0.999], "eps": 1e-8, "overflow": "clip"}}
    assert r.wall_time > 0 and isinstance(r.success, bool) and not r.diverged
    json.dumps(r.to_dict())  # serialisable


def test_success_is_the_tasks_verdict_over_all_evaluations():
    task = SumTask()
    evals = [Evaluation(0, {"interpolation_mse": 5.0, "extrapolation_mse": 9.0}),
             Evaluation(1, {"interpolation_mse": 0.1, "extrapolation_mse": 1e-3}),
             Evaluation(2, {"interpolation_mse": 0.2, "extrapolation_mse": 5.0})]
    assert task.success(evals)  # judged at the best interpolation step, not the last
    assert not task.success(evals[:1])


def test_divergence_stops_the_run_and_is_no_success():
    task = SumTask(penalty_value=float("inf"))
    r = nn.train(task.build_model(seed_rngs(0)[0]), task, seed=0, log_every=7)
    assert r.diverged and not r.success
    assert r.steps_done == 7 and np.isinf(r.loss).all()
    assert r.evaluations[-1].step == 7


def test_optimizer_object_and_overrides():
    task = SumTask()
    model = task.build_model(seed_rngs(0)[0])
    opt = SGD(model.params, lr=0.01)
    r = nn.train(model, task, optimizer=opt, steps=5)
    assert r.optimizer["type"] == "SGD" and opt.t == 5
    with pytest.raises(ValueError, match="optimizer object"):
        nn.train(model, task, optimizer=opt, lr=0.1, steps=5)
    with pytest.raises(ValueError, match="other arrays"):
        nn.train(task.build_model(1), task, optimizer=opt, steps=5)
    r = nn.train(model, task, optimizer="rmsprop", lr=1e-3, steps=3, clip_norm=1.0, eval_every=1)
    assert r.optimizer["type"] == "RMSProp" and r.optimizer["hyper"]["clip_norm"] == 1.0
    assert [e.step for e in r.evaluations] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="steps"):
        nn.train(model, task, steps=0)
    with pytest.raises(ValueError, match="unknown task"):
        nn.train(model, "nope")


def test_model_of_another_dtype_or_array_type_is_refused():
    task = get_task("add")
    with pytest.raises(TypeError, match="dtype"):
        nn.train(nn.NAC(2, 1, rng=0, dtype="float64"), task, steps=2)

    class Fake:
        params = {"W_hat": [1.0]}

    with pytest.raises(TypeError, match="model.to"):
        nn.train(Fake(), task, steps=2)


def test_progress_goes_to_the_stream():
    buf = io.StringIO()
    _ = nn.train(nn.NAC(2, 1, rng=0), "add", steps=40, log_every=10, progress=True, stream=buf)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 5 and "step 10/40" in lines[0] and "loss" in lines[0] and "40 steps" in lines[-1]
    quiet = io.StringIO()
    nn.train(nn.NAC(2, 1, rng=0), "add", steps=40, stream=quiet)  # not a terminal: silent by default
    assert quiet.getvalue() == ""


def test_seed_task_data_are_the_articles():
    add, mul = get_task("add"), get_task("mul")
    x, t = add.train_data()
    assert x.shape == (2000, 2) and x.dtype == np.float32 and t.shape == (2000, 1)
    np.testing.assert_array_equal(x[:2], [[0, 5], [5, 10]])
    np.testing.assert_array_equal(x[-1], [9995, 10000])
    np.testing.assert_array_equal(t[:, 0], x[:, 0] + x[:, 1])
    xt, tt = mul.eval_sets()["interpolation"]
    assert xt.shape == (125, 2) and tt.dtype == np.float64
    np.testing.assert_array_equal(xt[:2], [[1000, 1000], [1008, 1004]])
    assert tt[1, 0] == 1008 * 1004
    xe, _ = mul.eval_sets()["extrapolation"]
    assert xe.min() > x.max()  # outside the training range
    assert (add.lr, add.steps, add.optimizer) == (0.05, 22000, "adam")
    assert get_task("mul", dtype="float64").train_data()[0].dtype == np.float64


def test_seed_task_models_and_success_criterion():
    add, mul = get_task("add"), get_task("mul")
    nac, nalu = add.build_model(0), mul.build_model(0)
    assert type(nac).__name__ == "NAC" and np.abs(nac.params["W_hat"]).max() <= 2  # U(-2, 2)
    assert nalu.config()["shared_weights"] and nalu.eps == 1e-7  # seed-003: tied weights
    assert not mul.build_model(0, preset="seed-000").shared_weights
    assert type(add.build_model(0, unit="nalu")).__name__ == "NALU"
    ok = {"interpolation_max_abs_err": 0.4, "interpolation_max_rel_err": 1e-4, "extrapolation_max_rel_err": 1e-4}
    assert add.success([Evaluation(1, ok)])
    assert not add.success([Evaluation(1, {**ok, "interpolation_max_abs_err": 0.6})])
    assert not add.success([Evaluation(1, {**ok, "extrapolation_max_rel_err": 2e-3})])
    assert not add.success([Evaluation(1, {**ok, "interpolation_max_abs_err": float("nan")})])
    assert mul.success([Evaluation(1, ok)])
    assert not mul.success([Evaluation(1, {**ok, "interpolation_max_rel_err": 2e-3})])
    with pytest.raises(ValueError, match="unknown seed operation"):
        SeedTask("div")


def test_make_unit_errors():
    with pytest.raises(ValueError, match="known units"):
        make_unit("Transformer", 2, 1)
    assert make_unit("nacmul", 2, 1, rng=0, preset="seed-000").eps == 1e-6


def test_import_is_lazy_and_train_is_callable():
    code = (
        "import sys, nalu_np\n"
        "assert not any(m in sys.modules for m in ('nalu_np.optim', 'nalu_np.training', 'nalu_np.tasks')), 'eager'\n"
        "from nalu_np import train\n"
        "import nalu_np.training\n"
        "assert nalu_np.train is train is nalu_np.training.train\n"
        "assert nalu_np.optim.Adam and nalu_np.checkpoint.save and nalu_np.losses.mse\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("op", ["add", "mul"])
def test_seed_experiments_reproduce_the_articles(op):
    r = _run(seed=0, steps=None, task=op)
    assert r.success, r.final


def test_model_projections_are_applied_after_each_step():
    class BoxedNAC(nn.NAC):
        def projections(self):
            return {"W_hat": lambda W: W.clip(-0.1, 0.1)}

    model = BoxedNAC(2, 1, rng=0, init="seed-000")
    nn.train(model, "add", steps=20, lr=1.0)
    assert np.abs(model.params["W_hat"]).max() <= 0.1
    assert np.abs(model.params["M_hat"]).max() > 0.1  # not projected
    nn.train(model, "add", steps=5, lr=1.0, projections={"M_hat": lambda M: M.clip(0.0, 0.0)})
    assert not model.params["M_hat"].any()  # an explicit projections argument replaces the model's


def test_a_seed_that_diverges_leaves_the_others_of_its_batch_training() -> None:
    """``train_many``: after a seed diverges, the next compiled calls train the others (with their own test
    targets), each the run it has alone."""
    pytest.importorskip("numba")
    from nalu_np.arithmetic import SingleModuleTask

    task = SingleModuleTask("mul", unit="NMU", steps=40, eval_every=10)
    models = [task.build_model(0), task.build_model(1), task.build_model(2)]
    for v in models[1].params.values():
        v[...] = np.nan  # seed 4 diverges in the first call (draws="numpy": one call per evaluation)
    many = nn.train_many(models, [task] * 3, [3, 4, 5], draws="numpy")
    assert many[1].diverged and not many[0].diverged and not many[2].diverged
    for q, seed in ((0, 3), (2, 5)):
        alone = nn.train(task.build_model(q), task, seed=seed, engine="compiled", draws="numpy", progress=False)
        np.testing.assert_array_equal(many[q].loss, alone.loss)
        assert [e.metrics for e in many[q].evaluations] == [e.metrics for e in alone.evaluations]
