"""Numba CPU kernels of the iNALU, the NPU and the RealNPU, part of the ``numba`` backend.

:mod:`nalu_np.kernels.numba_cpu` exports the public functions of this module (looked up on first use: this
module builds on its helpers), so either module can be imported first.  They have the names and signatures of
:mod:`nalu_np.reference` and compute the same values in the dtype of their input (float32 or float64).

Layout: the *fused* path of :mod:`nalu_np.kernels.numba_cpu` and its helpers.  The batch is cut into blocks of
``nb`` rows, each block transposed into buffers of shape ``(features, nb)`` so that the inner loops run over
rows and vectorise; the batch is split into one contiguous chunk of blocks per thread (``prange``), and the
weight gradients are summed per chunk into ``partial[chunk]`` (float64), added up after the parallel loop.
The forward pass keeps only ``x`` (and the iNALU's weights); the backward pass recomputes the block values
from ``x``.  Weights, gates, the passes and the chain rule back to the raw weights run in one compiled call
per pass.  The iNALU's sign term is a product over the inputs; its gradient uses leave-one-out products from
exclusive prefix and suffix products (no division by a factor, exact when a factor is 0).

Numerics are those of the reference: ``min(z, omega)`` and ``max(|x|, eps)`` pass NaN through, ``exp``
overflows to ``inf`` (the NPU's ``inf * cos(phi)`` with ``cos(phi) == 0`` is NaN), the slopes of ``|x|`` at
0 and of the clips at their kinks are taken as 0, and factors that are masked (``[z < omega]``, ``[x < 0]``)
are multiplied, not selected, so that ``inf * 0`` is NaN as in NumPy.  The caches are tuples private to this
module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from .numba_cpu import (
    _EW,
    _PAR,
    _SUM,
    _block_range,
    _check,
    _grad,
    _load,
    _matmul,
    _matmul_t,
    _nac_weight,
    _nac_weight_backward,
    _plan,
    _store,
    _sum_partials,
)
from .numba_math import jit as njit, vexp, vlog, vsigmoid

__all__ = [
    "inalu_forward",
    "inalu_backward",
    "npu_forward",
    "npu_backward",
    "realnpu_forward",
    "realnpu_backward",
]

Params = dict[str, np.ndarray]

_INALU_WEIGHTS = ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul")


def _check_shapes(x: np.ndarray, params: Params, weights: tuple[str, ...], gate_size: int | None,
                  dy: np.ndarray | None = None) -> tuple[int, int, int]:
    """``(B, I, O)`` from ``x`` and ``params[weights[0]]``; ValueError when a weight is not (I, O), the gate
    ``g`` not of length ``gate_size`` (I or O; ``None``: the number of outputs) or ``dy`` not (B, O).  The
    compiled loops do not check bounds, so a wrong shape must not reach them."""
    B, I = x.shape
    O = params[weights[0]].shape[-1]
    for k in weights:
        if params[k].shape != (I, O):
            raise ValueError(f"{k} must have shape (in_features, out_features) = {(I, O)}, got {params[k].shape}")
    n = O if gate_size is None else gate_size
    if params["g"].shape != (n,):
        raise ValueError(f"g must have shape {(n,)}, got {params['g'].shape}")
    if dy is not None and dy.shape != (B, O):
        raise ValueError(f"dy must have shape (batch, out_features) = {(B, O)}, got {dy.shape}")
    return B, I, O


@njit(**_SUM)
def _row_sums(T, n, acc):
    """``acc[j] += sum_{r < n} T[j, r]`` (``acc`` is float64)."""
    zero = T.dtype.type(0.0)
    for j in range(T.shape[0]):
        s = zero
        for r in range(n):
            s += T[j, r]
        acc[j] += s


# ---------------------------------------------------------------------------------------------------------
# iNALU: y = G a + (1 - G) m s
# ---------------------------------------------------------------------------------------------------------


@njit(**_EW)
def _inalu_block(x, r0, n, Wa, Wm, eps, omega, xT, sgT, lT, aT, zT, mT):
    """Forward values of one block: ``xT``, ``sgT = sign(x)``, ``lT = log(max(|x|, eps))``, ``aT = x @ W_a``,
    ``zT = l @ W_m`` and ``mT = exp(min(z, omega))``."""
    _load(x, r0, n, xT)
    for i in range(xT.shape[0]):
        for r in range(n):
            v = xT[i, r]
            av = abs(v)
            sgT[i, r] = np.sign(v)
            lT[i, r] = vlog(eps if av < eps else av)  # max(|x|, eps), NaN passed through
    _matmul(xT, n, Wa, aT)
    _matmul(lT, n, Wm, zT)
    for o in range(zT.shape[0]):
        for r in range(n):
            z = zT[o, r]
            mT[o, r] = vexp(omega if z > omega else z)  # min(z, omega), NaN passed through


@njit(**_EW)
def _inalu_buffers(I, O, nb, dtype):
    """Block buffers ``xT, sgT, lT`` (I, nb) and ``aT, zT, mT`` (O, nb)."""
    return (np.empty((I, nb), dtype), np.empty((I, nb), dtype), np.empty((I, nb), dtype),
            np.empty((O, nb), dtype), np.empty((O, nb), dtype), np.empty((O, nb), dtype))


@njit(**_EW)
def _inalu_fwd_chunk(x, Wa, Wm, absW, G, eps, omega, nb, c, nchunks, y):
    B, I = x.shape
    O = Wa.shape[1]
    one = x.dtype.type(1.0)
    xT, sgT, lT, aT, zT, mT = _inalu_buffers(I, O, nb, x.dtype)
    yT = np.empty((O, nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _inalu_block(x, r0, n, Wa, Wm, eps, omega, xT, sgT, lT, aT, zT, mT)
        for o in range(O):
            for r in range(n):
                yT[o, r] = one
            for i in range(I):  # the sign term s = prod_i (sign(x) |W_m| + 1 - |W_m|)
                w = absW[i, o]
                w1 = one - w
                for r in range(n):
                    yT[o, r] *= sgT[i, r] * w + w1
            gg = G[o]
            h = one - gg
            for r in range(n):
                yT[o, r] = gg * aT[o, r] + h * mT[o, r] * yT[o, r]
        _store(yT, r0, n, y)


@njit(**_PAR)
def _inalu_fwd(x, Wh_a, Mh_a, Wh_m, Mh_m, g, eps, omega, nb, nchunks):
    """Weights and gates, then the forward pass; returns ``y``, the weights with their factors and ``G``."""
    B = x.shape[0]
    Wa, ta, sa = _nac_weight(Wh_a, Mh_a)
    Wm, tm, sm = _nac_weight(Wh_m, Mh_m)
    G = np.empty_like(g)
    for o in range(g.shape[0]):
        G[o] = vsigmoid(g[o])
    absW = np.abs(Wm)
    y = np.empty((B, g.shape[0]), x.dtype)
    if nchunks == 1:
        _inalu_fwd_chunk(x, Wa, Wm, absW, G, eps, omega, nb, 0, 1, y)
    else:
        for c in prange(nchunks):
            _inalu_fwd_chunk(x, Wa, Wm, absW, G, eps, omega, nb, c, nchunks, y)
    return y, (Wa, ta, sa), (Wm, tm, sm), G


@njit(**_EW)
def _inalu_bwd_chunk(x, dy, Wa, Wm, absW, G, eps, omega, nb, c, nchunks, dx, pWa, pWm, pS, pg):
    """Backward pass of the blocks of chunk ``c``; sums into this chunk's ``pWa`` (``x.T @ da``), ``pWm``
    (``l.T @ dz``), ``pS`` (``sum_b c (sign(x) - 1)``) and ``pg`` (``sum_b delta (a - m s)``)."""
    B, I = x.shape
    O = Wa.shape[1]
    one = x.dtype.type(1.0)
    zero = x.dtype.type(0.0)
    xT, sgT, lT, aT, zT, mT = _inalu_buffers(I, O, nb, x.dtype)
    dT = np.empty((O, nb), x.dtype)
    dA = np.empty((O, nb), x.dtype)
    dZ = np.empty((O, nb), x.dtype)
    hT = np.empty((O, nb), x.dtype)  # delta (a - m s)
    pre = np.empty((I, nb), x.dtype)  # exclusive prefix products of one output
    cT = np.empty((I, nb), x.dtype)  # c (sign(x) - 1) of one output
    run = np.empty(nb, x.dtype)
    ds = np.empty(nb, x.dtype)  # delta (1 - G) m of one output
    tT = np.empty((I, nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _inalu_block(x, r0, n, Wa, Wm, eps, omega, xT, sgT, lT, aT, zT, mT)
        _load(dy, r0, n, dT)
        for o in range(O):
            gg = G[o]
            h = one - gg
            for r in range(n):
                run[r] = one
            for i in range(I):
                w = absW[i, o]
                w1 = one - w
                for r in range(n):
                    pre[i, r] = run[r]
                    run[r] *= sgT[i, r] * w + w1
            for r in range(n):  # run = s
                d = dT[o, r]
                m = mT[o, r]
                s = run[r]
                dms = d * h
                dA[o, r] = d * gg
                dZ[o, r] = dms * s * m * (one if zT[o, r] < omega else zero)
                hT[o, r] = d * (aT[o, r] - m * s)
                ds[r] = dms * m
                run[r] = one
            for i in range(I - 1, -1, -1):  # suffix products: c = ds * prefix * suffix
                w = absW[i, o]
                w1 = one - w
                for r in range(n):
                    cT[i, r] = ds[r] * (pre[i, r] * run[r]) * (sgT[i, r] - one)
                    run[r] *= sgT[i, r] * w + w1
            _row_sums(cT, n, pS[:, o])
        _row_sums(hT, n, pg)
        _grad(xT, dA, n, pWa)
        _grad(lT, dZ, n, pWm)
        _matmul_t(dZ, n, Wm, tT, False)
        for i in range(I):  # times d log(max(|x|, eps)) / dx = [|x| > eps] sign(x) / |x|
            for r in range(n):
                av = abs(xT[i, r])
                tT[i, r] *= sgT[i, r] / av if av > eps else zero
        _matmul_t(dA, n, Wa, tT, True)
        _store(tT, r0, n, dx)


@njit(**_PAR)
def _inalu_bwd(x, dy, wa, wm, G, eps, omega, nb, nchunks):
    """The backward pass, the per-chunk sums added up, and the chain rule into the raw weights and the gate."""
    B, I = x.shape
    O = G.shape[0]
    Wa, ta, sa = wa
    Wm, tm, sm = wm
    absW = np.abs(Wm)
    dx = np.empty_like(x)
    pWa = np.zeros((nchunks, I, O))
    pWm = np.zeros((nchunks, I, O))
    pS = np.zeros((nchunks, I, O))
    pg = np.zeros((nchunks, O))
    if nchunks == 1:
        _inalu_bwd_chunk(x, dy, Wa, Wm, absW, G, eps, omega, nb, 0, 1, dx, pWa[0], pWm[0], pS[0], pg[0])
    else:
        for c in prange(nchunks):
            _inalu_bwd_chunk(x, dy, Wa, Wm, absW, G, eps, omega, nb, c, nchunks, dx, pWa[c], pWm[c], pS[c], pg[c])
    dWh_a, dMh_a = _nac_weight_backward(_sum_partials(pWa), ta, sa)
    dWh_m, dMh_m = _nac_weight_backward(_sum_partials(pWm) + np.sign(Wm) * _sum_partials(pS), tm, sm)
    dg = _sum_partials(pg).astype(x.dtype) * G * (x.dtype.type(1.0) - G)
    return dx, dWh_a, dMh_a, dWh_m, dMh_m, dg


def inalu_forward(params: Params, x: np.ndarray, eps: float = 1e-7, omega: float = 20.0) -> tuple[np.ndarray, Any]:
    """Forward pass of the iNALU; see :func:`nalu_np.reference.inalu_forward`.

    Parameters
    ----------
    params : dict
        ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul`` of shape (I, O) and the gate ``g`` (O,).
    x : ndarray, shape (B, I)
    eps : float
        Lower bound of ``|x|`` inside the log.
    omega : float
        Upper bound of the log-space sum.

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : opaque
        ``x``, the weights and the gate; the backward pass recomputes the block values from ``x``.

    Notes
    -----
    ``a = x @ W_a``, ``m = exp(min(log(max(|x|, eps)) @ W_m, omega))``,
    ``s[b, o] = prod_i (sign(x[b, i]) |W_m[i, o]| + 1 - |W_m[i, o]|)``, ``G = sigma(g)``,
    ``y = G * a + (1 - G) * m * s``.
    """
    dt = _check(x, params)
    B, I, O = _check_shapes(x, params, _INALU_WEIGHTS, None)
    x = np.ascontiguousarray(x)
    nb, nchunks = _plan(B, I, O, x.itemsize)
    y, wa, wm, G = _inalu_fwd(x, *(params[k] for k in _INALU_WEIGHTS), params["g"], dt.type(eps), dt.type(omega),
                              nb, nchunks)
    return y, (x, wa, wm, G)


def inalu_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7,
                   omega: float = 20.0) -> tuple[np.ndarray, Params]:
    """Backward pass of the iNALU; see :func:`nalu_np.reference.inalu_backward`.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        Same keys as ``params``.

    Notes
    -----
    ``da = delta G``, ``dz = delta (1 - G) s m [z < omega]``, ``c = delta (1 - G) m * loo`` with the
    leave-one-out products ``loo`` of the sign factors (prefix times suffix products);
    ``dW_a = x.T @ da``, ``dW_m = l.T @ dz + sign(W_m) sum_b c (sign(x) - 1)``,
    ``dg = sum_b delta (a - m s) G (1 - G)``, ``dx = da @ W_a.T + (dz @ W_m.T) [|x| > eps] sign(x) / |x|``.
    """
    x, wa, wm, G = cache
    dt = _check(x, {}, dy)
    B, I, O = _check_shapes(x, params, _INALU_WEIGHTS, None, dy)
    nb, nchunks = _plan(B, I, O, x.itemsize)
    dx, dWh_a, dMh_a, dWh_m, dMh_m, dg = _inalu_bwd(x, np.ascontiguousarray(dy), wa, wm, G, dt.type(eps),
                                                    dt.type(omega), nb, nchunks)
    grads = {"W_hat_add": dWh_a, "M_hat_add": dMh_a, "W_hat_mul": dWh_m, "M_hat_mul": dMh_m, "g": dg}
    return dx, {k: grads[k] for k in params}


# ---------------------------------------------------------------------------------------------------------
# NPU and RealNPU: y = exp(W_r log r - W_i k) cos(W_i log r + W_r k); RealNPU: W_i is None (W_i = 0)
# ---------------------------------------------------------------------------------------------------------


@njit(**_EW)
def _npu_block(x, r0, n, Wr, Wi, g, eps, xT, axT, rT, lT, kT, AT, PT):
    """Forward values of one block: ``xT``, ``axT = |x| + eps``, ``rT = g ax + 1 - g``, ``lT = log r``,
    ``kT = g pi [x < 0]``, ``AT = log(r) @ W_r - k @ W_i`` and ``PT = k @ W_r + log(r) @ W_i``."""
    one = x.dtype.type(1.0)
    pi = x.dtype.type(np.pi)
    zero = x.dtype.type(0.0)
    _load(x, r0, n, xT)
    for i in range(xT.shape[0]):
        gi = g[i]
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


@njit(**_EW)
def _npu_buffers(I, O, nb, dtype):
    """Block buffers ``xT, axT, rT, lT, kT`` (I, nb) and ``AT, PT`` (O, nb)."""
    return (np.empty((I, nb), dtype), np.empty((I, nb), dtype), np.empty((I, nb), dtype), np.empty((I, nb), dtype),
            np.empty((I, nb), dtype), np.empty((O, nb), dtype), np.empty((O, nb), dtype))


@njit(**_EW)
def _npu_fwd_chunk(x, Wr, Wi, g, eps, nb, c, nchunks, y):
    B, I = x.shape
    O = Wr.shape[1]
    xT, axT, rT, lT, kT, AT, PT = _npu_buffers(I, O, nb, x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _npu_block(x, r0, n, Wr, Wi, g, eps, xT, axT, rT, lT, kT, AT, PT)
        for o in range(O):
            for r in range(n):
                AT[o, r] = vexp(AT[o, r]) * np.cos(PT[o, r])
        _store(AT, r0, n, y)


@njit(**_PAR)
def _npu_fwd(x, Wr, Wi, g, eps, nb, nchunks):
    y = np.empty((x.shape[0], Wr.shape[1]), x.dtype)
    if nchunks == 1:
        _npu_fwd_chunk(x, Wr, Wi, g, eps, nb, 0, 1, y)
    else:
        for c in prange(nchunks):
            _npu_fwd_chunk(x, Wr, Wi, g, eps, nb, c, nchunks, y)
    return y


@njit(**_EW)
def _npu_bwd_chunk(x, dy, Wr, Wi, g, eps, nb, c, nchunks, dx, pWr, pWi, pg):
    """Backward pass of the blocks of chunk ``c``; sums into this chunk's ``pWr``, ``pWi`` (unless ``Wi is
    None``) and ``pg``."""
    B, I = x.shape
    O = Wr.shape[1]
    pi = x.dtype.type(np.pi)
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    xT, axT, rT, lT, kT, AT, PT = _npu_buffers(I, O, nb, x.dtype)
    dT = np.empty((O, nb), x.dtype)
    dlT = np.empty((I, nb), x.dtype)
    dkT = np.empty((I, nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _npu_block(x, r0, n, Wr, Wi, g, eps, xT, axT, rT, lT, kT, AT, PT)
        _load(dy, r0, n, dT)
        for o in range(O):  # AT becomes dA = delta y, PT dphi = -delta exp(A) sin(phi)
            for r in range(n):
                d = dT[o, r]
                e = vexp(AT[o, r])
                phi = PT[o, r]
                AT[o, r] = d * (e * np.cos(phi))
                PT[o, r] = -d * e * np.sin(phi)
        _grad(lT, AT, n, pWr)
        _grad(kT, PT, n, pWr)
        _matmul_t(AT, n, Wr, dlT, False)
        _matmul_t(PT, n, Wr, dkT, False)
        if Wi is not None:
            _grad(lT, PT, n, pWi)
            _matmul_t(PT, n, Wi, dlT, True)
            for o in range(O):  # AT becomes -dA
                for r in range(n):
                    AT[o, r] = -AT[o, r]
            _grad(kT, AT, n, pWi)
            _matmul_t(AT, n, Wi, dkT, True)
        for i in range(I):  # dr = dlogr / r; dkT becomes dg's summand, dlT dx
            gi = g[i]
            for r in range(n):
                v = xT[i, r]
                dr = dlT[i, r] / rT[i, r]
                dkT[i, r] = dr * (axT[i, r] - one) + dkT[i, r] * (pi if v < zero else zero)
                dlT[i, r] = dr * gi * np.sign(v)
        _row_sums(dkT, n, pg)
        _store(dlT, r0, n, dx)


@njit(**_PAR)
def _npu_bwd(x, dy, Wr, Wi, g, eps, nb, nchunks):
    """The backward pass and the per-chunk sums added up (``dW_i`` stays 0 when ``Wi is None``)."""
    B, I = x.shape
    O = Wr.shape[1]
    dx = np.empty_like(x)
    pWr = np.zeros((nchunks, I, O))
    pWi = np.zeros((nchunks, I, O))
    pg = np.zeros((nchunks, I))
    if nchunks == 1:
        _npu_bwd_chunk(x, dy, Wr, Wi, g, eps, nb, 0, 1, dx, pWr[0], pWi[0], pg[0])
    else:
        for c in prange(nchunks):
            _npu_bwd_chunk(x, dy, Wr, Wi, g, eps, nb, c, nchunks, dx, pWr[c], pWi[c], pg[c])
    dt = x.dtype
    return dx, _sum_partials(pWr).astype(dt), _sum_partials(pWi).astype(dt), _sum_partials(pg).astype(dt)


def _npu_call(params: Params, x: np.ndarray, dy: np.ndarray | None, eps: float, real: bool) -> tuple[Any, ...]:
    """Checks, then the arguments of the compiled passes: ``x, [dy,] W_r, W_i, g, eps, nb, nchunks`` with
    ``W_i = None`` for the RealNPU (``real``)."""
    dt = _check(x, params, dy)
    weights = ("W_r",) if real else ("W_r", "W_i")
    B, I, O = _check_shapes(x, params, weights, x.shape[1], dy)
    Wi = None if real else params["W_i"]
    arrays = (np.ascontiguousarray(x),) + (() if dy is None else (np.ascontiguousarray(dy),))
    return arrays + (params["W_r"], Wi, params["g"], dt.type(eps)) + _plan(B, I, O, x.itemsize)


def _npu_forward(params: Params, x: np.ndarray, eps: float, real: bool) -> tuple[np.ndarray, Any]:
    args = _npu_call(params, x, None, eps, real)
    return _npu_fwd(*args), args[0]


def _npu_backward(params: Params, x: np.ndarray, dy: np.ndarray, eps: float, real: bool) -> tuple[np.ndarray, Params]:
    dx, dWr, dWi, dg = _npu_bwd(*_npu_call(params, x, dy, eps, real))
    grads = {"W_r": dWr, "W_i": dWi, "g": dg}
    return dx, {k: grads[k] for k in params}


def npu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the NPU; see :func:`nalu_np.reference.npu_forward`.

    Parameters
    ----------
    params : dict
        ``W_r``, ``W_i`` of shape (I, O) and the relevance gate ``g`` (I,).
    x : ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : opaque
        Only ``x``: the backward pass recomputes the block values.

    Notes
    -----
    ``r = g (|x| + eps) + 1 - g``, ``k = pi g [x < 0]``,
    ``y = exp(log(r) @ W_r - k @ W_i) * cos(log(r) @ W_i + k @ W_r)``; ``inf`` where the exponent overflows.
    """
    return _npu_forward(params, x, eps, False)


def npu_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Params]:
    """Backward pass of the NPU; see :func:`nalu_np.reference.npu_backward`.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W_r``, ``W_i`` (I, O) and ``g`` (I,).

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

    Parameters
    ----------
    params : dict
        ``W_r`` of shape (I, O) and the relevance gate ``g`` (I,).
    x : ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : opaque

    Notes
    -----
    ``y = exp(log(r) @ W_r) * cos(k @ W_r)`` with ``r``, ``k`` as in :func:`npu_forward`.
    """
    return _npu_forward(params, x, eps, True)


def realnpu_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Params]:
    """Backward pass of the RealNPU; see :func:`nalu_np.reference.realnpu_backward`.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W_r`` (I, O) and ``g`` (I,).
    """
    return _npu_backward(params, cache, dy, eps, True)
