"""The NPU and the RealNPU (Heim, Pevný & Šmídl 2020): ``r = g (|x| + eps) + 1 - g``, ``k = pi g [x < 0]``,
``y = exp(log(r) @ W_r - k @ W_i) cos(log(r) @ W_i + k @ W_r)``, one relevance gate ``g`` per input; the RealNPU
has ``W_i = 0`` (passed as ``None``): block functions and kernels (fused path only).

Block functions (on transposed blocks, shape (features, n); also called by the compiled training step):
:func:`npu_block_values`, :func:`npu_block_forward`, :func:`npu_block_backward` and :func:`npu_regularizer`.
With ``clamp`` they use the gate ``clip(g, 0, 1)`` (the NPU's ``clamp_gate``; the layer kernels get the gate
already clipped by the layer and pass False).  Layout: the fused path of :mod:`nalu_np.kernels.numba._common`.
The forward pass keeps only ``x``; the backward pass recomputes the block values.

Numerics are those of the reference: ``exp`` overflows to ``inf`` (``inf * cos(phi)`` with ``cos(phi) == 0``
is NaN), the slope of ``|x|`` at 0 is 0, and the mask ``[x < 0]`` is multiplied, not selected, so that
``inf * 0`` is NaN as in NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from ._common import EW, PAR, Params, block_range, check, check_shapes, clip, grad, load, matmul_t, plan, \
    row_sums, store, sum_partials
from ._math import jit as njit, vexp, vlog

__all__ = ["npu_forward", "npu_backward", "realnpu_forward", "realnpu_backward"]


# ---------------------------------------------------------------------------------------------------------
# NPU and RealNPU: y = exp(W_r log r - W_i k) cos(W_i log r + W_r k); RealNPU: W_i is None (W_i = 0)
# ---------------------------------------------------------------------------------------------------------


@njit(**EW)
def _gate(g, i, clamp):
    """``g[i]``, or ``clip(g[i], 0, 1)`` (NaN passed through) with ``clamp``."""
    return clip(g[i], g.dtype.type(0.0), g.dtype.type(1.0)) if clamp else g[i]


@njit(**EW)
def npu_block_values(xT, n, Wr, Wi, g, eps, clamp, axT, rT, lT, kT, AT, PT):
    """Forward values of one block ``xT`` (I, nb): ``axT = |x| + eps``, ``rT = g ax + 1 - g``, ``lT = log r``,
    ``kT = g pi [x < 0]`` (I, nb), ``AT = log(r) @ W_r - k @ W_i`` and ``PT = k @ W_r + log(r) @ W_i`` (O, nb);
    ``Wi`` is None for the RealNPU; ``g`` (I,) is clipped to ``[0, 1]`` with ``clamp``."""
    one = xT.dtype.type(1.0)
    pi = xT.dtype.type(np.pi)
    zero = xT.dtype.type(0.0)
    for i in range(xT.shape[0]):
        gi = _gate(g, i, clamp)
        h = one - gi
        for r in range(n):
            v = xT[i, r]
            ax = abs(v) + eps
            rr = gi * ax + h
            axT[i, r] = ax
            rT[i, r] = rr
            lT[i, r] = vlog(rr)
            kT[i, r] = gi * (pi if v < zero else zero)
    for o in range(AT.shape[0]):
        for r in range(n):
            AT[o, r] = zero
            PT[o, r] = zero
        for i in range(xT.shape[0]):
            wr = Wr[i, o]
            if Wi is None:
                for r in range(n):
                    AT[o, r] += lT[i, r] * wr
                    PT[o, r] += kT[i, r] * wr
            else:
                wi = Wi[i, o]
                for r in range(n):
                    AT[o, r] += lT[i, r] * wr - kT[i, r] * wi
                    PT[o, r] += kT[i, r] * wr + lT[i, r] * wi


@njit(**EW)
def npu_block_forward(xT, n, Wr, Wi, g, eps, clamp, axT, rT, lT, kT, AT, PT, yT):
    """:func:`npu_block_values`, then ``yT = exp(A) cos(phi)`` (O, nb; ``yT`` may be ``AT``)."""
    npu_block_values(xT, n, Wr, Wi, g, eps, clamp, axT, rT, lT, kT, AT, PT)
    for o in range(AT.shape[0]):
        for r in range(n):
            yT[o, r] = vexp(AT[o, r]) * np.cos(PT[o, r])


@njit(**EW)
def npu_block_backward(xT, dT, n, Wr, Wi, g, clamp, axT, rT, lT, kT, AT, PT, dAT, dPT, dlT, dkT, accWr, accWi,
                       accg, dxT, need_dx):
    """Gradients of one block from its values (:func:`npu_block_values`: ``axT``, ``rT``, ``lT``, ``kT``,
    ``AT``, ``PT``) and ``delta`` transposed ``dT`` (O, nb).

    ``dAT = delta y``, ``dPT = -delta exp(A) sin(phi)`` (O, nb; they may be ``AT``, ``PT``; ``dAT`` ends
    negated when ``Wi`` is not None); ``accWr += log(r).T @ dA + k.T @ dphi``, ``accWi += log(r).T @ dphi -
    k.T @ dA`` (I, O; untouched when ``Wi`` is None), ``accg += sum_b (dr (|x| + eps - 1) + dk pi [x < 0])``
    (I,) with ``dr = (dA @ W_r.T + dphi @ W_i.T) / r`` and ``dk = dphi @ W_r.T - dA @ W_i.T`` (scratch ``dlT``,
    ``dkT`` (I, nb)); when ``need_dx``, ``dxT = dr g sign(x)`` (I, nb; may be ``dlT``).  The gradient of ``g``
    is the one of the gate the forward pass used (clipped with ``clamp``; the chain rule of the clip is the
    caller's).
    """
    pi = xT.dtype.type(np.pi)
    zero = xT.dtype.type(0.0)
    one = xT.dtype.type(1.0)
    for o in range(dT.shape[0]):
        for r in range(n):
            d = dT[o, r]
            e = vexp(AT[o, r])
            phi = PT[o, r]
            dAT[o, r] = d * (e * np.cos(phi))
            dPT[o, r] = -d * e * np.sin(phi)
    grad(lT, dAT, n, accWr)
    grad(kT, dPT, n, accWr)
    matmul_t(dAT, n, Wr, dlT, False)
    matmul_t(dPT, n, Wr, dkT, False)
    if Wi is not None:
        grad(lT, dPT, n, accWi)
        matmul_t(dPT, n, Wi, dlT, True)
        for o in range(dT.shape[0]):  # dAT becomes -dA
            for r in range(n):
                dAT[o, r] = -dAT[o, r]
        grad(kT, dAT, n, accWi)
        matmul_t(dAT, n, Wi, dkT, True)
    for i in range(xT.shape[0]):  # dr = dlogr / r; dkT becomes dg's summand
        gi = _gate(g, i, clamp)
        for r in range(n):
            v = xT[i, r]
            dr = dlT[i, r] / rT[i, r]
            dkT[i, r] = dr * (axT[i, r] - one) + dkT[i, r] * (pi if v < zero else zero)
            if need_dx:
                dxT[i, r] = dr * gi * np.sign(v)
    row_sums(dkT, n, accg)


@njit(**EW)
def npu_regularizer(W, lam, dW):
    """Add ``lam * dR/dW`` to ``dW`` and return ``lam * R`` (float64) for the L1 penalty ``R = mean(|W|)`` of
    the flat weight ``W`` (the NPU's ``R`` is this of ``W_r`` plus this of ``W_i``).

    Notes
    -----
    ``dR/dW = sign(W) / W.size`` (0 at ``W = 0``), as :func:`nalu_np.reference.l1_regularizer`.
    """
    dt = W.dtype.type
    size = dt(W.shape[0])
    total = 0.0
    for k in range(W.shape[0]):
        total += abs(np.float64(W[k]))
        dW[k] += (np.sign(W[k]) / size) * dt(lam)
    return lam * (total / W.shape[0])


@njit(**EW)
def _npu_buffers(I, O, nb, dtype):
    """Block buffers ``xT, axT, rT, lT, kT`` (I, nb) and ``AT, PT`` (O, nb)."""
    return (np.empty((I, nb), dtype), np.empty((I, nb), dtype), np.empty((I, nb), dtype), np.empty((I, nb), dtype),
            np.empty((I, nb), dtype), np.empty((O, nb), dtype), np.empty((O, nb), dtype))


@njit(**EW)
def _npu_fwd_chunk(c, nchunks, x, Wr, Wi, g, eps, nb, y):
    B, I = x.shape
    O = Wr.shape[1]
    xT, axT, rT, lT, kT, AT, PT = _npu_buffers(I, O, nb, x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        npu_block_forward(xT, n, Wr, Wi, g, eps, False, axT, rT, lT, kT, AT, PT, AT)
        store(AT, r0, n, y)


@njit(**PAR)
def _npu_fwd(x, Wr, Wi, g, eps, nb, nchunks):
    y = np.empty((x.shape[0], Wr.shape[1]), x.dtype)
    if nchunks == 1:
        _npu_fwd_chunk(0, 1, x, Wr, Wi, g, eps, nb, y)
    else:
        for c in prange(nchunks):
            _npu_fwd_chunk(c, nchunks, x, Wr, Wi, g, eps, nb, y)
    return y


@njit(**EW)
def _npu_bwd_chunk(c, nchunks, x, dy, Wr, Wi, g, eps, nb, dx, PWr, PWi, Pg):
    """Backward pass of the blocks of chunk ``c``; sums into this chunk's ``pWr``, ``pWi`` (unless ``Wi is
    None``) and ``pg``."""
    pWr, pWi, pg = PWr[c], PWi[c], Pg[c]
    B, I = x.shape
    O = Wr.shape[1]
    xT, axT, rT, lT, kT, AT, PT = _npu_buffers(I, O, nb, x.dtype)
    dT = np.empty((O, nb), x.dtype)
    dlT = np.empty((I, nb), x.dtype)
    dkT = np.empty((I, nb), x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        npu_block_values(xT, n, Wr, Wi, g, eps, False, axT, rT, lT, kT, AT, PT)
        load(dy, r0, n, dT)
        npu_block_backward(xT, dT, n, Wr, Wi, g, False, axT, rT, lT, kT, AT, PT, AT, PT, dlT, dkT, pWr, pWi, pg,
                           dlT, True)
        store(dlT, r0, n, dx)


@njit(**PAR)
def _npu_bwd(x, dy, Wr, Wi, g, eps, nb, nchunks):
    """The backward pass and the per-chunk sums added up (``dW_i`` stays 0 when ``Wi is None``)."""
    B, I = x.shape
    O = Wr.shape[1]
    dx = np.empty_like(x)
    pWr = np.zeros((nchunks, I, O))
    pWi = np.zeros((nchunks, I, O))
    pg = np.zeros((nchunks, I))
    if nchunks == 1:
        _npu_bwd_chunk(0, 1, x, dy, Wr, Wi, g, eps, nb, dx, pWr, pWi, pg)
    else:
        for c in prange(nchunks):
            _npu_bwd_chunk(c, nchunks, x, dy, Wr, Wi, g, eps, nb, dx, pWr, pWi, pg)
    dt = x.dtype
    return dx, sum_partials(pWr).astype(dt), sum_partials(pWi).astype(dt), sum_partials(pg).astype(dt)


def _npu_call(params: Params, x: np.ndarray, dy: np.ndarray | None, eps: float, real: bool) -> tuple[Any, ...]:
    """Checks, then the arguments of the compiled passes: ``x, [dy,] W_r, W_i, g, eps, nb, nchunks`` with
    ``W_i = None`` for the RealNPU (``real``)."""
    dt = check(x, params, dy)
    weights = ("W_r",) if real else ("W_r", "W_i")
    B, I, O = check_shapes(x, params, weights, x.shape[1], dy)
    Wi = None if real else params["W_i"]
    arrays = (np.ascontiguousarray(x),) + (() if dy is None else (np.ascontiguousarray(dy),))
    return arrays + (params["W_r"], Wi, params["g"], dt.type(eps)) + plan(B, I, O, x.itemsize)


def _npu_forward(params: Params, x: np.ndarray, eps: float, real: bool) -> tuple[np.ndarray, Any]:
    args = _npu_call(params, x, None, eps, real)
    return _npu_fwd(*args), args[0]


def _npu_backward(params: Params, x: np.ndarray, dy: np.ndarray, eps: float, real: bool) -> tuple[np.ndarray, Params]:
    dx, dWr, dWi, dg = _npu_bwd(*_npu_call(params, x, dy, eps, real))
    grads = {"W_r": dWr, "W_i": dWi, "g": dg}
    return dx, {k: grads[k] for k in params}


def npu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the NPU; see :func:`nalu_np.reference.npu_forward`.

    Takes ``params`` (``W_r``, ``W_i`` of shape (I, O) and the relevance gate ``g`` (I,)), ``x`` (B, I) and ``eps``;
    returns ``y`` (B, O) and a cache of ``x`` only (the backward pass recomputes the block values).

    Notes
    -----
    ``r = g (|x| + eps) + 1 - g``, ``k = pi g [x < 0]``,
    ``y = exp(log(r) @ W_r - k @ W_i) * cos(log(r) @ W_i + k @ W_r)``; ``inf`` where the exponent overflows.
    """
    return _npu_forward(params, x, eps, False)


def npu_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Params]:
    """Backward pass of the NPU; see :func:`nalu_np.reference.npu_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradients ``W_r``, ``W_i`` (I,
    O) and ``g`` (I,).

    Notes
    -----
    ``dA = delta y``, ``dphi = -delta exp(A) sin(phi)``; ``dW_r = log(r).T @ dA + k.T @ dphi``,
    ``dW_i = log(r).T @ dphi - k.T @ dA``; ``dr = (dA @ W_r.T + dphi @ W_i.T) / r``,
    ``dk = dphi @ W_r.T - dA @ W_i.T``; ``dx = dr g sign(x)``,
    ``dg = sum_b (dr (|x| + eps - 1) + dk pi [x < 0])``.
    """
    return _npu_backward(params, cache, dy, eps, False)


def realnpu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the RealNPU (the NPU with ``W_i = 0``); see :func:`nalu_np.reference.realnpu_forward`.

    Takes ``params`` (``W_r`` of shape (I, O) and the relevance gate ``g`` (I,)), ``x`` (B, I) and ``eps``; returns
    ``y`` (B, O) and an opaque cache.

    Notes
    -----
    ``y = exp(log(r) @ W_r) * cos(k @ W_r)`` with ``r``, ``k`` as in :func:`npu_forward`.
    """
    return _npu_forward(params, x, eps, True)


def realnpu_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Params]:
    """Backward pass of the RealNPU; see :func:`nalu_np.reference.realnpu_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradients ``W_r`` (I, O) and
    ``g`` (I,).
    """
    return _npu_backward(params, cache, dy, eps, True)
