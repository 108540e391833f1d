"""The NAC (Trask et al. 2018): additive, ``y = x @ W``, and log-space multiplicative (NACMul),
``y = exp(log(|x| + eps) @ W)``, with ``W = tanh(W_hat) sigma(M_hat)``; and Madsen & Johansen's log-space NACs
with positive weights, the same log-space path with ``W = sigma(W_hat)`` (SigmoidNACMul) or ``W`` a parameter
kept in ``[0, 1]`` (ClippedNACMul): block functions and kernels.

The additive NAC is the NAU's linear map (:func:`nalu_np.kernels.numba.nau.linear_forward`) on the NAC
weights.  Block functions of the log-space path (on transposed blocks, shape (features, n)):
:func:`nacmul_block_forward`, :func:`nacmul_block_backward`; the weights of the SigmoidNACMul:
:func:`sigmoid_weight_into`, :func:`sigmoid_weight_grad_into`.  Large weights take the blas path (products
in NumPy, the elementwise passes here).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from ._common import EW, PAR, Params, add_log_grad_rows, block_range, check, grad, load, log_abs, log_abs_rows, \
    matmul, matmul_t, nac_weight, nac_weight_backward, partials, plan, store, sum_partials, times_log_abs_grad, \
    use_blas
from ._math import jit as njit, vexp, vsigmoid
from .nau import linear_backward, linear_forward

__all__ = ["nac_forward", "nac_backward", "nacmul_forward", "nacmul_backward", "sigmoidnacmul_forward",
           "sigmoidnacmul_backward", "clippednacmul_forward", "clippednacmul_backward"]


@njit(**EW)
def sigmoid_weight_into(W_hat, W):
    """``W = sigma(W_hat)`` (I, O), the SigmoidNACMul's weight, written into ``W``."""
    for i in range(W_hat.shape[0]):
        for j in range(W_hat.shape[1]):
            W[i, j] = vsigmoid(W_hat[i, j])


@njit(**EW)
def sigmoid_weight_grad_into(dW, W, dW_hat):
    """``dW_hat = dW W (1 - W)``: the chain rule through ``W = sigma(W_hat)``, in the dtype of ``W`` (``dW``
    may be float64)."""
    dt = W.dtype
    one = dt.type(1.0)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            dW_hat[i, j] = dt.type(dW[i, j]) * W[i, j] * (one - W[i, j])


@njit(**EW)
def nacmul_block_values(lT, n, W, mT):
    """``mT = exp(W.T @ lT)`` (O, nb) from the logs ``lT = log(|x| + eps)`` (I, nb) of one block."""
    matmul(lT, n, W, mT)
    for o in range(mT.shape[0]):
        for r in range(n):
            mT[o, r] = vexp(mT[o, r])


@njit(**EW)
def nacmul_block_forward(xT, n, W, eps, lT, mT):
    """Forward values of one block: ``lT = log(|xT| + eps)`` (I, nb) and ``mT = exp(W.T @ lT)`` (O, nb)."""
    log_abs(xT, n, eps, lT)
    nacmul_block_values(lT, n, W, mT)


@njit(**EW)
def nacmul_block_backward(xT, lT, mT, dT, n, W, eps, acc, dxT, need_dx):
    """Gradients of one block from the forward values ``lT``, ``mT``: ``dz = delta y`` (into ``dT``),
    ``acc += lT @ dz.T`` (I, O) and, when ``need_dx``, ``dxT = (W @ dz) sign(x) / (|x| + eps)`` (I, nb,
    overwritten)."""
    for o in range(mT.shape[0]):
        for r in range(n):
            dT[o, r] = dT[o, r] * mT[o, r]
    grad(lT, dT, n, acc)
    if need_dx:
        matmul_t(dT, n, W, dxT, False)
        times_log_abs_grad(dxT, xT, n, eps)


@njit(**EW)
def _nacmul_fwd_chunk(c, nchunks, x, W, eps, nb, y):
    B, I = x.shape
    xT = np.empty((I, nb), x.dtype)
    lT = np.empty((I, nb), x.dtype)
    mT = np.empty((W.shape[1], nb), x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        nacmul_block_forward(xT, n, W, eps, lT, mT)
        store(mT, r0, n, y)


@njit(**EW)
def _nacmul_bwd_chunk(c, nchunks, x, dy, W, eps, nb, dx, pW):
    B, I = x.shape
    O = W.shape[1]
    xT = np.empty((I, nb), x.dtype)
    lT = np.empty((I, nb), x.dtype)
    mT = np.empty((O, nb), x.dtype)
    dT = np.empty((O, nb), x.dtype)
    tT = np.empty((I, nb), x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        nacmul_block_forward(xT, n, W, eps, lT, mT)
        load(dy, r0, n, dT)
        nacmul_block_backward(xT, lT, mT, dT, n, W, eps, pW[c], tT, True)
        store(tT, r0, n, dx)


@njit(**PAR)
def _nacmul_fwd(x, W, eps, nb, nchunks, y):
    if nchunks == 1:
        _nacmul_fwd_chunk(0, 1, x, W, eps, nb, y)
    else:
        for c in prange(nchunks):
            _nacmul_fwd_chunk(c, nchunks, x, W, eps, nb, y)


@njit(**PAR)
def _nacmul_bwd(x, dy, W, eps, nb, nchunks, dx, pW):
    if nchunks == 1:
        _nacmul_bwd_chunk(0, 1, x, dy, W, eps, nb, dx, pW)
    else:
        for c in prange(nchunks):
            _nacmul_bwd_chunk(c, nchunks, x, dy, W, eps, nb, dx, pW)


@njit(**EW)
def _exp_rows(z):
    """``exp(z)`` in place (blas path)."""
    for b in range(z.shape[0]):
        for o in range(z.shape[1]):
            z[b, o] = vexp(z[b, o])


@njit(**EW)
def _mul_rows(a, b):
    """``a * b`` (blas path)."""
    out = np.empty_like(a)
    for r in range(a.shape[0]):
        for o in range(a.shape[1]):
            out[r, o] = a[r, o] * b[r, o]
    return out


def nac_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of the additive NAC; see :func:`nalu_np.reference.nac_forward`.

    Takes ``params`` (``W_hat``, ``M_hat``, shape (I, O)) and ``x`` (B, I); returns ``y`` (B, O) and an opaque
    cache.

    Notes
    -----
    ``W = tanh(W_hat) * sigma(M_hat)``, ``y = x @ W``.
    """
    check(x, params)
    x = np.ascontiguousarray(x)
    W, t, s = nac_weight(params["W_hat"], params["M_hat"])
    return linear_forward(x, W), (x, W, t, s)


def nac_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the additive NAC; see :func:`nalu_np.reference.nac_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradients ``W_hat``, ``M_hat``
    (I, O).

    Notes
    -----
    ``dW = x.T @ delta``, ``dx = delta @ W.T``, then the chain rule through ``tanh`` and ``sigma``.
    """
    x, W, t, s = cache
    check(x, {}, dy)
    dx, dW = linear_backward(x, W, np.ascontiguousarray(dy))
    dW_hat, dM_hat = nac_weight_backward(dW, t, s)
    return dx, {"W_hat": dW_hat, "M_hat": dM_hat}


def _log_path_forward(x: np.ndarray, W: np.ndarray, eps: float) -> tuple[np.ndarray, Any]:
    """``y = exp(log(|x| + eps) @ W)`` (x C-contiguous, (B, I); W (I, O)) on the blas or the fused path, and
    what the backward pass needs of it (the blas path's ``l`` and ``y``; the fused path recomputes them)."""
    B, I = x.shape
    O = W.shape[1]
    e = x.dtype.type(eps)
    if use_blas(I, O):
        l = log_abs_rows(x, e, np.empty_like(x))
        y = l @ W
        _exp_rows(y)
        return y, (l, y)
    y = np.empty((B, O), x.dtype)
    _nacmul_fwd(x, W, e, *plan(B, I, O, x.itemsize), y)
    return y, (None, None)


def _log_path_backward(x: np.ndarray, W: np.ndarray, kept: Any, dy: np.ndarray, eps: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``dx = (dz @ W.T) sign(x) / (|x| + eps)`` (B, I) and ``dW = l.T @ dz`` (I, O, float64), ``dz = delta y``,
    from the forward pass's ``kept``."""
    l, y = kept
    dy = np.ascontiguousarray(dy)
    e = x.dtype.type(eps)
    B, I = x.shape
    O = W.shape[1]
    if l is not None:
        dz = _mul_rows(dy, y)
        dx = np.zeros_like(x)
        add_log_grad_rows(dx, dz @ W.T, x, e)
        return dx, (l.T @ dz).astype(np.float64)
    nb, nchunks = plan(B, I, O, x.itemsize)
    pW = partials(nchunks, (I, O))
    dx = np.empty_like(x)
    _nacmul_bwd(x, dy, W, e, nb, nchunks, dx, pW)
    return dx, sum_partials(pW)


def nacmul_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the log-space NAC; see :func:`nalu_np.reference.nacmul_forward`.

    Takes ``params`` (``W_hat``, ``M_hat``, shape (I, O)), ``x`` (B, I) and ``eps``; returns ``y`` (B, O) and an
    opaque cache.

    Notes
    -----
    ``y = exp(log(|x| + eps) @ W)``; ``inf`` where the exponent overflows.
    """
    check(x, params)
    x = np.ascontiguousarray(x)
    W, t, s = nac_weight(params["W_hat"], params["M_hat"])
    y, kept = _log_path_forward(x, W, eps)
    return y, (x, W, t, s, kept)


def nacmul_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Params]:
    """Backward pass of the log-space NAC; see :func:`nalu_np.reference.nacmul_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradients ``W_hat``, ``M_hat``
    (I, O).

    Notes
    -----
    ``dz = delta * y``, ``dW = l.T @ dz``, ``dx = (dz @ W.T) * sign(x) / (|x| + eps)``.
    """
    x, W, t, s, kept = cache
    check(x, {}, dy)
    dx, dW = _log_path_backward(x, W, kept, dy, eps)
    dW_hat, dM_hat = nac_weight_backward(dW, t, s)
    return dx, {"W_hat": dW_hat, "M_hat": dM_hat}


def sigmoidnacmul_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the SigmoidNACMul; see :func:`nalu_np.reference.sigmoidnacmul_forward`.

    Takes ``params`` (``W_hat``, shape (I, O)), ``x`` (B, I) and ``eps``; returns ``y`` (B, O) and an opaque cache.

    Notes
    -----
    ``W = sigma(W_hat)``, ``y = exp(log(|x| + eps) @ W)``; ``inf`` where the exponent overflows.
    """
    check(x, params)
    x = np.ascontiguousarray(x)
    W = np.empty_like(params["W_hat"])
    sigmoid_weight_into(params["W_hat"], W)
    y, kept = _log_path_forward(x, W, eps)
    return y, (x, W, kept)


def sigmoidnacmul_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7
                           ) -> tuple[np.ndarray, Params]:
    """Backward pass of the SigmoidNACMul; see :func:`nalu_np.reference.sigmoidnacmul_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradient ``W_hat`` (I, O).

    Notes
    -----
    The log-space path's ``dx`` and ``dW = l.T @ (delta * y)``, then ``dW_hat = dW * W * (1 - W)``.
    """
    x, W, kept = cache
    check(x, {}, dy)
    dx, dW = _log_path_backward(x, W, kept, dy, eps)
    dW_hat = np.empty_like(W)
    sigmoid_weight_grad_into(dW, W, dW_hat)
    return dx, {"W_hat": dW_hat}


def clippednacmul_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the ClippedNACMul; see :func:`nalu_np.reference.clippednacmul_forward`.

    Takes ``params`` (``W``, shape (I, O)), ``x`` (B, I) and ``eps``; returns ``y`` (B, O) and an opaque cache.

    Notes
    -----
    ``y = exp(log(|x| + eps) @ W)``; ``inf`` where the exponent overflows.
    """
    check(x, params)
    x = np.ascontiguousarray(x)
    y, kept = _log_path_forward(x, params["W"], eps)
    return y, (x, kept)


def clippednacmul_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7
                           ) -> tuple[np.ndarray, Params]:
    """Backward pass of the ClippedNACMul; see :func:`nalu_np.reference.clippednacmul_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradient ``W`` (I, O).

    Notes
    -----
    ``dz = delta * y``, ``dW = l.T @ dz``, ``dx = (dz @ W.T) * sign(x) / (|x| + eps)``.
    """
    x, kept = cache
    dt = check(x, params, dy)
    dx, dW = _log_path_backward(x, params["W"], kept, dy, eps)
    return dx, {"W": dW.astype(dt)}
