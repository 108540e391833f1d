"""The iNALU (Schlör, Ring & Hotho 2020): ``y = G a + (1 - G) m s`` with separate NAC weights, ``G = sigma(g)``
one gate per output, ``m = exp(min(log(max(|x|, eps)) @ W_m, omega))`` and the sign term
``s_o = prod_i (sign(x_i) |W_m,io| + 1 - |W_m,io|)``: block functions and kernels (fused path only).

Layout: the fused path of :mod:`nalu_np.kernels.numba._common`.  The layer kernels' forward pass keeps only
``x`` (and the weights); their backward pass recomputes the block values from ``x`` (:func:`inalu_block_values`).
The block functions (:func:`inalu_weights_into`, :func:`inalu_block_forward`, :func:`inalu_block_backward`,
:func:`inalu_param_grads`) are the math the layer kernels and the compiled training step
(:mod:`nalu_np.kernels.numba.train`) share.  The sign
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

from ._common import EW, PAR, Params, block_range, check, check_shapes, grad, load, matmul, matmul_t, \
    nac_weight_grad_into, nac_weight_into, plan, prefix_products, row_sums, store, sum_partials
from ._math import jit as njit, vexp, vlog, vsigmoid

__all__ = ["inalu_forward", "inalu_backward", "inalu_weights_into", "inalu_block_values", "inalu_block_forward",
           "inalu_block_backward", "inalu_param_grads"]

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
def inalu_weights_into(Wh_a, Mh_a, Wh_m, Mh_m, g, Wa, ta, sa, Wm, tm, sm, absW, G):
    """The weights as the passes use them, written into C-contiguous (I, O) arrays: ``W_a = ta sa`` with
    ``ta = tanh(W_hat_add)``, ``sa = sigma(M_hat_add)`` (:func:`~nalu_np.kernels.numba._common.nac_weight_into`),
    ``W_m = tm sm`` the same of ``W_hat_mul``, ``M_hat_mul``, ``absW = |W_m|``, and the gates ``G = sigma(g)``
    (O,)."""
    nac_weight_into(Wh_a, Mh_a, Wa, ta, sa)
    nac_weight_into(Wh_m, Mh_m, Wm, tm, sm)
    for i in range(Wm.shape[0]):
        for o in range(Wm.shape[1]):
            absW[i, o] = abs(Wm[i, o])
    for o in range(g.shape[0]):
        G[o] = vsigmoid(g[o])


@njit(**EW)
def inalu_block_forward(xT, n, Wa, Wm, absW, G, eps, omega, sgT, lT, aT, zT, mT, yT):
    """``yT = G a + (1 - G) m s`` (O, nb) of one block ``xT`` (I, nb), keeping the block values of
    :func:`inalu_block_values` (``sgT``, ``lT``, ``aT``, ``zT``, ``mT``) for the backward pass; the sign term
    ``s_o = prod_i (sign(x_i) |W_m,io| + 1 - |W_m,io|)`` is built in ``yT`` first."""
    one = xT.dtype.type(1.0)
    inalu_block_values(xT, n, Wa, Wm, eps, omega, sgT, lT, aT, zT, mT)
    for o in range(yT.shape[0]):
        for r in range(n):
            yT[o, r] = one
        for i in range(xT.shape[0]):  # the sign term s = prod_i (sign(x) |W_m| + 1 - |W_m|)
            w = absW[i, o]
            w1 = one - w
            for r in range(n):
                yT[o, r] *= sgT[i, r] * w + w1
        gg = G[o]
        h = one - gg
        for r in range(n):
            yT[o, r] = gg * aT[o, r] + h * mT[o, r] * yT[o, r]


@njit(**EW)
def inalu_block_backward(xT, dT, n, Wa, Wm, absW, G, eps, omega, sgT, lT, aT, zT, mT, dA, dZ, hT, pre, cT, run,
                         ds, accWa, accWm, accS, accg, dxT, need_dx):
    """Gradients of one block from its values (:func:`inalu_block_values`: ``sgT``, ``lT`` (I, nb), ``aT``,
    ``zT``, ``mT`` (O, nb)) and ``delta`` transposed ``dT`` (O, nb).

    Sums into ``accWa += x.T @ da`` and ``accWm += l.T @ dz`` (I, O), ``accS[:, o] += sum_b c (sign(x) - 1)``
    (I, O) and ``accg += sum_b delta (a - m s)`` (O,), with ``da = delta G`` (``dA``), ``dz = delta (1 - G) s m
    [z < omega]`` (``dZ``), ``hT = delta (a - m s)`` (O, nb) and ``c = delta (1 - G) m`` (``ds``, (nb,)) times the
    leave-one-out products of the sign factors (``cT`` (I, nb); exclusive prefix products in ``pre`` (>= I, nb)
    times suffix products in ``run`` (nb,), no division); when ``need_dx``, ``dxT = da @ W_a.T + (dz @ W_m.T)
    [|x| > eps] sign(x) / |x|`` (I, nb).  :func:`inalu_param_grads` takes the sums on to the raw parameters.
    """
    one = xT.dtype.type(1.0)
    zero = xT.dtype.type(0.0)
    for o in range(dT.shape[0]):
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
        for i in range(xT.shape[0] - 1, -1, -1):  # suffix products: c = ds * prefix * suffix
            w = absW[i, o]
            w1 = one - w
            for r in range(n):
                cT[i, r] = ds[r] * (pre[i, r] * run[r]) * (sgT[i, r] - one)
                run[r] *= sgT[i, r] * w + w1
        row_sums(cT, n, accS[:, o])
    row_sums(hT, n, accg)
    grad(xT, dA, n, accWa)
    grad(lT, dZ, n, accWm)
    if need_dx:
        matmul_t(dZ, n, Wm, dxT, False)
        for i in range(xT.shape[0]):  # times d log(max(|x|, eps)) / dx = [|x| > eps] sign(x) / |x|
            for r in range(n):
                av = abs(xT[i, r])
                dxT[i, r] *= sgT[i, r] / av if av > eps else zero
        matmul_t(dA, n, Wa, dxT, True)


@njit(**EW)
def inalu_param_grads(accWa, accWm, accS, accg, Wm, ta, sa, tm, sm, G, dWh_a, dMh_a, dWh_m, dMh_m, dg):
    """The gradients of the raw parameters from the sums of :func:`inalu_block_backward`: ``dW_m = accWm +
    sign(W_m) accS`` (into ``accWm``, in place), then ``dW_hat_add``, ``dM_hat_add`` from ``accWa`` and
    ``dW_hat_mul``, ``dM_hat_mul`` from ``dW_m`` through ``tanh * sigma``
    (:func:`~nalu_np.kernels.numba._common.nac_weight_grad_into`), and ``dg = accg G (1 - G)`` (``dg`` may be
    ``accg``).  The outputs are in the dtype of ``ta``; the sums may be float64."""
    for i in range(Wm.shape[0]):
        for o in range(Wm.shape[1]):
            accWm[i, o] += np.sign(Wm[i, o]) * accS[i, o]
    nac_weight_grad_into(accWa, ta, sa, dWh_a, dMh_a)
    nac_weight_grad_into(accWm, tm, sm, dWh_m, dMh_m)
    dt = ta.dtype.type
    one = dt(1.0)
    for o in range(G.shape[0]):
        dg[o] = dt(accg[o]) * G[o] * (one - G[o])


@njit(**EW)
def _inalu_buffers(I, O, nb, dtype):
    """Block buffers ``xT, sgT, lT`` (I, nb) and ``aT, zT, mT`` (O, nb)."""
    return (np.empty((I, nb), dtype), np.empty((I, nb), dtype), np.empty((I, nb), dtype),
            np.empty((O, nb), dtype), np.empty((O, nb), dtype), np.empty((O, nb), dtype))


@njit(**EW)
def _inalu_fwd_chunk(c, nchunks, x, Wa, Wm, absW, G, eps, omega, nb, y):
    B, I = x.shape
    O = Wa.shape[1]
    xT, sgT, lT, aT, zT, mT = _inalu_buffers(I, O, nb, x.dtype)
    yT = np.empty((O, nb), x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        inalu_block_forward(xT, n, Wa, Wm, absW, G, eps, omega, sgT, lT, aT, zT, mT, yT)
        store(yT, r0, n, y)


@njit(**EW)
def _inalu_weights(Wh_a, Mh_a, Wh_m, Mh_m, g):
    """:func:`inalu_weights_into` in new arrays: ``(W_a, ta, sa), (W_m, tm, sm), |W_m|, G``."""
    I, O = Wh_a.shape
    dt = Wh_a.dtype
    Wa, ta, sa = np.empty((I, O), dt), np.empty((I, O), dt), np.empty((I, O), dt)
    Wm, tm, sm = np.empty((I, O), dt), np.empty((I, O), dt), np.empty((I, O), dt)
    absW, G = np.empty((I, O), dt), np.empty(O, dt)
    inalu_weights_into(Wh_a, Mh_a, Wh_m, Mh_m, g, Wa, ta, sa, Wm, tm, sm, absW, G)
    return (Wa, ta, sa), (Wm, tm, sm), absW, G


@njit(**PAR)
def _inalu_fwd(x, Wh_a, Mh_a, Wh_m, Mh_m, g, eps, omega, nb, nchunks):
    """Weights and gates, then the forward pass; returns ``y``, the weights with their factors and ``G``."""
    B = x.shape[0]
    wa, wm, absW, G = _inalu_weights(Wh_a, Mh_a, Wh_m, Mh_m, g)
    Wa, Wm = wa[0], wm[0]
    y = np.empty((B, g.shape[0]), x.dtype)
    if nchunks == 1:
        _inalu_fwd_chunk(0, 1, x, Wa, Wm, absW, G, eps, omega, nb, y)
    else:
        for c in prange(nchunks):
            _inalu_fwd_chunk(c, nchunks, x, Wa, Wm, absW, G, eps, omega, nb, y)
    return y, wa, wm, G


@njit(**EW)
def _inalu_bwd_chunk(c, nchunks, x, dy, Wa, Wm, absW, G, eps, omega, nb, dx, PWa, PWm, PS, Pg):
    """Backward pass of the blocks of chunk ``c`` (:func:`inalu_block_backward`); sums into this chunk's
    ``pWa``, ``pWm``, ``pS`` and ``pg``."""
    B, I = x.shape
    O = Wa.shape[1]
    xT, sgT, lT, aT, zT, mT = _inalu_buffers(I, O, nb, x.dtype)
    dT, dA, dZ, hT = np.empty((O, nb), x.dtype), np.empty((O, nb), x.dtype), np.empty((O, nb), x.dtype), \
        np.empty((O, nb), x.dtype)
    pre, cT, tT = np.empty((I, nb), x.dtype), np.empty((I, nb), x.dtype), np.empty((I, nb), x.dtype)
    run = np.empty(nb, x.dtype)
    ds = np.empty(nb, x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        inalu_block_values(xT, n, Wa, Wm, eps, omega, sgT, lT, aT, zT, mT)
        load(dy, r0, n, dT)
        inalu_block_backward(xT, dT, n, Wa, Wm, absW, G, eps, omega, sgT, lT, aT, zT, mT, dA, dZ, hT, pre, cT,
                             run, ds, PWa[c], PWm[c], PS[c], Pg[c], tT, True)
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
    dWh_a, dMh_a, dWh_m, dMh_m = np.empty_like(ta), np.empty_like(ta), np.empty_like(ta), np.empty_like(ta)
    dg = np.empty_like(G)
    inalu_param_grads(sum_partials(pWa), sum_partials(pWm), sum_partials(pS), sum_partials(pg), Wm, ta, sa, tm, sm,
                      G, dWh_a, dMh_a, dWh_m, dMh_m, dg)
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
