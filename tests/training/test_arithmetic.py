"""The published arithmetic tasks: data, targets, thresholds, regularizer schedule, verdict and statistics;
and the projections/regularizers of Sequential."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import arithmetic as ar
from nalu_np.tasks import TASKS, Evaluation, get_task, seed_rngs

# ---------------------------------------------------------------------------------------------------------
# Wilson interval
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("successes, n, lo, hi", [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_known_values(successes, n, lo, hi):
    got = ar.wilson_interval(successes, n)
    assert got == pytest.approx((lo, hi), abs=6e-5)


def test_wilson_interval_closed_forms_and_symmetry():
    z2 = 1.959963984540054 ** 2
    assert ar.wilson_interval(0, 20) == (0.0, pytest.approx(z2 / (20 + z2)))
    assert ar.wilson_interval(20, 20) == (pytest.approx(20 / (20 + z2)), 1.0)
    for s in range(0, 21):
        lo, hi = ar.wilson_interval(s, 20)
        lo2, hi2 = ar.wilson_interval(20 - s, 20)
        assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)
        assert 0.0 <= lo <= s / 20 <= hi <= 1.0
    narrow, wide = ar.wilson_interval(10, 20, 0.9), ar.wilson_interval(10, 20, 0.99)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]


@pytest.mark.parametrize("args, err", [((3, 2), ValueError), ((-1, 5), ValueError), ((0, 0), ValueError),
                                       ((1.0, 5), TypeError), ((True, 5), TypeError)])
def test_wilson_interval_rejects_bad_counts(args, err):
    with pytest.raises(err):
        ar.wilson_interval(*args)


def test_wilson_interval_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        ar.wilson_interval(1, 2, confidence=1.0)


# ---------------------------------------------------------------------------------------------------------
# the verdict on synthetic evaluation histories
# ---------------------------------------------------------------------------------------------------------


def _history(interp, extrap, sparsity=None, every=1000):
    return [Evaluation(i * every, {"interpolation_mse": a, "extrapolation_mse": b,
                                   **({} if sparsity is None else {"sparsity_error": sparsity[i]})})
            for i, (a, b) in enumerate(zip(interp, extrap))]


def test_outcome_uses_extrapolation_at_best_interpolation():
    # best interpolation at step 2000 (index 2); its extrapolation is below the threshold, later ones are not
    h = _history([9.0, 1.0, 0.1, 0.5], [90.0, 5.0, 0.01, 3.0], sparsity=[0.4, 0.3, 1e-4, 0.2])
    out = ar.outcome(h, threshold=0.05)
    assert out == {"success": True, "best_step": 2000, "interpolation_mse": 0.1, "extrapolation_mse": 0.01,
                   "sparsity_error": 1e-4, "solved_at": 2000}


def test_outcome_fails_when_best_interpolation_does_not_extrapolate():
    # extrapolation dips below the threshold at step 1000, but the best interpolation is at step 3000
    h = _history([9.0, 1.0, 0.5, 0.1], [90.0, 0.01, 3.0, 0.2])
    out = ar.outcome(h, threshold=0.05)
    assert out["success"] is False and out["best_step"] == 3000 and out["solved_at"] == 1000
    assert out["sparsity_error"] is None


def test_outcome_best_among_the_last_best_range_evaluations_ties_and_nans():
    # the window of the last 3 leaves out step 0, whose interpolation MSE is lowest; NaN is skipped; of two
    # equal minima the first counts
    h = _history([0.0, float("nan"), 0.2, 0.2], [0.0, float("nan"), 0.01, 9.0])
    out = ar.outcome(h, threshold=0.05, best_range=3)
    assert out["best_step"] == 2000 and out["success"] is True and out["solved_at"] == 0
    # with the authors' 5000 a short run has every evaluation as a candidate, step 0 included
    assert ar.outcome(h, threshold=0.05)["best_step"] == 0
    # on the protocol's 5001 evaluations (steps 0 .. 5e6) step 0 is out of the window
    long = _history([0.0] + [1.0] * 5000, [0.0] + [1.0] * 5000)
    assert len(long) == 5001 and ar.outcome(long, threshold=0.05)["best_step"] == 1000


def test_outcome_of_degenerate_histories():
    assert ar.outcome([], 1.0)["success"] is False
    nan = float("nan")
    out = ar.outcome(_history([1.0, nan, nan], [1.0, nan, nan]), 0.5, best_range=2)
    # every candidate NaN: the last evaluation, as best.model.step.fn; NaN does not succeed
    assert out["success"] is False and out["best_step"] == 2000 and out["solved_at"] is None
    only = ar.outcome(_history([0.1], [0.01]), 0.05)  # the untrained model alone is a candidate
    assert only["success"] is True and only["best_step"] == 0
    as_strings = ar.outcome([Evaluation(0, {"interpolation_mse": 1.0, "extrapolation_mse": 1.0}),
                             Evaluation(5, {"interpolation_mse": "inf", "extrapolation_mse": "nan"})], 0.5,
                            best_range=1)
    assert as_strings["best_step"] == 5 and as_strings["success"] is False  # JSON strings read as floats
    with pytest.raises(ValueError):
        ar.outcome(_history([1.0], [1.0]), 0.5, best_range=0)


def test_task_success_and_criterion_use_the_threshold():
    task = ar.SimpleFunctionTask("add")
    thr = ar.SIMPLE_FUNCTION_THRESHOLDS["add"]
    assert task.threshold == thr
    assert task.success(_history([1.0, 1e-6], [1.0, thr * 0.99]))
    assert not task.success(_history([1.0, 1e-6], [1.0, thr]))  # strictly below
    assert f"{thr:.5g}" in task.criterion()


# ---------------------------------------------------------------------------------------------------------
# sparsity error
# ---------------------------------------------------------------------------------------------------------


def test_sparsity_error_of_units_and_sequential():
    nau = nn.NAU(3, 2, rng=0, dtype="float64")
    nau.params["W"][...] = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]
    assert ar.sparsity_error(nau) == 0.0
    nau.params["W"][0, 0] = -0.7
    assert ar.sparsity_error(nau) == pytest.approx(0.3)
    nmu = nn.NMU(2, 1, rng=0, dtype="float64")
    nmu.params["W"][...] = [[0.1], [0.95]]
    seq = nn.Sequential([nau, nmu])
    assert ar.sparsity_error(seq) == pytest.approx(0.3)
    nmu.params["W"][0, 0] = 0.45
    assert ar.sparsity_error(seq) == pytest.approx(0.45)


def test_effective_weights_of_nac_style_units():
    nac = nn.NAC(2, 1, rng=0, dtype="float64")
    W = ar.effective_weights(nac)["W_hat"]
    expected = np.tanh(nac.params["W_hat"]) / (1.0 + np.exp(-nac.params["M_hat"]))
    np.testing.assert_allclose(W, expected, rtol=1e-12)
    nalu = nn.NALU(2, 1, rng=0, shared_weights=False)
    assert set(ar.effective_weights(nn.Sequential([nalu]))) == {"0.W_hat_add", "0.W_hat_mul"}
    assert math.isnan(ar.sparsity_error(_NoWeights()))


class _NoWeights:
    params = {"g": np.zeros(2)}


# ---------------------------------------------------------------------------------------------------------
# simple function task
# ---------------------------------------------------------------------------------------------------------


def test_tasks_are_registered():
    for op in ar.SIMPLE_FUNCTION_OPS:
        assert isinstance(TASKS[f"simple-{op}"](), ar.SimpleFunctionTask)
    for op in ar.SINGLE_MODULE_OPS:
        assert isinstance(TASKS[f"single-{op}"](), ar.SingleModuleTask)
    assert get_task("simple-mul", seed=4).offset == np.random.RandomState(4).randint(0, 63)


def test_published_thresholds():
    # the authors' simulated thresholds at the precision of their per-seed table; the paper rounds them
    rounded = {"add": 1.4786e-5, "sub": 1.3844e-8, "mul": 0.16001, "div": 4.938e-12, "squared": 0.15947,
               "root": 8.955e-9}
    assert ar.SIMPLE_FUNCTION_THRESHOLDS["add"] == 1.47861742158438e-5
    for op, value in rounded.items():
        assert float(f"{ar.SIMPLE_FUNCTION_THRESHOLDS[op]:.5g}") == pytest.approx(value, rel=1e-12)
        assert ar.SimpleFunctionTask(op).threshold == ar.SIMPLE_FUNCTION_THRESHOLDS[op]


def test_subsets_as_the_authors_code():
    offsets = set()
    for seed in range(40):
        task = ar.SimpleFunctionTask("add", seed=seed)
        o = task.offset
        assert 0 <= o <= 62 and o == np.random.RandomState(seed).randint(0, 63)
        assert (task.a_slice.start, task.a_slice.stop) == (o, o + 25)
        assert (task.b_slice.start, task.b_slice.stop) == (o + 13, o + 38)
        offsets.add(o)
    assert len(offsets) > 10


_REFERENCE = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
              "div": lambda a, b: a / b, "squared": lambda a, b: a**2, "root": lambda a, b: a**0.5}


@pytest.mark.parametrize("op", list(ar.SIMPLE_FUNCTION_OPS))
def test_simple_function_batches_and_targets(op):
    task = ar.SimpleFunctionTask(op, seed=7)
    x, t = task.sample(np.random.default_rng(0), 128)
    assert x.shape == (128, 100) and t.shape == (128, 1)
    assert x.dtype == np.float32 and t.dtype == np.float32
    assert x.min() >= 1.0 and x.max() <= 2.0
    x64 = x.astype(np.float64)
    o = task.offset
    a, b = x64[:, o:o + 25].sum(1), x64[:, o + 13:o + 38].sum(1)
    np.testing.assert_allclose(t[:, 0], _REFERENCE[op](a, b), rtol=1e-6)
    x2, _ = task.sample(np.random.default_rng(1), 128)
    assert not np.array_equal(x, x2)  # fresh batches


def test_simple_function_test_sets():
    task = ar.SimpleFunctionTask("mul", seed=1)
    sets = task.eval_sets()
    assert set(sets) == {"interpolation", "extrapolation"}
    (xi, ti), (xe, te) = sets["interpolation"], sets["extrapolation"]
    assert xi.shape == xe.shape == (10000, 100) and ti.shape == te.shape == (10000, 1)
    assert xi.dtype == np.float32 and ti.dtype == np.float64
    assert 1.0 <= xi.min() and xi.max() <= 2.0 and 2.0 <= xe.min() and xe.max() <= 6.0
    assert xe.max() > 5.9 and xe.min() < 2.1
    o = task.offset
    x64 = xe.astype(np.float64)
    np.testing.assert_allclose(te[:, 0], x64[:, o:o + 25].sum(1) * x64[:, o + 13:o + 38].sum(1), rtol=1e-12)
    assert task.eval_sets() is sets  # built once
    other = ar.SimpleFunctionTask("mul", seed=2)
    np.testing.assert_array_equal(other.eval_sets()["interpolation"][0], xi)  # the same inputs for every seed
    x64 = np.random.RandomState(43953907).uniform(1, 2, size=(10000, 100)).astype(np.float32)
    np.testing.assert_array_equal(xi, x64)


def test_simple_function_float64():
    task = ar.SimpleFunctionTask("add", dtype="float64")
    x, t = task.sample(np.random.default_rng(0), 4)
    assert x.dtype == t.dtype == np.float64
    assert task.build_model(0).dtype == np.float64


@pytest.mark.parametrize("unit, layers", [
    (None, ["NAU", "NMU"]), ("NMU", ["NAU", "NMU"]), ("NAU", ["NAU", "NAU"]), ("nalu", ["NALU", "NALU"]),
    ("NACMul", ["NAC", "NACMul"]),
])
def test_simple_function_networks(unit, layers):
    task = ar.SimpleFunctionTask("mul", unit=unit)
    model = task.build_model(np.random.default_rng(0))
    assert [type(layer).__name__ for layer in model.layers] == layers
    assert (model.in_features, model.layers[0].out_features, model.out_features) == (100, 2, 1)
    assert task.lambda_hat == {"NAU": 0.01, "NMU": 10.0}.get(layers[-1], 0.0)


@pytest.mark.parametrize("unit, lam, start, end", [
    ("NAU", 0.01, 5_000, 50_000), ("NMU", 10.0, 1e6, 2e6), ("NAC", 0.0, 1e6, 2e6), ("NACMul", 0.0, 1e6, 2e6),
    ("NALU", 0.0, 1e6, 2e6), ("NPU", 0.0, 1e6, 2e6),
])
def test_simple_function_regularizer_follows_the_protocol_table(unit, lam, start, end):
    task = ar.SimpleFunctionTask("add", unit=unit)
    assert (task.lambda_hat, task.reg_start, task.reg_end) == (lam, start, end)
    reg = None if task.protocol is None else task.protocol.regularizer
    if reg is not None:  # the table is the one place the numbers come from
        assert (task.lambda_hat, task.reg_start, task.reg_end) == (reg.lambda_hat, reg.start, reg.end)
    short = ar.SimpleFunctionTask("add", unit=unit, steps=500_000)  # the ramp scales with the budget
    assert (short.reg_start, short.reg_end) == (start / 10, end / 10)
    assert ar.SimpleFunctionTask("add", unit=unit, lambda_hat=2.0).lambda_hat == 2.0


def test_simple_function_first_unit_and_defaults():
    task = ar.SimpleFunctionTask("add", first_unit="NAC")
    assert [type(l).__name__ for l in task.build_model(0).layers] == ["NAC", "NAU"]
    assert ar.SimpleFunctionTask("div").unit == "NACMul" and ar.SimpleFunctionTask("sub").unit == "NAU"
    t = ar.SimpleFunctionTask("mul")
    assert (t.steps, t.batch_size, t.lr, t.optimizer, t.eval_every) == (5_000_000, 128, 1e-3, "adam", 1000)
    assert (t.reg_start, t.reg_end) == (1e6, 2e6)  # the paper's schedule at the full budget
    small = ar.SimpleFunctionTask("mul", steps=50_000)
    assert (small.reg_start, small.reg_end) == (10_000, 20_000)  # scaled with the budget


@pytest.mark.parametrize("kwargs, err", [
    ({"op": "pow"}, ValueError), ({"op": "add", "unit": "Nope"}, ValueError), ({"op": "add", "steps": 0}, ValueError),
    ({"op": "add", "seed": -1}, ValueError), ({"op": "add", "reg_start": 10, "reg_end": 5}, ValueError),
    ({"op": "add", "lambda_hat": -1.0}, ValueError),
])
def test_simple_function_rejects_bad_options(kwargs, err):
    with pytest.raises(err):
        ar.SimpleFunctionTask(**kwargs)


def test_penalty_follows_the_linear_schedule():
    task = ar.SimpleFunctionTask("mul", steps=1000, lambda_hat=10.0)  # ramp from step 200 to 400
    model = task.build_model(np.random.default_rng(0))
    assert task.penalty(model, 0) is None and task.penalty(model, 200) is None
    R, grads = model.regularizer()
    for step, lam in ((300, 5.0), (400, 10.0), (999, 10.0)):
        value, g = task.penalty(model, step)
        assert value == pytest.approx(lam * float(R), rel=1e-6)
        assert set(g) == {"0.W", "1.W"} == set(grads)
        for k in g:
            assert g[k].dtype == model.params[k].dtype
            np.testing.assert_allclose(g[k], lam * grads[k], rtol=1e-6)
    nalu = ar.SimpleFunctionTask("mul", unit="NALU", steps=1000, lambda_hat=10.0)
    assert nalu.penalty(nalu.build_model(0), 999) is None  # no regularizer in a NALU network


def test_short_training_run_records_sparsity():
    task = ar.SimpleFunctionTask("add", seed=0, steps=60, eval_every=20)
    init_rng, _ = seed_rngs(0)
    model = task.build_model(init_rng)
    r = nn.train(model, task, seed=0)
    assert [e.step for e in r.evaluations] == [0, 20, 40, 60]
    assert r.loss.shape == (60,) and np.all(np.isfinite(r.loss))
    assert r.loss[-1] < r.loss[0]
    for layer in model.layers:  # the projections were applied
        assert np.all(np.abs(layer.params["W"]) <= 1.0)
    assert task.model_metrics(model) == {"sparsity_error": ar.sparsity_error(model)}


# ---------------------------------------------------------------------------------------------------------
# single-module task
# ---------------------------------------------------------------------------------------------------------


def test_single_module_ranges_are_the_papers():
    names = [(str(a), str(b)) for a, b in ar.SINGLE_MODULE_RANGES]
    assert names == [
        ("U[-20,-10]", "U[-40,-20]"), ("U[-2,-1]", "U[-6,-2]"), ("U[-1.2,-1.1]", "U[-6.1,-1.2]"),
        ("U[-0.2,-0.1]", "U[-2,-0.2]"), ("U[-2,2]", "U[-6,-2] ∪ U[2,6]"), ("U[0.1,0.2]", "U[0.2,2]"),
        ("U[1,2]", "U[2,6]"), ("U[1.1,1.2]", "U[1.2,6]"), ("U[10,20]", "U[20,40]"),
    ]


@pytest.mark.parametrize("index", range(9))
@pytest.mark.parametrize("op", list(ar.SINGLE_MODULE_OPS))
def test_single_module_data(op, index):
    task = ar.SingleModuleTask(op, range=index, eval_every=10)
    assert task.range_index == index
    interp, extrap = ar.SINGLE_MODULE_RANGES[index]
    x, t = task.sample(np.random.default_rng(index), 256)
    assert x.shape == (256, 2) and t.shape == (256, 1) and t.dtype == np.float32
    assert interp.lo <= x.min() and x.max() <= interp.hi
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(t[:, 0], _REFERENCE[op](x64[:, 0], x64[:, 1]).astype(np.float32), rtol=1e-6)
    xe, te = task.eval_sets()["extrapolation"]
    mags = np.abs(xe)
    assert extrap.lo <= mags.min() if extrap.mirror else extrap.lo <= xe.min()
    assert (mags.max() if extrap.mirror else xe.max()) <= extrap.hi
    if extrap.mirror:
        assert (xe < 0).mean() == pytest.approx(0.5, abs=0.02)
    np.testing.assert_allclose(te[:, 0], _REFERENCE[op](xe[:, 0].astype(float), xe[:, 1].astype(float)),
                               rtol=1e-12)


def test_single_module_range_names_and_defaults():
    assert ar.SingleModuleTask("mul").range_index == 6  # U[1,2] -> U[2,6]
    assert ar.SingleModuleTask("mul", range="U[-2, 2]").range_index == 4
    with pytest.raises(ValueError, match="range"):
        ar.SingleModuleTask("mul", range="U[0,1]")
    with pytest.raises(ValueError, match="range"):
        ar.SingleModuleTask("mul", range=9)
    with pytest.raises(ValueError):
        ar.SingleModuleTask("squared")
    units = {op: ar.SingleModuleTask(op).unit for op in ar.SINGLE_MODULE_OPS}
    assert units == {"add": "NAU", "sub": "NAU", "mul": "NMU", "div": "RealNPU"}
    assert ar.SingleModuleTask("mul").lambda_hat == 10.0 and ar.SingleModuleTask("add").lambda_hat == 0.01
    t = ar.SingleModuleTask("mul")
    assert (t.steps, t.reg_start, t.reg_end) == (50_000, 20_000, 35_000)
    model = t.build_model(0)
    assert isinstance(model, nn.NMU) and (model.in_features, model.out_features) == (2, 1)


@pytest.mark.parametrize("op", list(ar.SINGLE_MODULE_OPS))
@pytest.mark.parametrize("index", [0, 3, 4, 7])
def test_single_module_threshold_matches_the_authors_simulation(op, index):
    """The closed form against the authors' Monte-Carlo recipe (weights off by eps) on 200000 samples."""
    eps = 1e-5
    extrap = ar.SINGLE_MODULE_RANGES[index][1]
    x = extrap.sample(np.random.default_rng(1), (200_000, 2), np.dtype(np.float64))
    x1, x2 = x[:, 0], x[:, 1]
    exact = _REFERENCE[op](x1, x2)
    off = {"add": x1 + x2 - (abs(x1) + abs(x2)) * eps, "sub": x1 - x2 - (abs(x1) + abs(x2)) * eps,
           "mul": (1 - eps) ** 2 * x1 * x2, "div": (1 - eps) / (1 + eps) * x1 / x2}[op]
    simulated = np.mean((off - exact) ** 2)
    assert ar.single_module_threshold(op, extrap, eps) == pytest.approx(simulated, rel=0.03)


def test_range_validation():
    with pytest.raises(ValueError):
        ar.Range(2.0, 1.0)
    with pytest.raises(ValueError):
        ar.Range(-1.0, 1.0, mirror=True)


# ---------------------------------------------------------------------------------------------------------
# Sequential: projections and regularizers of its layers
# ---------------------------------------------------------------------------------------------------------


def test_sequential_projections_and_project():
    seq = nn.Sequential([nn.NAU(3, 2, rng=0), nn.NALU(2, 2, rng=1), nn.NMU(2, 1, rng=2)])
    assert set(seq.projections()) == {"0.W", "2.W"}
    seq.layers[0].params["W"][0, 0] = 3.0
    seq.layers[2].params["W"][1, 0] = -0.5
    before = seq.layers[1].params["W_hat"].copy()
    seq.project()
    assert seq.layers[0].params["W"][0, 0] == 1.0 and seq.layers[2].params["W"][1, 0] == 0.0
    np.testing.assert_array_equal(seq.layers[1].params["W_hat"], before)
    # an optimizer built on the flat params applies them under the same keys
    seq.layers[0].params["W"][0, 1] = 0.999
    opt = nn.optim.Adam(seq.params, lr=0.1, projections=seq.projections())
    grads = {k: np.full_like(v, -1.0) for k, v in seq.params.items()}
    opt.step(grads)
    assert seq.layers[0].params["W"][0, 1] == 1.0


def test_sequential_regularizer_sums_the_layers():
    nau, nmu = nn.NAU(3, 2, rng=0, dtype="float64"), nn.NMU(2, 1, rng=1, dtype="float64")
    seq = nn.Sequential([nau, nn.NAC(2, 2, rng=3, dtype="float64"), nmu])
    R, grads = seq.regularizer()
    R0, g0 = nau.regularizer()
    R2, g2 = nmu.regularizer()
    assert R == pytest.approx(R0 + R2)
    assert set(grads) == {"0.W", "2.W"}
    np.testing.assert_array_equal(grads["0.W"], g0["W"])
    np.testing.assert_array_equal(grads["2.W"], g2["W"])
    assert nn.Sequential([nn.NAC(2, 1, rng=0)]).regularizer() == (0.0, {})
    assert nn.Sequential([nn.NAC(2, 1, rng=0)]).projections() == {}
