"""Atomic writes shared by checkpoints and sweep results (``nalu_np._files``): modes, failures, links,
concurrent writers.  (Checkpoints' own cases, killed writers included, are in ``test_checkpoint.py``.)"""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

import nalu_np as nn
from nalu_np import checkpoint, sweep


@pytest.fixture(params=[0o002, 0o022, 0o077], ids=lambda m: f"umask-{m:03o}")
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_checkpoints_follow_the_umask(tmp_path, umask):
    path = tmp_path / "run.npz"
    checkpoint.save(path, nn.NAC(2, 1, rng=0))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    os.chmod(path, 0o600)  # replacing a file gives the new one the umask's mode too
    checkpoint.save(path, nn.NAC(2, 1, rng=1))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_sweep_results_follow_the_umask(tmp_path, umask):
    path = tmp_path / "seed-000001.json"
    sweep._write_atomic(str(path), {"seed": 1, "success": True})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    assert json.loads(path.read_text()) == {"seed": 1, "success": True}


def test_a_failed_sweep_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "config.json"
    sweep._write_atomic(str(path), {"v": 1})
    with pytest.raises(TypeError):
        sweep._write_atomic(str(path), {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1} and os.listdir(tmp_path) == ["config.json"]


def test_sweep_results_are_written_through_a_symbolic_link(tmp_path):
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to("real.json")
    sweep._write_atomic(str(tmp_path / "link.json"), {"v": 2})
    assert os.readlink(tmp_path / "link.json") == "real.json"
    assert json.loads((tmp_path / "real.json").read_text()) == {"v": 2}
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


def test_a_relative_path_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep._write_atomic("here.json", [1, 2])
    assert json.loads((tmp_path / "here.json").read_text()) == [1, 2]


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        sweep._write_atomic(str(tmp_path / "gone" / "seed-000001.json"), {})
    assert info.value.filename == str(tmp_path / "gone")


def test_concurrent_writers_of_one_file_each_write_whole_files(tmp_path):
    """Threads of one process get temporary files of their own (the random token), so none fails and the
    file ends up as one writer's whole content."""
    path = str(tmp_path / "shared.json")

    def writes(i):
        for j in range(20):
            sweep._write_atomic(path, {"writer": i, "write": j, "pad": "x" * 10_000})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(writes, range(8)))
    assert json.loads((tmp_path / "shared.json").read_text())["write"] == 19
    assert os.listdir(tmp_path) == ["shared.json"]
