"""``nalu-np reproduce madsen2020``: the grid of the study, its record (one CSV row per run) and its resume."""

from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
import sys

import pytest

from nalu_np import reproduce as rp
from nalu_np import studies
from nalu_np import sweep as sw


def test_the_grid_is_every_available_model_and_op(monkeypatch):
    cells = rp.grid()
    models = [m for m, p in studies.MADSEN2020_MODELS.items() if p.available]
    assert [(m.name, op) for m, op in cells] == [(m, op) for m in models for op in rp.OPS]
    assert models == list(studies.MADSEN2020_MODELS)  # nalu-np has the units of every model of the table
    with pytest.raises(ValueError, match="unknown model 'Transformer'"):
        rp.grid(["Transformer"])
    gated = studies.MADSEN2020_MODELS["Gated_NAU_NMU"]
    monkeypatch.setitem(studies.MADSEN2020_MODELS, "Gated_NAU_NMU", dataclasses.replace(gated, units=(None, None)))
    with pytest.raises(ValueError, match=r"needs units nalu-np does not have yet \(ReRegualizedLinearNALU"):
        rp.grid(["Gated_NAU_NMU"])
    assert "Gated_NAU_NMU" not in {m.name for m, _ in rp.grid()}
    with pytest.raises(ValueError, match="unknown op"):
        rp.grid(["NAU"], ["pow"])


def test_a_cell_is_the_models_network_on_the_simple_function_task():
    config = rp.config_of(studies.MADSEN2020_MODELS["NMU"], "mul", 1000)
    assert (config.task, config.unit, dict(config.options)) == ("simple-mul", "NMU", {"first_unit": "NAU",
                                                                                     "steps": 1000})
    task = sw._build_task(config, 0)
    assert task.first_unit == "NAU" and task.lambda_hat == 10.0
    assert rp.config_of(studies.MADSEN2020_MODELS["NAU"], "add", 1000).canonical().unit == "NAU"


def test_the_record_round_trips_and_refuses_a_bad_file(tmp_path):
    path = str(tmp_path / "rec.csv")
    row = {"model": "NAU", "op": "add", "seed": 3, "steps": 100, "success": True, "solved_at": 2000,
           "sparsity_error": 1e-5, "best_step": 4000, "interpolation_mse": 1e-9, "extrapolation_mse": float("inf"),
           "engine": "compiled", "wall_time": 1.5}
    rp.append_row(path, row)
    rp.append_row(path, {**row, "seed": 4, "solved_at": None, "success": False})
    got = rp.read_record(path)
    assert got[0] == row and got[1]["solved_at"] is None and got[1]["success"] is False
    with open(path, "a") as f:
        f.write("NAU,add,5,100,maybe,,,,,,compiled,1\n")
    with pytest.raises(ValueError, match=r"rec.csv, line 4: success must be True or False"):
        rp.read_record(path)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="the header must be"):
        rp.read_record(str(tmp_path / "other.csv"))


def _cli(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "NALU_NP_BACKEND"}
    return subprocess.run([sys.executable, "-m", "nalu_np", "reproduce", "madsen2020", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_reproduce_runs_the_missing_runs_and_resumes_from_the_record(tmp_path):
    args = ("--models", "NAU", "--ops", "add", "--steps", "2000", "--record", "rec.csv", "--out", "runs", "--quiet",
            "--workers", "2")
    p = _cli(*args, "--seeds", "2", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = _rows(tmp_path / "rec.csv")
    assert sorted(int(r["seed"]) for r in rows) == [0, 1] and {r["model"] for r in rows} == {"NAU"}
    assert "| NAU | add | 2 |" in p.stdout  # our cell beside the paper's
    for spoil in ("nothing", "fresh machine"):  # the JSON working copy gone: the record alone resumes
        if spoil == "fresh machine":
            import shutil

            shutil.rmtree(tmp_path / "runs")
        p = _cli(*args, "--seeds", "2", cwd=tmp_path)
        assert p.returncode == 0 and len(_rows(tmp_path / "rec.csv")) == 2, p.stderr
    p = _cli(*args, "--seeds", "3", cwd=tmp_path)
    assert sorted(int(r["seed"]) for r in _rows(tmp_path / "rec.csv")) == [0, 1, 2]
    p = _cli(*args, "--seeds", "3", "--summary", cwd=tmp_path)
    assert p.returncode == 0 and "| NAU | add | 3 |" in p.stdout


def test_help_works():
    p = subprocess.run([sys.executable, "-m", "nalu_np", "reproduce", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "madsen2020" in p.stdout and "--record" in p.stdout


def test_the_figure_of_ours_against_the_paper(tmp_path):
    pytest.importorskip("matplotlib")
    base = {"steps": 100, "solved_at": 2000, "sparsity_error": 1e-5, "best_step": 90, "interpolation_mse": 1e-9,
            "extrapolation_mse": 1e-9, "engine": "compiled", "wall_time": 1.0}
    rows = [{**base, "model": m, "op": op, "seed": s, "success": ok}
            for m, op, ok in (("NAU", "add", True), ("NAU", "mul", False), ("NMU", "mul", True)) for s in range(3)]
    path = str(tmp_path / "cells.png")
    assert rp.plot_comparison(rows, 100, path) == f"figure written to {path}"
    assert os.path.getsize(path) > 0
    assert rp.plot_comparison(rows, 5_000_000, str(tmp_path / "none.png")).startswith("no figure")
    assert not os.path.exists(tmp_path / "none.png")
