"""NPU and RealNPU on the ``numba-cuda`` backend: one product ``[log r; k] @ [W_r | W_i]`` of shape
(2B, I) @ (I, 2O) forward (RealNPU: ``W_r`` alone), with the matrix products and sums over the batch of
:mod:`._linalg` and one grid-stride kernel per elementwise pass.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda

from ..cuda_common import Params, config
from ._common import check, device_math, empty, launch_1d
from ._linalg import colsum_parts, matmul, matmul_t, sum_parts, tmm_parts, vector

__all__ = ["npu_kernels", "npu_forward", "npu_backward", "realnpu_forward", "realnpu_backward"]


@functools.lru_cache(maxsize=None)
def npu_kernels(dtype: str, imaginary: bool) -> Any:
    """Kernels of the NPU (``imaginary``: with ``W_i``) or the RealNPU.

    The stacked input ``L = [log r; k]`` (2B, I) times ``Wc = [W_r | W_i]`` (I, 2O) (RealNPU: ``W_r``) holds
    ``log r @ W_r``, ``log r @ W_i`` in its first B rows and ``k @ W_r``, ``k @ W_i`` in its last B rows.
    Backward stacks ``D = [[dA, dphi], [dphi, -dA]]`` (RealNPU: ``[dA; dphi]``) so that
    ``L.T @ D = [dW_r | dW_i]`` and ``D @ Wc.T = [d log r; dk]``.
    """
    f = device_math(dtype)
    T, one, zero = f.T, f.one, f.zero
    exp_, sign = f.exp, f.sign
    pi = T(math.pi)

    @cuda.jit(device=True)
    def gated(v, gi, eps):  # noqa: ANN001, ANN202
        # |x| + eps and r = g (|x| + eps) + 1 - g
        ax = abs(v) + eps
        return ax, gi * ax + (one - gi)

    @cuda.jit
    def stack_inputs(x, g, eps, L):  # noqa: ANN001, ANN202
        n_batch, n_in = x.shape
        for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            b = k // n_in
            i = k - b * n_in
            v = x[b, i]
            _, r = gated(v, g[i], eps)
            L[b, i] = math.log(r)
            L[n_batch + b, i] = g[i] * (pi if v < zero else zero)

    @cuda.jit
    def stack_weights(W_r, W_i, Wc):  # noqa: ANN001, ANN202
        n_out = W_r.shape[1]
        for k in range(cuda.grid(1), W_r.size, cuda.gridsize(1)):
            i = k // n_out
            o = k - i * n_out
            Wc[i, o] = W_r[i, o]
            Wc[i, n_out + o] = W_i[i, o]

    @cuda.jit
    def output(Q, y, E, phi):  # noqa: ANN001, ANN202
        # A = log r @ W_r - k @ W_i, phi = k @ W_r + log r @ W_i, y = exp(A) cos(phi)
        n_batch, n_out = y.shape
        for k in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            b = k // n_out
            o = k - b * n_out
            A = Q[b, o]
            p = Q[n_batch + b, o]
            if imaginary:
                A -= Q[n_batch + b, n_out + o]
                p += Q[b, n_out + o]
            e = exp_(A)
            E[b, o] = e
            phi[b, o] = p
            y[b, o] = e * math.cos(p)

    @cuda.jit
    def grads(dy, y, E, phi, D):  # noqa: ANN001, ANN202
        # dA = delta y, dphi = -delta E sin(phi), stacked as described above
        n_batch, n_out = dy.shape
        for k in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
            b = k // n_out
            o = k - b * n_out
            d = dy[b, o]
            dA = d * y[b, o]
            dphi = -d * E[b, o] * math.sin(phi[b, o])
            D[b, o] = dA
            D[n_batch + b, o] = dphi
            if imaginary:
                D[b, n_out + o] = dphi
                D[n_batch + b, n_out + o] = -dA

    @cuda.jit
    def dx_kernel(x, g, eps, R, dx, gt):  # noqa: ANN001, ANN202
        # dr = d log r / r, dx = dr g sign(x), gt = dr (|x| + eps - 1) + dk pi [x < 0] (summed over b for dg)
        n_batch, n_in = x.shape
        for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            b = k // n_in
            i = k - b * n_in
            v = x[b, i]
            gi = g[i]
            ax, r = gated(v, gi, eps)
            dr = R[b, i] / r
            dx[b, i] = dr * gi * sign(v)
            gt[b, i] = dr * (ax - one) + R[n_batch + b, i] * (pi if v < zero else zero)

    return stack_inputs, stack_weights, output, grads, dx_kernel


def _npu_forward(W_r: Any, W_i: Any, g: Any, x: Any, eps: float, dtype: np.dtype) -> tuple[Any, dict[str, Any]]:
    """Shared forward pass of NPU and RealNPU (``W_i is None``)."""
    stack_inputs, stack_weights, output, _, _ = npu_kernels(dtype.str, W_i is not None)
    block = config.checked_block()
    n_batch, n_in = x.shape
    n_out = W_r.shape[1]
    L = empty((2 * n_batch, n_in), dtype)
    launch_1d(stack_inputs, x.size, block, x, g, dtype.type(eps), L)
    Wc = W_r
    if W_i is not None:
        Wc = empty((n_in, 2 * n_out), dtype)
        launch_1d(stack_weights, W_r.size, block, W_r, W_i, Wc)
    y, E, phi = (empty((n_batch, n_out), dtype) for _ in range(3))
    launch_1d(output, y.size, block, matmul(L, Wc, dtype), y, E, phi)
    return y, {"x": x, "L": L, "Wc": Wc, "y": y, "E": E, "phi": phi}


def _npu_backward(W_i: Any, g: Any, cache: dict[str, Any], dy: Any, eps: float,
                  dtype: np.dtype) -> tuple[Any, dict[str, Any]]:
    """Shared backward pass of NPU and RealNPU; grads ``W_r``, ``g`` and, unless ``W_i is None``, ``W_i``."""
    _, _, _, grads_k, dx_k = npu_kernels(dtype.str, W_i is not None)
    block = config.checked_block()
    x, L, Wc = cache["x"], cache["L"], cache["Wc"]
    n_batch, n_in = x.shape
    n_out = dy.shape[1]
    D = empty((2 * n_batch, Wc.shape[1]), dtype)
    launch_1d(grads_k, dy.size, block, dy, cache["y"], cache["E"], cache["phi"], D)
    parts = tmm_parts(L, D, dtype)
    grads: dict[str, Any] = {}
    if W_i is None:
        grads["W_r"] = sum_parts(parts, n_in, n_out, dtype)
    else:
        grads["W_r"], grads["W_i"] = sum_parts(parts, n_in, 2 * n_out, dtype, split_at=n_out)
    dx, gt = empty((n_batch, n_in), dtype), empty((n_batch, n_in), dtype)
    launch_1d(dx_k, x.size, block, x, g, dtype.type(eps), matmul_t(D, Wc, dtype), dx, gt)
    grads["g"] = vector(colsum_parts(gt, dtype), dtype)
    return dx, grads


def npu_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NPU; see :func:`nalu_np.reference.npu_forward`.

    Parameters
    ----------
    params : dict
        ``W_r``, ``W_i`` (I, O) and the relevance gate ``g`` (I,), GPU arrays.
    x : GPU array, shape (B, I)
    eps : float
        Added to ``|x|`` in the gated magnitude ``r`` (the original NPU uses the dtype's machine epsilon).

    Returns
    -------
    y : array of ``xp``, shape (B, O)
    cache : dict
        ``x``, ``L = [log r; k]`` (2B, I), ``Wc`` (I, 2O, stacked by a kernel), ``y``, ``E`` and
        ``phi`` (B, O), for backward's tiled products.

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
    dx : array of ``xp``, shape (B, I)
    grads : dict
        ``W_r``, ``W_i`` (I, O) and ``g`` (I,); bitwise reproducible for fixed launch settings.
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
        ``W_r`` (I, O) and ``g`` (I,), GPU arrays.
    x : GPU array, shape (B, I)
    eps : float
        As for the NPU: added to ``|x|`` in ``r``.

    Returns
    -------
    y : array of ``xp``, shape (B, O)
    cache : dict
        ``x``, ``L = [log r; k]`` (2B, I), ``Wc = W_r``, ``y``, ``E`` and ``phi`` (B, O).
    """
    dtype = check(x, params)
    return _npu_forward(params["W_r"], None, params["g"], x, eps, dtype)


def realnpu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the RealNPU; see :func:`nalu_np.reference.realnpu_backward`.

    Returns
    -------
    dx : array of ``xp``, shape (B, I)
    grads : dict
        ``W_r`` (I, O) and ``g`` (I,).
    """
    dtype = check(cache["x"], params, dy)
    dx, grads = _npu_backward(None, params["g"], cache, dy, eps, dtype)
    return dx, {k: grads[k] for k in params}
