"""The published studies: the protocol table, the published data shipped with the package, our table from
per-seed records and its comparison with the published one."""

import math
import subprocess
import sys

import numpy as np
import pytest

from nalu_np import arithmetic as ar
from nalu_np import layers
from nalu_np import studies as st
from nalu_np.stats import mean, median, wilson_interval
from nalu_np.units import UNITS

OPS = ("add", "sub", "mul", "div", "squared", "root")
MODELS = ("NAC_mul_NMU", "NAC_mul_sigma", "NAC_mul", "NAC_add", "Gated_NAU_NMU", "Linear", "NALU", "NAU", "NMU",
          "ReLU", "ReLU6")


# ---------------------------------------------------------------------------------------------------------
# the protocol table
# ---------------------------------------------------------------------------------------------------------


def test_common_protocol():
    p = st.MADSEN2020_PROTOCOL
    assert (p.steps, p.batch_size, p.optimizer, p.lr, p.eval_every, p.eval_size) == (
        5_000_000, 128, "adam", 1e-3, 1000, 10_000)
    assert (p.input_size, p.hidden_size, p.subset_ratio, p.overlap_ratio) == (100, 2, 0.25, 0.5)
    assert (p.interpolation_range, p.extrapolation_range, p.seeds) == ((1.0, 2.0), (2.0, 6.0), 100)
    assert p.test_seeds == ar.SimpleFunctionTask._TEST_SEEDS
    assert (p.regularizer.lambda_hat, p.regularizer.start, p.regularizer.end) == (10.0, 1e6, 2e6)
    assert set(p.thresholds) == set(OPS) and p.best_range == 5000
    # the task's settings are the protocol's
    task = ar.SimpleFunctionTask("mul")
    assert (task.steps, task.batch_size, task.lr, task.eval_every, task.eval_size) == (
        p.steps, p.batch_size, p.lr, p.eval_every, p.eval_size)
    assert task.in_features == p.input_size and task.hidden_size == p.hidden_size
    assert task.subset_size == p.input_size * p.subset_ratio
    assert (task.interpolation_range.lo, task.interpolation_range.hi) == p.interpolation_range
    assert (task.extrapolation_range.lo, task.extrapolation_range.hi) == p.extrapolation_range


@pytest.mark.parametrize("name, flags, units, reg", [
    ("NAC_mul_NMU", "--layer-type ReRegualizedLinearPosNAC --nac-mul normal --first-layer ReRegualizedLinearNAC",
     ("NAU", "ClippedNACMul"), (10.0, 1_000_000, 2_000_000)),
    ("NAC_mul_sigma", "--layer-type PosNAC --nac-mul normal --first-layer NAC", ("NAC", "SigmoidNACMul"), None),
    ("NAC_mul", "--layer-type NAC --nac-mul normal", ("NAC", "NACMul"), None),
    ("NAC_add", "--layer-type NAC", ("NAC", "NAC"), None),
    ("Gated_NAU_NMU", "--layer-type ReRegualizedLinearNALU --nalu-two-nac --nalu-mul mnac",
     ("GatedNAUNMU", "GatedNAUNMU"), (10.0, 1_000_000, 2_000_000)),
    ("Linear", "--layer-type linear", ("Linear", "Linear"), None),
    ("NALU", "--layer-type NALU", ("NALU", "NALU"), None),
    ("NAU", "--layer-type ReRegualizedLinearNAC --regualizer 0.01 --regualizer-scaling-start 5000 "
            "--regualizer-scaling-end 50000", ("NAU", "NAU"), (0.01, 5_000, 50_000)),
    ("NMU", "--layer-type ReRegualizedLinearNAC --nac-mul mnac", ("NAU", "NMU"), (10.0, 1_000_000, 2_000_000)),
    ("ReLU", "--layer-type ReLU", ("ReLU", "Linear"), None),
    ("ReLU6", "--layer-type ReLU6", ("ReLU6", "Linear"), None),
])
def test_model_protocols(name, flags, units, reg):
    m = st.MADSEN2020_MODELS[name]
    assert (m.name, m.flags, m.units) == (name, flags, units)
    assert m.available == (None not in units)
    assert (None if m.regularizer is None else (m.regularizer.lambda_hat, m.regularizer.start,
                                                 m.regularizer.end)) == reg
    assert m.nac_mul == ("normal" if "--nac-mul normal" in flags else "mnac" if "--nac-mul mnac" in flags
                         else "none")
    assert m.sources and all(not s.startswith("/") for s in m.sources)
    assert all(u is None or u in UNITS for u in m.units)
    assert len(m.inits) == 2 and all(m.inits)
    for unit, init in zip(m.units, m.unit_inits):  # a named nalu-np init exists for that unit
        assert init is None or init in UNITS[unit].inits
    assert m.available and m.init_available  # every model of the table has nalu-np units and inits


def test_table_order_and_lookup():
    assert tuple(st.MADSEN2020_MODELS) == MODELS
    for m in st.MADSEN2020_MODELS.values():
        if m.available:
            assert st.model_for_unit(m.units[1], m.units[0]) is m
            if m.units[1] != "Linear":  # the second layer of Linear, ReLU and ReLU6
                assert st.model_for_unit(m.units[1]) is m
    assert st.model_for_unit("Linear") is st.MADSEN2020_MODELS["Linear"]
    assert st.model_for_unit("NPU") is None and st.model_for_unit("INALU") is None


def test_the_variants_build_the_authors_networks():
    """NAC•,NMU, NAC•,σ and Gated NAU/NMU: the task's defaults (first layer, regularizer) are the model's, and the
    network is the authors' with their initialisations."""
    task = ar.SimpleFunctionTask("mul", unit="ClippedNACMul", first_unit="NAU")
    assert task.protocol is st.MADSEN2020_MODELS["NAC_mul_NMU"] and task.lambda_hat == 10.0
    nau, clipped = task.build_model(0).layers
    assert (type(nau).__name__, type(clipped).__name__, clipped.eps) == ("NAU", "ClippedNACMul", 1e-7)
    assert np.abs(nau.params["W"]).max() <= min(0.5, np.sqrt(6 / 102))
    assert 0.25 <= clipped.params["W"].min() and clipped.params["W"].max() <= 0.75
    # without first_unit the task builds the same network (the model's first layer)
    default = ar.SimpleFunctionTask("mul", unit="ClippedNACMul").build_model(0)
    assert [type(layer).__name__ for layer in default.layers] == ["NAU", "ClippedNACMul"]
    sigma = ar.SimpleFunctionTask("mul", unit="SigmoidNACMul")
    assert sigma.protocol is st.MADSEN2020_MODELS["NAC_mul_sigma"] and sigma.lambda_hat == 0.0
    assert [(type(layer).__name__, layer.init) for layer in sigma.build_model(0).layers] == [
        ("NAC", "madsen2020"), ("SigmoidNACMul", "madsen2020")]
    gated = ar.SimpleFunctionTask("mul", unit="GatedNAUNMU")
    assert gated.protocol is st.MADSEN2020_MODELS["Gated_NAU_NMU"] and gated.lambda_hat == 10.0
    first, second = gated.build_model(0).layers
    assert (first.in_features, first.out_features, second.out_features) == (100, 2, 1)
    assert type(first).__name__ == type(second).__name__ == "GatedNAUNMU"


def test_tasks_build_the_protocol_networks():
    for m in st.MADSEN2020_MODELS.values():
        if not m.available:
            continue
        task = ar.SimpleFunctionTask("add", unit=m.units[1], first_unit=m.units[0])
        assert task.protocol is m
        model = task.build_model(0)
        assert tuple(type(layer).__name__ for layer in model.layers) == m.units
        assert tuple(layer.init for layer in model.layers) == m.unit_inits  # the authors' initialisations
        # an explicit preset still wins where the units have the seed articles' presets
        if all(layers.supports_presets(u) for u in m.units):
            assert {layer.init for layer in task.build_model(0, preset="seed-000").layers} == {"seed-000"}


# ---------------------------------------------------------------------------------------------------------
# the published data
# ---------------------------------------------------------------------------------------------------------


def test_published_table_shape():
    rows = st.published_table()
    assert len(rows) == 66 and {(r["model"], r["op"]) for r in rows} == {(m, o) for m in MODELS for o in OPS}
    for r in rows:
        assert r["success_lower"] <= r["success_rate"] <= r["success_upper"]
        if r["success_rate"] == 0:  # "---": nothing solved, nothing to summarize
            assert r["solved_at_median"] is None and r["sparsity_error_mean"] is None
        else:
            assert r["solved_at_median"] > 0 and 0 <= r["sparsity_error_mean"] <= 0.5


def _row(model, op):
    return next(r for r in st.published_table() if (r["model"], r["op"]) == (model, op))


def test_published_cells_checked_by_hand():
    # paper/results/function_task_static_all.tex, read by eye
    nmu = _row("NMU", "mul")  # 98% +1% -5%, 1.4e6, 1.5e6 +5.0e4 -6.6e4, 4.2e-7 +-2.9e-8
    assert (nmu["success_rate"], nmu["success_lower"], nmu["success_upper"]) == pytest.approx((0.98, 0.93, 0.99))
    assert (nmu["solved_at_median"], nmu["solved_at_mean"]) == (1.4e6, 1.5e6)
    assert (nmu["solved_at_lower"], nmu["solved_at_upper"]) == pytest.approx((1.5e6 - 6.6e4, 1.5e6 + 5.0e4))
    assert nmu["sparsity_error_mean"] == 4.2e-7
    assert (nmu["sparsity_error_lower"], nmu["sparsity_error_upper"]) == pytest.approx((3.91e-7, 4.49e-7))
    nau = _row("NAU", "add")  # 100% +0% -4%, 1.8e4, 3.9e5 +4.5e4 -3.7e4, 3.2e-5 +-1.3e-5
    assert (nau["success_rate"], nau["success_lower"], nau["success_upper"]) == pytest.approx((1.0, 0.96, 1.0))
    assert (nau["solved_at_median"], nau["solved_at_mean"], nau["sparsity_error_mean"]) == (1.8e4, 3.9e5, 3.2e-5)
    nalu = _row("NALU", "root")  # 2% +5% -1%, 2.6e6, 3.3e6, 5.0e-1 +2.5e-6 -8.0e-6
    assert (nalu["success_rate"], nalu["solved_at_median"], nalu["sparsity_error_mean"]) == (0.02, 2.6e6, 0.5)
    assert nalu["sparsity_error_upper"] == pytest.approx(0.5 + 2.5e-6)
    pos = _row("NAC_mul_NMU", "root")  # 3%, 1.0e6, 1.0e6 with a NaN interval
    assert pos["solved_at_mean"] == 1.0e6 and math.isnan(pos["solved_at_lower"])
    div = _row("NMU", "div")  # 0% +4% -0%, ---
    assert (div["success_rate"], div["success_upper"], div["solved_at_mean"]) == (0.0, 0.04, None)


def test_published_seeds_shape():
    seeds = st.published_seeds()
    cells = {(r["model"], r["op"]) for r in seeds}
    assert cells == {(m, o) for m in MODELS if m != "Gated_NAU_NMU" for o in OPS}
    assert len(seeds) == 6000 and {r["seed"] for r in seeds} == set(range(100))
    assert all(r["solved_at"] is not None for r in seeds if r["success"])


def test_data_is_read_on_first_use_only():
    # importing the package, the tasks and the studies reads no data file
    code = ("import importlib.resources as r\n"
            "def refuse(*a, **k): raise AssertionError('data read at import')\n"
            "r.files = refuse\n"
            "import nalu_np, nalu_np.arithmetic, nalu_np.studies\n"
            "nalu_np.arithmetic.SimpleFunctionTask('add')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------------------
# our table and the comparison
# ---------------------------------------------------------------------------------------------------------


def test_published_seeds_reproduce_the_published_table():
    # the authors' own per-seed records give the published success rates, intervals and medians exactly
    # (to the printed precision); every cell agrees
    published = {(r["model"], r["op"]): r for r in st.published_table()}
    rows = st.compare(st.published_seeds())
    assert len(rows) == 60 and all(r["agree"] for r in rows)
    for r in rows:
        ours, theirs = r["ours"], published[(r["model"], r["op"])]
        assert ours["n"] == 100
        assert ours["success_rate"] == pytest.approx(theirs["success_rate"])
        assert round(ours["success_lower"], 2) == pytest.approx(theirs["success_lower"])
        assert round(ours["success_upper"], 2) == pytest.approx(theirs["success_upper"])
        if theirs["solved_at_median"] is None:
            assert ours["solved_at_median"] is None
        else:
            assert float(f"{ours['solved_at_median']:.1e}") == theirs["solved_at_median"]


def _records(model, op, outcomes):
    return [{"model": model, "op": op, "seed": i, "success": s, "solved_at": at, "sparsity_error": e}
            for i, (s, at, e) in enumerate(outcomes)]


def test_summarize_by_hand():
    recs = _records("NMU", "mul", [(True, 1000, 0.1), (True, 3000, 0.3), (False, None, 0.4), (True, 4000, None)])
    cell = st.summarize(recs)[("NMU", "mul")]
    assert (cell["n"], cell["successes"], cell["success_rate"]) == (4, 3, 0.75)
    assert (cell["success_lower"], cell["success_upper"]) == wilson_interval(3, 4)
    assert cell["solved_at_median"] == 3000 and cell["solved_at_mean"] == pytest.approx(8000 / 3)
    assert cell["sparsity_error_mean"] == pytest.approx(0.2)  # successes only, unrecorded left out
    none = st.summarize(_records("NAU", "div", [(False, None, 0.2)] * 3))[("NAU", "div")]
    assert none["success_rate"] == 0 and none["solved_at_median"] is None and none["sparsity_error_mean"] is None
    with pytest.raises(ValueError, match="twice"):
        st.summarize(recs + recs[:1])


def test_compare_flags_disagreement():
    # the NMU solves 98/100 of mul; 50/100 is far outside the published interval, 97/100 inside
    bad = st.compare(_records("NMU", "mul", [(i < 50, 1000 if i < 50 else None, 0.0) for i in range(100)]))
    good = st.compare(_records("NMU", "mul", [(i < 97, 1000 if i < 97 else None, 0.0) for i in range(100)]))
    assert [(r["model"], r["op"], r["agree"]) for r in bad] == [("NMU", "mul", False)]
    assert good[0]["agree"] is True and good[0]["theirs"]["success_rate"] == 0.98
    assert st.compare(_records("Nope", "mul", [(True, 1, 0.0)])) == []  # no published cell, no row


def test_median_and_mean_as_r():
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([4.0, 1.0, 2.0, 3.0]) == 2.5 and median([]) is None
    assert mean([1.0, 2.0]) == 1.5 and mean([]) is None


@pytest.mark.parametrize("successes, lo, hi", [
    # binom::binom.confint(x, 100, method = "wilson"), as printed in the table: 93% +4% -7%, 31% +10% -8%,
    # 2% +5% -1%, 0% +4% -0%
    (93, 0.86, 0.97), (31, 0.23, 0.41), (2, 0.01, 0.07), (0, 0.0, 0.04),
])
def test_wilson_matches_the_printed_intervals(successes, lo, hi):
    got = wilson_interval(successes, 100)
    assert (round(got[0], 2), round(got[1], 2)) == (lo, hi)
