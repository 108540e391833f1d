"""NAU, NMU, iNALU, NPU and RealNPU for the ``numba-cuda`` backend (re-exported by
:mod:`nalu_np.kernels.numba_cuda`, whose arrays, checks and launch settings they share).

Building blocks
---------------
* Matrix products reuse the tiled kernels of the additive NAC (:func:`numba_cuda._tiled_kernels` with
  ``unit = NAC`` computes ``A @ W``, ``D @ W.T`` and the split-K partial sums of ``A.T @ D``); weight gradients
  are those per-split partial sums added in a fixed order by :func:`_sum_parts_kernel` (no atomics, bitwise
  reproducible for fixed launch settings).
* Products over the inputs (NMU, the iNALU sign term) run one thread per ``(row, output)`` in a grid-stride
  loop.  Their leave-one-out products come from an exclusive suffix pass written to a scratch ``C`` of shape
  (B, I * O) and an exclusive prefix pass over it, never from ``y / f`` (``0 / 0`` when a factor is 0).
* Sums over the batch (gradients of the per-output or per-input gates, and of the NMU weights through
  ``C``) are split column sums: thread ``(split, column)`` adds the rows of its split, then the partials are
  added in a fixed order.
* Elementwise epilogues are one grid-stride kernel per pass.

The formulas are those of :mod:`nalu_np.reference`; ``exp`` overflows to ``inf`` as there.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import cuda

from . import _cuda_common as cc
from ._cuda_common import NAC

__all__ = [
    "nau_forward",
    "nau_backward",
    "nmu_forward",
    "nmu_backward",
    "inalu_forward",
    "inalu_backward",
    "npu_forward",
    "npu_backward",
    "realnpu_forward",
    "realnpu_backward",
]

Params = dict[str, Any]

# kinds of the product units' factors f = u(x) v(W) + 1 - v(W)
_NMU_FACTOR = 0  # u = x, v = W
_SIGN_FACTOR = 1  # u = sign(x), v = |W| (the iNALU sign term)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@functools.lru_cache(maxsize=None)
def _sign(dtype: str) -> Any:
    """Device function ``sign(v)``: -1, 0 or 1 in the float type (NaN for NaN), as ``numpy.sign``."""
    f = nc._math(dtype)
    one, zero = f.one, f.zero

    @cuda.jit(device=True)
    def sign(v):  # noqa: ANN001, ANN202
        if v > zero:
            return one
        if v < zero:
            return -one
        return v

    return sign


# ---------------------------------------------------------------------------------------------------------
# matrix products with the NAC's tiled kernels
# ---------------------------------------------------------------------------------------------------------


def _tiled(dtype: np.dtype) -> tuple[Any, int]:
    tile = cc.config.checked_tile()
    return nc._tiled_kernels(NAC, dtype.str, tile), tile


def _matmul(A: Any, W: Any, dtype: np.dtype) -> Any:
    """``A @ W``, (n, k) @ (k, m) -> (n, m)."""
    k, tile = _tiled(dtype)
    out = nc._empty((A.shape[0], W.shape[1]), dtype)
    k.forward[(_cdiv(A.shape[0], tile), _cdiv(W.shape[1], tile)), (tile, tile)](
        A, W, W, W, dtype.type(0), out, out, out, out)
    return out


def _matmul_t(D: Any, W: Any, dtype: np.dtype) -> Any:
    """``D @ W.T``, (n, m) @ (k, m).T -> (n, k)."""
    k, tile = _tiled(dtype)
    out = nc._empty((D.shape[0], W.shape[0]), dtype)
    k.dx[(_cdiv(D.shape[0], tile), _cdiv(W.shape[0], tile)), (tile, tile)](
        D, D, D, D, W, W, W, dtype.type(0), out)
    return out


def _row_splits(n_rows: int, multiple: int) -> tuple[int, int]:
    """Rows per split (a multiple of ``multiple``) and number of splits of a sum over ``n_rows`` rows."""
    splits = max(1, min(cc.config.splits, _cdiv(n_rows, multiple)))
    chunk = _cdiv(_cdiv(n_rows, splits), multiple) * multiple
    return chunk, _cdiv(n_rows, chunk)


def _tmm_parts(A: Any, D: Any, dtype: np.dtype) -> Any:
    """Per-split partial sums of ``A.T @ D``: shape (splits, k * m) for A (n, k), D (n, m)."""
    k, tile = _tiled(dtype)
    chunk, splits = _row_splits(A.shape[0], tile)
    part = nc._empty((splits, A.shape[1] * D.shape[1]), dtype)
    k.wgrad[(_cdiv(A.shape[1], tile), _cdiv(D.shape[1], tile), splits), (tile, tile)](
        A, D, D, D, dtype.type(0), chunk, part)
    return part


# ---------------------------------------------------------------------------------------------------------
# fixed-order sums of partials, split column sums
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _sum_parts_kernel(dtype: str, two: bool) -> Any:
    """``out_a[r, c] (| out_b[r, c - Ca]) = sum_p part[p, r * (Ca + Cb) + c]``, the partials in order."""
    zero = nc._math(dtype).zero

    @cuda.jit
    def sum_parts(part, out_a, out_b):  # noqa: ANN001, ANN202
        n_a = out_a.shape[1]
        n_cols = n_a + out_b.shape[1] if two else n_a
        n = out_a.shape[0] * n_cols
        for k in range(cuda.grid(1), n, cuda.gridsize(1)):
            r = k // n_cols
            c = k - r * n_cols
            s = zero
            for p in range(part.shape[0]):
                s += part[p, k]
            if c < n_a:
                out_a[r, c] = s
            else:
                out_b[r, c - n_a] = s

    return sum_parts


def _sum_parts(part: Any, n_rows: int, n_cols: int, dtype: np.dtype, split_at: int = 0) -> Any:
    """The (n_rows, n_cols) sums of ``part``; with ``split_at``, the columns before and from it apart."""
    block = cc.config.checked_block()
    if not split_at:
        out = nc._empty((n_rows, n_cols), dtype)
        nc._launch_1d(_sum_parts_kernel(dtype.str, False), out.size, block, part, out, out)
        return out
    a, b = nc._empty((n_rows, split_at), dtype), nc._empty((n_rows, n_cols - split_at), dtype)
    nc._launch_1d(_sum_parts_kernel(dtype.str, True), n_rows * n_cols, block, part, a, b)
    return a, b


@functools.lru_cache(maxsize=None)
def _colsum_kernel(dtype: str, factor: int) -> Any:
    """Partial column sums over splits of rows, ``part[s, k] = sum_{b in split s} E[b, k] * u_k(b)``.

    ``factor`` -1: ``u = 1``; otherwise a product unit's factor kind and ``u = u(x[b, k // n_out]) - 1``
    (``x - 1`` for the NMU, ``sign(x) - 1`` for the iNALU sign term), the derivative of ``f`` by ``v(W)``.
    """
    one, zero = nc._math(dtype).one, nc._math(dtype).zero
    sign = _sign(dtype)

    @cuda.jit
    def colsum(E, x, n_out, chunk, part):  # noqa: ANN001, ANN202
        n_rows, n_cols = E.shape
        for item in range(cuda.grid(1), part.shape[0] * n_cols, cuda.gridsize(1)):
            s = item // n_cols
            k = item - s * n_cols
            i = k // n_out
            acc = zero
            for b in range(s * chunk, min((s + 1) * chunk, n_rows)):
                e = E[b, k]
                if factor == _NMU_FACTOR:
                    e *= x[b, i] - one
                elif factor == _SIGN_FACTOR:
                    e *= sign(x[b, i]) - one
                acc += e
            part[s, k] = acc

    return colsum


def _colsum_parts(E: Any, dtype: np.dtype, x: Any = None, n_out: int = 1, factor: int = -1) -> Any:
    """Per-split partial column sums of ``E`` (B, K), shape (splits, K) (see :func:`_colsum_kernel`)."""
    chunk, splits = _row_splits(E.shape[0], 1)
    part = nc._empty((splits, E.shape[1]), dtype)
    nc._launch_1d(_colsum_kernel(dtype.str, factor), part.size, cc.config.checked_block(), E,
               E if x is None else x, n_out, chunk, part)
    return part


def _vector(part: Any, dtype: np.dtype) -> Any:
    """The fixed-order sums of per-split partials (splits, n) as a vector (n,)."""
    return _sum_parts(part, 1, part.shape[1], dtype)[0]


# ---------------------------------------------------------------------------------------------------------
# products over the inputs: NMU and the iNALU sign term
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _product_kernels(factor: int, dtype: str) -> Any:
    """``prod_i f[b, i, o]`` and the scaled leave-one-out products, for ``f = u(x) v(W) + 1 - v(W)``."""
    one, zero = nc._math(dtype).one, nc._math(dtype).zero
    sign = _sign(dtype)

    @cuda.jit(device=True)
    def fac(v, w):  # noqa: ANN001, ANN202
        if factor == _NMU_FACTOR:
            return w * v + (one - w)
        w = abs(w)
        return sign(v) * w + (one - w)

    @cuda.jit
    def product(x, W, y):  # noqa: ANN001, ANN202
        n_in = x.shape[1]
        n_out = y.shape[1]
        for k in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            b = k // n_out
            o = k - b * n_out
            p = one
            for i in range(n_in):
                p *= fac(x[b, i], W[i, o])
            y[b, o] = p

    @cuda.jit
    def loo(x, W, scale, C):  # noqa: ANN001, ANN202
        # C[b, i * O + o] = scale[b, o] * (prod_{k < i} f[b, k, o] * prod_{k > i} f[b, k, o])
        n_in = x.shape[1]
        n_out = scale.shape[1]
        for k in range(cuda.grid(1), scale.size, cuda.gridsize(1)):
            b = k // n_out
            o = k - b * n_out
            s = one
            for i in range(n_in - 1, -1, -1):
                C[b, i * n_out + o] = s
                s *= fac(x[b, i], W[i, o])
            p = one
            d = scale[b, o]
            for i in range(n_in):
                C[b, i * n_out + o] = d * (p * C[b, i * n_out + o])
                p *= fac(x[b, i], W[i, o])

    @cuda.jit
    def nmu_dx(C, W, dx):  # noqa: ANN001, ANN202
        # dx[b, i] = sum_o C[b, i * O + o] * W[i, o]
        n_in = dx.shape[1]
        n_out = W.shape[1]
        for k in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
            b = k // n_in
            i = k - b * n_in
            acc = zero
            for o in range(n_out):
                acc += C[b, i * n_out + o] * W[i, o]
            dx[b, i] = acc

    return product, loo, nmu_dx


def _product(factor: int, x: Any, W: Any, dtype: np.dtype) -> Any:
    y = nc._empty((x.shape[0], W.shape[1]), dtype)
    nc._launch_1d(_product_kernels(factor, dtype.str)[0], y.size, cc.config.checked_block(), x, W, y)
    return y


def _loo(factor: int, x: Any, W: Any, scale: Any, dtype: np.dtype) -> Any:
    """``C`` (B, I * O): ``scale[b, o]`` times the leave-one-out product of input ``i`` at ``i * O + o``."""
    C = nc._empty((x.shape[0], x.shape[1] * W.shape[1]), dtype)
    nc._launch_1d(_product_kernels(factor, dtype.str)[1], scale.size, cc.config.checked_block(), x, W, scale, C)
    return C


# ---------------------------------------------------------------------------------------------------------
# NAU
# ---------------------------------------------------------------------------------------------------------


def nau_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NAU, ``y = x @ W``; see :func:`nalu_np.reference.nau_forward`.

    Parameters
    ----------
    params : dict
        ``W``, GPU array of shape (I, O).
    x : GPU array, shape (B, I)

    Returns
    -------
    y : array of ``xp``, shape (B, O)
    cache : dict
    """
    dtype = cc.require_device(nc.name, x, params)
    return _matmul(x, params["W"], dtype), {"x": x}


def nau_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NAU: ``dW = x.T @ delta``, ``dx = delta @ W.T``.

    Returns
    -------
    dx : array of ``xp``, shape (B, I)
    grads : dict
        ``W``, shape (I, O); bitwise reproducible for fixed launch settings.
    """
    x = cache["x"]
    dtype = cc.require_device(nc.name, x, params, dy)
    W = params["W"]
    dW = _sum_parts(_tmm_parts(x, dy, dtype), *W.shape, dtype)
    return _matmul_t(dy, W, dtype), {"W": dW}


# ---------------------------------------------------------------------------------------------------------
# NMU
# ---------------------------------------------------------------------------------------------------------


def nmu_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NMU, ``y[b, o] = prod_i (W[i, o] x[b, i] + 1 - W[i, o])``.

    See :func:`nalu_np.reference.nmu_forward`.  One thread per ``(b, o)``; the cache holds ``x`` only (the
    factors are recomputed in backward).

    Returns
    -------
    y : array of ``xp``, shape (B, O)
    cache : dict
    """
    dtype = cc.require_device(nc.name, x, params)
    return _product(_NMU_FACTOR, x, params["W"], dtype), {"x": x}


def nmu_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NMU.

    Returns
    -------
    dx : array of ``xp``, shape (B, I)
    grads : dict
        ``W``, shape (I, O); bitwise reproducible for fixed launch settings.

    Notes
    -----
    ``c[b, i, o] = delta[b, o] * prod_{k != i} f[b, k, o]`` (prefix times suffix products, a scratch of shape
    (B, I * O)); ``dx[b, i] = sum_o c * W[i, o]`` and ``dW[i, o] = sum_b c * (x[b, i] - 1)``.
    """
    x = cache["x"]
    dtype = cc.require_device(nc.name, x, params, dy)
    W = params["W"]
    C = _loo(_NMU_FACTOR, x, W, dy, dtype)
    dx = nc._empty(tuple(x.shape), dtype)
    nc._launch_1d(_product_kernels(_NMU_FACTOR, dtype.str)[2], dx.size, cc.config.checked_block(), C, W, dx)
    dW = _sum_parts(_colsum_parts(C, dtype, x, W.shape[1], _NMU_FACTOR), *W.shape, dtype)
    return dx, {"W": dW}


# ---------------------------------------------------------------------------------------------------------
# iNALU
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _inalu_kernels(dtype: str) -> Any:
    f = nc._math(dtype)
    one, zero = f.one, f.zero
    exp_, sigmoid, sign = f.exp, f.sigmoid, _sign(dtype)

    @cuda.jit
    def log_in(x, eps, l):  # noqa: ANN001, ANN202
        # l = log(max(|x|, eps))
        n_in = x.shape[1]
        for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            b = k // n_in
            i = k - b * n_in
            l[b, i] = math.log(max(abs(x[b, i]), eps))

    @cuda.jit
    def output(a, z, s, g, omega, y):  # noqa: ANN001, ANN202
        # y = G a + (1 - G) m s, G = sigma(g), m = exp(min(z, omega))
        n_out = y.shape[1]
        for k in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            b = k // n_out
            o = k - b * n_out
            G = sigmoid(g[o])
            m = exp_(min(z[b, o], omega))
            y[b, o] = G * a[b, o] + (one - G) * m * s[b, o]

    @cuda.jit
    def grads(dy, a, z, s, g, omega, da, dz, cm, gt):  # noqa: ANN001, ANN202
        # da = delta G, dz = delta (1 - G) s m [z < omega], cm = delta (1 - G) m, gt = delta (a - m s)
        n_out = dy.shape[1]
        for k in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
            b = k // n_out
            o = k - b * n_out
            G = sigmoid(g[o])
            zk = z[b, o]
            m = exp_(min(zk, omega))
            d = dy[b, o]
            dms = d * (one - G)
            da[b, o] = d * G
            dz[b, o] = dms * s[b, o] * m * (one if zk < omega else zero)
            cm[b, o] = dms * m
            gt[b, o] = d * (a[b, o] - m * s[b, o])

    @cuda.jit
    def dx_kernel(x, ra, rm, eps, dx):  # noqa: ANN001, ANN202
        # dx = ra + rm * [|x| > eps] sign(x) / |x|
        n_in = x.shape[1]
        for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            b = k // n_in
            i = k - b * n_in
            v = x[b, i]
            dl = zero
            if v > eps:
                dl = one / v
            elif v < -eps:
                dl = -one / -v
            dx[b, i] = ra[b, i] + rm[b, i] * dl

    @cuda.jit
    def finish(pa, pm, ps, Wm, ta, sa, tm, sm, gwa, gma, gwm, gmm):  # noqa: ANN001, ANN202
        # dW_a = sum pa, dW_m = sum pm + sign(W_m) sum ps, then the chain rule through tanh(W_hat) sigma(M_hat)
        n_out = Wm.shape[1]
        for k in range(cuda.grid(1), Wm.size, cuda.gridsize(1)):
            i = k // n_out
            j = k - i * n_out
            s_a = zero
            for p in range(pa.shape[0]):
                s_a += pa[p, k]
            s_m = zero
            for p in range(pm.shape[0]):
                s_m += pm[p, k]
            s_s = zero
            for p in range(ps.shape[0]):
                s_s += ps[p, k]
            dwm = s_m + sign(Wm[i, j]) * s_s
            t = ta[i, j]
            s = sa[i, j]
            gwa[i, j] = s_a * (one - t * t) * s
            gma[i, j] = s_a * t * s * (one - s)
            t = tm[i, j]
            s = sm[i, j]
            gwm[i, j] = dwm * (one - t * t) * s
            gmm[i, j] = dwm * t * s * (one - s)

    @cuda.jit
    def gate_finish(part, g, dg):  # noqa: ANN001, ANN202
        # dg = (sum_b gt) G (1 - G)
        for o in range(cuda.grid(1), dg.size, cuda.gridsize(1)):
            acc = zero
            for p in range(part.shape[0]):
                acc += part[p, o]
            G = sigmoid(g[o])
            dg[o] = acc * G * (one - G)

    return log_in, output, grads, dx_kernel, finish, gate_finish


def inalu_forward(params: Params, x: Any, eps: float = 1e-7, omega: float = 20.0) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the iNALU; see :func:`nalu_np.reference.inalu_forward`.

    Parameters
    ----------
    params : dict
        ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul`` (I, O) and ``g`` (O,), GPU arrays.
    x : GPU array, shape (B, I)
    eps, omega : float

    Returns
    -------
    y : array of ``xp``, shape (B, O)
    cache : dict

    Notes
    -----
    ``y = G * (x @ W_a) + (1 - G) * exp(min(log(max(|x|, eps)) @ W_m, omega)) * s``, ``G = sigma(g)``, with the
    sign term ``s[b, o] = prod_i (sign(x[b, i]) |W_m[i, o]| + 1 - |W_m[i, o]|)``.
    """
    dtype = cc.require_device(nc.name, x, params)
    log_in, output, *_ = _inalu_kernels(dtype.str)
    block = cc.config.checked_block()
    Wa, ta, sa = nc._nac_weight(params["W_hat_add"], params["M_hat_add"], dtype)
    Wm, tm, sm = nc._nac_weight(params["W_hat_mul"], params["M_hat_mul"], dtype)
    l = nc._empty(tuple(x.shape), dtype)
    nc._launch_1d(log_in, x.size, block, x, dtype.type(eps), l)
    a = _matmul(x, Wa, dtype)
    z = _matmul(l, Wm, dtype)
    s = _product(_SIGN_FACTOR, x, Wm, dtype)
    y = nc._empty(tuple(a.shape), dtype)
    nc._launch_1d(output, y.size, block, a, z, s, params["g"], dtype.type(omega), y)
    return y, {"x": x, "l": l, "a": a, "z": z, "s": s, "Wa": Wa, "ta": ta, "sa": sa, "Wm": Wm, "tm": tm, "sm": sm}


def inalu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7,
                   omega: float = 20.0) -> tuple[Any, Params]:
    """Backward pass of the iNALU; see :func:`nalu_np.reference.inalu_backward` for the formulas.

    Returns
    -------
    dx : array of ``xp``, shape (B, I)
    grads : dict
        Same keys as ``params``; bitwise reproducible for fixed launch settings.
    """
    x = cache["x"]
    dtype = cc.require_device(nc.name, x, params, dy)
    _, _, grads_k, dx_k, finish, gate_finish = _inalu_kernels(dtype.str)
    block = cc.config.checked_block()
    Wa, Wm = cache["Wa"], cache["Wm"]
    da, dz, cm, gt = (nc._empty(tuple(dy.shape), dtype) for _ in range(4))
    nc._launch_1d(grads_k, dy.size, block, dy, cache["a"], cache["z"], cache["s"], params["g"], dtype.type(omega),
               da, dz, cm, gt)
    ps = _colsum_parts(_loo(_SIGN_FACTOR, x, Wm, cm, dtype), dtype, x, Wm.shape[1], _SIGN_FACTOR)
    pa, pm = _tmm_parts(x, da, dtype), _tmm_parts(cache["l"], dz, dtype)
    out = {key: nc._empty(tuple(Wa.shape), dtype) for key in ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul")}
    nc._launch_1d(finish, Wa.size, block, pa, pm, ps, Wm, cache["ta"], cache["sa"], cache["tm"], cache["sm"],
               out["W_hat_add"], out["M_hat_add"], out["W_hat_mul"], out["M_hat_mul"])
    out["g"] = nc._empty((Wa.shape[1],), dtype)
    nc._launch_1d(gate_finish, Wa.shape[1], block, _colsum_parts(gt, dtype), params["g"], out["g"])
    dx = nc._empty(tuple(x.shape), dtype)
    nc._launch_1d(dx_k, x.size, block, x, _matmul_t(da, Wa, dtype), _matmul_t(dz, Wm, dtype), dtype.type(eps), dx)
    return dx, {key: out[key] for key in params}


# ---------------------------------------------------------------------------------------------------------
# NPU and RealNPU: one product [log r; k] @ [W_r | W_i] of shape (2B, I) @ (I, 2O)
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _npu_kernels(dtype: str, imaginary: bool) -> Any:
    """Kernels of the NPU (``imaginary``: with ``W_i``) or the RealNPU.

    The stacked input ``L = [log r; k]`` (2B, I) times ``Wc = [W_r | W_i]`` (I, 2O) (RealNPU: ``W_r``) holds
    ``log r @ W_r``, ``log r @ W_i`` in its first B rows and ``k @ W_r``, ``k @ W_i`` in its last B rows.
    Backward stacks ``D = [[dA, dphi], [dphi, -dA]]`` (RealNPU: ``[dA; dphi]``) so that
    ``L.T @ D = [dW_r | dW_i]`` and ``D @ Wc.T = [d log r; dk]``.
    """
    f = nc._math(dtype)
    T, one, zero = f.T, f.one, f.zero
    exp_, sign = f.exp, _sign(dtype)
    pi = T(math.pi)

    @cuda.jit(device=True)
    def gated(v, gi, eps):  # noqa: ANN001, ANN202
        # |x| + eps and r = g (|x| + eps) + 1 - g
        ax = abs(v) + eps
        return ax, gi * ax + (one - gi)

    @cuda.jit
    def stack_inputs(x, g, eps, L):  # noqa: ANN001, ANN202
        n_batch, n_in = x.shape
        for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            b = k // n_in
            i = k - b * n_in
            v = x[b, i]
            _, r = gated(v, g[i], eps)
            L[b, i] = math.log(r)
            L[n_batch + b, i] = g[i] * (pi if v < zero else zero)

    @cuda.jit
    def stack_weights(W_r, W_i, Wc):  # noqa: ANN001, ANN202
        n_out = W_r.shape[1]
        for k in range(cuda.grid(1), W_r.size, cuda.gridsize(1)):
            i = k // n_out
            o = k - i * n_out
            Wc[i, o] = W_r[i, o]
            Wc[i, n_out + o] = W_i[i, o]

    @cuda.jit
    def output(Q, y, E, phi):  # noqa: ANN001, ANN202
        # A = log r @ W_r - k @ W_i, phi = k @ W_r + log r @ W_i, y = exp(A) cos(phi)
        n_batch, n_out = y.shape
        for k in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            b = k // n_out
            o = k - b * n_out
            A = Q[b, o]
            p = Q[n_batch + b, o]
            if imaginary:
                A -= Q[n_batch + b, n_out + o]
                p += Q[b, n_out + o]
            e = exp_(A)
            E[b, o] = e
            phi[b, o] = p
            y[b, o] = e * math.cos(p)

    @cuda.jit
    def grads(dy, y, E, phi, D):  # noqa: ANN001, ANN202
        # dA = delta y, dphi = -delta E sin(phi), stacked as described above
        n_batch, n_out = dy.shape
        for k in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
            b = k // n_out
            o = k - b * n_out
            d = dy[b, o]
            dA = d * y[b, o]
            dphi = -d * E[b, o] * math.sin(phi[b, o])
            D[b, o] = dA
            D[n_batch + b, o] = dphi
            if imaginary:
                D[b, n_out + o] = dphi
                D[n_batch + b, n_out + o] = -dA

    @cuda.jit
    def dx_kernel(x, g, eps, R, dx, gt):  # noqa: ANN001, ANN202
        # dr = d log r / r, dx = dr g sign(x), gt = dr (|x| + eps - 1) + dk pi [x < 0] (summed over b for dg)
        n_batch, n_in = x.shape
        for k in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            b = k // n_in
            i = k - b * n_in
            v = x[b, i]
            gi = g[i]
            ax, r = gated(v, gi, eps)
            dr = R[b, i] / r
            dx[b, i] = dr * gi * sign(v)
            gt[b, i] = dr * (ax - one) + R[n_batch + b, i] * (pi if v < zero else zero)

    return stack_inputs, stack_weights, output, grads, dx_kernel


def _npu_forward(W_r: Any, W_i: Any, g: Any, x: Any, eps: float, dtype: np.dtype) -> tuple[Any, dict[str, Any]]:
    """Shared forward pass of NPU and RealNPU (``W_i is None``)."""
    stack_inputs, stack_weights, output, _, _ = _npu_kernels(dtype.str, W_i is not None)
    block = cc.config.checked_block()
    n_batch, n_in = x.shape
    n_out = W_r.shape[1]
    L = nc._empty((2 * n_batch, n_in), dtype)
    nc._launch_1d(stack_inputs, x.size, block, x, g, dtype.type(eps), L)
    Wc = W_r
    if W_i is not None:
        Wc = nc._empty((n_in, 2 * n_out), dtype)
        nc._launch_1d(stack_weights, W_r.size, block, W_r, W_i, Wc)
    y, E, phi = (nc._empty((n_batch, n_out), dtype) for _ in range(3))
    nc._launch_1d(output, y.size, block, _matmul(L, Wc, dtype), y, E, phi)
    return y, {"x": x, "L": L, "Wc": Wc, "y": y, "E": E, "phi": phi}


def _npu_backward(W_i: Any, g: Any, cache: dict[str, Any], dy: Any, eps: float,
                  dtype: np.dtype) -> tuple[Any, dict[str, Any]]:
    """Shared backward pass of NPU and RealNPU; grads ``W_r``, ``g`` and, unless ``W_i is None``, ``W_i``."""
    _, _, _, grads_k, dx_k = _npu_kernels(dtype.str, W_i is not None)
    block = cc.config.checked_block()
    x, L, Wc = cache["x"], cache["L"], cache["Wc"]
    n_batch, n_in = x.shape
    n_out = dy.shape[1]
    D = nc._empty((2 * n_batch, Wc.shape[1]), dtype)
    nc._launch_1d(grads_k, dy.size, block, dy, cache["y"], cache["E"], cache["phi"], D)
    parts = _tmm_parts(L, D, dtype)
    grads: dict[str, Any] = {}
    if W_i is None:
        grads["W_r"] = _sum_parts(parts, n_in, n_out, dtype)
    else:
        grads["W_r"], grads["W_i"] = _sum_parts(parts, n_in, 2 * n_out, dtype, split_at=n_out)
    dx, gt = nc._empty((n_batch, n_in), dtype), nc._empty((n_batch, n_in), dtype)
    nc._launch_1d(dx_k, x.size, block, x, g, dtype.type(eps), _matmul_t(D, Wc, dtype), dx, gt)
    grads["g"] = _vector(_colsum_parts(gt, dtype), dtype)
    return dx, grads


def npu_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NPU; see :func:`nalu_np.reference.npu_forward`.

    Parameters
    ----------
    params : dict
        ``W_r``, ``W_i`` (I, O) and the relevance gate ``g`` (I,), GPU arrays.
    x : GPU array, shape (B, I)
    eps : float

    Returns
    -------
    y : array of ``xp``, shape (B, O)
    cache : dict

    Notes
    -----
    ``r = g * (|x| + eps) + 1 - g``, ``k = pi * g * [x < 0]``,
    ``y = exp(log(r) @ W_r - k @ W_i) * cos(log(r) @ W_i + k @ W_r)``.
    """
    dtype = cc.require_device(nc.name, x, params)
    return _npu_forward(params["W_r"], params["W_i"], params["g"], x, eps, dtype)


def npu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the NPU; see :func:`nalu_np.reference.npu_backward` for the formulas.

    Returns
    -------
    dx : array of ``xp``, shape (B, I)
    grads : dict
        ``W_r``, ``W_i`` (I, O) and ``g`` (I,); bitwise reproducible for fixed launch settings.
    """
    dtype = cc.require_device(nc.name, cache["x"], params, dy)
    dx, grads = _npu_backward(params["W_i"], params["g"], cache, dy, eps, dtype)
    return dx, {k: grads[k] for k in params}


def realnpu_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the RealNPU, ``y = exp(log(r) @ W_r) * cos(k @ W_r)``; see
    :func:`nalu_np.reference.realnpu_forward`.

    Parameters
    ----------
    params : dict
        ``W_r`` (I, O) and ``g`` (I,), GPU arrays.
    x : GPU array, shape (B, I)
    eps : float

    Returns
    -------
    y : array of ``xp``, shape (B, O)
    cache : dict
    """
    dtype = cc.require_device(nc.name, x, params)
    return _npu_forward(params["W_r"], None, params["g"], x, eps, dtype)


def realnpu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the RealNPU; see :func:`nalu_np.reference.realnpu_backward`.

    Returns
    -------
    dx : array of ``xp``, shape (B, I)
    grads : dict
        ``W_r`` (I, O) and ``g`` (I,).
    """
    dtype = cc.require_device(nc.name, cache["x"], params, dy)
    dx, grads = _npu_backward(None, params["g"], cache, dy, eps, dtype)
    return dx, {k: grads[k] for k in params}


# last: importing the backend module first runs its re-export of this module's (by now defined) functions
from . import numba_cuda as nc  # noqa: E402
