"""A stand-in for CuPy, for testing the ``cupy`` backend on a machine without a GPU.

Only what :mod:`nalu_np.kernels.cupy` uses: :class:`ndarray` (a NumPy subclass, so that host NumPy arrays
are *not* instances and are refused as with real CuPy), array creation, ``@`` (NumPy's matmul for cuBLAS), and
:class:`RawModule`, which compiles the CUDA C++ source for the host with ``g++`` and ``../cuda_host.h`` (every
CUDA thread a ``std::thread``, real barriers and warp shuffles) and launches the named template instances.
Kernel arguments must be arrays of this module or NumPy scalars of an exact C type: Python numbers and host
arrays raise, where real CuPy might silently pass a wrong type.

Put ``tests/support/fakecupy`` first on ``PYTHONPATH`` to use it (:mod:`support.gpu_subprocess` does, in a
subprocess).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

__version__ = "0.0-host-emulation"
HEADER_DIR = Path(__file__).resolve().parent.parent


class ndarray(np.ndarray):  # noqa: N801 - CuPy's name
    """A "device" array: NumPy memory, but not a ``numpy.ndarray`` for ``type(a) is``-style checks."""

    def get(self) -> np.ndarray:
        return np.array(self, copy=True, subok=False)


def _dev(a: np.ndarray) -> ndarray:
    return a.view(ndarray)


def asarray(a: Any, dtype: Any = None) -> ndarray:
    return _dev(np.array(a, dtype=dtype, copy=True, subok=False))


def empty(shape: Any, dtype: Any = np.float64) -> ndarray:
    return _dev(np.full(shape, np.nan, dtype))  # NaN: reading an entry no kernel wrote shows up in the results


def empty_like(a: Any) -> ndarray:
    return empty(a.shape, a.dtype)


def ascontiguousarray(a: Any) -> ndarray:
    return _dev(np.ascontiguousarray(a))


def concatenate(arrays: Any, axis: int = 0) -> ndarray:
    return _dev(np.concatenate([np.asarray(a) for a in arrays], axis=axis))


def __getattr__(name: str) -> Any:
    """Everything else (``sqrt``, ``multiply``, ``clip``, ... for the optimizers and losses) is NumPy's, which
    keeps the array subclass."""
    return getattr(np, name)


cuda = SimpleNamespace(
    runtime=SimpleNamespace(getDeviceCount=lambda: 1),
    Device=lambda: SimpleNamespace(attributes={"MultiProcessorCount": 2}, id=0),
)

_CTYPES = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double,
           np.dtype(np.int32): ctypes.c_int, np.dtype(np.int64): ctypes.c_longlong}


def _argument(a: Any) -> Any:
    if isinstance(a, ndarray):
        return ctypes.c_void_p(a.ctypes.data)
    if isinstance(a, np.generic) and a.dtype in _CTYPES:
        return _CTYPES[a.dtype](a.item())
    raise TypeError(f"kernel argument of type {type(a).__name__} (need a device array or a sized NumPy scalar)")


class _Kernel:
    def __init__(self, fn: Any, name: str) -> None:
        self.fn, self.name = fn, name

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple[Any, ...]) -> None:
        if len(grid) != 1 or len(block) != 1:
            raise ValueError(f"{self.name}: the emulation launches 1-d grids only")
        held = [_argument(a) for a in args]
        pointers = (ctypes.c_void_p * len(held))(*[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in held])
        self.fn(ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]), pointers)


_FLAGS = ("-std=c++20", "-O1", "-pthread", "-fPIC")


def _gxx(*args: str) -> None:
    proc = subprocess.run(["g++", *_FLAGS, *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"g++ failed:\n{proc.stderr[-4000:]}")


def _header_dir() -> Path:
    """A cache directory, per version of the header, holding it and its precompiled form (~1 s per module)."""
    text = (HEADER_DIR / "cuda_host.h").read_text()
    d = Path(tempfile.gettempdir()) / "nalu_np_fakecupy" / hashlib.sha256(text.encode()).hexdigest()[:16]
    if not (d / "cuda_host.h.gch").exists():
        d.mkdir(parents=True, exist_ok=True)
        (d / "cuda_host.h").write_text(text)
        tmp = d / f"cuda_host.{os.getpid()}.gch"
        _gxx("-x", "c++-header", str(d / "cuda_host.h"), "-o", str(tmp))
        os.replace(tmp, d / "cuda_host.h.gch")
    return d


class RawModule:
    """Compile ``code`` for the host and expose the template instances named in ``name_expressions``."""

    def __init__(self, code: str, options: tuple[str, ...] = (), name_expressions: Any = ()) -> None:
        self.names = list(name_expressions)
        launchers = "".join(
            f'extern "C" void nalu_launch_{i}(unsigned g, unsigned b, void** a) {{ emu::launch(&{n}, g, b, a); }}\n'
            for i, n in enumerate(self.names)
        )
        source = '#include "cuda_host.h"\n' + code + "\n" + launchers
        include = _header_dir()
        key = hashlib.sha256((source + include.name).encode()).hexdigest()[:24]
        lib = include / f"{key}.so"
        if not lib.exists():
            src = include / f"{key}.{os.getpid()}.cpp"
            src.write_text(source)
            tmp = include / f"{key}.{os.getpid()}.so"
            _gxx("-shared", f"-I{include}", "-o", str(tmp), str(src))
            os.replace(tmp, lib)
            src.unlink()
        self.lib = ctypes.CDLL(str(lib))

    def get_function(self, name: str) -> _Kernel:
        fn = getattr(self.lib, f"nalu_launch_{self.names.index(name)}")
        fn.restype = None
        return _Kernel(fn, name)
