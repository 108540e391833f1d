"""Matrix products and sums over the batch for NAU, NMU, iNALU, NPU and RealNPU on the ``numba-cuda`` backend.

* Matrix products reuse the tiled kernels of the additive NAC (:func:`._nac_family.tiled_kernels` with
  ``unit = NAC`` computes ``A @ W``, ``D @ W.T`` and the split-K partial sums of ``A.T @ D``); weight gradients
  are those per-split partial sums added in a fixed order by :func:`sum_parts_kernel` (no atomics, bitwise
  reproducible for fixed launch settings).
* Sums over the batch (gradients of the per-output or per-input gates, and of the NMU weights through the
  leave-one-out products) are split column sums: thread ``(split, column)`` adds the rows of its split, then
  the partials are added in a fixed order.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numba import cuda

from ..cuda_common import NAC, NMU_FACTOR, SIGN_FACTOR, config
from ._common import cdiv, device_math, empty, launch_1d, row_splits
from ._nac_family import tiled_kernels

__all__ = ["matmul", "matmul_t", "tmm_parts", "sum_parts_kernel", "sum_parts", "colsum_kernel", "colsum_parts",
           "vector"]


# ---------------------------------------------------------------------------------------------------------
# matrix products with the NAC's tiled kernels
# ---------------------------------------------------------------------------------------------------------


def _tiled(dtype: np.dtype) -> tuple[Any, int]:
    """The tiled kernels of the additive NAC (plain matrix products) and their tile side."""
    tile = config.checked_tile()
    return tiled_kernels(NAC, dtype.str, tile), tile


def matmul(A: Any, W: Any, dtype: np.dtype) -> Any:
    """``A @ W``, (n, k) @ (k, m) -> (n, m)."""
    k, tile = _tiled(dtype)
    out = empty((A.shape[0], W.shape[1]), dtype)
    k.forward[(cdiv(A.shape[0], tile), cdiv(W.shape[1], tile)), (tile, tile)](
        A, W, W, W, dtype.type(0), out, out, out, out)
    return out


def matmul_t(D: Any, W: Any, dtype: np.dtype) -> Any:
    """``D @ W.T``, (n, m) @ (k, m).T -> (n, k)."""
    k, tile = _tiled(dtype)
    out = empty((D.shape[0], W.shape[0]), dtype)
    k.dx[(cdiv(D.shape[0], tile), cdiv(W.shape[0], tile)), (tile, tile)](
        D, D, D, D, W, W, W, dtype.type(0), out)
    return out


def tmm_parts(A: Any, D: Any, dtype: np.dtype) -> Any:
    """Per-split partial sums of ``A.T @ D``: shape (splits, k * m) for A (n, k), D (n, m)."""
    k, tile = _tiled(dtype)
    chunk, splits = row_splits(A.shape[0], tile)
    part = empty((splits, A.shape[1] * D.shape[1]), dtype)
    k.wgrad[(cdiv(A.shape[1], tile), cdiv(D.shape[1], tile), splits), (tile, tile)](
        A, D, D, D, dtype.type(0), chunk, part)
    return part


# ---------------------------------------------------------------------------------------------------------
# fixed-order sums of partials, split column sums
# ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def sum_parts_kernel(dtype: str, two: bool) -> Any:
    """``out_a[r, c] (| out_b[r, c - Ca]) = sum_p part[p, r * (Ca + Cb) + c]``, the partials in order."""
    zero = device_math(dtype).zero

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


def sum_parts(part: Any, n_rows: int, n_cols: int, dtype: np.dtype, split_at: int = 0) -> Any:
    """The (n_rows, n_cols) sums of ``part``; with ``split_at``, the columns before and from it apart."""
    block = config.checked_block()
    if not split_at:
        out = empty((n_rows, n_cols), dtype)
        launch_1d(sum_parts_kernel(dtype.str, False), out.size, block, part, out, out)
        return out
    a, b = empty((n_rows, split_at), dtype), empty((n_rows, n_cols - split_at), dtype)
    launch_1d(sum_parts_kernel(dtype.str, True), n_rows * n_cols, block, part, a, b)
    return a, b


@functools.lru_cache(maxsize=None)
def colsum_kernel(dtype: str, factor: int) -> Any:
    """Partial column sums over splits of rows, ``part[s, k] = sum_{b in split s} E[b, k] * u_k(b)``.

    ``factor`` -1: ``u = 1``; otherwise a product unit's factor kind and ``u = u(x[b, k // n_out]) - 1``
    (``x - 1`` for the NMU, ``sign(x) - 1`` for the iNALU sign term), the derivative of ``f`` by ``v(W)``.
    """
    f = device_math(dtype)
    one, zero, sign = f.one, f.zero, f.sign

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
                if factor == NMU_FACTOR:
                    e *= x[b, i] - one
                elif factor == SIGN_FACTOR:
                    e *= sign(x[b, i]) - one
                acc += e
            part[s, k] = acc

    return colsum


def colsum_parts(E: Any, dtype: np.dtype, x: Any = None, n_out: int = 1, factor: int = -1) -> Any:
    """Per-split partial column sums of ``E`` (B, K), shape (splits, K) (see :func:`colsum_kernel`)."""
    chunk, splits = row_splits(E.shape[0], 1)
    part = empty((splits, E.shape[1]), dtype)
    launch_1d(colsum_kernel(dtype.str, factor), part.size, config.checked_block(), E,
              E if x is None else x, n_out, chunk, part)
    return part


def vector(part: Any, dtype: np.dtype) -> Any:
    """The fixed-order sums of per-split partials (splits, n) as a vector (n,)."""
    return sum_parts(part, 1, part.shape[1], dtype)[0]
