"""NMU on the ``numba-cuda`` backend, and the products over the inputs that the iNALU's sign term shares with it
(kernels specialised to the kind of factor ``f = u(x) v(W) + 1 - v(W)``).

One thread per ``(row, output)`` forms the product over the inputs in a grid-stride loop.  The leave-one-out
products come from an exclusive suffix pass written to a scratch ``C`` of shape (B, I * O) and an exclusive
prefix pass over it, never from ``y / f`` (``0 / 0`` when a factor is 0); the weight gradient is a split
column sum of ``C`` (:mod:`._linalg`), bitwise reproducible for fixed launch settings.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numba import cuda

from ..cuda_common import NMU_FACTOR, Params, config
from ._common import check, device_math, empty, launch_1d
from ._linalg import colsum_parts, sum_parts

__all__ = ["product_kernels", "product", "loo", "nmu_forward", "nmu_backward"]


@functools.lru_cache(maxsize=None)
def product_kernels(factor: int, dtype: str) -> Any:
    """``prod_i f[b, i, o]`` and the scaled leave-one-out products, for ``f = u(x) v(W) + 1 - v(W)``."""
    f = device_math(dtype)
    one, zero, sign = f.one, f.zero, f.sign

    @cuda.jit(device=True)
    def fac(v, w):  # noqa: ANN001, ANN202
        if factor == NMU_FACTOR:
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


def product(factor: int, x: Any, W: Any, dtype: np.dtype) -> Any:
    """``y[b, o] = prod_i f(x[b, i], W[i, o])`` (B, O) for the factor kind ``factor``."""
    y = empty((x.shape[0], W.shape[1]), dtype)
    launch_1d(product_kernels(factor, dtype.str)[0], y.size, config.checked_block(), x, W, y)
    return y


def loo(factor: int, x: Any, W: Any, scale: Any, dtype: np.dtype) -> Any:
    """``C`` (B, I * O): ``scale[b, o]`` times the leave-one-out product of input ``i`` at ``i * O + o``."""
    C = empty((x.shape[0], x.shape[1] * W.shape[1]), dtype)
    launch_1d(product_kernels(factor, dtype.str)[1], scale.size, config.checked_block(), x, W, scale, C)
    return C


def nmu_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NMU, ``y[b, o] = prod_i (W[i, o] x[b, i] + 1 - W[i, o])``.

    See :func:`nalu_np.reference.nmu_forward`.  One thread per ``(b, o)``; the cache holds ``x`` only (the
    factors are recomputed in backward).

    Returns
    -------
    y : array of ``xp``, shape (B, O)
    cache : dict
        ``x`` (the factors are recomputed in backward, into a scratch of shape (B, I * O)).
    """
    dtype = check(x, params)
    return product(NMU_FACTOR, x, params["W"], dtype), {"x": x}


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
    dtype = check(x, params, dy)
    W = params["W"]
    C = loo(NMU_FACTOR, x, W, dy, dtype)
    dx = empty(tuple(x.shape), dtype)
    launch_1d(product_kernels(NMU_FACTOR, dtype.str)[2], dx.size, config.checked_block(), C, W, dx)
    dW = sum_parts(colsum_parts(C, dtype, x, W.shape[1], NMU_FACTOR), *W.shape, dtype)
    return dx, {"W": dW}
