"""The Primer's single-module benchmark: its protocol (nalu_np.primer), the task's defaults taken from it, and
``nalu-np reproduce primer2022`` (grid, record with its range column, resume, table, figure)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
from typing import Iterator

import numpy as np
import pytest

from nalu_np import arithmetic as ar
from nalu_np import cli, primer
from nalu_np import reproduce as rp
from nalu_np.units import UNITS


def test_the_beta_schedule_grows_tenfold_every_10000_steps_and_stops_at_its_end():
    mul, div = primer.PRIMER2022_MODELS["NPU"].l1["mul"], primer.PRIMER2022_MODELS["NPU"].l1["div"]
    steps = [0, 9999, 10000, 19999, 20000, 35000, 50000]
    assert [mul(t) for t in steps] == [1e-7, 1e-7, 1e-6, 1e-6, 1e-5, 1e-5, 1e-5]
    assert [div(t) for t in steps] == [1e-9, 1e-9, 1e-8, 1e-8, 1e-7, 1e-7, 1e-7]
    # in floats 1e-7 * 10 * 10 < 1e-5 and the script would grow once more; its Decimal arithmetic does not
    assert 1e-7 * 10 * 10 < 1e-5 and mul(10**6) == 1e-5
    assert primer.BetaSchedule(1e-3, 1e-1, every=5)(11) == pytest.approx(1e-1)


def test_the_models_of_the_batch_script():
    models = primer.PRIMER2022_MODELS
    assert list(models) == ["NMU", "MNAC", "NALU", "NPU", "RealNPU", "iNALU", "G-NALU", "NAC", "NAU"]
    for m in models.values():
        assert m.ops and set(m.ops) <= set(ar.SINGLE_MODULE_OPS) and m.flags and m.sources
        assert m.unit is None or (m.unit in UNITS and m.init in UNITS[m.unit].inits)
        assert m.available == (m.unit is not None)
    assert all(p.available for p in models.values())
    assert models["G-NALU"].unit == "GNALU" and models["G-NALU"].init == "madsen2020"
    assert models["iNALU"].recipe is primer.INALU_RECIPE
    assert models["NPU"].options == models["RealNPU"].options == {"eps": primer.FLOAT32_EPS, "clamp_gate": True}
    assert primer.module_for_unit("NMU", "mul") is models["NMU"] and primer.module_for_unit("NMU", "add") is None
    assert primer.module_for_unit("NACMul", "div") is models["MNAC"]


@pytest.mark.parametrize("op, unit, lr, lam, init", [
    ("mul", "NMU", 1e-3, 10.0, "madsen2020"), ("add", "NAU", 1e-3, 0.01, "madsen2020"),
    ("sub", "NAC", 1e-3, 0.0, "madsen2020"), ("div", "NACMul", 1e-3, 0.0, "madsen2020"),
    ("mul", "NALU", 1e-3, 0.0, "madsen2020"), ("div", "RealNPU", 5e-3, 0.0, "heim2020"),
])
def test_the_task_takes_its_defaults_from_the_protocol(op, unit, lr, lam, init):
    task = ar.SingleModuleTask(op, unit=unit)
    assert task.protocol is primer.module_for_unit(unit, op)
    assert (task.lr, task.lambda_hat, task.reg_start, task.reg_end) == (lr, lam, 20000, 35000)
    layer = task.build_model(0)
    assert layer.init == init
    for key, value in task.protocol.options.items():
        assert getattr(layer, key) == value
    assert task.epsilon == primer.PRIMER2022_PROTOCOL.epsilon == 1e-4
    assert task.threshold == ar.single_module_threshold(op, task.extrapolation_range, 1e-4)
    assert (task.l1 is None) == (unit != "RealNPU")
    # outside the benchmark: lr 1e-3, no regularizer, the unit's defaults
    other = ar.SingleModuleTask("add", unit="NMU")
    assert other.protocol is None and other.lr == 1e-3 and other.lambda_hat == 0.0 and other.l1 is None


def test_the_l1_term_of_the_npu_recipe():
    task = ar.SingleModuleTask("mul", unit="NPU", dtype="float64")
    layer = task.build_model(0)
    layer.params["W_i"][...] = [[0.3], [-0.2]]
    layer.params["g"][...] = [0.5, -0.1]  # the raw gate counts too
    for step, beta in ((0, 1e-7), (15000, 1e-6), (40000, 1e-5)):
        value, grads = task.penalty(layer, step)
        assert value == pytest.approx(beta * sum(np.abs(p).sum() for p in layer.params.values()), rel=1e-12)
        assert set(grads) == set(layer.params)
        for k, p in layer.params.items():
            np.testing.assert_array_equal(grads[k], beta * np.sign(p))
    short = ar.SingleModuleTask("mul", unit="NPU", steps=5000)  # the schedule's steps scale with the budget
    assert short.l1.every == 1000 and short.l1(2000) == 1e-5
    # the NMU's penalty is its regularizer's alone
    nmu = ar.SingleModuleTask("mul", unit="NMU", dtype="float64")
    model = nmu.build_model(0)
    value, grads = nmu.penalty(model, 40000)
    assert set(grads) == {"W"} and value == pytest.approx(10.0 * model.regularizer()[0])


@contextlib.contextmanager
def _without_unit(model: str) -> Iterator[None]:
    """The Primer's table with ``model``'s unit taken away, as for a published model nalu-np lacks."""
    table = primer.PRIMER2022_MODELS
    saved = table[model]
    table[model] = dataclasses.replace(saved, unit=None, init=None)
    try:
        yield
    finally:
        table[model] = saved


def test_the_grid_and_its_cells():
    cells = rp.primer_grid()
    # NMU ×; MNAC, NPU, RealNPU × ÷; NALU, iNALU on all four; NAC, NAU + −
    assert len(cells) == (1 + 2 + 2 + 2 + 4 + 4 + 4 + 2 + 2) * 9
    assert {(m.name, op) for m, op, _ in cells} >= {("NMU", "mul"), ("MNAC", "div"), ("NAU", "sub")}
    assert [i for m, op, i in rp.primer_grid(["NMU"], ranges=["U[1,2]", "0"])] == [6, 0]
    with pytest.raises(ValueError, match="needs a unit nalu-np does not have yet \\(the authors' NALU with "
                                         "--nalu-gate golden-ratio"), _without_unit("G-NALU"):
        rp.primer_grid(["G-NALU"])
    with pytest.raises(ValueError, match="unknown interpolation range 'U\\[0,1\\]'"):
        rp.primer_grid(["NMU"], ranges=["U[0,1]"])
    config = rp.primer_config_of(primer.PRIMER2022_MODELS["NAU"], "sub", 4, 1000)
    assert (config.task, config.unit, dict(config.options)) == ("single-sub", "NAU", {"range": 4, "steps": 1000})
    assert rp.range_label(4) == "U[-2,2]" and rp.range_label(6) == "U[1,2]"


def test_reproduce_primer2022_runs_resumes_and_tabulates(tmp_path, capsys):
    record, out = str(tmp_path / "primer.csv"), str(tmp_path / "runs")
    argv = ["reproduce", "primer2022", "--models", "NMU", "--ranges", "U[1,2]", "--seeds", "2", "--steps", "300",
            "--record", record, "--out", out, "--workers", "1", "--quiet"]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert "| NMU | mul | U[1,2] | 2 |" in first
    with open(record, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["range"] for r in rows] == ["U[1,2]", "U[1,2]"] and sorted(r["seed"] for r in rows) == ["0", "1"]
    assert list(rows[0]) == list(rp.PRIMER_COLUMNS)
    assert cli.main(argv + ["--seeds", "3"]) == 0  # one new seed only
    assert len(rp.read_record(record, rp.PRIMER_COLUMNS)) == 3
    capsys.readouterr()
    pytest.importorskip("matplotlib")
    png = str(tmp_path / "primer.png")
    assert cli.main(argv + ["--summary", "--plot", png]) == 0
    assert os.path.getsize(png) > 0 and "figure written" in capsys.readouterr().out


def test_reproduce_refuses_what_it_cannot_run(capsys):
    with _without_unit("G-NALU"):  # a published model whose unit nalu-np lacks
        assert cli.main(["reproduce", "primer2022", "--models", "G-NALU", "--summary"]) == 2
    assert "needs a unit nalu-np does not have yet" in capsys.readouterr().err
    assert cli.main(["reproduce", "madsen2020", "--ranges", "0", "--summary"]) == 2
    assert "--ranges belongs to primer2022" in capsys.readouterr().err
    assert cli.main(["reproduce", "primer2022", "--ops", "squared", "--summary"]) == 2
    assert "unknown op 'squared' of the single-module benchmark" in capsys.readouterr().err


def test_the_inalu_recipe_stalls_as_the_script_decides():
    recipe = primer.INALU_RECIPE
    flat = [2.0] * 5001
    assert recipe.stalled(5010, flat) and not recipe.stalled(5011, flat)  # only every 10th step
    assert not recipe.stalled(5010, flat[:5000])  # more than 5000 stored losses
    assert not recipe.stalled(5010, [0.5] * 5001)  # the second half's mean must exceed 1
    improving = list(np.linspace(10.0, 2.0, 5001))
    assert not recipe.stalled(5010, improving)  # the first half is worse than the second half plus its std
    assert not recipe.stalled(0, flat)


def test_the_saturation_regularizer_and_its_gradient():
    rng = np.random.default_rng(1)
    params = {"W_hat_add": rng.normal(0, 15, (2, 1)), "g": np.array([25.0]), "M_hat_mul": np.array([[0.0], [-3.0]])}
    value, grads = primer.saturation_regularizer(params)
    assert value == pytest.approx(sum(np.maximum(20 - np.abs(p), 0).mean() for p in params.values()))
    h = 1e-6
    for k, p in params.items():
        for idx in np.ndindex(p.shape):
            if p[idx] == 0:
                assert grads[k][idx] == 0  # the min's tie at 0 splits the gradient
                continue
            bumped = {**params, k: p.copy()}
            bumped[k][idx] += h
            numeric = (primer.saturation_regularizer(bumped)[0] - value) / h
            assert grads[k][idx] == pytest.approx(numeric, abs=1e-5)
    assert grads["g"][0] == 0  # saturated: |g| >= 20


def test_the_inalu_recipe_in_training(monkeypatch):
    from nalu_np import training
    from nalu_np.tasks import seed_rngs

    task = ar.SingleModuleTask("div", unit="INALU", steps=300, eval_every=100, range="U[-2,2]")
    assert task.clip_value == 0.1
    model = task.build_model(seed_rngs(3)[0])
    result = training.train(model, task, seed=3, engine="python", backend="numpy", progress=False)
    assert result.optimizer["hyper"]["clip_value"] == 0.1
    # a recipe that always finds the run stalled re-initialises it every 10 steps once 20 losses are stored
    eager = primer.InaluRecipe(min_losses=20, loss_threshold=-1.0)  # constant stored losses: always stalled
    seen = []
    original = type(model).reinitialise

    def spy(self, rng):
        seen.append({k: v.copy() for k, v in self.params.items()})
        original(self, rng)

    monkeypatch.setattr(type(model), "reinitialise", spy)
    task = ar.SingleModuleTask("div", unit="INALU", steps=100, eval_every=1000)
    task.recipe = eager
    model = task.build_model(seed_rngs(3)[0])
    training.train(model, task, seed=3, engine="python", backend="numpy", progress=False)
    # at steps 20 (21 losses stored), 50 and 80 (30 stored since the last one; at 40 and 70 only 20)
    assert task._run.reinits == 3
    assert len(seen) == 1 + 3  # the skipped initial draw, then the reinitialisations


@pytest.mark.parametrize("unit", ["NPU", "RealNPU"])
def test_the_clamped_gate_of_the_primers_npu(unit):
    import nalu_np as nn

    rng = np.random.default_rng(5)
    layer = getattr(nn, unit)(3, 2, rng=0, dtype="float64", clamp_gate=True)
    plain = getattr(nn, unit)(3, 2, rng=0, dtype="float64")
    layer.params["g"][...] = [1.3, -0.2, 1.0]  # 1.0: on the bound, the gradient passes
    plain.params["g"][...] = [1.0, 0.0, 1.0]  # what the forward pass sees
    x = rng.uniform(0.5, 2.0, (4, 3)) * rng.choice([-1.0, 1.0], (4, 3))
    y, cache = layer.forward(x)
    np.testing.assert_array_equal(y, plain.forward(x)[0])
    dy = rng.normal(size=y.shape)
    dx, grads = layer.backward(dy, cache)
    _, plain_grads = plain.backward(dy, plain.forward(x)[1])
    np.testing.assert_array_equal(grads["g"], plain_grads["g"] * [0.0, 0.0, 1.0])  # no gradient outside [0, 1]
    np.testing.assert_array_equal(grads["W_r"], plain_grads["W_r"])
    assert layer.projections() == {} and set(plain.projections()) == {"g"}
    rebuilt = nn.checkpoint.build_model(layer.config())
    assert rebuilt.clamp_gate is True
    with pytest.raises(TypeError, match="clamp_gate must be True or False"):
        getattr(nn, unit)(3, 2, clamp_gate="yes")


def test_the_authors_reruns_and_the_comparison():
    reruns = primer.authors_reruns()
    assert {(r["model"], r["op"]) for r in reruns} == {("NAU", "add"), ("NMU", "mul")}
    labels = {rp.range_label(i) for i in range(9)}
    assert all(r["range"] in labels and r["seeds"] == 25 and 0 <= r["successes"] <= 25 for r in reruns)
    full = primer.PRIMER2022_PROTOCOL.steps
    rows = [{"model": "NMU", "op": "mul", "range": "U[-2,-1]", "seed": s, "steps": full, "success": s < 3,
             "solved_at": 1000 if s < 3 else None, "sparsity_error": 0.0} for s in range(10)]
    table = rp.primer_table(rows, full)
    assert "| NMU | mul | U[-2,-1] | 10 | 30% [11%, 60%] | 80% [61%, 91%] | NO |" in table
    short = [{**r, "steps": 1000} for r in rows]
    assert "| 30% [11%, 60%] | — | — |" in rp.primer_table(short, 1000)  # theirs ran the full budget
