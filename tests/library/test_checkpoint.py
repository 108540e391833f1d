"""Checkpoints: exact round trip, refusal of other units and shapes, damaged and foreign files, atomic writes
(symbolic links, killed writers, permissions)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import checkpoint
from nalu_np.checkpoint import CheckpointError
from nalu_np.losses import mse
from nalu_np.optim import SGD, Adam


@pytest.fixture(autouse=True)
def _numpy_backend():
    """These tests are about the loop and the files, not the kernels: run them on the NumPy reference."""
    with nn.use_backend("numpy"):
        yield


def _steps(model, opt, n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.uniform(1, 2, size=(8, model.in_features)).astype(model.dtype)
        y, cache = model.forward(x)
        _, dy = mse(y, np.ones_like(y))
        opt.step(model.backward(dy, cache)[1])


@pytest.mark.parametrize("make", [
    lambda: nn.NALU(3, 2, rng=1),
    lambda: nn.NALU.preset("seed-000", 3, 2, rng=1, dtype="float64"),
    lambda: nn.NACMul(3, 2, rng=1, eps=1e-5),
    lambda: nn.Sequential([nn.NAC(3, 4, rng=1), nn.NALU(4, 2, rng=2)]),
])
def test_round_trip_is_bit_exact_and_training_continues_identically(tmp_path, make):
    model = make()
    opt = Adam(model.params, lr=0.01, betas=(0.8, 0.9), clip_norm=5.0)
    _steps(model, opt, 3)
    path = checkpoint.save(tmp_path / "run.npz", model, opt, metadata={"seed": 7, "note": "ü", "loss": [1.5]})
    assert path == os.fspath(tmp_path / "run.npz")

    ckpt = checkpoint.load(path)
    assert ckpt.metadata == {"seed": 7, "note": "ü", "loss": [1.5]}
    assert ckpt.config == model.config() == ckpt.model.config()
    for k, v in model.params.items():
        np.testing.assert_array_equal(ckpt.model.params[k], v)
        assert ckpt.model.params[k].dtype == v.dtype
    opt2 = ckpt.make_optimizer()
    assert opt2.t == 3 and opt2.hyper() == opt.hyper()

    _steps(model, opt, 4, seed=1)
    _steps(ckpt.model, opt2, 4, seed=1)
    for k, v in model.params.items():
        np.testing.assert_array_equal(ckpt.model.params[k], v)


def test_load_into_existing_model_and_optimizer_in_place(tmp_path):
    src = nn.NALU(2, 1, rng=3)
    opt = SGD(src.params, lr=0.1, momentum=0.9)
    _steps(src, opt, 2)
    checkpoint.save(tmp_path / "a.npz", src, opt)
    dst = nn.NALU(2, 1, rng=4)
    arrays = dict(dst.params)
    dst_opt = SGD(dst.params, lr=0.5)
    ckpt = checkpoint.load(tmp_path / "a.npz", model=dst, optimizer=dst_opt)
    assert ckpt.model is dst and all(dst.params[k] is arrays[k] for k in arrays)
    for k in src.params:
        np.testing.assert_array_equal(dst.params[k], src.params[k])
    assert dst_opt.t == 2 and dst_opt.lr == 0.1 and dst_opt.momentum == 0.9
    np.testing.assert_array_equal(dst_opt.state["momentum"]["G"], opt.state["momentum"]["G"])


def test_without_optimizer(tmp_path):
    checkpoint.save(tmp_path / "m.npz", nn.NAC(2, 1, rng=0))
    ckpt = checkpoint.load(tmp_path / "m.npz")
    assert ckpt.optimizer_state is None and ckpt.metadata == {}
    with pytest.raises(CheckpointError, match="no optimizer state"):
        ckpt.make_optimizer()
    with pytest.raises(CheckpointError, match="no optimizer state"):
        model = nn.NAC(2, 1, rng=0)
        checkpoint.load(tmp_path / "m.npz", model=model, optimizer=Adam(model.params))


def test_refuses_another_unit_shape_or_dtype(tmp_path):
    path = tmp_path / "nalu.npz"
    checkpoint.save(path, nn.NALU(2, 1, rng=0))
    for other, words in [
        (nn.NAC(2, 1, rng=0), "holds a NALU.*the model is a NAC"),
        (nn.NALU(3, 1, rng=0), r"NALU\(2 -> 1.*NALU\(3 -> 1"),
        (nn.NALU(2, 1, rng=0, dtype="float64"), "float64"),
        (nn.NALU.preset("seed-000", 2, 1, rng=0), "shared_weights"),
    ]:
        before = {k: v.copy() for k, v in other.params.items()}
        with pytest.raises(CheckpointError, match=words):
            checkpoint.load(path, model=other)
        for k, v in other.params.items():  # left untouched
            np.testing.assert_array_equal(v, before[k])


def test_refuses_another_optimizer_type(tmp_path):
    model = nn.NAC(2, 1, rng=0)
    checkpoint.save(tmp_path / "c.npz", model, Adam(model.params))
    with pytest.raises(CheckpointError, match="Adam"):
        checkpoint.load(tmp_path / "c.npz", model=model, optimizer=SGD(model.params, lr=0.1))


def test_refuses_files_that_are_not_checkpoints(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip archive")
    with pytest.raises(CheckpointError, match="not a nalu-np checkpoint"):
        checkpoint.load(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="no meta.json"):
        checkpoint.load(plain)


def test_a_failed_write_never_replaces_a_good_file(tmp_path, monkeypatch):
    path = tmp_path / "good.npz"
    checkpoint.save(path, nn.NAC(2, 1, rng=0), metadata={"v": 1})
    good = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, nn.NAC(2, 1, rng=1), metadata={"v": 2})
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]  # no temporary file left behind
    assert checkpoint.load(path).metadata == {"v": 1}

    with pytest.raises(TypeError, match="JSON"):
        checkpoint.save(path, nn.NAC(2, 1, rng=1), metadata={"bad": object()})
    assert path.read_bytes() == good


def test_save_refuses_an_optimizer_of_other_arrays(tmp_path):
    model = nn.NAC(2, 1, rng=0)
    with pytest.raises(ValueError, match="not built on this model"):
        checkpoint.save(tmp_path / "x.npz", model, Adam(nn.NAC(2, 1, rng=0).params))
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# damaged and foreign files: always a CheckpointError that names the file
# ---------------------------------------------------------------------------------------------------------


def _rewritten(tmp_path, edit):
    """A checkpoint (NAC with an Adam state) changed by ``edit(arrays)``, where ``arrays["meta.json"]`` is the
    parsed metadata (written back as JSON unless ``edit`` replaces it by an array)."""
    model = nn.NAC(2, 1, rng=0)
    checkpoint.save(tmp_path / "good.npz", model, Adam(model.params), metadata={"seed": 1})
    with np.load(tmp_path / "good.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["meta.json"] = json.loads(str(arrays["meta.json"]))
    edit(arrays)
    if isinstance(arrays["meta.json"], dict):
        arrays["meta.json"] = np.array(json.dumps(arrays["meta.json"]))
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def _set(*keys, value):
    """An edit that sets ``meta[keys[0]][keys[1]]...`` to ``value``."""
    def edit(arrays):
        doc = arrays["meta.json"]
        for k in keys[:-1]:
            doc = doc[k]
        doc[keys[-1]] = value
    return edit


def _drop(*keys):
    """An edit that deletes ``meta[keys[0]][keys[1]]...``."""
    def edit(arrays):
        doc = arrays["meta.json"]
        for k in keys[:-1]:
            doc = doc[k]
        del doc[keys[-1]]
    return edit


def _meta_array(value):
    """An edit that replaces ``meta.json`` by the array ``value``."""
    return lambda arrays: arrays.update({"meta.json": value})


@pytest.mark.parametrize("edit, words", [
    (_meta_array(np.array("{not json")), "meta.json is not JSON"),
    (_meta_array(np.array("[1, 2]")), "meta.json is not a JSON object"),
    (_meta_array(np.zeros(3)), "meta.json is not a string"),
    (_drop("config"), "meta.json lacks 'config'"),
    (_drop("params"), "meta.json lacks 'params'"),
    (_drop("optimizer"), "meta.json lacks 'optimizer'"),
    (_drop("metadata"), "meta.json lacks 'metadata'"),
    (_set("config", value=[1]), "meta.json: 'config' is an array, not an object"),
    (_set("metadata", value="x"), "'metadata' is a string, not an object"),
    (_set("optimizer", "t", value="3"), "optimizer state in meta.json: 't' is a string, not an integer"),
    (_drop("optimizer", "slots"), "optimizer state in meta.json lacks 'slots'"),
    (_drop("optimizer", "t"), "optimizer state in meta.json lacks 't'"),
    (_set("optimizer", "slots", "exp_avg", value="W_hat"), "slot 'exp_avg' is 'W_hat', not an array of parameter"),
    (_set("optimizer", "type", value="Nope"), "unknown optimizer type 'Nope'"),
    (lambda arrays: arrays.pop("optim/exp_avg/W_hat"), "no array optim/exp_avg/W_hat"),
    (_drop("config", "in_features"), "cannot rebuild the model"),
    (_set("config", "colour", value="red"), "cannot rebuild the model"),
])
def test_load_of_a_file_with_broken_metadata_names_the_file(tmp_path, edit, words):
    path = _rewritten(tmp_path, edit)
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*" + words):
        checkpoint.load(path)


def test_load_of_a_plain_npy_file_names_the_file(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros((2, 3)))
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*not a nalu-np checkpoint.*npy"):
        checkpoint.load(path)


def test_load_of_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="gone.npz"):
        checkpoint.load(tmp_path / "gone.npz")


def _good_bytes(tmp_path):
    model = nn.NAC(2, 1, rng=0)
    path = checkpoint.save(tmp_path / "good.npz", model, Adam(model.params), metadata={"seed": 1})
    with open(path, "rb") as f:
        return f.read(), checkpoint.load(path)


def _contents(ckpt):
    """A loaded checkpoint's config, metadata, optimizer settings and arrays (dtype, shape, bytes), comparable."""
    state = ckpt.optimizer_state
    arrays = {**{f"param/{k}": v for k, v in ckpt.model.params.items()},
              **{f"optim/{s}/{k}": a for s, slot in state["slots"].items() for k, a in slot.items()}}
    return (ckpt.config, ckpt.metadata, state["type"], state["hyper"], state["t"],
            {k: (a.dtype.str, a.shape, a.tobytes()) for k, a in arrays.items()})


def test_every_truncation_of_a_checkpoint_is_a_checkpoint_error_naming_the_file(tmp_path):
    data, _ = _good_bytes(tmp_path)
    path = tmp_path / "cut.npz"
    for n in range(len(data)):
        path.write_bytes(data[:n])
        with pytest.raises(CheckpointError, match=re.escape(str(path))):
            checkpoint.load(path)


def test_every_bit_flip_is_detected_or_harmless(tmp_path):
    """One flipped bit in any byte: a CheckpointError naming the file, or (a byte zip does not check, such as
    a timestamp) the very same checkpoint, never another exception or other content."""
    data, good = _good_bytes(tmp_path)
    path = tmp_path / "flipped.npz"
    detected = 0
    for i in range(len(data)):
        for bit in (i % 8, 7 - i % 8):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            path.write_bytes(bytes(flipped))
            try:
                ckpt = checkpoint.load(path)
            except CheckpointError as err:
                assert str(path) in str(err)
                detected += 1
            else:
                assert _contents(ckpt) == _contents(good), f"byte {i} bit {bit}: other content, and no error"
    assert detected > len(data)  # most flips are caught (CRC-32 covers every array byte)


# ---------------------------------------------------------------------------------------------------------
# saving: the directory named, symbolic links, interrupted writers, permissions
# ---------------------------------------------------------------------------------------------------------


def test_save_into_a_missing_directory_names_the_directory(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError) as info:
        checkpoint.save(missing / "run.npz", nn.NAC(2, 1, rng=0))
    assert info.value.filename == str(missing)
    assert str(missing) in str(info.value) and ".tmp" not in str(info.value)


def test_save_writes_through_a_symbolic_link(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    checkpoint.save(store / "real.npz", nn.NAC(2, 1, rng=0), metadata={"v": 1})
    link = tmp_path / "latest.npz"
    link.symlink_to(os.path.join("store", "real.npz"))  # relative, as ln -s makes them
    checkpoint.save(link, nn.NAC(2, 1, rng=1), metadata={"v": 2})
    assert link.is_symlink() and os.readlink(link) == os.path.join("store", "real.npz")
    assert checkpoint.load(store / "real.npz").metadata == {"v": 2}
    assert sorted(os.listdir(store)) == ["real.npz"] and sorted(os.listdir(tmp_path)) == ["latest.npz", "store"]

    dangling = tmp_path / "next.npz"
    dangling.symlink_to(store / "new.npz")
    checkpoint.save(dangling, nn.NAC(2, 1, rng=2), metadata={"v": 3})
    assert dangling.is_symlink() and checkpoint.load(store / "new.npz").metadata == {"v": 3}


def _dead_pid():
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_the_next_save_removes_temporary_files_left_by_killed_writers(tmp_path):
    host = socket.gethostname()
    path = tmp_path / "run.npz"
    stale = tmp_path / f".run.npz.{host}.{_dead_pid()}.deadbeef.tmp"
    stale.write_bytes(b"\0" * 100_000)  # a full-size archive that never got renamed
    keep = [
        f".run.npz.{host}.{os.getppid()}.deadbeef.tmp",      # a live writer of this host
        f".run.npz.elsewhere.example.{_dead_pid()}.0a.tmp",   # a writer on another host (network file system)
        f".other.npz.{host}.{_dead_pid()}.0b.tmp",           # another target
        f".run.npz.{host}.x.0c.tmp",                          # not a temporary file of this scheme
    ]
    for name in keep:
        (tmp_path / name).write_bytes(b"")
    checkpoint.save(path, nn.NAC(2, 1, rng=0), metadata={"v": 1})
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ["run.npz"])
    assert checkpoint.load(path).metadata == {"v": 1}


_HANGING_WRITER = """
import sys
import numpy as np
import nalu_np as nn
from nalu_np import checkpoint

real_savez = np.savez

def savez_then_hang(f, **arrays):
    real_savez(f, **arrays)
    f.flush()
    print("written", flush=True)
    sys.stdin.read()  # until killed

checkpoint.np.savez = savez_then_hang
checkpoint.save(sys.argv[1], nn.NAC(2, 1, rng=5), metadata={"v": "killed"})
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_writer_killed_mid_save_leaves_the_old_file_and_its_temporary_file_is_cleaned_up(tmp_path):
    path = tmp_path / "run.npz"
    checkpoint.save(path, nn.NAC(2, 1, rng=0), metadata={"v": 1})
    good = path.read_bytes()
    writer = subprocess.Popen([sys.executable, "-c", _HANGING_WRITER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "written\n"  # the whole archive is in the temporary file
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdin.close()
        writer.stdout.close()
    left = [name for name in os.listdir(tmp_path) if name != "run.npz"]
    assert len(left) == 1 and re.fullmatch(rf"\.run\.npz\..+\.{writer.pid}\.[0-9a-f]+\.tmp", left[0]), left
    assert path.read_bytes() == good

    checkpoint.save(path, nn.NAC(2, 1, rng=1), metadata={"v": 2})
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]
    assert checkpoint.load(path).metadata == {"v": 2}
