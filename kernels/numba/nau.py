"""The NAU (Madsen & Johansen 2020), ``y = x @ W``: its block functions, the linear layer kernels that the NAC
shares, and the public kernels.

Block functions (on transposed blocks, shape (features, n); also called by the compiled training step):
:func:`nau_block_forward`, :func:`nau_block_backward` and :func:`nau_regularizer`.  The projection onto
``[-1, 1]`` is :func:`nalu_np.kernels.numba._common.clip` with the layer's bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from ._common import EW, PAR, SUM, Params, block_range, check, chunks, flush, grad, load, matmul, matmul_t, \
    min_distance_penalty, partials, plan, store, sum_partials, use_blas, use_rows
from ._math import jit as njit

__all__ = ["nau_forward", "nau_backward"]


@njit(**EW)
def nau_block_forward(xT, n, W, yT):
    """``yT = W.T @ xT`` on the first ``n`` columns: xT (I, nb), W (I, O), yT (O, nb)."""
    matmul(xT, n, W, yT)


@njit(**EW)
def nau_block_backward(xT, dT, n, W, acc, dxT, need_dx):
    """Gradients of one block: ``acc += xT @ dT.T`` (I, O) and, when ``need_dx``, ``dxT = W @ dT`` (I, nb,
    overwritten); ``dT`` (O, nb) is ``delta`` transposed."""
    grad(xT, dT, n, acc)
    if need_dx:
        matmul_t(dT, n, W, dxT, False)


@njit(**EW)
def nau_regularizer(W, lam, dW):
    """Add ``lam * dR/dW`` to ``dW`` and return ``lam * R`` (float64) for ``R = mean(min(|W|, 1 - |W|))``.

    Notes
    -----
    ``dR/dW = sign(W) sign(1/2 - |W|) / W.size``, as :func:`nalu_np.reference.nau_regularizer`.
    """
    return min_distance_penalty(W, True, lam, dW)


@njit(**EW)
def _fwd_chunk(c, nchunks, x, W, nb, y):
    B, I = x.shape
    xT = np.empty((I, nb), x.dtype)
    yT = np.empty((W.shape[1], nb), x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        nau_block_forward(xT, n, W, yT)
        store(yT, r0, n, y)


@njit(**PAR)
def _fwd(x, W, nb, nchunks, y):
    if nchunks == 1:
        _fwd_chunk(0, 1, x, W, nb, y)
    else:
        for c in prange(nchunks):
            _fwd_chunk(c, nchunks, x, W, nb, y)


@njit(**EW)
def _bwd_chunk(c, nchunks, x, dy, W, nb, dx, pW):
    B, I = x.shape
    xT = np.empty((I, nb), x.dtype)
    dT = np.empty((W.shape[1], nb), x.dtype)
    tT = np.empty((I, nb), x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        load(dy, r0, n, dT)
        nau_block_backward(xT, dT, n, W, pW[c], tT, True)
        store(tT, r0, n, dx)


@njit(**PAR)
def _bwd(x, dy, W, nb, nchunks, dx, pW):
    if nchunks == 1:
        _bwd_chunk(0, 1, x, dy, W, nb, dx, pW)
    else:
        for c in prange(nchunks):
            _bwd_chunk(c, nchunks, x, dy, W, nb, dx, pW)


@njit(**SUM)
def _row_dot(x, r, WT, o):
    """``x[r] . WT[o]`` (vectorised with reassociation)."""
    z = x.dtype.type(0.0)
    for i in range(x.shape[1]):
        z += x[r, i] * WT[o, i]
    return z


@njit(**EW)
def _rows_fwd_chunk(c, nchunks, x, WT, y):
    r0, r1 = c * x.shape[0] // nchunks, (c + 1) * x.shape[0] // nchunks
    for r in range(r0, r1):
        for o in range(WT.shape[0]):
            y[r, o] = _row_dot(x, r, WT, o)


@njit(**PAR)
def _rows_fwd(x, W, nchunks):
    """``x @ W`` row by row (many inputs): every inner loop runs over the contiguous inputs of one row."""
    WT = np.ascontiguousarray(W.T)
    y = np.empty((x.shape[0], W.shape[1]), x.dtype)
    if nchunks == 1:
        _rows_fwd_chunk(0, 1, x, WT, y)
    else:
        for c in prange(nchunks):
            _rows_fwd_chunk(c, nchunks, x, WT, y)
    return y


@njit(**EW)
def _rows_bwd_chunk(c, nchunks, x, dy, WT, dx, pWT):
    """``dx = dy @ W.T`` on the rows of chunk ``c`` and their ``dW.T`` (O, I), summed in the dtype over at most
    256 rows, then into the chunk's float64 ``pWT[c]``."""
    O, I = WT.shape
    r0, r1 = c * x.shape[0] // nchunks, (c + 1) * x.shape[0] // nchunks
    bW = np.zeros((O, I), x.dtype)
    for r in range(r0, r1):
        for i in range(I):
            dx[r, i] = 0.0
        for o in range(O):
            d = dy[r, o]
            for i in range(I):
                dx[r, i] += d * WT[o, i]
                bW[o, i] += d * x[r, i]
        if (r - r0) % 256 == 255 or r == r1 - 1:
            flush(bW, pWT[c])


@njit(**PAR)
def _rows_bwd(x, dy, W, nchunks):
    """``dx`` (B, I) and ``dW`` (I, O, float64) row by row."""
    WT = np.ascontiguousarray(W.T)
    dx = np.empty_like(x)
    pWT = np.zeros((nchunks,) + WT.shape)
    if nchunks == 1:
        _rows_bwd_chunk(0, 1, x, dy, WT, dx, pWT)
    else:
        for c in prange(nchunks):
            _rows_bwd_chunk(c, nchunks, x, dy, WT, dx, pWT)
    return dx, np.ascontiguousarray(sum_partials(pWT).T)


def linear_forward(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``x @ W`` (x C-contiguous, (B, I); W (I, O)): BLAS for large weights, row by row for many inputs, else
    the fused path."""
    B, I = x.shape
    O = W.shape[1]
    if use_blas(I, O):
        return x @ W
    if use_rows(I):
        return _rows_fwd(x, W, chunks(B, B))
    y = np.empty((B, O), x.dtype)
    _fwd(x, W, *plan(B, I, O, x.itemsize), y)
    return y


def linear_backward(x: np.ndarray, W: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dx = dy @ W.T`` (B, I) and ``dW = x.T @ dy`` (I, O, float64)."""
    B, I = x.shape
    O = W.shape[1]
    if use_blas(I, O):
        return dy @ W.T, (x.T @ dy).astype(np.float64)
    if use_rows(I):
        return _rows_bwd(x, dy, W, chunks(B, B))
    nb, nchunks = plan(B, I, O, x.itemsize)
    pW = partials(nchunks, (I, O))
    dx = np.empty_like(x)
    _bwd(x, dy, W, nb, nchunks, dx, pW)
    return dx, sum_partials(pW)


def nau_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of the NAU; see :func:`nalu_np.reference.nau_forward`.

    Takes ``params`` (``W``, shape (I, O)) and ``x`` (B, I); returns ``y`` (B, O) and an opaque cache.

    Notes
    -----
    ``y = x @ W``.
    """
    check(x, params)
    x = np.ascontiguousarray(x)
    return linear_forward(x, params["W"]), x


def nau_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the NAU; see :func:`nalu_np.reference.nau_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradient ``W`` (I, O).

    Notes
    -----
    ``dx = delta @ W.T``, ``dW = x.T @ delta``.
    """
    x = cache
    dt = check(x, params, dy)
    dx, dW = linear_backward(x, params["W"], np.ascontiguousarray(dy))
    return dx, {"W": dW.astype(dt)}
