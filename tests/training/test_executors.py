"""``--executor`` of ``nalu-np sweep`` / ``reproduce`` (:mod:`nalu_np.executors`) on real local instances: a
Dask ``LocalCluster`` and submitit's local executor, resume included."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from nalu_np import executors


def test_the_spec_is_checked():
    for good in ("local", "dask:tcp://127.0.0.1:8786", "submitit:/tmp/jobs", "ray:auto", "ray:local"):
        assert executors.executor_spec(good) == good
    for bad in ("dask", "dask:", "slurm:/tmp", "ray:", "ray", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="expected one of local"):
            executors.executor_spec(bad)


def _sweep(tmp_path, executor, seeds):
    env = {k: v for k, v in os.environ.items() if k != "NALU_NP_BACKEND"}
    return subprocess.run([sys.executable, "-m", "nalu_np", "sweep", "simple-add:NAU", "--steps", "200", "--set",
                           "eval_every=100", "--seeds", str(seeds), "--out", str(tmp_path / "runs"), "--quiet",
                           "--executor", executor], capture_output=True, text=True, env=env, timeout=600)


def _seeds(tmp_path):
    [config] = [d for d in os.listdir(tmp_path / "runs") if not d.startswith(".")]
    files = sorted(f for f in os.listdir(tmp_path / "runs" / config) if f.startswith("seed-"))
    out = {}
    for f in files:
        with open(tmp_path / "runs" / config / f) as fh:
            out[f] = json.load(fh)
    return out


def _runs_and_resumes(tmp_path, executor):
    p = _sweep(tmp_path, executor, 2)
    assert p.returncode == 0, p.stderr
    first = _seeds(tmp_path)
    assert sorted(first) == ["seed-000000.json", "seed-000001.json"]
    assert "| simple-add | + | NAU | 200 | 2 |" in p.stdout
    p = _sweep(tmp_path, executor, 3)  # resumes: only seed 2 runs, the others are left as they are
    assert p.returncode == 0, p.stderr
    second = _seeds(tmp_path)
    assert sorted(second) == [*sorted(first), "seed-000002.json"]
    assert all(second[k] == first[k] for k in first)
    return second


def test_a_dask_local_cluster_runs_the_sweep_and_it_resumes(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        records = _runs_and_resumes(tmp_path, f"dask:{c.scheduler_address}")
    assert {r["engine"] for r in records.values()} == {"compiled"}


def test_submitits_local_executor_runs_the_sweep_and_it_resumes(tmp_path):
    pytest.importorskip("submitit")
    _runs_and_resumes(tmp_path, f"submitit:{tmp_path / 'jobs'}")
    assert os.listdir(tmp_path / "jobs")  # submitit's pickles and logs


def test_a_local_ray_instance_runs_the_sweep_and_it_resumes(tmp_path):
    pytest.importorskip("ray")
    records = _runs_and_resumes(tmp_path, "ray:local")
    assert {r["engine"] for r in records.values()} == {"compiled"}


def test_a_missing_executor_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed: ImportError
    with pytest.raises(ModuleNotFoundError, match=r"pip install distributed"):
        with executors.open_executor("dask:tcp://127.0.0.1:1"):
            pass
