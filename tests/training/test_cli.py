"""The ``nalu-np`` command, run as ``python -m nalu_np`` in a subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

HAS_MPL = importlib.util.find_spec("matplotlib") is not None


def run(*args, cwd=None, env=None):
    full_env = {k: v for k, v in os.environ.items() if k != "NALU_NP_BACKEND"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "nalu_np", *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=300)


def assert_one_line_error(p, *words):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nalu-np") and " error: " in lines[0], p.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_help_explains_the_commands():
    p = run("--help")
    assert p.returncode == 0
    for word in ("demo", "train", "nalu-np train --task mul --seeds 20", "--help"):
        assert word in p.stdout
    p = run("train", "--help")
    assert p.returncode == 0
    for word in ("--task", "--seeds", "--backend", "--unit", "--preset", "--out", "x1 * x2"):
        assert word in p.stdout
    assert run("demo", "--help").returncode == 0
    p = run("sweep", "--help")
    assert p.returncode == 0 and "simple-mul:NMU" in p.stdout


def test_no_command_prints_help_and_exits_2():
    p = run()
    assert p.returncode == 2 and "demo" in p.stderr


@pytest.mark.parametrize("args, words", [
    (("train", "--task", "nope"), ["invalid choice", "nope"]),
    (("train",), ["--task"]),
    (("train", "--task", "add", "--seeds", "0"), ["positive integer"]),
    (("train", "--task", "add", "--steps", "ten"), ["ten"]),
    (("train", "--task", "add", "--unit", "LSTM"), ["unknown unit", "NALU"]),
    (("train", "--task", "add", "--backend", "tpu"), ["tpu"]),
    (("demo", "--lr", "0.1"), ["unrecognized"]),
    (("bogus",), ["bogus"]),
    (("sweep", "nope:NAU", "--seeds", "1", "--out", "unused"), ["unknown task", "simple-mul"]),
    (("sweep", "simple-mul:NMU"), ["--out"]),
])
def test_bad_arguments_give_one_line_and_status_2(args, words, tmp_path):
    assert_one_line_error(run(*args, cwd=tmp_path), *words)


def test_unavailable_backend_is_one_line():
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("cupy is installed here")
    p = run("train", "--task", "add", "--seeds", "1", "--steps", "5", "--backend", "cupy")
    assert_one_line_error(p, "cupy", "pip install")


def test_bad_environment_backend_is_one_line():
    p = run("train", "--task", "add", "--seeds", "1", "--steps", "5", env={"NALU_NP_BACKEND": "fortran"})
    assert_one_line_error(p, "NALU_NP_BACKEND", "fortran")


def test_unwritable_out_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = run("train", "--task", "add", "--seeds", "1", "--steps", "5", "--out", str(blocker / "sub"))
    assert_one_line_error(p, "output directory")


def test_train_prints_a_table_and_writes_results(tmp_path):
    out = tmp_path / "res"
    p = run("train", "--task", "mul", "--seeds", "2", "--first-seed", "5", "--steps", "30", "--out", str(out))
    assert p.returncode == 0, p.stderr
    rows = [line for line in p.stdout.splitlines() if line.strip().startswith(("5 ", "6 "))]
    assert len(rows) == 2 and all(r.rstrip().endswith(("fail", "success", "diverged")) for r in rows)
    assert "success rate: " in p.stdout and "/2 (" in p.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["task"] == "mul" and data["unit"] == "NALU" and data["preset"] == "seed-003"
    assert data["seeds"] == [5, 6] and len(data["runs"]) == 2 and data["runs"][0]["steps_done"] == 30
    assert (out / "loss_curves.png").exists() == HAS_MPL


def test_train_with_other_unit_and_preset():
    p = run("train", "--task", "add", "--unit", "nalu", "--preset", "seed-000", "--seeds", "1", "--steps", "10",
            "--optimizer", "sgd", "--lr", "1e-9", "--dtype", "float64")
    assert p.returncode == 0, p.stderr
    assert "unit NALU, preset seed-000, float64" in p.stdout and "sgd lr 1e-09" in p.stdout


def test_demo_prints_what_the_articles_print(tmp_path):
    p = run("demo", "--steps", "200", "--out", str(tmp_path))
    # 200 steps are far too few to reproduce the articles: the demo says so and exits with status 1
    assert p.returncode == 1, p.stderr
    for text in ("Pre training MSE:", "Post training MSE:", "Actual sum:", "Predicted sum:",
                 "Actual product:", "Predicted product:", "learned W", "NOT REPRODUCED"):
        assert text in p.stdout, text
    assert "Actual sum:    [2000. 2012. 2024." in p.stdout
    if HAS_MPL:
        assert (tmp_path / "nalu-np-demo.png").exists() and "loss curves written" in p.stdout
    else:
        assert "matplotlib is not installed" in p.stdout


@pytest.mark.slow
def test_demo_reproduces_the_articles(tmp_path):
    p = run("demo", "--out", str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("REPRODUCED") == 2 and "NOT REPRODUCED" not in p.stdout


@pytest.mark.parametrize("option, value, words", [
    ("--seeds", "0", ["--seeds", "positive integer"]),
    ("--seeds", "-1", ["--seeds", "positive integer"]),
    ("--first-seed", "-1", ["--first-seed", "integer >= 0"]),
    ("--steps", "0", ["--steps", "positive integer"]),
    ("--backend", "tpu", ["unknown backend 'tpu'", "numba"]),
])
def test_shared_options_mean_the_same_in_every_subcommand(option, value, words, tmp_path):
    """train and sweep parse --seeds, --first-seed, --steps and --backend with one type and one message."""
    train = run("train", "--task", "add", option, value, cwd=tmp_path)
    sweep = run("sweep", "simple-add:NAU", "--out", "unused", option, value, cwd=tmp_path)
    for p in (train, sweep):
        assert_one_line_error(p, *words)
    assert train.stderr.replace("nalu-np train", "X") == sweep.stderr.replace("nalu-np sweep", "X")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_must_be_a_positive_integer(value, tmp_path):
    assert_one_line_error(run("sweep", "simple-add", "--out", "unused", "--workers", value, cwd=tmp_path),
                          "--workers", "positive integer")


def test_shared_defaults_are_the_same():
    from nalu_np.cli import build_parser

    parser = build_parser()
    train = parser.parse_args(["train", "--task", "add"])
    sweep = parser.parse_args(["sweep", "simple-add", "--out", "x"])
    for key in ("seeds", "first_seed", "steps", "backend"):
        assert getattr(train, key) == getattr(sweep, key), key
