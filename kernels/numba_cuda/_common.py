"""What every unit module of the ``numba-cuda`` backend uses: the backend's name, array type and array module
(``cupy`` when it imports and the simulator is off, else ``numba.cuda``; see the package docstring), its device
check, :func:`asarray` and device arrays, the device functions (one set per float type), the argument checks
and the launch of grid-stride kernels.  :data:`SIMULATOR` is true under ``NUMBA_ENABLE_CUDASIM=1``, where the
same kernels run on the CPU in Numba's simulator.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any

import numba
import numpy as np
from numba import cuda

from nalu_np.backends import BackendUnavailableError

from ..cuda_common import NAC, NACMUL, CudaArray, Params, config, grid_stride_blocks, require_device

__all__ = ["name", "SIMULATOR", "xp", "array_type", "check_available", "asarray", "check", "empty", "sm_count",
           "device_math", "cdiv", "launch_1d", "row_splits"]

name = "numba-cuda"
SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

if SIMULATOR:
    xp: Any = cuda
else:
    try:
        import cupy as xp
    except ImportError:
        xp = cuda
array_type = CudaArray


def check_available() -> None:
    """Raise :class:`~nalu_np.backends.BackendUnavailableError` unless a CUDA device (or the simulator) works."""
    if SIMULATOR:
        return
    try:
        ok = cuda.is_available()
    except Exception as err:  # driver libraries that fail to load raise instead of returning False
        raise BackendUnavailableError(f"backend 'numba-cuda': the CUDA driver cannot be used ({err})") from err
    if not ok:
        raise BackendUnavailableError(
            "backend 'numba-cuda' needs an NVIDIA GPU with a working driver and none was found; "
            "set NUMBA_ENABLE_CUDASIM=1 before importing numba to run its kernels in Numba's CPU simulator"
        )


def asarray(a: Any, dtype: Any = None) -> Any:
    """``a`` as a device array of ``xp`` (an explicit host-to-device copy when ``a`` is on the host)."""
    if xp is not cuda:
        return xp.asarray(a, dtype=dtype)
    if isinstance(a, CudaArray) and (dtype is None or np.dtype(dtype) == np.dtype(a.dtype)):
        return a
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def check(x: Any, params: Params, *more: Any) -> np.dtype:
    """The float dtype of ``x``, after checking that ``x``, the parameters and ``more`` are GPU arrays of it."""
    return require_device(name, x, params, *more)


def empty(shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """An uninitialised device array of ``xp``."""
    return cuda.device_array(shape, dtype) if xp is cuda else xp.empty(shape, dtype)


@functools.lru_cache(maxsize=None)
def sm_count() -> int:
    """Multiprocessors of the current device (1 in the simulator)."""
    if SIMULATOR:
        return 1
    return int(cuda.get_current_device().MULTIPROCESSOR_COUNT)


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive integers."""
    return -(-a // b)


def launch_1d(kernel: Any, n: int, block: int, *args: Any) -> int:
    """Launch the grid-stride ``kernel`` over ``n`` items with ``block`` threads per block; returns the blocks."""
    blocks = grid_stride_blocks(n, block, sm_count())
    kernel[blocks, block](*args)
    return blocks


def row_splits(n_rows: int, multiple: int) -> tuple[int, int]:
    """Rows per split (a multiple of ``multiple``) and number of splits of a sum over ``n_rows`` rows.

    At most ``config.splits`` splits; the per-split partial sums are added in a fixed order afterwards.
    """
    splits = max(1, min(config.splits, cdiv(n_rows, multiple)))
    chunk = cdiv(cdiv(n_rows, splits), multiple) * multiple
    return chunk, cdiv(n_rows, chunk)


@functools.lru_cache(maxsize=None)
def device_math(dtype: str) -> SimpleNamespace:
    """The device functions of every kernel, specialised to the float type ``dtype`` (``"<f4"`` / ``"<f8"``).

    Literals would otherwise promote float32 to float64.  The namespace holds the Numba type ``T``, its ``one``
    and ``zero``, and ``exp`` (``inf`` past the overflow threshold), the stable ``sigmoid``, ``log_grad`` (the
    derivative of ``log(|v| + eps)``), ``sign`` (as ``numpy.sign``), and the NAC family's ``output`` and
    ``path_grads`` (by unit code).
    """
    T = numba.from_dtype(np.dtype(dtype))
    one, zero = T(1), T(0)
    inf = T(np.inf)
    log_max = T(math.log(np.finfo(dtype).max))

    @cuda.jit(device=True)
    def exp_(z):  # noqa: ANN001, ANN202 - numba device functions
        # overflow gives inf; the explicit test makes the simulator (Python's math.exp raises) agree
        if z > log_max:
            return inf
        return math.exp(z)

    @cuda.jit(device=True)
    def sigmoid(h):  # noqa: ANN001, ANN202
        e = math.exp(-abs(h))
        if h >= zero:
            return one / (one + e)
        return e / (one + e)

    @cuda.jit(device=True)
    def log_grad(v, eps):  # noqa: ANN001, ANN202
        # d log(|v| + eps) / dv = sign(v) / (|v| + eps); 0 at v = 0, NaN for NaN
        if v > zero:
            return one / (v + eps)
        if v < zero:
            return -one / (eps - v)
        return v

    @cuda.jit(device=True)
    def output(unit, a, m, g):  # noqa: ANN001, ANN202
        if unit == NAC:
            return a
        if unit == NACMUL:
            return m
        return g * a + (one - g) * m

    @cuda.jit(device=True)
    def path_grads(unit, d, a, m, g):  # noqa: ANN001, ANN202
        # (da, dz, dh): gradients of the additive path, of the exponent of the multiplicative path, of the gate
        if unit == NAC:
            return d, zero, zero
        if unit == NACMUL:
            return zero, d * m, zero
        return d * g, d * (one - g) * m, d * (a - m) * g * (one - g)

    @cuda.jit(device=True)
    def sign(v):  # noqa: ANN001, ANN202
        # -1, 0 or 1 in the float type, NaN for NaN
        if v > zero:
            return one
        if v < zero:
            return -one
        return v

    return SimpleNamespace(T=T, one=one, zero=zero, exp=exp_, sigmoid=sigmoid, log_grad=log_grad, sign=sign,
                           output=output, path_grads=path_grads)
