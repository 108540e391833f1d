"""The machinery that NAC, NACMul and NALU share on the ``numba-cuda`` backend: one forward and one backward
pass for the three units (the unit code a compile-time constant of the kernels), the kernel of
``W = tanh(W_hat) * sigma(M_hat)`` that the iNALU uses as well, and the tiled kernels whose NAC instance does
the matrix products of the other units (:mod:`._linalg`).  The public kernels are in :mod:`.nac` and
:mod:`.nalu`.

Two paths, chosen by the layer size (:func:`~nalu_np.kernels.cuda_common.use_row_path`):

* per-row (``in_features * out_features`` small, e.g. the arithmetic tasks' (B, 2, 1)): one fused kernel per
  pass, each thread owning whole rows in a grid-stride loop.  Forward reads ``x`` and writes ``y``; backward
  reads ``x`` and ``dy``, recomputes the three paths, writes ``dx`` and keeps the weight-gradient sums in
  registers, reduces them per block in shared memory and writes one partial sum per block; a second kernel
  adds the partials in a fixed order and applies the chain rule through ``W = tanh(W_hat) sigma(M_hat)``.
  The forward cache holds no batch-sized array.
* general: a tiled kernel computes the three matrix products of the forward pass with the gate, ``exp`` and
  output fused into its epilogue (caching ``a``, ``m``, ``g`` for backward); backward runs one elementwise
  kernel for the path gradients, a tiled kernel for ``dx`` (log-path factor fused) and a split-K tiled kernel
  whose per-split partial sums go through the same fixed-order second pass.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
from numba import cuda

from ..cuda_common import NAC, NACMUL, NALU, Params, config, grid_stride_blocks, nac_cache, nac_names
from ._common import cdiv, check, device_math, empty, launch_1d, row_splits, sm_count

__all__ = ["has_paths", "sum_offsets", "weight_kernel", "finish_kernel", "row_kernels", "tiled_kernels",
           "nac_weight", "forward", "backward"]


def has_paths(unit: int) -> tuple[bool, bool, bool]:
    """Which of the additive path, multiplicative path and gate a unit has."""
    return unit != NACMUL, unit != NAC, unit == NALU


def sum_offsets(unit: int, k: int) -> tuple[int, int, int, int]:
    """Offsets of the additive, multiplicative and gate weight-gradient sums in a partial row, and its length."""
    ha, hm, hg = has_paths(unit)
    off_m = k * ha
    off_g = off_m + k * hm
    return 0, off_m, off_g, off_g + k * hg


# ---------------------------------------------------------------------------------------------------------
# small kernels shared by both paths
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def weight_kernel(dtype: str) -> Any:
    """``W, t, s = tanh(W_hat) * sigma(M_hat), tanh(W_hat), sigma(M_hat)`` over all (I, O) entries."""
    sigmoid = device_math(dtype).sigmoid

    @cuda.jit
    def weight(W_hat, M_hat, W, t, s):  # noqa: ANN001, ANN202
        n_out = W.shape[1]
        for k in range(cuda.grid(1), W.size, cuda.gridsize(1)):
            i = k // n_out
            j = k - i * n_out
            tk = math.tanh(W_hat[i, j])
            sk = sigmoid(M_hat[i, j])
            t[i, j] = tk
            s[i, j] = sk
            W[i, j] = tk * sk

    return weight


@functools.lru_cache(maxsize=None)
def finish_kernel(unit: int, separate: bool, dtype: str) -> Any:
    """Second pass of the weight gradients: add the partial sums in a fixed order, then the chain rule.

    ``part`` has shape (parts, n_sums) with the additive, multiplicative and gate sums of entry ``(i, j)`` at
    ``off + i * O + j``.  Shared weights (and NAC, NACMul) get ``dW = S_a + S_m`` in ``gwa``, ``gma``;
    separate weights get ``S_a`` in ``gwa``, ``gma`` and ``S_m`` in ``gwm``, ``gmm``; the gate ``dG = S_g``.
    """
    f = device_math(dtype)
    one, zero = f.one, f.zero
    ha, hm, hg = has_paths(unit)

    @cuda.jit
    def finish(part, ta, sa, tm, sm, gwa, gma, gwm, gmm, gG):  # noqa: ANN001, ANN202
        n_out = ta.shape[1]
        k_all = ta.size
        off_m = k_all if ha else 0
        off_g = off_m + (k_all if hm else 0)
        for k in range(cuda.grid(1), k_all, cuda.gridsize(1)):
            i = k // n_out
            j = k - i * n_out
            s_a = zero
            s_m = zero
            s_g = zero
            for p in range(part.shape[0]):
                if ha:
                    s_a += part[p, k]
                if hm:
                    s_m += part[p, off_m + k]
                if hg:
                    s_g += part[p, off_g + k]
            if separate:
                dw = s_a
            else:
                dw = s_a + s_m
            t = ta[i, j]
            s = sa[i, j]
            gwa[i, j] = dw * (one - t * t) * s
            gma[i, j] = dw * t * s * (one - s)
            if separate:
                t = tm[i, j]
                s = sm[i, j]
                gwm[i, j] = s_m * (one - t * t) * s
                gmm[i, j] = s_m * t * s * (one - s)
            if hg:
                gG[i, j] = s_g

    return finish


# ---------------------------------------------------------------------------------------------------------
# per-row path: one thread owns whole rows
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def row_kernels(unit: int, dtype: str, n_in: int, n_out: int, block: int) -> SimpleNamespace:
    """Fused forward and backward kernels for a layer of size (n_in, n_out), both compile-time constants."""
    f = device_math(dtype)
    T, zero = f.T, f.zero
    exp_, sigmoid, log_grad, output, path_grads = f.exp, f.sigmoid, f.log_grad, f.output, f.path_grads
    ha, hm, hg = has_paths(unit)
    n_w = n_in * n_out  # a compile-time constant for the local arrays
    off_a, off_m, off_g, n_sums = sum_offsets(unit, n_w)

    @cuda.jit(device=True)
    def load_row(x, b, eps, xl, ll):  # noqa: ANN001, ANN202
        for i in range(n_in):
            v = x[b, i]
            xl[i] = v
            if hm:
                ll[i] = math.log(abs(v) + eps)

    @cuda.jit(device=True)
    def load_weights(Wa, Wm, G, wa, wm, wg):  # noqa: ANN001, ANN202
        # the weights of the small layer in registers (local arrays), read once per thread, not once per row
        for i in range(n_in):
            for j in range(n_out):
                if ha:
                    wa[i * n_out + j] = Wa[i, j]
                if hm:
                    wm[i * n_out + j] = Wm[i, j]
                if hg:
                    wg[i * n_out + j] = G[i, j]

    @cuda.jit(device=True)
    def paths(xl, ll, wa, wm, wg, j):  # noqa: ANN001, ANN202
        a = zero
        z = zero
        h = zero
        for i in range(n_in):
            k = i * n_out + j
            if ha:
                a += xl[i] * wa[k]
            if hm:
                z += ll[i] * wm[k]
            if hg:
                h += xl[i] * wg[k]
        m = exp_(z) if hm else zero
        g = sigmoid(h) if hg else zero
        return a, m, g

    @cuda.jit
    def forward(x, Wa, Wm, G, eps, y):  # noqa: ANN001, ANN202
        wa = cuda.local.array(n_w, T)
        wm = cuda.local.array(n_w, T)
        wg = cuda.local.array(n_w, T)
        load_weights(Wa, Wm, G, wa, wm, wg)
        xl = cuda.local.array(n_in, T)
        ll = cuda.local.array(n_in, T)
        for b in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            load_row(x, b, eps, xl, ll)
            for j in range(n_out):
                a, m, g = paths(xl, ll, wa, wm, wg, j)
                y[b, j] = output(unit, a, m, g)

    @cuda.jit(device=True)
    def block_sums(acc, part):  # noqa: ANN001, ANN202
        # tree reduction of each per-thread sum over the block, in shared memory; one partial per block
        buf = cuda.shared.array(block, T)
        tid = cuda.threadIdx.x
        for k in range(n_sums):
            buf[tid] = acc[k]
            cuda.syncthreads()
            s = block // 2
            while s > 0:
                if tid < s:
                    buf[tid] += buf[tid + s]
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                part[cuda.blockIdx.x, k] = buf[0]
            cuda.syncthreads()

    @cuda.jit
    def backward(x, dy, Wa, Wm, G, eps, dx, part):  # noqa: ANN001, ANN202
        wa = cuda.local.array(n_w, T)
        wm = cuda.local.array(n_w, T)
        wg = cuda.local.array(n_w, T)
        load_weights(Wa, Wm, G, wa, wm, wg)
        xl = cuda.local.array(n_in, T)
        ll = cuda.local.array(n_in, T)
        dxa = cuda.local.array(n_in, T)  # additive path and gate
        dxm = cuda.local.array(n_in, T)  # multiplicative path, before the log-path factor
        acc = cuda.local.array(n_sums, T)
        for k in range(n_sums):
            acc[k] = zero
        for b in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            load_row(x, b, eps, xl, ll)
            for i in range(n_in):
                dxa[i] = zero
                dxm[i] = zero
            for j in range(n_out):
                a, m, g = paths(xl, ll, wa, wm, wg, j)
                da, dz, dh = path_grads(unit, dy[b, j], a, m, g)
                for i in range(n_in):
                    k = i * n_out + j
                    if ha:
                        dxa[i] += da * wa[k]
                        acc[off_a + k] += xl[i] * da
                    if hm:
                        dxm[i] += dz * wm[k]
                        acc[off_m + k] += ll[i] * dz
                    if hg:
                        dxa[i] += dh * wg[k]
                        acc[off_g + k] += xl[i] * dh
            for i in range(n_in):
                if hm:
                    dx[b, i] = dxa[i] + dxm[i] * log_grad(xl[i], eps)
                else:
                    dx[b, i] = dxa[i]
        block_sums(acc, part)

    return SimpleNamespace(forward=forward, backward=backward, n_sums=n_sums)


# ---------------------------------------------------------------------------------------------------------
# general path: tiled matrix products with fused epilogues
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def tiled_kernels(unit: int, dtype: str, tile: int) -> SimpleNamespace:
    """Tiled forward (``y`` and the cache), path gradients, ``dx`` and split-K weight-gradient kernels.

    Thread ``(tx, ty)`` of a tile owns output ``(row ty, column tx)``; rows run along ``blockIdx.x`` (the
    batch can exceed the 65535 blocks allowed along y), columns along ``blockIdx.y``.
    """
    f = device_math(dtype)
    T, zero = f.T, f.zero
    exp_, sigmoid, log_grad, output, path_grads = f.exp, f.sigmoid, f.log_grad, f.output, f.path_grads
    ha, hm, hg = has_paths(unit)

    @cuda.jit
    def forward(x, Wa, Wm, G, eps, y, ca, cm, cg):  # noqa: ANN001, ANN202
        xs = cuda.shared.array((tile, tile), T)
        ls = cuda.shared.array((tile, tile), T)
        was = cuda.shared.array((tile, tile), T)
        wms = cuda.shared.array((tile, tile), T)
        gs = cuda.shared.array((tile, tile), T)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n_batch, n_in = x.shape
        n_out = y.shape[1]
        b = cuda.blockIdx.x * tile + ty
        j = cuda.blockIdx.y * tile + tx
        a = zero
        z = zero
        h = zero
        for k0 in range(0, n_in, tile):
            kx = k0 + tx
            inside = b < n_batch and kx < n_in
            v = x[b, kx] if inside else zero
            xs[ty, tx] = v
            if hm:
                ls[ty, tx] = math.log(abs(v) + eps) if inside else zero
            kw = k0 + ty
            inside = kw < n_in and j < n_out
            if ha:
                was[ty, tx] = Wa[kw, j] if inside else zero
            if hm:
                wms[ty, tx] = Wm[kw, j] if inside else zero
            if hg:
                gs[ty, tx] = G[kw, j] if inside else zero
            cuda.syncthreads()
            for kk in range(tile):
                if ha:
                    a += xs[ty, kk] * was[kk, tx]
                if hm:
                    z += ls[ty, kk] * wms[kk, tx]
                if hg:
                    h += xs[ty, kk] * gs[kk, tx]
            cuda.syncthreads()
        if b < n_batch and j < n_out:
            m = exp_(z) if hm else zero
            g = sigmoid(h) if hg else zero
            y[b, j] = output(unit, a, m, g)
            if hg:
                ca[b, j] = a
                cm[b, j] = m
                cg[b, j] = g

    @cuda.jit
    def grads(dy, ca, cm, cg, da, dz, dh):  # noqa: ANN001, ANN202
        # path gradients, elementwise over (B, O); NACMul caches m = y in cm
        n_out = dy.shape[1]
        for k in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
            b = k // n_out
            j = k - b * n_out
            a = ca[b, j] if hg else zero
            g = cg[b, j] if hg else zero
            gda, gdz, gdh = path_grads(unit, dy[b, j], a, cm[b, j], g)
            if hg:
                da[b, j] = gda
                dh[b, j] = gdh
            dz[b, j] = gdz

    @cuda.jit
    def dx_kernel(x, da, dz, dh, Wa, Wm, G, eps, dx):  # noqa: ANN001, ANN202
        # dx = da @ Wa.T + (dz @ Wm.T) * log_grad(x) + dh @ G.T
        das = cuda.shared.array((tile, tile), T)
        dzs = cuda.shared.array((tile, tile), T)
        dhs = cuda.shared.array((tile, tile), T)
        was = cuda.shared.array((tile, tile), T)
        wms = cuda.shared.array((tile, tile), T)
        gs = cuda.shared.array((tile, tile), T)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n_batch, n_in = dx.shape
        n_out = Wa.shape[1]
        b = cuda.blockIdx.x * tile + ty
        i0 = cuda.blockIdx.y * tile
        i = i0 + tx
        sa = zero
        sm = zero
        sg = zero
        for j0 in range(0, n_out, tile):
            jd = j0 + tx
            inside = b < n_batch and jd < n_out
            if ha:
                das[ty, tx] = da[b, jd] if inside else zero
            if hm:
                dzs[ty, tx] = dz[b, jd] if inside else zero
            if hg:
                dhs[ty, tx] = dh[b, jd] if inside else zero
            iw = i0 + tx
            jw = j0 + ty
            inside = iw < n_in and jw < n_out
            if ha:
                was[ty, tx] = Wa[iw, jw] if inside else zero
            if hm:
                wms[ty, tx] = Wm[iw, jw] if inside else zero
            if hg:
                gs[ty, tx] = G[iw, jw] if inside else zero
            cuda.syncthreads()
            for kk in range(tile):
                if ha:
                    sa += das[ty, kk] * was[kk, tx]
                if hm:
                    sm += dzs[ty, kk] * wms[kk, tx]
                if hg:
                    sg += dhs[ty, kk] * gs[kk, tx]
            cuda.syncthreads()
        if b < n_batch and i < n_in:
            r = sa
            if hm:
                r += sm * log_grad(x[b, i], eps)
            if hg:
                r += sg
            dx[b, i] = r

    @cuda.jit
    def wgrad(x, da, dz, dh, eps, chunk, part):  # noqa: ANN001, ANN202
        # part[s, off_c + i * O + j] = sum over rows b of split s of A_c[b, i] * D_c[b, j]
        # with A = x, log(|x| + eps), x and D = da, dz, dh for the additive path, the exponent, the gate
        xs = cuda.shared.array((tile, tile), T)
        ls = cuda.shared.array((tile, tile), T)
        das = cuda.shared.array((tile, tile), T)
        dzs = cuda.shared.array((tile, tile), T)
        dhs = cuda.shared.array((tile, tile), T)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n_batch, n_in = x.shape
        n_out = dz.shape[1]
        i0 = cuda.blockIdx.x * tile
        j0 = cuda.blockIdx.y * tile
        i = i0 + ty
        j = j0 + tx
        split = cuda.blockIdx.z
        sa = zero
        sm = zero
        sg = zero
        end = min((split + 1) * chunk, n_batch)
        for b0 in range(split * chunk, end, tile):
            b = b0 + ty
            ix = i0 + tx
            inside = b < end and ix < n_in
            v = x[b, ix] if inside else zero
            xs[ty, tx] = v
            if hm:
                ls[ty, tx] = math.log(abs(v) + eps) if inside else zero
            jd = j0 + tx
            inside = b < end and jd < n_out
            if ha:
                das[ty, tx] = da[b, jd] if inside else zero
            if hm:
                dzs[ty, tx] = dz[b, jd] if inside else zero
            if hg:
                dhs[ty, tx] = dh[b, jd] if inside else zero
            cuda.syncthreads()
            for r in range(tile):
                if ha:
                    sa += xs[r, ty] * das[r, tx]
                if hm:
                    sm += ls[r, ty] * dzs[r, tx]
                if hg:
                    sg += xs[r, ty] * dhs[r, tx]
            cuda.syncthreads()
        if i < n_in and j < n_out:
            k_all = n_in * n_out
            k = i * n_out + j
            off = 0
            if ha:
                part[split, k] = sa
                off = k_all
            if hm:
                part[split, off + k] = sm
                off += k_all
            if hg:
                part[split, off + k] = sg

    return SimpleNamespace(forward=forward, grads=grads, dx=dx_kernel, wgrad=wgrad)


# ---------------------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------------------


def nac_weight(W_hat: Any, M_hat: Any, dtype: np.dtype) -> tuple[Any, Any, Any]:
    """``W = tanh(W_hat) * sigma(M_hat)`` and the factors of its gradient ``t = tanh(W_hat)``, ``s = sigma(M_hat)``.

    Parameters
    ----------
    W_hat, M_hat : GPU arrays, shape (I, O)
    dtype : numpy.dtype

    Returns
    -------
    W, t, s : arrays of ``xp``, shape (I, O)
    """
    W, t, s = (empty(tuple(W_hat.shape), dtype) for _ in range(3))
    launch_1d(weight_kernel(dtype.str), W.size, config.checked_block(), W_hat, M_hat, W, t, s)
    return W, t, s


def forward(unit: int, params: Params, x: Any, eps: float) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the unit ``unit`` (``NAC``, ``NACMUL`` or ``NALU``); ``y`` (B, O) and the cache."""
    dtype = check(x, params)
    cache = nac_cache(unit, params, x, lambda W_hat, M_hat: nac_weight(W_hat, M_hat, dtype))
    Wa, Wm = cache["Wa"], cache["Wm"]
    G = params["G"] if unit == NALU else Wa  # placeholder argument where the unit has no gate
    n_batch, n_in = x.shape
    n_out = Wa.shape[1]
    eps_t = dtype.type(eps)
    y = empty((n_batch, n_out), dtype)
    block = config.checked_block()
    if cache["row"]:
        k = row_kernels(unit, dtype.str, n_in, n_out, block)
        launch_1d(k.forward, n_batch, block, x, Wa, Wm, G, eps_t, y)
        return y, cache
    tile = config.checked_tile()
    k = tiled_kernels(unit, dtype.str, tile)
    if unit == NALU:
        ca, cm, cg = (empty((n_batch, n_out), dtype) for _ in range(3))
        cache.update(a=ca, m=cm, g=cg)
    else:  # NACMul: m is y itself; NAC keeps nothing batch-sized
        ca = cm = cg = y
        cache.update(m=y)
    grid = (cdiv(n_batch, tile), cdiv(n_out, tile))
    k.forward[grid, (tile, tile)](x, Wa, Wm, G, eps_t, y, ca, cm, cg)
    return y, cache


def backward(unit: int, params: Params, cache: dict[str, Any], dy: Any, eps: float) -> tuple[Any, Params]:
    """Backward pass of the unit ``unit`` from the cache of :func:`forward`; ``dx`` (B, I) and the gradients."""
    x = cache["x"]
    dtype = check(x, params, dy)
    (wa, ma), (wm, mm) = nac_names(unit, params)
    separate = wm != wa
    Wa, Wm = cache["Wa"], cache["Wm"]
    G = params["G"] if unit == NALU else Wa
    n_batch, n_in = x.shape
    n_out = Wa.shape[1]
    eps_t = dtype.type(eps)
    dx = empty((n_batch, n_in), dtype)
    block = config.checked_block()
    if cache["row"]:
        k = row_kernels(unit, dtype.str, n_in, n_out, block)
        n_blocks = grid_stride_blocks(n_batch, block, sm_count())
        part = empty((n_blocks, k.n_sums), dtype)
        k.backward[n_blocks, block](x, dy, Wa, Wm, G, eps_t, dx, part)
    else:
        tile = config.checked_tile()
        k = tiled_kernels(unit, dtype.str, tile)
        if unit == NAC:
            da = dz = dh = dy
        elif unit == NACMUL:
            dz = empty((n_batch, n_out), dtype)
            da = dh = dz
            launch_1d(k.grads, dy.size, block, dy, cache["m"], cache["m"], cache["m"], dz, dz, dz)
        else:
            da, dz, dh = (empty((n_batch, n_out), dtype) for _ in range(3))
            launch_1d(k.grads, dy.size, block, dy, cache["a"], cache["m"], cache["g"], da, dz, dh)
        k.dx[(cdiv(n_batch, tile), cdiv(n_in, tile)), (tile, tile)](x, da, dz, dh, Wa, Wm, G, eps_t, dx)
        chunk, splits = row_splits(n_batch, tile)  # rows per split, a multiple of the tile
        part = empty((splits, sum_offsets(unit, n_in * n_out)[3]), dtype)
        k.wgrad[(cdiv(n_in, tile), cdiv(n_out, tile), splits), (tile, tile)](x, da, dz, dh, eps_t, chunk, part)
    out = {key: empty((n_in, n_out), dtype) for key in params}
    gwm, gmm = (out[wm], out[mm]) if separate else (out[wa], out[ma])
    launch_1d(finish_kernel(unit, separate, dtype.str), n_in * n_out, block, part, cache["ta"], cache["sa"],
              cache["tm"], cache["sm"], out[wa], out[ma], gwm, gmm, out.get("G", out[wa]))
    return dx, out
