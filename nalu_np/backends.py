"""The backend switch: one registry of compute backends, found by name and imported on first use.

Precedence of the active backend, highest first::

    backend= argument  >  use_backend(...)  >  set_backend(...)  >  NALU_NP_BACKEND  >  "numpy"

``use_backend`` is a :mod:`contextvars` override: it is local to the thread (and asyncio task) that entered it
and is restored on exit, so it never leaks into another thread or into the process default.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator

import numpy as np

__all__ = [
    "Backend",
    "array_module",
    "BackendUnavailableError",
    "available_backends",
    "backend_names",
    "get_backend",
    "register_backend",
    "set_backend",
    "to_numpy",
    "use_backend",
]

ENV_VAR = "NALU_NP_BACKEND"


class BackendUnavailableError(ImportError):
    """A known backend that cannot run here: its extra is not installed, or it has no device."""


@dataclass(frozen=True)
class _Spec:
    module: str
    needs: tuple[str, ...]  # importable modules it depends on
    install: str  # the pip command that provides them


_SPECS: dict[str, _Spec] = {
    "numpy": _Spec("nalu_np.reference", (), "pip install nalu-np"),
    "numba": _Spec("nalu_np.kernels.numba", ("numba",), "pip install 'nalu-np[numba]'"),
    "cupy": _Spec("nalu_np.kernels.cupy", ("cupy",), "pip install 'nalu-np[cuda]'"),
    "numba-cuda": _Spec("nalu_np.kernels.numba_cuda", ("numba", "numba.cuda"), "pip install 'nalu-np[cuda]'"),
}


class Backend:
    """A loaded backend: its ``name``, its array module ``xp`` and its kernels.

    The kernels are the functions of the backend's module, with the names and signatures of
    :mod:`nalu_np.reference` (``nac_forward``, ``nalu_backward``, ...); they are reached as attributes,
    ``backend.nalu_forward(params, x, eps=1e-7)``.
    """

    def __init__(self, name: str, module: ModuleType) -> None:
        self.name = name
        self.module = module
        self.xp: ModuleType = module.xp
        self.array_type: type = module.array_type

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        try:
            return getattr(self.module, attr)
        except AttributeError:
            raise AttributeError(f"backend {self.name!r} has no kernel {attr!r}") from None

    def kernel(self, name: str) -> Any:
        """The kernel ``name`` (e.g. ``"nalu_forward"``); NotImplementedError if this backend lacks it."""
        fn = getattr(self.module, name, None)
        if fn is None:
            raise NotImplementedError(f"backend {self.name!r} does not implement {name!r} yet")
        return fn

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """``a`` as this backend's array type (an explicit host-to-device move for GPU backends)."""
        own = getattr(self.module, "asarray", None)  # e.g. numba-cuda without CuPy: numba.cuda has none
        return own(a, dtype) if own is not None else self.xp.asarray(a, dtype=dtype)

    def __repr__(self) -> str:
        return f"<nalu_np backend {self.name!r}>"


def array_module(a: Any) -> ModuleType:
    """The array module of ``a``: ``numpy`` for a NumPy array, ``cupy`` for a CuPy array, and so on.

    Raises
    ------
    TypeError
        ``a`` is not an array of a module that provides NumPy's functions (e.g. a raw Numba device array).
    """
    if isinstance(a, np.ndarray):
        return np
    mod = sys.modules.get(type(a).__module__.split(".")[0])
    if mod is None or not all(hasattr(mod, f) for f in ("sqrt", "multiply", "clip")) or not hasattr(a, "shape"):
        raise TypeError(
            f"cannot update a {type(a).__module__}.{type(a).__name__}: optimizers need NumPy or CuPy arrays"
        )
    return mod


def to_numpy(a: Any) -> Any:
    """``a`` as a host NumPy array (copies device arrays of CuPy or Numba-CUDA to the host)."""
    if hasattr(a, "get") and not isinstance(a, dict):
        return a.get()
    if hasattr(a, "copy_to_host"):
        return a.copy_to_host()
    return np.asarray(a)


_loaded: dict[str, Backend] = {}
_load_lock = threading.Lock()
_default: str | None = None  # set_backend(); None means "consult the environment variable"
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("nalu_np_backend", default=None)


def register_backend(name: str, module: str, *, needs: tuple[str, ...] = (), install: str = "") -> None:
    """Register a backend module of your own under ``name``.

    ``module`` is imported on first use and must export ``name``, ``xp``, ``array_type`` and the kernels of
    :mod:`nalu_np.reference` it implements (same names and signatures); ``needs`` are modules checked first,
    and ``install`` is the command an error message suggests when one of them is missing.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a backend name must be a non-empty str, got {name!r}")
    if name in _SPECS:
        raise ValueError(f"backend {name!r} is already registered")
    _SPECS[name] = _Spec(module, tuple(needs), install or f"install the package that provides {module}")


def backend_names() -> list[str]:
    """Names of every backend nalu_np knows, whether or not it can run here."""
    return list(_SPECS)


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a backend name must be a str, got {type(name).__name__}")
    if name not in _SPECS:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(_SPECS)}")
    return name


def _load(name: str) -> Backend:
    name = _check_name(name)
    if name in _loaded:
        return _loaded[name]
    spec = _SPECS[name]
    with _load_lock:
        if name in _loaded:
            return _loaded[name]
        for dep in spec.needs:
            try:
                importlib.import_module(dep)
            except ImportError as err:
                raise BackendUnavailableError(
                    f"backend {name!r} needs the module {dep!r}, which cannot be imported ({err}); "
                    f"install it with: {spec.install}"
                ) from err
        try:
            module = importlib.import_module(spec.module)
        except ModuleNotFoundError as err:
            if err.name != spec.module:
                raise
            raise BackendUnavailableError(
                f"backend {name!r} is not part of this version of nalu_np (no module {spec.module})"
            ) from err
        check = getattr(module, "check_available", None)
        if check is not None:
            check()  # raises BackendUnavailableError, e.g. when there is no GPU
        backend = Backend(name, module)
        _loaded[name] = backend
        return backend


def get_backend(name: str | Backend | None = None) -> Backend:
    """The backend to use: ``name`` if given, else the active one (see the module docstring).

    Raises
    ------
    ValueError
        ``name`` (or ``NALU_NP_BACKEND``) is not a known backend.
    BackendUnavailableError
        The backend is known but cannot run here; the message says what to install.
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        name = _override.get()
    if name is None:
        name = _default
    if name is None:
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            try:
                _check_name(env)
            except ValueError as err:
                raise ValueError(f"{ENV_VAR}={env!r}: {err}") from None
            name = env
        else:
            name = "numpy"
    return _load(name)


def set_backend(name: str | None) -> None:
    """Set the process-wide default backend (``None`` goes back to ``NALU_NP_BACKEND`` / numpy).

    The backend is loaded at once, so an unavailable backend fails here and not at the first forward pass.
    """
    global _default
    if name is not None:
        _load(name)
    _default = name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Use backend ``name`` inside a ``with`` block, in this thread / task only; restored on exit."""
    backend = _load(name)
    token = _override.set(backend.name)
    try:
        yield backend
    finally:
        _override.reset(token)


def available_backends() -> list[str]:
    """Names of the backends that import and can run on this machine, in registry order."""
    names = []
    for name in _SPECS:
        try:
            _load(name)
        except (BackendUnavailableError, ImportError):
            continue
        names.append(name)
    return names
