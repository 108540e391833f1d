"""The NMU (Madsen & Johansen 2020), ``y_o = prod_i (W_io x_i + 1 - W_io)``: block functions and kernels.

Block functions (on transposed blocks, shape (features, n); also called by the compiled training step):
:func:`nmu_block_forward`, :func:`nmu_block_backward` and :func:`nmu_regularizer`.  The projection onto
``[0, 1]`` is :func:`nalu_np.kernels.numba._common.clip` with the layer's bounds.

The backward pass never divides by a factor: the leave-one-out products come from exclusive prefix and suffix
products, exact when a factor is 0.  The forward pass keeps only ``x``; the backward pass recomputes the
factors (no (B, I, O) array is stored).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from ._common import EW, PAR, SUM, Params, block_range, check, load, min_distance_penalty, partials, plan, \
    prefix_products, store, sum_partials
from ._math import jit as njit

__all__ = ["nmu_forward", "nmu_backward"]


@njit(**EW)
def nmu_block_forward(xT, n, W, yT):
    """``yT[o, r] = prod_i (W[i, o] xT[i, r] + 1 - W[i, o])`` on the first ``n`` columns: xT (I, nb), W (I, O),
    yT (O, nb)."""
    one = xT.dtype.type(1.0)
    for o in range(W.shape[1]):
        for r in range(n):
            yT[o, r] = one
        for i in range(W.shape[0]):
            w = W[i, o]
            w1 = one - w
            for r in range(n):
                yT[o, r] *= xT[i, r] * w + w1


@njit(**SUM)
def nmu_block_backward(xT, dT, n, W, acc, dxT, need_dx, pre, run):
    """Gradients of one block: ``acc[i, o] += sum_r c[r, i, o] (xT[i, r] - 1)`` and, when ``need_dx``,
    ``dxT[i, r] = sum_o c[r, i, o] W[i, o]`` (overwritten), with ``c = delta * prod_{k != i} f_k``.

    ``dT`` (O, nb) is ``delta`` transposed; ``pre`` (>= I, nb) and ``run`` (nb,) are scratch.  The
    leave-one-out product is the exclusive prefix product times the suffix product (no division).
    """
    I, O = W.shape
    one = xT.dtype.type(1.0)
    zero = xT.dtype.type(0.0)
    if need_dx:
        for i in range(I):
            for r in range(n):
                dxT[i, r] = zero
    for o in range(O):
        prefix_products(xT, n, W, o, pre, run)
        for r in range(n):
            run[r] = one
        for i in range(I - 1, -1, -1):  # suffix products, then c = delta * prefix * suffix
            w = W[i, o]
            w1 = one - w
            s = zero
            for r in range(n):
                cc = dT[o, r] * (pre[i, r] * run[r])
                s += cc * (xT[i, r] - one)
                if need_dx:
                    dxT[i, r] += cc * w
                run[r] *= xT[i, r] * w + w1
            acc[i, o] += s


@njit(**EW)
def nmu_regularizer(W, lam, dW):
    """Add ``lam * dR/dW`` to ``dW`` and return ``lam * R`` (float64) for ``R = mean(min(W, 1 - W))``.

    Notes
    -----
    ``dR/dW = sign(1/2 - W) / W.size``, as :func:`nalu_np.reference.nmu_regularizer`.
    """
    return min_distance_penalty(W, False, lam, dW)


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
        nmu_block_forward(xT, n, W, yT)
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
    pre = np.empty((I, nb), x.dtype)  # exclusive prefix products of one output (NMU)
    run = np.empty(nb, x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        load(dy, r0, n, dT)
        nmu_block_backward(xT, dT, n, W, pW[c], tT, True, pre, run)
        store(tT, r0, n, dx)


@njit(**PAR)
def _bwd(x, dy, W, nb, nchunks, dx, pW):
    if nchunks == 1:
        _bwd_chunk(0, 1, x, dy, W, nb, dx, pW)
    else:
        for c in prange(nchunks):
            _bwd_chunk(c, nchunks, x, dy, W, nb, dx, pW)


def nmu_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of the NMU; see :func:`nalu_np.reference.nmu_forward`.

    Takes ``params`` (``W``, shape (I, O)) and ``x`` (B, I); returns ``y`` (B, O) and a cache that holds only ``x``
    (the backward pass recomputes the factors; no (B, I, O) array is stored).

    Notes
    -----
    ``y[b, o] = prod_i (W[i, o] x[b, i] + 1 - W[i, o])``; overflow to ``inf`` is a result.
    """
    check(x, params)
    x = np.ascontiguousarray(x)
    B, I = x.shape
    W = params["W"]
    y = np.empty((B, W.shape[1]), x.dtype)
    _fwd(x, W, *plan(B, I, W.shape[1], x.itemsize), y)
    return y, x


def nmu_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the NMU; see :func:`nalu_np.reference.nmu_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradient ``W`` (I, O).

    Notes
    -----
    Leave-one-out products ``loo[b, i, o] = prod_{k != i} f[b, k, o]`` as exclusive prefix times suffix
    products (exact when a factor is 0, no division), ``c = delta * loo``,
    ``dW[i, o] = sum_b c[b, i, o] (x[b, i] - 1)``, ``dx[b, i] = sum_o c[b, i, o] W[i, o]``.
    """
    x = cache
    dt = check(x, params, dy)
    W = params["W"]
    B, I = x.shape
    nb, nchunks = plan(B, I, W.shape[1], x.itemsize)
    pW = partials(nchunks, W.shape)
    dx = np.empty_like(x)
    _bwd(x, np.ascontiguousarray(dy), W, nb, nchunks, dx, pW)
    return dx, {"W": sum_partials(pW).astype(dt)}
