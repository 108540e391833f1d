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

Writing is atomic (:func:`nalu_np._files.write_atomic`): the archive is written to a temporary file in the
target's directory, flushed to disk and then renamed over the target (``os.replace``), so an interrupted or
failed save never leaves a partial file under the target's name and never replaces a good checkpoint.  The
file gets mode ``0o666 & ~umask``; a symbolic link is written through (the link stays, the file it points to
gets the checkpoint); temporary files left by killed writers are removed by the next save of the same path.

Reading checks the archive's CRC-32 checksums and the structure of ``meta.json`` before using anything, so a
truncated, damaged or foreign file is a :class:`CheckpointError` that names the file and what is wrong.
"""

from __future__ import annotations

import json
import lzma
import os
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from numpy.lib.npyio import NpzFile

from ._files import write_atomic
from .backends import to_numpy
from .optim import OPTIMIZERS, Optimizer, array_module

__all__ = ["Checkpoint", "CheckpointError", "FORMAT", "VERSION", "save", "load", "build_model"]

FORMAT = "nalu-np-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a nalu-np checkpoint, a damaged one, or one that does not fit the model or optimizer."""


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


def _describe(config: Any) -> str:
    if not isinstance(config, Mapping):
        return repr(config)
    if config.get("unit") == "Sequential":
        return "Sequential[" + ", ".join(_describe(c) for c in config.get("layers", [])) + "]"
    extra = ", ".join(f"{k}={v}" for k, v in config.items() if k not in ("unit", "in_features", "out_features"))
    return f"{config.get('unit')}({config.get('in_features')} -> {config.get('out_features')}, {extra})"


def build_model(config: Mapping[str, Any]) -> Any:
    """A model built from ``model.config()`` (its parameters are placeholders until loaded).

    Every key of a unit's config other than ``unit``, ``in_features`` and ``out_features`` is a keyword
    argument of the unit's constructor.

    Raises
    ------
    CheckpointError
        ``config`` (or a layer's config in it) is not a mapping, lacks a key, names an unknown unit or has
        arguments its unit's constructor refuses.
    """
    from .layers import Sequential, unit_class

    if not isinstance(config, Mapping):
        raise CheckpointError(f"cannot rebuild the model: a unit's config is {config!r}, not a mapping")
    if config.get("unit") == "Sequential":
        if not isinstance(config.get("layers"), list):
            raise CheckpointError(f"cannot rebuild the model: the Sequential config {config} has no list "
                                  "'layers'")
        return Sequential([build_model(c) for c in config["layers"]])
    try:
        cls = unit_class(config["unit"])
        kwargs = {k: v for k, v in config.items() if k not in ("unit", "in_features", "out_features")}
        return cls(config["in_features"], config["out_features"], rng=0, **kwargs)
    except KeyError as err:
        raise CheckpointError(f"cannot rebuild the model: the config {config} lacks {err}") from None
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"cannot rebuild the model {_describe(config)}: {err}") from None


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
    FileNotFoundError
        The directory of ``path`` does not exist (the error names the directory).
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

    write_atomic(path, lambda f: np.savez(f, **arrays))
    return os.fspath(path)


#: what reading a truncated or damaged archive raises: zipfile (also NotImplementedError for an unknown
#: compression method, RuntimeError for a member flagged as encrypted, and the decompressors' zlib.error,
#: lzma.LZMAError and, for bz2, OSError) and the .npy reader (ValueError, EOFError)
_DAMAGED = (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError, OSError, ValueError,
            EOFError)

#: the JSON types, as error messages name them
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}

#: the keys of ``meta.json`` besides ``format`` and ``version``, and of its optimizer state, with their types
_META_KEYS = (("config", (dict,)), ("params", (list,)), ("optimizer", (dict, type(None))), ("metadata", (dict,)))
_OPTIMIZER_KEYS = (("type", (str,)), ("hyper", (dict,)), ("t", (int,)), ("slots", (dict,)))


def _check_keys(where: str, doc: Mapping[str, Any], keys: tuple[tuple[str, tuple[type, ...]], ...]) -> None:
    """Raise :class:`CheckpointError` ("``where`` lacks ...") unless ``doc`` has ``keys`` with their types."""
    for key, types in keys:
        if key not in doc:
            raise CheckpointError(f"{where} lacks {key!r}")
        if type(doc[key]) not in types:
            raise CheckpointError(f"{where}: {key!r} is {_JSON_TYPES[type(doc[key])]}, "
                                  f"not {' or '.join(_JSON_TYPES[t] for t in types)}")


def _check_meta(name: str, meta: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Raise :class:`CheckpointError` unless ``meta`` is a ``meta.json`` this version reads, fitting ``arrays``."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{name} is not a nalu-np checkpoint (meta.json is not a JSON object)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{name} is not a nalu-np checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{name} has checkpoint version {meta.get('version')}, this nalu_np reads version "
                              f"{VERSION}")
    _check_keys(f"{name}: meta.json", meta, _META_KEYS)
    optimizer = meta["optimizer"]
    if optimizer is None:
        return
    where = f"{name}: optimizer state in meta.json"
    _check_keys(where, optimizer, _OPTIMIZER_KEYS)
    if optimizer["type"].lower() not in OPTIMIZERS:
        raise CheckpointError(f"{where}: unknown optimizer type {optimizer['type']!r} (known: "
                              f"{', '.join(sorted(cls.__name__ for cls in OPTIMIZERS.values()))})")
    for slot, names in optimizer["slots"].items():
        if type(names) is not list or not all(type(k) is str for k in names):
            raise CheckpointError(f"{where}: slot {slot!r} is {names!r}, not an array of parameter names")
        for k in names:
            if f"optim/{slot}/{k}" not in arrays:
                raise CheckpointError(f"{name} has no array optim/{slot}/{k} (named by the optimizer state)")


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The checked ``meta.json`` and the other arrays of the checkpoint ``path``.

    Raises
    ------
    OSError
        ``path`` cannot be opened (missing, not readable).
    CheckpointError
        Not an ``.npz`` archive, a damaged one (CRC-32 checksums, truncation), or one without a ``meta.json``
        this version reads.
    """
    name = os.fspath(path)
    with open(name, "rb") as f:
        try:
            npz = np.load(f, allow_pickle=False)
            if isinstance(npz, NpzFile):
                bad_member = npz.zip.testzip()  # reads every member, checking its CRC-32
                if bad_member is not None:
                    raise zipfile.BadZipFile(f"CRC-32 check of {bad_member} failed")
                arrays = {k: npz[k] for k in npz.files}
        except _DAMAGED as err:
            raise CheckpointError(f"{name} is not a nalu-np checkpoint or is damaged ({type(err).__name__}: "
                                  f"{err})") from None
    if not isinstance(npz, NpzFile):
        raise CheckpointError(f"{name} is not a nalu-np checkpoint (a single .npy array, not an .npz archive)")
    if "meta.json" not in arrays:
        raise CheckpointError(f"{name} is not a nalu-np checkpoint (no meta.json)")
    text = arrays.pop("meta.json")
    if text.ndim != 0 or text.dtype.kind != "U":
        raise CheckpointError(f"{name} is not a nalu-np checkpoint (meta.json is not a string but {text.dtype} "
                              f"{text.shape})")
    try:
        meta = json.loads(str(text))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{name} is not a nalu-np checkpoint (meta.json is not JSON: {err})") from None
    _check_meta(name, meta, arrays)
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
    OSError
        ``path`` cannot be opened (missing, not readable).
    CheckpointError
        Not a checkpoint, a damaged one, or one of another unit, shape, dtype or optimizer type; the message
        names the file.
    """
    meta, arrays = _read(path)
    config = meta["config"]
    if model is None:
        try:
            model = build_model(config)
        except CheckpointError as err:
            raise CheckpointError(f"{os.fspath(path)}: {err}") from None
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
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{os.fspath(path)}: {err}") from None
    for k, p in params.items():
        p[...] = array_module(p).asarray(saved[k])
    return Checkpoint(model=model, config=config, optimizer_state=state, metadata=meta["metadata"])
