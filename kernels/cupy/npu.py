"""NPU and RealNPU on the ``cupy`` backend (the kernels of ``npu.cu``, templated on whether ``W_i`` is there).

One cuBLAS product ``[log r; k] @ [W_r | W_i]`` of shape (2B, I) @ (I, 2O) forward, and ``[log r; k].T @ D``,
``D @ [W_r | W_i].T`` backward with ``D = [[dA, dphi], [dphi, -dA]]`` (RealNPU: ``W_r`` and ``[dA; dphi]``);
the sum over the batch of the gate gradient is ``cupy.sum`` (a block reduction).
"""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from ..cuda_common import Params
from ._common import check, contiguous, kernel, launch

__all__ = ["FILE", "kernel_names", "npu_forward", "npu_backward", "realnpu_forward", "realnpu_backward"]

#: the CUDA C++ of NPU and RealNPU (after ``common.cuh``)
FILE = "npu.cu"


def kernel_names(c: str) -> list[str]:
    """Name expressions of every kernel of ``npu.cu`` for the C type ``c``."""
    names = [f"{k}<{c}>" for k in ("npu_inputs", "npu_dx")]
    return names + [f"{k}<{c}, {im}>" for k in ("npu_output", "npu_grads") for im in ("true", "false")]


def _run(dtype: np.dtype, expression: str, n: int, *args: Any) -> None:
    launch(kernel(FILE, kernel_names, dtype.str, expression), n, *args)


def _npu_forward(W_r: Any, W_i: Any, g: Any, x: Any, eps: float, dtype: np.dtype) -> tuple[Any, dict[str, Any]]:
    """Shared forward pass of NPU and RealNPU (``W_i is None``)."""
    x, g = contiguous(x), contiguous(g)
    im = "true" if W_i is not None else "false"
    n_batch, n_in = x.shape
    n_out = W_r.shape[1]
    L = cupy.empty((2 * n_batch, n_in), dtype)
    _run(dtype, "npu_inputs<{c}>", x.size, x, g, dtype.type(eps), L, np.int64(x.size), np.int32(n_in))
    Wc = W_r if W_i is None else cupy.concatenate([W_r, W_i], axis=1)
    y, E, phi = (cupy.empty((n_batch, n_out), dtype) for _ in range(3))
    _run(dtype, "npu_output<{c}, %s>" % im, y.size, contiguous(L @ Wc), y, E, phi, np.int64(y.size),
         np.int32(n_out))
    return y, {"x": x, "L": L, "Wc": Wc, "y": y, "E": E, "phi": phi}


def _npu_backward(W_i: Any, g: Any, cache: dict[str, Any], dy: Any, eps: float,
                  dtype: np.dtype) -> tuple[Any, dict[str, Any]]:
    """Shared backward pass of NPU and RealNPU; grads ``W_r``, ``g`` and, unless ``W_i is None``, ``W_i``."""
    x, L, Wc = cache["x"], cache["L"], cache["Wc"]
    g = contiguous(g)
    n_out = dy.shape[1]
    D = cupy.empty((2 * x.shape[0], Wc.shape[1]), dtype)
    _run(dtype, "npu_grads<{c}, %s>" % ("false" if W_i is None else "true"), dy.size, contiguous(dy),
         cache["y"], cache["E"], cache["phi"], D, np.int64(dy.size), np.int32(n_out))
    dW = L.T @ D
    grads = {"W_r": dW} if W_i is None else {"W_r": cupy.ascontiguousarray(dW[:, :n_out]),
                                             "W_i": cupy.ascontiguousarray(dW[:, n_out:])}
    dx, gt = cupy.empty_like(x), cupy.empty_like(x)
    _run(dtype, "npu_dx<{c}>", x.size, x, g, dtype.type(eps), contiguous(D @ Wc.T), dx, gt, np.int64(x.size),
         np.int32(x.shape[1]))
    grads["g"] = gt.sum(axis=0)
    return dx, grads


def npu_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NPU; see :func:`nalu_np.reference.npu_forward`.

    Parameters
    ----------
    params : dict
        ``W_r``, ``W_i`` (I, O) and the relevance gate ``g`` (I,), cupy.ndarray.
    x : cupy.ndarray, shape (B, I)
    eps : float
        Added to ``|x|`` in the gated magnitude ``r`` (the original NPU uses the dtype's machine epsilon).

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict
        ``x``, ``L = [log r; k]`` (2B, I), ``Wc = [W_r | W_i]`` (I, 2O), ``y``, ``E = exp(A)`` and the
        phase ``phi`` (B, O), for backward's cuBLAS products and epilogue.

    Notes
    -----
    ``r = g * (|x| + eps) + 1 - g``, ``k = pi * g * [x < 0]``,
    ``y = exp(log(r) @ W_r - k @ W_i) * cos(log(r) @ W_i + k @ W_r)``.
    """
    dtype = check(x, params)
    return _npu_forward(params["W_r"], params["W_i"], params["g"], x, eps, dtype)


def npu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the NPU; see :func:`nalu_np.reference.npu_backward` for the formulas.

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        ``W_r``, ``W_i`` (I, O) and ``g`` (I,).
    """
    dtype = check(cache["x"], params, dy)
    dx, grads = _npu_backward(params["W_i"], params["g"], cache, dy, eps, dtype)
    return dx, {k: grads[k] for k in params}


def realnpu_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the RealNPU, ``y = exp(log(r) @ W_r) * cos(k @ W_r)``; see
    :func:`nalu_np.reference.realnpu_forward`.

    Parameters
    ----------
    params : dict
        ``W_r`` (I, O) and ``g`` (I,), cupy.ndarray.
    x : cupy.ndarray, shape (B, I)
    eps : float
        As for the NPU: added to ``|x|`` in ``r``.

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict
        ``x``, ``L = [log r; k]`` (2B, I), ``Wc = W_r``, ``y``, ``E = exp(A)`` and ``phi`` (B, O).
    """
    dtype = check(x, params)
    return _npu_forward(params["W_r"], None, params["g"], x, eps, dtype)


def realnpu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the RealNPU; see :func:`nalu_np.reference.realnpu_backward`.

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        ``W_r`` (I, O) and ``g`` (I,).
    """
    dtype = check(cache["x"], params, dy)
    dx, grads = _npu_backward(None, params["g"], cache, dy, eps, dtype)
    return dx, {k: grads[k] for k in params}
