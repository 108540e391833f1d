"""iNALU on the ``numba-cuda`` backend: its separate additive and multiplicative NACs (weights by the NAC
family's kernel), the clipped log-space path and the sign term, a product over the inputs of :mod:`.nmu`.

Matrix products and sums over the batch are those of :mod:`._linalg`; everything elementwise is one
grid-stride kernel per pass.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from numba import cuda

from ..cuda_common import SIGN_FACTOR, Params, config
from ._common import check, device_math, empty, launch_1d
from ._linalg import colsum_parts, matmul, matmul_t, tmm_parts
from ._nac_family import nac_weight
from .nmu import loo, product

__all__ = ["inalu_kernels", "inalu_forward", "inalu_backward"]


@functools.lru_cache(maxsize=None)
def inalu_kernels(dtype: str) -> Any:
    f = device_math(dtype)
    one, zero = f.one, f.zero
    exp_, sigmoid, sign = f.exp, f.sigmoid, f.sign

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
        ``x``, ``l``, ``a``, ``z`` and the sign term ``s`` (batch-sized, as on cupy), and both NAC
        weights with their gradient factors; backward's sums are split-K partials.

    Notes
    -----
    ``y = G * (x @ W_a) + (1 - G) * exp(min(log(max(|x|, eps)) @ W_m, omega)) * s``, ``G = sigma(g)``, with the
    sign term ``s[b, o] = prod_i (sign(x[b, i]) |W_m[i, o]| + 1 - |W_m[i, o]|)``.
    """
    dtype = check(x, params)
    log_in, output, *_ = inalu_kernels(dtype.str)
    block = config.checked_block()
    Wa, ta, sa = nac_weight(params["W_hat_add"], params["M_hat_add"], dtype)
    Wm, tm, sm = nac_weight(params["W_hat_mul"], params["M_hat_mul"], dtype)
    l = empty(tuple(x.shape), dtype)
    launch_1d(log_in, x.size, block, x, dtype.type(eps), l)
    a = matmul(x, Wa, dtype)
    z = matmul(l, Wm, dtype)
    s = product(SIGN_FACTOR, x, Wm, dtype)
    y = empty(tuple(a.shape), dtype)
    launch_1d(output, y.size, block, a, z, s, params["g"], dtype.type(omega), y)
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
    dtype = check(x, params, dy)
    _, _, grads_k, dx_k, finish, gate_finish = inalu_kernels(dtype.str)
    block = config.checked_block()
    Wa, Wm = cache["Wa"], cache["Wm"]
    da, dz, cm, gt = (empty(tuple(dy.shape), dtype) for _ in range(4))
    launch_1d(grads_k, dy.size, block, dy, cache["a"], cache["z"], cache["s"], params["g"], dtype.type(omega),
              da, dz, cm, gt)
    ps = colsum_parts(loo(SIGN_FACTOR, x, Wm, cm, dtype), dtype, x, Wm.shape[1], SIGN_FACTOR)
    pa, pm = tmm_parts(x, da, dtype), tmm_parts(cache["l"], dz, dtype)
    out = {key: empty(tuple(Wa.shape), dtype) for key in ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul")}
    launch_1d(finish, Wa.size, block, pa, pm, ps, Wm, cache["ta"], cache["sa"], cache["tm"], cache["sm"],
              out["W_hat_add"], out["M_hat_add"], out["W_hat_mul"], out["M_hat_mul"])
    out["g"] = empty((Wa.shape[1],), dtype)
    launch_1d(gate_finish, Wa.shape[1], block, colsum_parts(gt, dtype), params["g"], out["g"])
    dx = empty(tuple(x.shape), dtype)
    launch_1d(dx_k, x.size, block, x, matmul_t(da, Wa, dtype), matmul_t(dz, Wm, dtype), dtype.type(eps), dx)
    return dx, {key: out[key] for key in params}
