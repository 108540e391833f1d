"""Checkpoints: a model, its optimizer's state and the run's metadata in one ``.npz`` file.

::

    nalu_np.checkpoint.save("run.npz", model, optimizer=opt, metadata={"seed": 3, "step": 22000})
    ckpt = nalu_np.checkpoint.load("run.npz")               # rebuilds the model from its config
    model, opt = ckpt.model, ckpt.make_optimizer()
    nalu_np.checkpoint.load("run.npz", model=model, optimizer=opt)   # or: into existing objects, in place

Layout of the file (a NumPy ``.npz`` archive, read without pickle): ``meta.json``, a JSON document as a 0-d
string array (format name and version, ``model.config()``, parameter names, the optimizer's type, settings
and step count, and the caller's metadata), ``param/<name>`` for every parameter and
``optim/<slot>/<name>`` for every optimizer state array.  Arrays are stored exactly (same dtype and bits).

Writing is atomic: the archive is written to a temporary file in the target's directory, flushed to disk and
then renamed over the target (``os.replace``), so an interrupted or failed save never leaves a partial file
under the target's name and never replaces a good checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .backends import to_numpy
from .optim import OPTIMIZERS, Optimizer, array_module

__all__ = ["Checkpoint", "CheckpointError", "FORMAT", "VERSION", "save", "load", "build_model"]

FORMAT = "nalu-np-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a nalu-np checkpoint, or one that does not fit the model or optimizer given."""


@dataclass
class Checkpoint:
    """What :func:`load` gives back.

    Attributes
    ----------
    model : layer or Sequential
        The model given to :func:`load` (now holding the saved parameters) or one rebuilt from the config.
    config : dict
        The saved ``model.config()``.
    optimizer_state : dict or None
        The saved :meth:`Optimizer.state_dict`, if an optimizer was saved.
    metadata : dict
        The caller's metadata.
    """

    model: Any
    config: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    metadata: dict[str, Any]

    def make_optimizer(self, projections: Mapping[str, Any] | None = None) -> Optimizer:
        """A new optimizer over ``model.params`` in the saved state (projections are code: pass them again)."""
        if self.optimizer_state is None:
            raise CheckpointError("this checkpoint holds no optimizer state")
        state = self.optimizer_state
        opt = OPTIMIZERS[state["type"].lower()](self.model.params, **state["hyper"], projections=projections)
        opt.load_state_dict(state)
        return opt


def _describe(config: Mapping[str, Any]) -> str:
    if config.get("unit") == "Sequential":
        return "Sequential[" + ", ".join(_describe(c) for c in config.get("layers", [])) + "]"
    extra = ", ".join(f"{k}={v}" for k, v in config.items() if k not in ("unit", "in_features", "out_features"))
    return f"{config.get('unit')}({config.get('in_features')} -> {config.get('out_features')}, {extra})"


def build_model(config: Mapping[str, Any]) -> Any:
    """A model built from ``model.config()`` (its parameters are placeholders until loaded).

    Every key of a unit's config other than ``unit``, ``in_features`` and ``out_features`` is a keyword
    argument of the unit's constructor.
    """
    from .layers import Sequential, unit_class

    if config.get("unit") == "Sequential":
        return Sequential([build_model(c) for c in config["layers"]])
    try:
        cls = unit_class(config["unit"])
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"cannot rebuild the model: {err}") from None
    kwargs = {k: v for k, v in config.items() if k not in ("unit", "in_features", "out_features")}
    return cls(config["in_features"], config["out_features"], rng=0, **kwargs)


def save(path: str | os.PathLike[str], model: Any, optimizer: Optimizer | None = None,
         metadata: Mapping[str, Any] | None = None) -> str:
    """Write ``model`` (and ``optimizer``'s state, and ``metadata``) to ``path`` atomically.

    Parameters
    ----------
    path : str or path-like
        The file to write, used as given (no suffix is added; ``.npz`` is the convention).
    model : layer or Sequential
        Parameters may be device arrays; they are copied to the host.
    optimizer : Optimizer, optional
        Must have been built on ``model.params``.
    metadata : dict, optional
        JSON-serialisable run information (seed, step, task, ...).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    TypeError
        ``metadata`` is not JSON-serialisable (nothing is written).
    ValueError
        ``optimizer`` does not hold ``model``'s parameters.
    """
    params = model.params
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config(),
        "params": list(params),
        "optimizer": None,
        "metadata": dict(metadata or {}),
    }
    arrays = {f"param/{k}": np.array(to_numpy(v)) for k, v in params.items()}
    if optimizer is not None:
        if set(optimizer.params) != set(params) or any(optimizer.params[k] is not params[k] for k in params):
            raise ValueError("the optimizer was not built on this model's params")
        state = optimizer.state_dict()
        meta["optimizer"] = {"type": state["type"], "hyper": state["hyper"], "t": state["t"],
                             "slots": {s: list(a) for s, a in state["slots"].items()}}
        arrays.update({f"optim/{s}/{k}": a for s, arrs in state["slots"].items() for k, a in arrs.items()})
    try:
        arrays["meta.json"] = np.array(json.dumps(meta))
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable: {err}") from None

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, EOFError) as err:
        raise CheckpointError(f"{os.fspath(path)} is not a nalu-np checkpoint ({err})") from None
    if "meta.json" not in arrays:
        raise CheckpointError(f"{os.fspath(path)} is not a nalu-np checkpoint (no meta.json)")
    meta = json.loads(str(arrays.pop("meta.json")))
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{os.fspath(path)} is not a nalu-np checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{os.fspath(path)} has checkpoint version {meta.get('version')}, this nalu_np "
                              f"reads version {VERSION}")
    return meta, arrays


def load(path: str | os.PathLike[str], model: Any = None, optimizer: Optimizer | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
    model : layer or Sequential, optional
        Load into this model, in place (its arrays keep their identity and device, so optimizers built on
        them stay valid).  Refused unless its ``config()`` and parameter shapes equal the saved ones.
        Default: a model rebuilt from the saved config, with NumPy arrays.
    optimizer : Optimizer, optional
        Load the saved optimizer state into it (same type, over ``model``'s parameters).

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        Not a checkpoint, or one of another unit, shape, dtype or optimizer type.
    """
    meta, arrays = _read(path)
    config = meta["config"]
    if model is None:
        model = build_model(config)
    elif model.config() != config:
        raise CheckpointError(
            f"{os.fspath(path)} holds a {_describe(config)}, but the model is a {_describe(model.config())}"
        )
    params = model.params
    saved = {k[len("param/"):]: a for k, a in arrays.items() if k.startswith("param/")}
    if set(saved) != set(params):
        raise CheckpointError(f"{os.fspath(path)} has parameters {sorted(saved)}, the model {sorted(params)}")
    for k, p in params.items():
        if tuple(saved[k].shape) != tuple(p.shape) or saved[k].dtype != p.dtype:
            raise CheckpointError(
                f"{os.fspath(path)}: parameter {k!r} is {saved[k].dtype} {saved[k].shape} in the file, "
                f"{p.dtype} {tuple(p.shape)} in the model"
            )
    state = None
    if meta["optimizer"] is not None:
        o = meta["optimizer"]
        state = {"type": o["type"], "hyper": o["hyper"], "t": o["t"],
                 "slots": {s: {k: arrays[f"optim/{s}/{k}"] for k in names} for s, names in o["slots"].items()}}
    if optimizer is not None:
        if state is None:
            raise CheckpointError(f"{os.fspath(path)} holds no optimizer state")
        if any(optimizer.params.get(k) is not p for k, p in params.items()):
            raise ValueError("the optimizer was not built on this model's params")
        try:
            optimizer.load_state_dict(state)
        except ValueError as err:
            raise CheckpointError(f"{os.fspath(path)}: {err}") from None
    for k, p in params.items():
        p[...] = array_module(p).asarray(saved[k])
    return Checkpoint(model=model, config=config, optimizer_state=state, metadata=meta["metadata"])
