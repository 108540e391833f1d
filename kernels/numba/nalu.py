"""The NALU (Trask et al. 2018), ``y = g a + (1 - g) m`` with ``a = x @ W_a``, ``m = exp(log(|x| + eps) @ W_m)``,
``g = sigma(x @ G)`` and NAC weights ``W = tanh(W_hat) sigma(M_hat)`` (shared, ``W_a = W_m``, or separate):
block functions and kernels on the three paths of :mod:`nalu_np.kernels.numba._common` (fused, rows, blas).

Block functions (on transposed blocks, shape (features, n); the fused path and the compiled training step call
them): :func:`nalu_block_values`, :func:`nalu_block_forward` and :func:`nalu_block_backward`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from . import _common
from ._common import EW, PAR, SUM, Params, Work, add_log_grad_rows, block_range, check, flush, gate_mix, grad, keep, \
    load, log_abs, log_abs_rows, matmul, matmul_t, nac_weight, nac_weight_backward, plan, row_chunks, store, \
    sum_partials, times_log_abs_grad, use_blas, use_rows
from ._math import jit as njit, vexp, vsigmoid

__all__ = ["nalu_forward", "nalu_backward"]


# ---------------------------------------------------------------------------------------------------------
# block functions
# ---------------------------------------------------------------------------------------------------------


@njit(**EW)
def nalu_block_values(xT, lT, n, Wa, Wm, G, aT, mT, gT):
    """The values of one block from ``xT`` and ``lT = log(|xT| + eps)`` (I, nb): ``aT = W_a.T @ xT``,
    ``mT = exp(W_m.T @ lT)``, ``gT = sigma(G.T @ xT)`` (O, nb)."""
    matmul(xT, n, Wa, aT)
    matmul(lT, n, Wm, mT)
    matmul(xT, n, G, gT)
    for o in range(mT.shape[0]):
        for r in range(n):
            mT[o, r] = vexp(mT[o, r])
            gT[o, r] = vsigmoid(gT[o, r])


@njit(**EW)
def nalu_block_forward(xT, lT, n, Wa, Wm, G, aT, mT, gT, yT):
    """:func:`nalu_block_values`, then ``yT = g a + (1 - g) m`` (O, nb)."""
    nalu_block_values(xT, lT, n, Wa, Wm, G, aT, mT, gT)
    gate_mix(gT, aT, mT, n, yT)


@njit(**EW)
def nalu_block_backward(xT, lT, dT, n, Wa, Wm, G, eps, aT, mT, gT, dA, dZ, dH, accA, accM, accG, dxT, need_dx):
    """Gradients of one block from its values (:func:`nalu_block_values`) and ``delta`` transposed ``dT`` (O, nb).

    ``dA = delta g``, ``dZ = delta (1 - g) m``, ``dH = delta (a - m) g (1 - g)`` (O, nb, scratch);
    ``accA += xT @ dA.T``, ``accM += lT @ dZ.T``, ``accG += xT @ dH.T`` (I, O; ``accA`` and ``accM`` may be the
    same array, for shared weights); when ``need_dx``,
    ``dxT = (W_m @ dZ) sign(x) / (|x| + eps) + W_a @ dA + G @ dH`` (I, nb, overwritten).
    """
    one = xT.dtype.type(1.0)
    for o in range(dT.shape[0]):
        for r in range(n):
            d = dT[o, r]
            g = gT[o, r]
            m = mT[o, r]
            dA[o, r] = d * g
            dZ[o, r] = d * (one - g) * m
            dH[o, r] = d * (aT[o, r] - m) * g * (one - g)
    grad(xT, dA, n, accA)
    grad(lT, dZ, n, accM)
    grad(xT, dH, n, accG)
    if need_dx:
        matmul_t(dZ, n, Wm, dxT, False)
        times_log_abs_grad(dxT, xT, n, eps)
        matmul_t(dA, n, Wa, dxT, True)
        matmul_t(dH, n, G, dxT, True)


# ---------------------------------------------------------------------------------------------------------
# fused path
# ---------------------------------------------------------------------------------------------------------


@njit(**EW)
def _carve(buf, n_blocks, I, O, nb):
    """Block buffers ``xT, lT`` (blocks, I, nb) and ``aT, mT, gT`` (blocks, O, nb), views of the flat ``buf`` of
    :func:`_store_size` elements."""
    ni = n_blocks * I * nb
    no = n_blocks * O * nb
    return (buf[:ni].reshape((n_blocks, I, nb)), buf[ni:2 * ni].reshape((n_blocks, I, nb)),
            buf[2 * ni:2 * ni + no].reshape((n_blocks, O, nb)),
            buf[2 * ni + no:2 * ni + 2 * no].reshape((n_blocks, O, nb)),
            buf[2 * ni + 2 * no:2 * ni + 3 * no].reshape((n_blocks, O, nb)))


@njit(**EW)
def _store_size(n_blocks, I, O, nb):
    """Elements of the block buffers of :func:`_carve`."""
    return n_blocks * nb * (2 * I + 3 * O)


@njit(**EW)
def _store_buffers(n_blocks, I, O, nb, dtype):
    """:func:`_carve` of one new allocation (a chunk's scratch block)."""
    return _carve(np.empty(_store_size(n_blocks, I, O, nb), dtype), n_blocks, I, O, nb)


@njit(**EW)
def _fwd_chunk(c, nchunks, x, Wa, Wm, G, eps, nb, y, st, kept):
    """Forward pass of the blocks of chunk ``c``; with ``kept``, block ``b``'s values stay in ``st[.][b]``
    for the backward pass (else ``st`` holds one block of scratch per chunk)."""
    B, I = x.shape
    O = G.shape[1]
    XT, LT, AT, MT, GT = st if kept else _store_buffers(1, I, O, nb, x.dtype)
    yT = np.empty((O, nb), x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        k = b if kept else 0
        r0 = b * nb
        n = min(nb, B - r0)
        xT, lT = XT[k], LT[k]
        load(x, r0, n, xT)
        log_abs(xT, n, eps, lT)
        nalu_block_forward(xT, lT, n, Wa, Wm, G, AT[k], MT[k], GT[k], yT)
        store(yT, r0, n, y)


@njit(**PAR)
def _fwd(x, Wh_a, Mh_a, Wh_m, Mh_m, G, shared, eps, nb, nchunks, kept, buf):
    """Weights, then the forward pass; returns ``y``, the weights and their factors, and the block store (with
    ``kept``: views of ``buf``, of :func:`_store_size` elements for every block; else ``buf`` is unused)."""
    B, I = x.shape
    O = G.shape[1]
    Wa, ta, sa = nac_weight(Wh_a, Mh_a)
    if shared:
        Wm, tm, sm = Wa, ta, sa
    else:
        Wm, tm, sm = nac_weight(Wh_m, Mh_m)
    st = _carve(buf, (B + nb - 1) // nb, I, O, nb) if kept else _store_buffers(1, I, O, 1, x.dtype)
    y = np.empty((B, O), x.dtype)
    if nchunks == 1:
        _fwd_chunk(0, 1, x, Wa, Wm, G, eps, nb, y, st, kept)
    else:
        for c in prange(nchunks):
            _fwd_chunk(c, nchunks, x, Wa, Wm, G, eps, nb, y, st, kept)
    return y, (Wa, ta, sa), (Wm, tm, sm), st


@njit(**EW)
def _bwd_chunk(c, nchunks, x, dy, Wa, Wm, G, eps, nb, dx, pWa, pWm, pG, st, kept, shared):
    """Backward pass of the blocks of chunk ``c``; the gradients are summed in arrays of this thread and
    written to ``pWa[c], pWm[c], pG[c]`` at the end (no cache line shared between threads)."""
    B, I = x.shape
    O = G.shape[1]
    XT, LT, AT, MT, GT = st if kept else _store_buffers(1, I, O, nb, x.dtype)
    dT = np.empty((O, nb), x.dtype)
    dA = np.empty((O, nb), x.dtype)
    dZ = np.empty((O, nb), x.dtype)
    dH = np.empty((O, nb), x.dtype)
    tT = np.empty((I, nb), x.dtype)
    accA = np.zeros((I, O))
    accM = accA if shared else np.zeros((I, O))
    accG = np.zeros((I, O))
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        k = b if kept else 0
        r0 = b * nb
        n = min(nb, B - r0)
        xT, lT, aT, mT, gT = XT[k], LT[k], AT[k], MT[k], GT[k]
        if not kept:
            load(x, r0, n, xT)
            log_abs(xT, n, eps, lT)
            nalu_block_values(xT, lT, n, Wa, Wm, G, aT, mT, gT)
        load(dy, r0, n, dT)
        nalu_block_backward(xT, lT, dT, n, Wa, Wm, G, eps, aT, mT, gT, dA, dZ, dH, accA, accM, accG, tT, True)
        store(tT, r0, n, dx)
    pWa[c, :, :] = accA
    pWm[c, :, :] = accM
    pG[c, :, :] = accG


@njit(**PAR)
def _bwd(x, dy, wa, wm, G, shared, eps, nb, nchunks, st, kept):
    """The backward pass, the per-chunk gradient sums added up, and the chain rule into the raw weights."""
    B, I = x.shape
    O = G.shape[1]
    Wa, ta, sa = wa
    Wm, tm, sm = wm
    dx = np.empty_like(x)
    pWa = np.zeros((nchunks, I, O))
    pWm = pWa if shared else np.zeros((nchunks, I, O))  # shared: dW_a + dW_m in one sum
    pG = np.zeros((nchunks, I, O))
    if nchunks == 1:
        _bwd_chunk(0, 1, x, dy, Wa, Wm, G, eps, nb, dx, pWa, pWm, pG, st, kept, shared)
    else:
        for c in prange(nchunks):
            _bwd_chunk(c, nchunks, x, dy, Wa, Wm, G, eps, nb, dx, pWa, pWm, pG, st, kept, shared)
    dWh_a, dMh_a = nac_weight_backward(sum_partials(pWa), ta, sa)
    if shared:
        dWh_m, dMh_m = dWh_a, dMh_a
    else:
        dWh_m, dMh_m = nac_weight_backward(sum_partials(pWm), tm, sm)
    dG = sum_partials(pG).astype(x.dtype)
    return dx, dWh_a, dMh_a, dWh_m, dMh_m, dG


# ---------------------------------------------------------------------------------------------------------
# rows path: many inputs (every inner loop runs over the contiguous inputs of one row)
# ---------------------------------------------------------------------------------------------------------


@njit(**SUM)
def _row_dots(x, l, r, WaT, WmT, GT, o):
    """``x[r] . WaT[o]``, ``l[r] . WmT[o]`` and ``x[r] . GT[o]`` in one pass (vectorised with reassociation)."""
    za = zl = zg = x.dtype.type(0.0)
    for i in range(x.shape[1]):
        xv = x[r, i]
        za += xv * WaT[o, i]
        zl += l[r, i] * WmT[o, i]
        zg += xv * GT[o, i]
    return za, zl, zg


@njit(**EW)
def _rows_fwd_chunk(c, nchunks, x, WaT, WmT, GT, eps, l, a, m, g, y):
    """Forward pass of the rows of chunk ``c``, keeping ``l, a, m, g``."""
    one = x.dtype.type(1.0)
    r0, r1 = c * x.shape[0] // nchunks, (c + 1) * x.shape[0] // nchunks
    for r in range(r0, r1):
        log_abs(x[r:r + 1], x.shape[1], eps, l[r:r + 1])
        for o in range(WaT.shape[0]):
            za, zl, zg = _row_dots(x, l, r, WaT, WmT, GT, o)
            mm = vexp(zl)
            gg = vsigmoid(zg)
            a[r, o] = za
            m[r, o] = mm
            g[r, o] = gg
            y[r, o] = gg * za + (one - gg) * mm


@njit(**PAR)
def _rows_fwd(x, Wh_a, Mh_a, Wh_m, Mh_m, G, shared, eps, nchunks):
    """Weights, then the forward pass row by row; keeps ``l, a, m, g`` for the backward pass."""
    B, I = x.shape
    O = G.shape[1]
    Wa, ta, sa = nac_weight(Wh_a, Mh_a)
    if shared:
        Wm, tm, sm = Wa, ta, sa
    else:
        Wm, tm, sm = nac_weight(Wh_m, Mh_m)
    WaT, WmT, GT = np.ascontiguousarray(Wa.T), np.ascontiguousarray(Wm.T), np.ascontiguousarray(G.T)
    buf = np.empty(B * I + 3 * B * O, x.dtype)  # one allocation (see KEEP_MAX_BYTES)
    l = buf[:B * I].reshape((B, I))
    a = buf[B * I:B * I + B * O].reshape((B, O))
    m = buf[B * I + B * O:B * I + 2 * B * O].reshape((B, O))
    g = buf[B * I + 2 * B * O:].reshape((B, O))
    y = np.empty((B, O), x.dtype)
    if nchunks == 1:
        _rows_fwd_chunk(0, 1, x, WaT, WmT, GT, eps, l, a, m, g, y)
    else:
        for c in prange(nchunks):
            _rows_fwd_chunk(c, nchunks, x, WaT, WmT, GT, eps, l, a, m, g, y)
    return y, (Wa, ta, sa), (Wm, tm, sm), (l, a, m, g)


@njit(**EW)
def _rows_bwd_chunk(c, nchunks, x, dy, WaT, WmT, GT, eps, l, a, m, g, dx, pWa, pWm, pG, shared):
    """Backward pass of the rows of chunk ``c``: per row and output, one pass over the inputs updates ``dx``, the
    log path's ``t = dz @ W_m.T`` and the three weight gradients (transposed, (O, I)), which are summed in the
    dtype over at most 256 rows, then added into this chunk's float64 ``pWa[c], pWm[c], pG[c]``."""
    O, I = WaT.shape
    r0, r1 = c * x.shape[0] // nchunks, (c + 1) * x.shape[0] // nchunks
    one = x.dtype.type(1.0)
    bWa = np.zeros((O, I), x.dtype)
    bWm = bWa if shared else np.zeros((O, I), x.dtype)
    bG = np.zeros((O, I), x.dtype)
    tz = np.empty(I, x.dtype)
    for r in range(r0, r1):
        for i in range(I):
            dx[r, i] = 0.0
            tz[i] = 0.0
        for o in range(O):
            d = dy[r, o]
            gg = g[r, o]
            mm = m[r, o]
            da = d * gg
            dz = d * (one - gg) * mm
            dh = d * (a[r, o] - mm) * gg * (one - gg)
            if shared:  # one loop per case: a possible alias of bWa and bWm would keep LLVM from vectorising
                for i in range(I):
                    xv = x[r, i]
                    dx[r, i] = dx[r, i] + da * WaT[o, i] + dh * GT[o, i]
                    tz[i] += dz * WmT[o, i]
                    bWa[o, i] = bWa[o, i] + da * xv + dz * l[r, i]
                    bG[o, i] += dh * xv
            else:
                for i in range(I):
                    xv = x[r, i]
                    dx[r, i] = dx[r, i] + da * WaT[o, i] + dh * GT[o, i]
                    tz[i] += dz * WmT[o, i]
                    bWa[o, i] += da * xv
                    bWm[o, i] += dz * l[r, i]
                    bG[o, i] += dh * xv
        for i in range(I):
            v = x[r, i]
            dx[r, i] += tz[i] * (np.sign(v) / (abs(v) + eps))
        if (r - r0) % 256 == 255 or r == r1 - 1:
            flush(bWa, pWa[c])
            if not shared:
                flush(bWm, pWm[c])
            flush(bG, pG[c])


@njit(**PAR)
def _rows_bwd(x, dy, wa, wm, G, shared, eps, nchunks, kept):
    B, I = x.shape
    O = G.shape[1]
    Wa, ta, sa = wa
    Wm, tm, sm = wm
    l, a, m, g = kept
    WaT, WmT, GT = np.ascontiguousarray(Wa.T), np.ascontiguousarray(Wm.T), np.ascontiguousarray(G.T)
    dx = np.empty_like(x)
    pWa = np.zeros((nchunks, O, I))
    pWm = pWa if shared else np.zeros((nchunks, O, I))
    pG = np.zeros((nchunks, O, I))
    if nchunks == 1:
        _rows_bwd_chunk(0, 1, x, dy, WaT, WmT, GT, eps, l, a, m, g, dx, pWa, pWm, pG, shared)
    else:
        for c in prange(nchunks):
            _rows_bwd_chunk(c, nchunks, x, dy, WaT, WmT, GT, eps, l, a, m, g, dx, pWa, pWm, pG, shared)
    dWh_a, dMh_a = nac_weight_backward(np.ascontiguousarray(sum_partials(pWa).T), ta, sa)
    if shared:
        dWh_m, dMh_m = dWh_a, dMh_a
    else:
        dWh_m, dMh_m = nac_weight_backward(np.ascontiguousarray(sum_partials(pWm).T), tm, sm)
    dG = np.ascontiguousarray(sum_partials(pG).T).astype(x.dtype)
    return dx, dWh_a, dMh_a, dWh_m, dMh_m, dG


# ---------------------------------------------------------------------------------------------------------
# blas path: elementwise passes on the calling thread (see :mod:`nalu_np.kernels.numba._common`)
# ---------------------------------------------------------------------------------------------------------


@njit(**EW)
def _combine_rows(ah, m, y):
    """``ah = [a | h]``, ``m = l @ W_m`` on entry; ``m = exp(m)``, ``h = sigma(h) = g``, ``y = g a + (1-g) m``."""
    O = m.shape[1]
    one = m.dtype.type(1.0)
    for b in range(m.shape[0]):
        for o in range(O):
            g = vsigmoid(ah[b, O + o])
            e = vexp(m[b, o])
            ah[b, O + o] = g
            m[b, o] = e
            y[b, o] = g * ah[b, o] + (one - g) * e


@njit(**EW)
def _delta_rows(dy, ag, m, dd, dz):
    """From ``delta``, ``[a | g]`` and ``m``: ``dd = [da | dh]`` and ``dz``."""
    B, O = m.shape
    one = m.dtype.type(1.0)
    for b in range(B):
        for o in range(O):
            d = dy[b, o]
            g = ag[b, O + o]
            mm = m[b, o]
            dd[b, o] = d * g
            dd[b, O + o] = d * (ag[b, o] - mm) * g * (one - g)
            dz[b, o] = d * (one - g) * mm


# ---------------------------------------------------------------------------------------------------------
# public kernels
# ---------------------------------------------------------------------------------------------------------


def _weight_names(params: Params) -> tuple[bool, tuple[str, str], tuple[str, str]]:
    """``shared`` and the names of the raw weights of the additive and the multiplicative path."""
    if "W_hat" in params:
        return True, ("W_hat", "M_hat"), ("W_hat", "M_hat")
    return False, ("W_hat_add", "M_hat_add"), ("W_hat_mul", "M_hat_mul")


def nalu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the NALU (shared or separate weights); see :func:`nalu_np.reference.nalu_forward`.

    Takes ``params`` (``W_hat``, ``M_hat``, ``G`` for shared weights, or ``W_hat_add``, ``M_hat_add``,
    ``W_hat_mul``, ``M_hat_mul``, ``G`` for separate ones, all (I, O)), ``x`` (B, I) and ``eps``; returns ``y`` (B,
    O) and an opaque cache.

    Notes
    -----
    ``a = x @ W_a``, ``m = exp(log(|x| + eps) @ W_m)``, ``g = sigma(x @ G)``, ``y = g * a + (1 - g) * m``.
    """
    dt = check(x, params)
    x = np.ascontiguousarray(x)
    shared, (wa, ma), (wm, mm) = _weight_names(params)
    G = params["G"]
    e = dt.type(eps)
    B, I = x.shape
    O = G.shape[1]
    if use_blas(I, O):
        Wa, ta, sa = nac_weight(params[wa], params[ma])
        Wm, tm, sm = (Wa, ta, sa) if shared else nac_weight(params[wm], params[mm])
        y = np.empty((B, O), dt)
        work = Work((B, I), (B, 2 * O), (B, O), dtype=dt)
        l, ah, m = work.arrays
        wcat = np.concatenate((Wa, G), axis=1)
        for r in row_chunks(B):
            log_abs_rows(x[r], e, l[r])
            np.matmul(x[r], wcat, out=ah[r])
            np.matmul(l[r], Wm, out=m[r])
            _combine_rows(ah[r], m[r], y[r])  # ah becomes [a | g], m becomes exp(l @ W_m)
        return y, ("blas", shared, x, (Wa, ta, sa), (Wm, tm, sm), G, (work, wcat))
    nb, nchunks = plan(B, I, O, x.itemsize)
    if use_rows(I):
        y, wa_, wm_, kept = _rows_fwd(x, params[wa], params[ma], params[wm], params[mm], G, shared, e, nchunks)
        return y, ("rows", shared, x, wa_, wm_, G, (nchunks, kept))
    kept = keep(B, I, O, nb, x.itemsize)
    # the kept block values come from the free list, so that they do not page-fault on every call
    store = Work((_store_size(-(-B // nb), I, O, nb),), dtype=dt) if kept else None
    buf = store.arrays[0] if kept else np.empty(0, dt)
    y, wa_, wm_, st = _fwd(x, params[wa], params[ma], params[wm], params[mm], G, shared, e, nb, nchunks, kept, buf)
    return y, ("fused", shared, x, wa_, wm_, G, (nb, nchunks, kept, st, store))


def nalu_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Params]:
    """Backward pass of the NALU; see :func:`nalu_np.reference.nalu_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradients, with the keys of
    ``params``.

    Notes
    -----
    ``da = delta g``, ``dz = delta (1 - g) m``, ``dh = delta (a - m) g (1 - g)``; ``dW_a = x.T @ da``,
    ``dW_m = l.T @ dz``, ``dG = x.T @ dh``,
    ``dx = da @ W_a.T + (dz @ W_m.T) * sign(x) / (|x| + eps) + dh @ G.T``; shared weights get
    ``dW_a + dW_m``.
    """
    path, shared, x, wa, wm, G, extra = cache
    dt = check(x, {}, dy)
    dy = np.ascontiguousarray(dy)
    e = dt.type(eps)
    _, (kwa, kma), (kwm, kmm) = _weight_names(params)
    if path == "rows":
        nchunks, kept = extra
        dx, dWh_a, dMh_a, dWh_m, dMh_m, dG = _rows_bwd(x, dy, wa, wm, G, shared, e, nchunks, kept)
        grads = {kwa: dWh_a, kma: dMh_a, kwm: dWh_m, kmm: dMh_m, "G": dG}
        return dx, {k: grads[k] for k in params}
    if path == "fused":
        nb, nchunks, kept, st, _ = extra
        dx, dWh_a, dMh_a, dWh_m, dMh_m, dG = _bwd(x, dy, wa, wm, G, shared, e, nb, nchunks, st, kept)
        grads = {kwa: dWh_a, kma: dMh_a, kwm: dWh_m, kmm: dMh_m, "G": dG}
        return dx, {k: grads[k] for k in params}
    O = G.shape[1]
    work, wcat = extra
    l, ag, m = work.arrays
    B, I = x.shape
    n = min(B, _common.BLAS_CHUNK_ROWS)
    scratch = Work((n, 2 * O), (n, O), (n, I), (I, 2 * O), (I, O), dtype=dt)  # held until we return
    dd, dz, t, pcat, pm = scratch.arrays
    gcat = np.zeros((I, 2 * O))
    dWm = np.zeros((I, O))
    dx = np.empty_like(x)
    for r in row_chunks(B):
        k = r.stop - r.start
        _delta_rows(dy[r], ag[r], m[r], dd[:k], dz[:k])
        gcat += np.matmul(x[r].T, dd[:k], out=pcat)
        dWm += np.matmul(l[r].T, dz[:k], out=pm)
        np.matmul(dd[:k], wcat.T, out=dx[r])
        add_log_grad_rows(dx[r], np.matmul(dz[:k], wm[0].T, out=t[:k]), x[r], e)
    dWa, dG = np.ascontiguousarray(gcat[:, :O]), gcat[:, O:]
    grads = {"G": dG.astype(dt)}
    if shared:
        grads[kwa], grads[kma] = nac_weight_backward(dWa + dWm, wa[1], wa[2])
    else:
        grads[kwa], grads[kma] = nac_weight_backward(dWa, wa[1], wa[2])
        grads[kwm], grads[kmm] = nac_weight_backward(dWm, wm[1], wm[2])
    return dx, {k: grads[k] for k in params}

