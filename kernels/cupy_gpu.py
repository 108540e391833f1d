"""The ``cupy`` backend: NAC, NACMul and NALU on CuPy arrays, with fused CUDA kernels and cuBLAS; NAU, NMU, iNALU,
NPU and RealNPU from :mod:`nalu_np.kernels.cupy_units`, re-exported here.

Arrays are :class:`cupy.ndarray` (``xp = cupy``) in float32 or float64; host arrays are refused with a
``TypeError`` (move them once with ``cupy.asarray`` or ``layer.to("cupy")``), never copied per call.

Kernels (CUDA C++ in :mod:`nalu_np.kernels._cupy_source`, compiled by NVRTC at first use through
``cupy.RawModule``; no fast-math, so ``exp`` overflows to ``inf`` as in the reference):

* per-row path, for layers with ``in_features * out_features <= config.row_path_max`` (the arithmetic tasks'
  (B, 2, 1)): templated on the layer size, one thread owns whole rows in a grid-stride loop.  Forward reads
  ``x`` once and writes ``y`` once; backward reads ``x`` and ``dy`` once, recomputes the three paths, writes
  ``dx`` once and reduces the weight-gradient sums per block (warp shuffles, then shared memory) into one
  partial per block, which a second kernel adds in a fixed order before the chain rule through
  ``W = tanh(W_hat) sigma(M_hat)``.  Nothing batch-sized is cached.
* general path: the matrix products go to cuBLAS (``cupy.matmul``; the additive path and the gate share one
  product ``x @ [W_a | G]``), everything elementwise is one fused kernel per pass (log input; gate, ``exp``
  and output; path gradients; ``dx`` combination).

No atomics anywhere: weight gradients are bitwise reproducible from run to run with fixed launch settings
(cuBLAS GEMMs are deterministic on one GPU model and toolkit).  Launch settings are
:data:`nalu_np.kernels._cuda_common.config` (the block size is raised to at least 32 here, one warp).
The formulas are those of :mod:`nalu_np.reference`.
"""

from __future__ import annotations

import functools
from typing import Any

import cupy
import numpy as np

from nalu_np.backends import BackendUnavailableError

from . import _cuda_common as cc
from . import _cupy_source as src
from ._cuda_common import NAC, NACMUL, NALU

__all__ = [
    "check_available",
    "nac_forward",
    "nac_backward",
    "nacmul_forward",
    "nacmul_backward",
    "nalu_forward",
    "nalu_backward",
    "nau_forward",
    "nau_backward",
    "nmu_forward",
    "nmu_backward",
    "inalu_forward",
    "inalu_backward",
    "npu_forward",
    "npu_backward",
    "realnpu_forward",
    "realnpu_backward",
]

name = "cupy"
xp = cupy
array_type = cupy.ndarray

Params = dict[str, Any]


def check_available() -> None:
    """Raise :class:`~nalu_np.backends.BackendUnavailableError` unless CuPy sees a CUDA device."""
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDARuntimeError, or a driver / runtime library that does not load
        raise BackendUnavailableError(f"backend 'cupy': no usable CUDA device ({err})") from err
    if n < 1:
        raise BackendUnavailableError("backend 'cupy' needs an NVIDIA GPU and none was found")


@functools.lru_cache(maxsize=None)
def _general_module(dtype: str) -> Any:
    names = src.general_names(src.ctype(dtype))
    return cupy.RawModule(code=src.SOURCE, options=("--std=c++14",), name_expressions=names)


@functools.lru_cache(maxsize=None)
def _kernel(dtype: str, kernel: str) -> Any:
    """The compiled kernel ``kernel`` (template arguments after the C type, e.g. ``"finish", "2, true"``)."""
    return _general_module(dtype).get_function(kernel.format(c=src.ctype(dtype)))


@functools.lru_cache(maxsize=None)
def _row_kernels(dtype: str, unit: int, n_in: int, n_out: int) -> tuple[Any, Any]:
    names = src.row_names(src.ctype(dtype), unit, n_in, n_out)
    module = cupy.RawModule(code=src.SOURCE, options=("--std=c++14",), name_expressions=names)
    return module.get_function(names[0]), module.get_function(names[1])


@functools.lru_cache(maxsize=None)
def _sm_count() -> int:
    return int(cupy.cuda.Device().attributes["MultiProcessorCount"])


def _block() -> int:
    return max(32, cc.config.checked_block())


def _blocks(n: int) -> int:
    return cc.grid_stride_blocks(n, _block(), _sm_count())


def _launch(kernel: Any, n: int, *args: Any) -> None:
    """Launch a grid-stride kernel over ``n`` items."""
    kernel((_blocks(n),), (_block(),), args)


def _contiguous(a: Any) -> Any:
    return a if a.flags.c_contiguous else cupy.ascontiguousarray(a)


def _nac_weight(W_hat: Any, M_hat: Any) -> tuple[Any, Any, Any]:
    dtype = W_hat.dtype.str
    W_hat, M_hat = _contiguous(W_hat), _contiguous(M_hat)
    W, t, s = (cupy.empty_like(W_hat) for _ in range(3))
    _launch(_kernel(dtype, "weight<{c}>"), W.size, W_hat, M_hat, W, t, s, np.int64(W.size))
    return W, t, s


def _names(unit: int, params: Params) -> tuple[tuple[str, str], tuple[str, str]]:
    if unit == NALU:
        return cc.nalu_names(params)
    return ("W_hat", "M_hat"), ("W_hat", "M_hat")


def _forward(unit: int, params: Params, x: Any, eps: float) -> tuple[Any, dict[str, Any]]:
    dtype = cc.require_device(name, x, params, array_type=cupy.ndarray)
    x = _contiguous(x)
    (wa, ma), (wm, mm) = _names(unit, params)
    Wa, ta, sa = _nac_weight(params[wa], params[ma])
    Wm, tm, sm = (Wa, ta, sa) if wm == wa else _nac_weight(params[wm], params[mm])
    G = _contiguous(params["G"]) if unit == NALU else Wa  # placeholder where the unit has no gate
    n_batch, n_in = x.shape
    n_out = Wa.shape[1]
    eps_t = dtype.type(eps)
    cache: dict[str, Any] = {"x": x, "Wa": Wa, "ta": ta, "sa": sa, "Wm": Wm, "tm": tm, "sm": sm}
    cache["row"] = cc.use_row_path(n_in, n_out)  # backward takes the same path
    if cache["row"]:
        y = cupy.empty((n_batch, n_out), dtype)
        fwd, _ = _row_kernels(dtype.str, unit, n_in, n_out)
        _launch(fwd, n_batch, x, Wa, Wm, G, eps_t, y, np.int64(n_batch))
        return y, cache
    if unit == NAC:
        return x @ Wa, cache
    l = cupy.empty_like(x)
    _launch(_kernel(dtype.str, "log_abs<{c}>"), x.size, x, eps_t, l, np.int64(x.size))
    z = l @ Wm
    cache["l"] = l
    if unit == NACMUL:
        _launch(_kernel(dtype.str, "exp_inplace<{c}>"), z.size, z, np.int64(z.size))
        cache["m"] = z
        return z, cache
    WG = cupy.concatenate([Wa, G], axis=1)  # (I, 2 O): the additive path and the gate in one product
    P = x @ WG
    y = cupy.empty((n_batch, n_out), dtype)
    _launch(_kernel(dtype.str, "nalu_epilogue<{c}>"), y.size, P, z, y, np.int64(y.size), np.int32(n_out))
    cache.update(WG=WG, P=P, m=z)  # P holds [a | g], z now holds m
    return y, cache


def _backward(unit: int, params: Params, cache: dict[str, Any], dy: Any, eps: float) -> tuple[Any, Params]:
    x = cache["x"]
    dtype = cc.require_device(name, x, params, dy, array_type=cupy.ndarray)
    dy = _contiguous(dy)
    (wa, ma), (wm, mm) = _names(unit, params)
    separate = wm != wa
    n_batch, n_in = x.shape
    n_out = cache["Wa"].shape[1]
    eps_t = dtype.type(eps)
    if cache["row"]:
        G = _contiguous(params["G"]) if unit == NALU else cache["Wa"]
        _, bwd = _row_kernels(dtype.str, unit, n_in, n_out)
        blocks = _blocks(n_batch)
        k = n_in * n_out
        n_sums = 3 * k if unit == NALU else k  # see row_backward: additive, multiplicative, gate sums
        part = cupy.empty((blocks, n_sums), dtype)
        dx = cupy.empty_like(x)
        bwd((blocks,), (_block(),), (x, dy, cache["Wa"], cache["Wm"], G, eps_t, dx, part, np.int64(n_batch)))
        flat = part.ravel()  # sums of entry (i, j) of block p at p * n_sums + offset + i * O + j
        sums = {"a": (flat, n_out), "m": (flat[k if unit == NALU else 0:], n_out)}
        if unit == NALU:
            sums["g"] = (flat[2 * k:], n_out)
        parts, stride = blocks, n_sums
    elif unit == NAC:
        dx = dy @ cache["Wa"].T
        sums = {"a": (x.T @ dy, n_out)}
        parts, stride = 1, 0
    elif unit == NACMUL:
        dz = cupy.empty_like(dy)
        _launch(_kernel(dtype.str, "nacmul_grads<{c}>"), dz.size, dy, cache["m"], dz, np.int64(dz.size))
        dx = cupy.empty_like(x)
        r_log = dz @ cache["Wm"].T
        _launch(_kernel(dtype.str, "dx_combine<{c}, false>"), x.size, r_log, r_log, x, eps_t, dx, np.int64(x.size))
        sums = {"m": (cache["l"].T @ dz, n_out)}
        parts, stride = 1, 0
    else:
        D = cupy.empty((n_batch, 2 * n_out), dtype)  # [da | dh]
        dz = cupy.empty_like(dy)
        _launch(_kernel(dtype.str, "nalu_grads<{c}>"), dy.size, dy, cache["P"], cache["m"], D, dz,
                np.int64(dy.size), np.int32(n_out))
        r = D @ cache["WG"].T  # da @ W_a.T + dh @ G.T
        r_log = dz @ cache["Wm"].T
        dx = cupy.empty_like(x)
        _launch(_kernel(dtype.str, "dx_combine<{c}, true>"), x.size, r, r_log, x, eps_t, dx, np.int64(x.size))
        dWG = x.T @ D  # (I, 2 O): [dW_a | dG]
        sums = {"a": (dWG, 2 * n_out), "m": (cache["l"].T @ dz, n_out), "g": (dWG.ravel()[n_out:], 2 * n_out)}
        parts, stride = 1, 0
    return dx, _finish(unit, separate, params, cache, sums, parts, stride)


def _finish(unit: int, separate: bool, params: Params, cache: dict[str, Any], sums: dict[str, tuple[Any, int]],
            parts: int, stride: int) -> Params:
    """Weight gradients from their sums (``sums[c] = (array, row stride)`` for the paths c in a, m, g)."""
    (wa, ma), (wm, mm) = _names(unit, params)
    Wa = cache["Wa"]
    n_in, n_out = Wa.shape
    out = {key: cupy.empty((n_in, n_out), Wa.dtype) for key in params}
    first = next(iter(sums.values()))
    Sa, lda = sums.get("a", first)
    Sm, ldm = sums.get("m", first)
    Sg, ldg = sums.get("g", first)
    gwm, gmm = (out[wm], out[mm]) if separate else (out[wa], out[ma])
    kernel = _kernel(Wa.dtype.str, "finish<{c}, %d, %s>" % (unit, "true" if separate else "false"))
    _launch(kernel, Wa.size, np.int32(parts), np.int64(stride), Sa, np.int32(lda), Sm, np.int32(ldm), Sg,
            np.int32(ldg), cache["ta"], cache["sa"], cache["tm"], cache["sm"], out[wa], out[ma], gwm, gmm,
            out.get("G", out[wa]), np.int64(Wa.size), np.int32(n_out))
    return out


def nac_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NAC, ``y = x @ (tanh(W_hat) * sigma(M_hat))``; see :func:`nalu_np.reference.nac_forward`."""
    return _forward(NAC, params, x, 0.0)


def nac_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NAC; see :func:`nalu_np.reference.nac_backward`."""
    return _backward(NAC, params, cache, dy, 0.0)


def nacmul_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NACMul, ``y = exp(log(|x| + eps) @ W)``; see :func:`nalu_np.reference.nacmul_forward`."""
    return _forward(NACMUL, params, x, eps)


def nacmul_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the NACMul; see :func:`nalu_np.reference.nacmul_backward`."""
    return _backward(NACMUL, params, cache, dy, eps)


def nalu_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NALU, shared or separate weights; see :func:`nalu_np.reference.nalu_forward`.

    Parameters
    ----------
    params : dict of cupy.ndarray, shape (I, O)
    x : cupy.ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``y = g * (x @ W_a) + (1 - g) * exp(log(|x| + eps) @ W_m)``, ``g = sigma(x @ G)``.
    """
    return _forward(NALU, params, x, eps)


def nalu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the NALU; see :func:`nalu_np.reference.nalu_backward`.

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        Same keys as ``params``, shape (I, O); bitwise reproducible for fixed launch settings.
    """
    return _backward(NALU, params, cache, dy, eps)


# the successors' kernels build on the helpers above (imported last: that module imports this one)
from .cupy_units import (  # noqa: E402
    inalu_backward,
    inalu_forward,
    nau_backward,
    nau_forward,
    nmu_backward,
    nmu_forward,
    npu_backward,
    npu_forward,
    realnpu_backward,
    realnpu_forward,
)
