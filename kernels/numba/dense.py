"""The study's baselines (``Linear``, ``ReLU``, ``ReLU6``): ``y = clip(x @ W + b, lo, hi)``, their block
functions and layer kernels.

Block functions (on transposed blocks, shape (features, n); called by the compiled training step):
:func:`dense_block_forward` and :func:`dense_block_backward`.  The layer kernels take the affine part from the
NAU's linear kernels (:func:`nalu_np.kernels.numba.nau.linear_forward`, ``linear_backward``: BLAS for large
weights, else the fused path) and add the bias and the activation in one pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import EW, SUM, Params, check, clip, grad, matmul, matmul_t
from ._math import jit as njit
from .nau import linear_backward, linear_forward

__all__ = ["dense_forward", "dense_backward", "relu_forward", "relu_backward", "relu6_forward", "relu6_backward"]

#: the kernel prefix -> the interval the output is clipped to (as :data:`nalu_np.baselines.ACTIVATIONS`)
ACTIVATIONS = {"dense": (-np.inf, np.inf), "relu": (0.0, np.inf), "relu6": (0.0, 6.0)}


@njit(**EW)
def dense_block_forward(xT, n, W, b, lo, hi, zT, yT):
    """``zT = W.T @ xT + b`` and ``yT = clip(zT, lo, hi)`` on the first ``n`` columns (O, nb)."""
    matmul(xT, n, W, zT)
    for o in range(zT.shape[0]):
        for r in range(n):
            z = zT[o, r] + b[o]
            zT[o, r] = z
            yT[o, r] = clip(z, lo, hi)


@njit(**EW)
def _masked(zT, dT, n, lo, hi, delta):
    """``delta = dT [lo < zT < hi]`` (O, nb)."""
    zero = dT.dtype.type(0.0)
    for o in range(dT.shape[0]):
        for r in range(n):
            z = zT[o, r]
            delta[o, r] = dT[o, r] if (z > lo) and (z < hi) else zero


@njit(**SUM)
def _bias_grad(delta, n, accb):
    """``accb[o] += sum_r delta[o, r]``."""
    for o in range(delta.shape[0]):
        s = delta.dtype.type(0.0)
        for r in range(n):
            s += delta[o, r]
        accb[o] += s


@njit(**EW)
def dense_block_backward(xT, zT, dT, n, W, lo, hi, acc, accb, delta, dxT, need_dx):
    """Gradients of one block: ``delta = dT [lo < zT < hi]`` (scratch (O, nb)), ``acc += xT @ delta.T``
    (I, O), ``accb += sum delta`` (O,) and, when ``need_dx``, ``dxT = W @ delta`` (I, nb, overwritten)."""
    _masked(zT, dT, n, lo, hi, delta)
    grad(xT, delta, n, acc)
    _bias_grad(delta, n, accb)
    if need_dx:
        matmul_t(delta, n, W, dxT, False)


@njit(**EW)
def _bias_activation(z, b, lo, hi, y):
    """``z += b`` (in place, row-wise) and ``y = clip(z, lo, hi)``, both (B, O)."""
    for r in range(z.shape[0]):
        for o in range(z.shape[1]):
            v = z[r, o] + b[o]
            z[r, o] = v
            y[r, o] = clip(v, lo, hi)


@njit(**EW)
def _mask_rows(z, dy, lo, hi, delta):
    """``delta = dy [lo < z < hi]``, (B, O)."""
    zero = dy.dtype.type(0.0)
    for r in range(z.shape[0]):
        for o in range(z.shape[1]):
            v = z[r, o]
            delta[r, o] = dy[r, o] if (v > lo) and (v < hi) else zero


def _forward(kernel: str, params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    check(x, params)
    x = np.ascontiguousarray(x)
    W, b = params["W"], params["b"]
    if W.shape[0] != x.shape[1] or b.shape != (W.shape[1],):
        raise ValueError(f"x {x.shape}, W {W.shape} and b {b.shape} do not fit: need (B, I), (I, O), (O,)")
    lo, hi = ACTIVATIONS[kernel]
    z = np.ascontiguousarray(linear_forward(x, W))
    y = np.empty_like(z)
    _bias_activation(z, b, x.dtype.type(lo), x.dtype.type(hi), y)
    return y, (x, z, kernel)


def _backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    x, z, kernel = cache
    dt = check(x, params, dy)
    lo, hi = ACTIVATIONS[kernel]
    delta = np.empty_like(z)
    _mask_rows(z, np.ascontiguousarray(dy), dt.type(lo), dt.type(hi), delta)
    dx, dW = linear_backward(x, params["W"], delta)
    return dx, {"W": dW.astype(dt), "b": delta.sum(axis=0, dtype=np.float64).astype(dt)}


def dense_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of ``Linear``, ``y = x @ W + b``; see :func:`nalu_np.reference.dense_forward`."""
    return _forward("dense", params, x)


def dense_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of ``Linear``; see :func:`nalu_np.reference.dense_backward`."""
    return _backward(params, cache, dy)


def relu_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of ``ReLU``, ``y = max(x @ W + b, 0)``; see :func:`nalu_np.reference.relu_forward`."""
    return _forward("relu", params, x)


def relu_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of ``ReLU``; see :func:`nalu_np.reference.relu_backward`."""
    return _backward(params, cache, dy)


def relu6_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of ``ReLU6``, ``y = min(max(x @ W + b, 0), 6)``; see
    :func:`nalu_np.reference.relu6_forward`."""
    return _forward("relu6", params, x)


def relu6_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of ``ReLU6``; see :func:`nalu_np.reference.relu6_backward`."""
    return _backward(params, cache, dy)
