"""A sweep's results directory can be trusted: corrupt or misplaced seed files are set aside and rerun, one
configuration has one directory however it is typed, and one sweep writes into a directory at a time."""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from nalu_np import sweep as sw

TINY = {"steps": 20, "eval_every": 10}


def _sweep(out, config, seeds, calls=None):
    class Recording(cf.ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            if calls is not None:
                calls.append(args[1])
            return super().submit(fn, *args, **kwargs)

    with Recording(2) as pool:
        return sw.run_sweep(config, seeds, str(out), executor=pool, progress=False)


@pytest.mark.parametrize("spoil", ["truncated", "empty-object", "not-json", "other-seed", "other-config"])
def test_a_bad_seed_file_is_set_aside_named_and_rerun(spoil, tmp_path, capsys):
    config = sw.Config("simple-add", "NAU", TINY)
    _sweep(tmp_path, config, range(2))
    d = tmp_path / config.key
    path = d / "seed-000001.json"
    text = path.read_text()
    if spoil == "truncated":
        path.write_text(text[: len(text) // 2])
    elif spoil == "empty-object":
        path.write_text("{}")
    elif spoil == "not-json":
        path.write_bytes(b"\x00\xff garbage")
    elif spoil == "other-seed":
        shutil.copy(d / "seed-000000.json", path)
    else:
        record = json.loads(text)
        record["config"]["options"]["steps"] = 999
        path.write_text(json.dumps(record))
    capsys.readouterr()
    rows = sw.load_results(str(tmp_path))  # the summary's reader: no traceback, the file is named
    err = capsys.readouterr().err
    assert str(path) in err and "set aside" in err
    assert [r["seed"] for r in rows[config]] == [0]
    calls: list[int] = []
    (d / "seed-000001.json.bad-0").rename(path)  # back in place: now the sweep finds it
    rows = _sweep(tmp_path, config, range(2), calls)
    assert calls == [1] and rows[0].seeds == 2  # rerun once, counted once
    assert json.loads(path.read_text())["seed"] == 1
    assert (d / "seed-000001.json.bad-0").exists()


def test_one_configuration_one_directory():
    keys = {sw.Config("simple-add", u, TINY).canonical().key for u in (None, "nau", "NAU")}
    assert len(keys) == 1 and "NAU" in keys.pop()
    assert sw.Config("simple-mul", "nmu").canonical() == sw.Config("simple-mul", "NMU")


def test_resume_typed_differently_runs_nothing_again(tmp_path):
    _sweep(tmp_path, sw.Config("simple-add", None, TINY), range(2))
    calls: list[int] = []
    rows = _sweep(tmp_path, sw.Config("simple-add", "nau", TINY), range(2), calls)
    assert calls == [] and rows[0].seeds == 2 and len(os.listdir(tmp_path)) == 2  # one directory + the lock


def test_a_second_sweep_into_the_same_directory_is_refused(tmp_path):
    config = sw.Config("simple-add", "NAU", TINY)
    with sw._exclusive(str(tmp_path)):
        with pytest.raises(sw.SweepLockedError, match=f"pid {os.getpid()}"):
            _sweep(tmp_path, config, range(1))
    assert _sweep(tmp_path, config, range(1))[0].seeds == 1  # free again


def _cli(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "NALU_NP_BACKEND"}
    return subprocess.run([sys.executable, "-m", "nalu_np", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_two_sweep_processes_into_one_directory(tmp_path):
    cmd = ["sweep", "simple-add:NAU", "--seeds", "2", "--steps", "3000000", "--engine", "python", "--workers",
           "1", "--quiet", "--out", "runs"]
    env = {k: v for k, v in os.environ.items() if k != "NALU_NP_BACKEND"}
    first = subprocess.Popen([sys.executable, "-m", "nalu_np", *cmd], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "runs" / ".lock").exists() or not (tmp_path / "runs" / ".lock").read_text():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.1)
        second = _cli(*cmd, cwd=tmp_path)
        assert second.returncode == 2 and "another sweep" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.kill()
        first.communicate()


def test_cli_edges(tmp_path):
    p = _cli("sweep", "simple-add:NAU", "--set", "foo=1", "--out", "runs", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "'foo'" in p.stderr and "eval_every" in p.stderr
    p = _cli("sweep", "simple-add:NAU", "--summary", "--out", "missing", cwd=tmp_path)
    assert p.returncode == 2 and "no results directory" in p.stderr
    _sweep(tmp_path / "runs", sw.Config("simple-add", "NAU", TINY), range(1))
    p = _cli("sweep", "simple-add:NAU", "--steps", "21", "--set", "eval_every=10", "--summary", "--out", "runs",
             "--seeds", "1", cwd=tmp_path)
    assert p.returncode == 1 and "no finished run" in p.stderr and sw.Config("simple-add", "NAU", TINY).key in p.stderr
    p = _cli("sweep", "simple-add:nau", "--steps", "20", "--set", "eval_every=10", "--summary", "--out", "runs",
             "--seeds", "1", cwd=tmp_path)
    assert p.returncode == 0 and "| simple-add | + | NAU | 20 | 1 |" in p.stdout


def test_demo_checks_its_directory_before_training(tmp_path):
    t0 = time.monotonic()
    p = _cli("demo", "--out", "/dev/null/x", cwd=tmp_path)
    assert p.returncode == 2 and "/dev/null/x" in p.stderr and "Pre" not in p.stdout
    assert time.monotonic() - t0 < 30


def test_an_engine_that_cannot_run_is_refused_before_any_work(tmp_path):
    """--engine compiled on a configuration it cannot train fails at once: no directory, no pool, no run."""
    pytest.importorskip("numba")
    out = tmp_path / "runs"
    with pytest.raises(ValueError, match="compiled engine trains the simple function task"):
        sw.run_sweep(sw.Config("add"), range(3), str(out), engine="compiled", progress=False)  # full-batch seed task
    assert not out.exists()
    p = _cli("sweep", "add", "--engine", "compiled", "--out", "runs", cwd=tmp_path)
    assert p.returncode == 2 and "compiled engine" in p.stderr and not out.exists()
