"""What every unit module of the ``cupy`` backend uses: the backend's name and array type, its device check,
the argument checks, the compiled CUDA sources and the launch of their grid-stride kernels.

CUDA sources: each family's ``.cu`` file next to this module (package data), compiled after ``common.cuh`` by
NVRTC (``cupy.RawModule``) at first use, once per file and set of template instances (:func:`compiled`).  No
fast-math, so ``exp`` overflows to ``inf`` as in the reference.  Launch settings are
:data:`nalu_np.kernels.cuda_common.config`; the block size is raised to at least 32 here (one warp).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Callable

import cupy
import numpy as np

from nalu_np.backends import BackendUnavailableError

from ..cuda_common import Params, config, grid_stride_blocks, require_device

__all__ = ["name", "xp", "array_type", "check_available", "check", "contiguous", "ctype", "cuda_source",
           "compiled", "kernel", "block", "blocks", "launch"]

name = "cupy"
xp = cupy
array_type = cupy.ndarray


def check_available() -> None:
    """Raise :class:`~nalu_np.backends.BackendUnavailableError` unless CuPy sees a CUDA device."""
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError, or a driver / runtime library that does not load
        raise BackendUnavailableError(f"backend 'cupy': no usable CUDA device ({err})") from err
    if n < 1:
        raise BackendUnavailableError("backend 'cupy' needs an NVIDIA GPU and none was found")


def check(x: Any, params: Params, *more: Any) -> np.dtype:
    """The float dtype of ``x``, after checking that ``x``, the parameters and ``more`` are CuPy arrays of it."""
    return require_device(name, x, params, *more, array_type=cupy.ndarray)


def contiguous(a: Any) -> Any:
    """``a`` itself when C-contiguous, else a C-contiguous copy (the kernels index flat arrays)."""
    return a if a.flags.c_contiguous else cupy.ascontiguousarray(a)


def ctype(dtype_str: str) -> str:
    """The C type of a NumPy dtype string (``"<f4"`` / ``"<f8"``)."""
    return {"<f4": "float", "<f8": "double", "float32": "float", "float64": "double"}[dtype_str]


def cuda_source(*files: str) -> str:
    """The CUDA C++ of ``files`` (``.cu`` files of this package) after ``common.cuh``, as NVRTC compiles it."""
    here = resources.files(__package__)
    return "\n".join((here / f).read_text() for f in ("common.cuh", *files))


@functools.lru_cache(maxsize=None)
def compiled(file: str, names: tuple[str, ...]) -> Any:
    """``file`` compiled with the template instances ``names`` (name expressions such as ``"loo<float, 1>"``)."""
    return cupy.RawModule(code=cuda_source(file), options=("--std=c++14",), name_expressions=names)


@functools.lru_cache(maxsize=None)
def kernel(file: str, kernel_names: Callable[[str], list[str]], dtype: str, expression: str) -> Any:
    """The kernel ``expression`` of ``file`` for ``dtype``, e.g. ``"finish<{c}, 2, true>"`` (``{c}``: its C type).

    ``kernel_names(c)`` lists the instances compiled together for the C type ``c``.
    """
    c = ctype(dtype)
    return compiled(file, tuple(kernel_names(c))).get_function(expression.format(c=c))


@functools.lru_cache(maxsize=None)
def sm_count() -> int:
    """Multiprocessors of the current device."""
    return int(cupy.cuda.Device().attributes["MultiProcessorCount"])


def block() -> int:
    """Threads per block: ``config.block``, at least one warp."""
    return max(32, config.checked_block())


def blocks(n: int) -> int:
    """Blocks of a grid-stride kernel over ``n`` items."""
    return grid_stride_blocks(n, block(), sm_count())


def launch(fn: Any, n: int, *args: Any) -> None:
    """Launch the grid-stride kernel ``fn`` over ``n`` items."""
    fn((blocks(n),), (block(),), args)
