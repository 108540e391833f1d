"""Checkpoints: exact round trip, refusal of other units and shapes, atomic writes."""

from __future__ import annotations

import os

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
