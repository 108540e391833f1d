"""The iNALU (Schlör, Ring & Hotho 2020): ``y = G a + (1 - G) m s`` with separate NAC weights, ``G = sigma(g)``
one gate per output, ``m = exp(min(log(max(|x|, eps)) @ W_m, omega))`` and the sign term
``s_o = prod_i (sign(x_i) |W_m,io| + 1 - |W_m,io|)``: block functions and kernels (fused path only).

Layout: the fused path of :mod:`nalu_np.kernels.numba._common`.  The forward pass keeps only ``x`` (and the
weights); the backward pass recomputes the block values from ``x`` (:func:`inalu_block_values`).  The sign
term's gradient uses leave-one-out products from exclusive prefix and suffix products (no division by a
factor, exact when a factor is 0).

Numerics are those of the reference: ``min(z, omega)`` and ``max(|x|, eps)`` pass NaN through, ``exp``
overflows to ``inf``, the slopes of ``|x|`` at 0 and of the clips at their kinks are taken as 0, and factors
that are masked (``[z < omega]``) are multiplied, not selected, so that ``inf * 0`` is NaN as in NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from ._common import EW, PAR, Params, block_range, check, check_shapes, grad, load, matmul, matmul_t, nac_weight, \
    nac_weight_backward, plan, prefix_products, row_sums, store, sum_partials
from ._math import jit as njit, vexp, vlog, vsigmoid

__all__ = ["inalu_forward", "inalu_backward"]

_WEIGHTS = ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul")


# ---------------------------------------------------------------------------------------------------------
# iNALU: y = G a + (1 - G) m s
# ---------------------------------------------------------------------------------------------------------


@njit(**EW)
def inalu_block_values(xT, n, Wa, Wm, eps, omega, sgT, lT, aT, zT, mT):
    """Forward values of one block ``xT`` (I, nb): ``sgT = sign(x)``, ``lT = log(max(|x|, eps))`` (I, nb),
    ``aT = x @ W_a``, ``zT = l @ W_m`` and ``mT = exp(min(z, omega))`` (O, nb)."""
    for i in range(xT.shape[0]):
        for r in range(n):
            v = xT[i, r]
            av = abs(v)
            sgT[i, r] = np.sign(v)
            lT[i, r] = vlog(eps if av < eps else av)  # max(|x|, eps), NaN passed through
    matmul(xT, n, Wa, aT)
    matmul(lT, n, Wm, zT)
    for o in range(zT.shape[0]):
        for r in range(n):
            z = zT[o, r]
            mT[o, r] = vexp(omega if z > omega else z)  # min(z, omega), NaN passed through


@njit(**EW)
def _inalu_buffers(I, O, nb, dtype):
    """Block buffers ``xT, sgT, lT`` (I, nb) and ``aT, zT, mT`` (O, nb)."""
    return (np.empty((I, nb), dtype), np.empty((I, nb), dtype), np.empty((I, nb), dtype),
            np.empty((O, nb), dtype), np.empty((O, nb), dtype), np.empty((O, nb), dtype))


@njit(**EW)
def _inalu_fwd_chunk(c, nchunks, x, Wa, Wm, absW, G, eps, omega, nb, y):
    B, I = x.shape
    O = Wa.shape[1]
    one = x.dtype.type(1.0)
    xT, sgT, lT, aT, zT, mT = _inalu_buffers(I, O, nb, x.dtype)
    yT = np.empty((O, nb), x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        inalu_block_values(xT, n, Wa, Wm, eps, omega, sgT, lT, aT, zT, mT)
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
        store(yT, r0, n, y)


@njit(**PAR)
def _inalu_fwd(x, Wh_a, Mh_a, Wh_m, Mh_m, g, eps, omega, nb, nchunks):
    """Weights and gates, then the forward pass; returns ``y``, the weights with their factors and ``G``."""
    B = x.shape[0]
    Wa, ta, sa = nac_weight(Wh_a, Mh_a)
    Wm, tm, sm = nac_weight(Wh_m, Mh_m)
    G = np.empty_like(g)
    for o in range(g.shape[0]):
        G[o] = vsigmoid(g[o])
    absW = np.abs(Wm)
    y = np.empty((B, g.shape[0]), x.dtype)
    if nchunks == 1:
        _inalu_fwd_chunk(0, 1, x, Wa, Wm, absW, G, eps, omega, nb, y)
    else:
        for c in prange(nchunks):
            _inalu_fwd_chunk(c, nchunks, x, Wa, Wm, absW, G, eps, omega, nb, y)
    return y, (Wa, ta, sa), (Wm, tm, sm), G


@njit(**EW)
def _inalu_bwd_chunk(c, nchunks, x, dy, Wa, Wm, absW, G, eps, omega, nb, dx, PWa, PWm, PS, Pg):
    """Backward pass of the blocks of chunk ``c``; sums into this chunk's ``pWa`` (``x.T @ da``), ``pWm``
    (``l.T @ dz``), ``pS`` (``sum_b c (sign(x) - 1)``) and ``pg`` (``sum_b delta (a - m s)``)."""
    pWa, pWm, pS, pg = PWa[c], PWm[c], PS[c], Pg[c]
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
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        inalu_block_values(xT, n, Wa, Wm, eps, omega, sgT, lT, aT, zT, mT)
        load(dy, r0, n, dT)
        for o in range(O):
            gg = G[o]
            h = one - gg
            prefix_products(sgT, n, absW, o, pre, run)
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
            row_sums(cT, n, pS[:, o])
        row_sums(hT, n, pg)
        grad(xT, dA, n, pWa)
        grad(lT, dZ, n, pWm)
        matmul_t(dZ, n, Wm, tT, False)
        for i in range(I):  # times d log(max(|x|, eps)) / dx = [|x| > eps] sign(x) / |x|
            for r in range(n):
                av = abs(xT[i, r])
                tT[i, r] *= sgT[i, r] / av if av > eps else zero
        matmul_t(dA, n, Wa, tT, True)
        store(tT, r0, n, dx)


@njit(**PAR)
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
        _inalu_bwd_chunk(0, 1, x, dy, Wa, Wm, absW, G, eps, omega, nb, dx, pWa, pWm, pS, pg)
    else:
        for c in prange(nchunks):
            _inalu_bwd_chunk(c, nchunks, x, dy, Wa, Wm, absW, G, eps, omega, nb, dx, pWa, pWm, pS, pg)
    dWh_a, dMh_a = nac_weight_backward(sum_partials(pWa), ta, sa)
    dWh_m, dMh_m = nac_weight_backward(sum_partials(pWm) + np.sign(Wm) * sum_partials(pS), tm, sm)
    dg = sum_partials(pg).astype(x.dtype) * G * (x.dtype.type(1.0) - G)
    return dx, dWh_a, dMh_a, dWh_m, dMh_m, dg


def inalu_forward(params: Params, x: np.ndarray, eps: float = 1e-7, omega: float = 20.0) -> tuple[np.ndarray, Any]:
    """Forward pass of the iNALU; see :func:`nalu_np.reference.inalu_forward`.

    Takes ``params`` (``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul`` of shape (I, O) and the gate ``g``
    (O,)), ``x`` (B, I), ``eps`` (the lower bound of ``|x|`` inside the log) and ``omega`` (the upper bound of the
    log-space sum); returns ``y`` (B, O) and a cache of ``x``, the weights and the gate (the backward pass
    recomputes the block values from ``x``).

    Notes
    -----
    ``a = x @ W_a``, ``m = exp(min(log(max(|x|, eps)) @ W_m, omega))``,
    ``s[b, o] = prod_i (sign(x[b, i]) |W_m[i, o]| + 1 - |W_m[i, o]|)``, ``G = sigma(g)``,
    ``y = G * a + (1 - G) * m * s``.
    """
    dt = check(x, params)
    B, I, O = check_shapes(x, params, _WEIGHTS, None)
    x = np.ascontiguousarray(x)
    nb, nchunks = plan(B, I, O, x.itemsize)
    y, wa, wm, G = _inalu_fwd(x, *(params[k] for k in _WEIGHTS), params["g"], dt.type(eps), dt.type(omega),
                              nb, nchunks)
    return y, (x, wa, wm, G)


def inalu_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7,
                   omega: float = 20.0) -> tuple[np.ndarray, Params]:
    """Backward pass of the iNALU; see :func:`nalu_np.reference.inalu_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradients, with the keys of
    ``params``.

    Notes
    -----
    ``da = delta G``, ``dz = delta (1 - G) s m [z < omega]``, ``c = delta (1 - G) m * loo`` with the
    leave-one-out products ``loo`` of the sign factors (prefix times suffix products);
    ``dW_a = x.T @ da``, ``dW_m = l.T @ dz + sign(W_m) sum_b c (sign(x) - 1)``,
    ``dg = sum_b delta (a - m s) G (1 - G)``, ``dx = da @ W_a.T + (dz @ W_m.T) [|x| > eps] sign(x) / |x|``.
    """
    x, wa, wm, G = cache
    dt = check(x, {}, dy)
    B, I, O = check_shapes(x, params, _WEIGHTS, None, dy)
    nb, nchunks = plan(B, I, O, x.itemsize)
    dx, dWh_a, dMh_a, dWh_m, dMh_m, dg = _inalu_bwd(x, np.ascontiguousarray(dy), wa, wm, G, dt.type(eps),
                                                    dt.type(omega), nb, nchunks)
    grads = {"W_hat_add": dWh_a, "M_hat_add": dMh_a, "W_hat_mul": dWh_m, "M_hat_mul": dMh_m, "g": dg}
    return dx, {k: grads[k] for k in params}
