"""Multi-seed sweeps: results on disk, resuming, failures, executors, summary table and CLI."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import _workers, sweep as sw

TINY = {"steps": 20, "eval_every": 10}


class CountingExecutor(cf.Executor):
    """Passes runs to ``inner`` and remembers them; the seeds in ``fail`` get a future that raised."""

    def __init__(self, inner: cf.Executor, fail: set[int] = frozenset()) -> None:
        self.inner, self.fail, self.calls = inner, set(fail), []

    def submit(self, fn, /, *args, **kwargs):
        config, seed = args[0], args[1]
        self.calls.append((config.key, seed))
        if seed in self.fail:
            fut = cf.Future()
            fut.set_exception(RuntimeError(f"worker lost while running seed {seed}"))
            return fut
        return self.inner.submit(fn, *args, **kwargs)


def _files(out, config):
    d = os.path.join(out, config.key)
    return sorted(n for n in os.listdir(d) if n.startswith("seed-"))


def _mtimes(out, config):
    d = os.path.join(out, config.key)
    return {n: os.stat(os.path.join(d, n)).st_mtime_ns for n in _files(out, config)}


def test_sweep_writes_one_file_per_seed_and_resumes(tmp_path):
    out = str(tmp_path)
    configs = [sw.Config("simple-add", "NAU", TINY), sw.Config("simple-mul", "NMU", TINY)]
    with cf.ThreadPoolExecutor(2) as pool:
        ex = CountingExecutor(pool)
        rows = sw.run_sweep(configs, range(3), out, executor=ex, progress=False)
        assert sorted(ex.calls) == sorted((c.key, s) for c in configs for s in range(3))
        for c in configs:
            assert _files(out, c) == ["seed-000000.json", "seed-000001.json", "seed-000002.json"]
            with open(os.path.join(out, c.key, "config.json")) as f:
                assert json.load(f) == c.to_dict()
        before = {c: _mtimes(out, c) for c in configs}

        again = CountingExecutor(pool)
        rows2 = sw.run_sweep(configs, range(3), out, executor=again, progress=False)
        assert again.calls == []  # nothing runs twice
        assert {c: _mtimes(out, c) for c in configs} == before
        assert rows2 == rows

        more = CountingExecutor(pool)
        rows3 = sw.run_sweep(configs, range(4), out, executor=more, progress=False)
        assert sorted(more.calls) == sorted((c.key, 3) for c in configs)  # only the new seed
    assert [r.seeds for r in rows] == [3, 3] and [r.seeds for r in rows3] == [4, 4]
    assert [(r.task, r.op, r.unit, r.steps) for r in rows] == [("simple-add", "+", "NAU", 20),
                                                               ("simple-mul", "×", "NMU", 20)]


def test_a_crashed_run_is_lost_alone_and_rerun_later(tmp_path, capsys):
    out = str(tmp_path)
    config = sw.Config("simple-sub", "NAU", TINY)
    with cf.ThreadPoolExecutor(2) as pool:
        with pytest.raises(RuntimeError, match="(?s)1 run\\(s\\) failed.*seed 1"):
            sw.run_sweep(config, range(3), out, executor=CountingExecutor(pool, fail={1}), progress=True)
        assert _files(out, config) == ["seed-000000.json", "seed-000002.json"]
        assert not [n for n in os.listdir(os.path.join(out, config.key)) if n.startswith(".tmp")]
        assert "1 errors" in capsys.readouterr().err  # the progress line on stderr counts it
        ex = CountingExecutor(pool)
        rows = sw.run_sweep(config, range(3), out, executor=ex, progress=False)
    assert ex.calls == [(config.key, 1)]
    assert rows[0].seeds == 3


def test_records_hold_the_verdict_and_the_run(tmp_path):
    out = str(tmp_path)
    config = sw.Config("simple-mul", "NMU", TINY)
    with cf.ThreadPoolExecutor(1) as pool:
        sw.run_sweep(config, [5], out, executor=pool, progress=False)
    with open(os.path.join(out, config.key, "seed-000005.json")) as f:
        rec = json.load(f)
    assert rec["seed"] == 5 and rec["task"] == "simple-mul" and rec["model"] == "NAU -> NMU"
    assert rec["engine"] in ("python", "compiled")
    assert rec["threshold"] == pytest.approx(0.16001, rel=1e-4) and rec["steps"] == 20 and rec["success"] is False
    assert rec["best_step"] in (10, 20) and rec["solved_at"] is None
    assert 0.0 <= rec["sparsity_error"] <= 0.5
    steps = [e["step"] for e in rec["run"]["evaluations"]]
    assert steps == [0, 10, 20]
    assert all("sparsity_error" in e for e in rec["run"]["evaluations"])
    assert rec == sw.load_results(out)[config][0]


def test_process_pool_gives_the_same_runs_as_threads(tmp_path):
    config = sw.Config("simple-add", "NAU", TINY)
    with cf.ProcessPoolExecutor(2) as procs:
        sw.run_sweep(config, range(2), str(tmp_path / "p"), executor=procs, progress=False)
    with cf.ThreadPoolExecutor(2) as threads:
        sw.run_sweep(config, range(2), str(tmp_path / "t"), executor=threads, progress=False)
    a, b = sw.load_results(str(tmp_path / "p"))[config], sw.load_results(str(tmp_path / "t"))[config]
    for ra, rb in zip(a, b):
        assert ra["run"]["params"] == rb["run"]["params"]  # bit for bit: a seed is a seed in any process
        assert ra["run"]["loss_curve"] == rb["run"]["loss_curve"]


def test_default_executor_is_a_local_process_pool(tmp_path):
    rows = sw.run_sweep(sw.Config("single-add", None, TINY), [0], str(tmp_path), max_workers=1, progress=False)
    assert rows[0].unit == "NAU" and rows[0].seeds == 1


def test_bad_sweeps_fail_before_running(tmp_path):
    ex = CountingExecutor(cf.ThreadPoolExecutor(1))
    with pytest.raises(ValueError, match="unknown task"):
        sw.run_sweep(sw.Config("no-such-task"), [0], str(tmp_path), executor=ex)
    with pytest.raises(ValueError, match="unknown unit"):
        sw.run_sweep(sw.Config("simple-add", "Nope"), [0], str(tmp_path), executor=ex)
    with pytest.raises(ValueError):
        sw.run_sweep(sw.Config("simple-add"), [], str(tmp_path), executor=ex)
    assert ex.calls == []


def test_write_atomic_never_leaves_a_partial_file(tmp_path):
    path = str(tmp_path / "seed-000000.json")
    sw._write_atomic(path, {"ok": 1})
    with pytest.raises(TypeError):
        sw._write_atomic(path, {"ok": 2, "bad": object()})  # fails half-way through json.dump
    with open(path) as f:
        assert json.load(f) == {"ok": 1}
    assert os.listdir(tmp_path) == ["seed-000000.json"]


def test_config_keys():
    a = sw.Config("simple-mul", "NMU", {"steps": 10})
    assert a.key == sw.Config("simple-mul", "NMU", {"steps": 10}).key
    assert len({a.key, sw.Config("simple-mul", "NMU", {"steps": 11}).key, sw.Config("simple-mul", "NAU").key,
                sw.Config("simple-mul").key}) == 4
    assert {a: 1}[sw.Config("simple-mul", "NMU", {"steps": 10})] == 1


def _rec(seed, success, solved_at=None, sparsity=None):
    return {"seed": seed, "success": success, "solved_at": solved_at, "sparsity_error": sparsity,
            "task": "simple-mul", "op": "×", "unit": "NMU", "steps": 1000}


def test_summary_rows_and_table():
    config = sw.Config("simple-mul", "NMU")
    records = [_rec(0, True, 3000, 1e-3), _rec(1, False, 5000, 0.4), _rec(2, True, 1000, 3e-3),
               _rec(3, True, 2000, 2e-3)]
    (row,) = sw.summarize({config: records})
    assert (row.seeds, row.successes, row.rate) == (4, 3, 0.75)
    assert (row.ci_low, row.ci_high) == pytest.approx((0.3006, 0.9544), abs=1e-4)
    assert row.median_solved_at == 2000  # over the solved runs only
    assert row.mean_sparsity_error == pytest.approx(2e-3)
    table = sw.markdown_table([row])
    assert "| simple-mul | × | NMU | 1,000 | 4 | 3/4 (75%) | [30%, 95%] | 2,000 | 2.00e-03 |" in table
    (none,) = sw.summarize({config: [_rec(0, False)]})
    assert none.median_solved_at is None and "| — | — |" in sw.markdown_table([none])
    assert sw.summarize({config: []}) == []


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    row = sw.summarize({sw.Config("simple-mul"): [_rec(0, True, 1, 0.0), _rec(1, False)]})
    path = str(tmp_path / "rates.png")
    assert sw.plot(row, path) == f"plot written to {path}"
    assert os.path.getsize(path) > 0


def test_cli_runs_resumes_and_summarises(tmp_path, capsys):
    out = str(tmp_path)
    argv = ["simple-add:NAU", "single-mul", "--seeds", "2", "--steps", "20", "--set", "eval_every=10",
            "--out", out, "--workers", "1", "--quiet"]
    assert sw.main(argv) == 0
    first = capsys.readouterr().out
    assert "| simple-add | + | NAU | 20 | 2 |" in first and "| single-mul | × | NMU | 20 | 2 |" in first
    assert sw.main(argv + ["--summary"]) == 0
    assert capsys.readouterr().out == first
    with pytest.raises(SystemExit):
        sw.main(["simple-add", "--out", out, "--set", "no-equals-sign"])
    assert sw.main(["simple-add", "--out", out, "--set", "bogus_option=1", "--quiet"]) == 2
    assert "bogus_option" in capsys.readouterr().err


def test_option_values_are_parsed():
    assert sw._option("eval_every=500") == ("eval_every", 500)
    assert sw._option("range=U[-2,2]") == ("range", "U[-2,2]")
    assert sw._option("lambda_hat=0.5") == ("lambda_hat", 0.5)
    assert sw._run_spec("simple-mul:NMU") == ("simple-mul", "NMU")
    assert sw._run_spec("simple-mul") == ("simple-mul", None)
    assert np.isfinite(sw.Row("t", "+", "NAU", 1, 1, 1, 0.0, 1.0, None, None).rate)


@pytest.mark.parametrize("task,unit", [("simple-mul", "NMU"), ("simple-add", "NAU"), ("simple-mul", "NALU"),
                                       ("simple-squared", "NMU"), ("simple-root", "NAU")])
def test_compiled_engine_agrees_with_the_python_loop(task, unit):
    """With NumPy's draws the compiled engine computes the Python loop's run (to rounding): the same
    batches, regularizer schedule, projections, evaluations and sparsity errors."""
    pytest.importorskip("numba")
    from nalu_np.tasks import seed_rngs

    config = sw.Config(task, unit, {"steps": 60, "eval_every": 20, "lambda_hat": 10.0, "reg_start": 10,
                                    "reg_end": 40})
    py = sw.run_seed(config, 3, engine="python")
    t = sw._build_task(config, 3)
    model = t.build_model(seed_rngs(3)[0])
    comp = nn.train(model, t, seed=3, engine="compiled", draws="numpy").to_dict()
    assert py["engine"] == "python" and comp["engine"] == "compiled" and comp["backend"] == "numba"
    for k, v in py["run"]["params"].items():
        np.testing.assert_allclose(comp["params"][k], v, atol=1e-5)
    assert [e["step"] for e in comp["evaluations"]] == [0, 20, 40, 60]
    for a, b in zip(py["run"]["evaluations"], comp["evaluations"]):
        assert b["interpolation_mse"] == pytest.approx(a["interpolation_mse"], rel=1e-4)
        assert b["sparsity_error"] == pytest.approx(a["sparsity_error"], abs=1e-5)
    np.testing.assert_allclose(comp["loss_curve"]["loss"], py["run"]["loss_curve"]["loss"], rtol=1e-4)


def test_compiled_engine_draws_its_own_batches_reproducibly():
    pytest.importorskip("numba")
    config = sw.Config("simple-sub", "NAU", {"steps": 3000, "eval_every": 1500, "lambda_hat": 0.0})
    a, b, c = (sw.run_seed(config, s, engine="compiled") for s in (5, 5, 6))
    assert a["engine"] == "compiled" and a["model"] == "NAU -> NAU"
    assert a["run"]["params"] == b["run"]["params"]
    assert a["run"]["params"] != c["run"]["params"]
    assert np.all(np.isfinite(a["run"]["loss_curve"]["loss"]))
    mse = [e["interpolation_mse"] for e in a["run"]["evaluations"]]
    assert mse[-1] < 0.5 * mse[0]  # it learns from the task's batches


def test_engine_choice():
    add = sw.Config("add")  # the seed article's full-batch task: no compiled path
    assert sw.run_seed(add, 0, engine="auto")["engine"] == "python"
    with pytest.raises(ValueError, match="compiled engine trains the simple function task"):
        sw.run_seed(add, 0, engine="compiled")
    with pytest.raises(ValueError, match="engine"):
        sw.run_seed(add, 0, engine="fast")


def test_seeds_trained_together_give_the_records_of_seeds_trained_alone(tmp_path):
    """The sweep's own pool trains a configuration's seeds in batches (run_seeds, the compiled engine); each
    seed's record is the one run_seed writes for it alone."""
    pytest.importorskip("numba")
    config = sw.Config("simple-mul", "NMU", {"steps": 300, "eval_every": 100}).canonical()
    assert sw._batches([(config, s) for s in range(5)], 2, None) == [(config, [0, 1, 2]), (config, [3, 4])]
    assert sw._batches([(config, s) for s in range(40)], 1, None)[0][1] == list(range(sw.MAX_SEEDS_PER_CALL))
    # Numba's freshly compiled engine and the one it loads from its cache may round a float32 multiply-add
    # differently (1 ulp, found here; not yet explained): a warm-up run in a fresh process fills the cache, so
    # that both sides below run the cached code, each in a fresh process
    sw.run_sweep(config, [9], str(tmp_path / "warm-up"), max_workers=1, progress=False)
    sw.run_sweep(config, range(4), str(tmp_path / "batched"), max_workers=1, seeds_per_call=3, progress=False)
    with cf.ProcessPoolExecutor(1, mp_context=_workers.CONTEXT) as pool:
        ex = CountingExecutor(pool)
        sw.run_sweep(config, range(4), str(tmp_path / "alone"), executor=ex, progress=False)
    assert sorted(s for _, s in ex.calls) == [0, 1, 2, 3]  # someone else's executor: one job per seed
    batched = sw.load_results(str(tmp_path / "batched"))[config]
    alone = sw.load_results(str(tmp_path / "alone"))[config]
    assert [r["seed"] for r in batched] == [0, 1, 2, 3]
    for a, b in zip(alone, batched):
        assert (a["run"]["params"], a["run"]["evaluations"], a["run"]["loss_curve"]) == \
            (b["run"]["params"], b["run"]["evaluations"], b["run"]["loss_curve"])
        assert a["engine"] == b["engine"] == "compiled" and a["success"] == b["success"]
    records = sw.run_seeds(config, [1, 3])  # in this process: its own compiled code, cached or fresh
    assert [r["seed"] for r in records] == [1, 3]
    assert records[1]["run"]["params"] == sw.run_seed(config, 3)["run"]["params"]
