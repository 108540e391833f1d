"""NMU on the ``cupy`` backend, and the products over the inputs that the iNALU's sign term shares with it
(the kernels of ``nmu.cu``, templated on the kind of factor ``f = u(x) v(W) + 1 - v(W)``).

One thread per ``(row, output)`` forms the product over the inputs; backward writes the scaled leave-one-out
products (an exclusive suffix pass, then an exclusive prefix pass; never ``y / f``, which is ``0 / 0`` when a
factor is 0) to a scratch ``C`` of shape (I, B, O), whose sums over the batch and the outputs are batched
matrix products (cuBLAS).  No atomics: the gradients are bitwise reproducible run to run with fixed launch
settings.
"""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from ..cuda_common import NMU_FACTOR, SIGN_FACTOR, Params
from ._common import check, contiguous, kernel, launch

__all__ = ["FILE", "kernel_names", "product", "loo", "batch_sum", "nmu_forward", "nmu_backward"]

#: the CUDA C++ of the product units (after ``common.cuh``)
FILE = "nmu.cu"


def kernel_names(c: str) -> list[str]:
    """Name expressions of every kernel of ``nmu.cu`` for the C type ``c``."""
    return [f"{k}<{c}, {f}>" for k in ("product", "loo", "factor_grad_t") for f in (NMU_FACTOR, SIGN_FACTOR)]


def _run(dtype: np.dtype, expression: str, n: int, *args: Any) -> None:
    launch(kernel(FILE, kernel_names, dtype.str, expression), n, *args)


def product(factor: int, x: Any, W: Any, dtype: np.dtype) -> Any:
    """``y[b, o] = prod_i f(x[b, i], W[i, o])`` (B, O) for the factor kind ``factor``."""
    y = cupy.empty((x.shape[0], W.shape[1]), dtype)
    _run(dtype, "product<{c}, %d>" % factor, y.size, x, W, y, np.int64(y.size), np.int32(x.shape[1]),
         np.int32(W.shape[1]))
    return y


def loo(factor: int, x: Any, W: Any, scale: Any, dtype: np.dtype) -> tuple[Any, Any]:
    """``C`` (I, B, O), ``scale`` times the leave-one-out products, and ``U = u(x).T - 1`` (I, B).

    ``C[i, b, o] = scale[b, o] * prod_{k != i} f(x[b, k], W[k, o])``; ``U`` is the derivative of the factor by
    ``v(W)``, so that :func:`batch_sum` of the two is the weight gradient through ``v(W)``.
    """
    n_batch, n_in = x.shape
    C = cupy.empty((n_in, n_batch, W.shape[1]), dtype)
    _run(dtype, "loo<{c}, %d>" % factor, scale.size, x, W, scale, C, np.int64(scale.size), np.int32(n_in),
         np.int32(W.shape[1]))
    U = cupy.empty((n_in, n_batch), dtype)
    _run(dtype, "factor_grad_t<{c}, %d>" % factor, x.size, x, U, np.int64(x.size), np.int32(n_in))
    return C, U


def batch_sum(C: Any, U: Any) -> Any:
    """``S[i, o] = sum_b U[i, b] C[i, b, o]`` as I batched products (1, B) @ (B, O)."""
    return cupy.matmul(U[:, None, :], C).reshape(C.shape[0], C.shape[2])


def nmu_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NMU, ``y[b, o] = prod_i (W[i, o] x[b, i] + 1 - W[i, o])``.

    See :func:`nalu_np.reference.nmu_forward`.  One thread per ``(b, o)``; the cache holds ``x`` only.

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict
        ``x`` (the factors are recomputed in backward).
    """
    dtype = check(x, params)
    x = contiguous(x)
    return product(NMU_FACTOR, x, contiguous(params["W"]), dtype), {"x": x}


def nmu_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NMU.

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).

    Notes
    -----
    ``c[b, i, o] = delta[b, o] * prod_{k != i} f[b, k, o]`` (prefix times suffix products, a scratch of shape
    (I, B, O)); ``dx[b, i] = sum_o c * W[i, o]`` and ``dW[i, o] = sum_b c * (x[b, i] - 1)``, both batched
    matrix products.
    """
    x = cache["x"]
    dtype = check(x, params, dy)
    W = contiguous(params["W"])
    C, U = loo(NMU_FACTOR, x, W, contiguous(dy), dtype)
    dx = cupy.ascontiguousarray(cupy.matmul(C, W[:, :, None])[:, :, 0].T)
    return dx, {"W": batch_sum(C, U)}
