"""The machinery that NAC, NACMul and NALU share on the ``cupy`` backend: one forward and one backward pass for
the three units (the unit code a compile-time constant of the kernels of ``nac_family.cu``), and the kernel of
``W = tanh(W_hat) * sigma(M_hat)`` that the iNALU uses as well.  The public kernels are in :mod:`.nac` and
:mod:`.nalu`.

Two paths, chosen by the layer size (:func:`~nalu_np.kernels.cuda_common.use_row_path`):

* per-row path, for layers with ``in_features * out_features <= config.row_path_max`` (the arithmetic tasks'
  (B, 2, 1)): templated on the layer size, one thread owns whole rows in a grid-stride loop.  Forward reads
  ``x`` once and writes ``y`` once; backward reads ``x`` and ``dy`` once, recomputes the three paths, writes
  ``dx`` once and reduces the weight-gradient sums per block (warp shuffles, then shared memory) into one
  partial per block, which a second kernel adds in a fixed order before the chain rule through
  ``W = tanh(W_hat) sigma(M_hat)``.  Nothing batch-sized is cached.
* general path: the matrix products go to cuBLAS (``cupy.matmul``; the additive path and the gate share one
  product ``x @ [W_a | G]``), everything elementwise is one fused kernel per pass (log input; gate, ``exp``
  and output; path gradients; ``dx`` combination).
"""

from __future__ import annotations

import functools
from typing import Any

import cupy
import numpy as np

from ..cuda_common import NAC, NACMUL, NALU, Params, nac_cache, nac_names
from ._common import block, blocks, check, compiled, contiguous, ctype, kernel, launch

__all__ = ["FILE", "ROW_SIZES_FOR_CHECK", "general_names", "row_names", "nac_weight", "forward", "backward"]

#: the CUDA C++ of the family (after ``common.cuh``)
FILE = "nac_family.cu"

#: layer sizes of the per-row kernels in a compile check (``nvcc``) of every template instance
ROW_SIZES_FOR_CHECK = ((1, 1), (2, 1), (2, 2), (4, 2))


def general_names(c: str) -> list[str]:
    """Name expressions of the kernels of one C type that do not depend on the unit's size."""
    names = [f"weight<{c}>", f"log_abs<{c}>", f"nalu_epilogue<{c}>", f"nalu_grads<{c}>", f"nacmul_grads<{c}>",
             f"dx_combine<{c}, true>", f"dx_combine<{c}, false>", f"exp_inplace<{c}>"]
    names += [f"finish<{c}, {u}, {str(sep).lower()}>" for u, sep in ((0, False), (1, False), (2, False), (2, True))]
    return names


def row_names(c: str, unit: int, n_in: int, n_out: int) -> list[str]:
    """Name expressions of the fused per-row kernels of one unit and layer size."""
    return [f"row_forward<{c}, {unit}, {n_in}, {n_out}>", f"row_backward<{c}, {unit}, {n_in}, {n_out}>"]


def _run(dtype: np.dtype, expression: str, n: int, *args: Any) -> None:
    launch(kernel(FILE, general_names, dtype.str, expression), n, *args)


@functools.lru_cache(maxsize=None)
def _row_kernels(dtype: str, unit: int, n_in: int, n_out: int) -> tuple[Any, Any]:
    names = tuple(row_names(ctype(dtype), unit, n_in, n_out))
    module = compiled(FILE, names)
    return module.get_function(names[0]), module.get_function(names[1])


def nac_weight(W_hat: Any, M_hat: Any) -> tuple[Any, Any, Any]:
    """``W = tanh(W_hat) * sigma(M_hat)`` and the factors of its gradient ``t = tanh(W_hat)``, ``s = sigma(M_hat)``.

    Parameters
    ----------
    W_hat, M_hat : cupy.ndarray, shape (I, O)

    Returns
    -------
    W, t, s : cupy.ndarray, shape (I, O), C-contiguous
    """
    W_hat, M_hat = contiguous(W_hat), contiguous(M_hat)
    W, t, s = (cupy.empty_like(W_hat) for _ in range(3))
    _run(W_hat.dtype, "weight<{c}>", W.size, W_hat, M_hat, W, t, s, np.int64(W.size))
    return W, t, s


def forward(unit: int, params: Params, x: Any, eps: float) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the unit ``unit`` (``NAC``, ``NACMUL`` or ``NALU``); ``y`` (B, O) and the cache."""
    dtype = check(x, params)
    cache = nac_cache(unit, params, contiguous(x), nac_weight)
    x, Wa, Wm = cache["x"], cache["Wa"], cache["Wm"]
    G = contiguous(params["G"]) if unit == NALU else Wa  # placeholder where the unit has no gate
    n_batch, n_in = x.shape
    n_out = Wa.shape[1]
    eps_t = dtype.type(eps)
    if cache["row"]:
        y = cupy.empty((n_batch, n_out), dtype)
        fwd, _ = _row_kernels(dtype.str, unit, n_in, n_out)
        launch(fwd, n_batch, x, Wa, Wm, G, eps_t, y, np.int64(n_batch))
        return y, cache
    if unit == NAC:
        return x @ Wa, cache
    l = cupy.empty_like(x)
    _run(dtype, "log_abs<{c}>", x.size, x, eps_t, l, np.int64(x.size))
    z = l @ Wm
    cache["l"] = l
    if unit == NACMUL:
        _run(dtype, "exp_inplace<{c}>", z.size, z, np.int64(z.size))
        cache["m"] = z
        return z, cache
    WG = cupy.concatenate([Wa, G], axis=1)  # (I, 2 O): the additive path and the gate in one product
    P = x @ WG
    y = cupy.empty((n_batch, n_out), dtype)
    _run(dtype, "nalu_epilogue<{c}>", y.size, P, z, y, np.int64(y.size), np.int32(n_out))
    cache.update(WG=WG, P=P, m=z)  # P holds [a | g], z now holds m
    return y, cache


def backward(unit: int, params: Params, cache: dict[str, Any], dy: Any, eps: float) -> tuple[Any, Params]:
    """Backward pass of the unit ``unit`` from the cache of :func:`forward`; ``dx`` (B, I) and the gradients."""
    x = cache["x"]
    dtype = check(x, params, dy)
    dy = contiguous(dy)
    n_batch, n_in = x.shape
    n_out = cache["Wa"].shape[1]
    eps_t = dtype.type(eps)
    if cache["row"]:
        G = contiguous(params["G"]) if unit == NALU else cache["Wa"]
        _, bwd = _row_kernels(dtype.str, unit, n_in, n_out)
        n_blocks = blocks(n_batch)
        k = n_in * n_out
        n_sums = 3 * k if unit == NALU else k  # see row_backward: additive, multiplicative, gate sums
        part = cupy.empty((n_blocks, n_sums), dtype)
        dx = cupy.empty_like(x)
        bwd((n_blocks,), (block(),), (x, dy, cache["Wa"], cache["Wm"], G, eps_t, dx, part, np.int64(n_batch)))
        flat = part.ravel()  # sums of entry (i, j) of block p at p * n_sums + offset + i * O + j
        sums = {"a": (flat, n_out), "m": (flat[k if unit == NALU else 0:], n_out)}
        if unit == NALU:
            sums["g"] = (flat[2 * k:], n_out)
        parts, stride = n_blocks, n_sums
    elif unit == NAC:
        dx = dy @ cache["Wa"].T
        sums = {"a": (x.T @ dy, n_out)}
        parts, stride = 1, 0
    elif unit == NACMUL:
        dz = cupy.empty_like(dy)
        _run(dtype, "nacmul_grads<{c}>", dz.size, dy, cache["m"], dz, np.int64(dz.size))
        dx = cupy.empty_like(x)
        r_log = dz @ cache["Wm"].T
        _run(dtype, "dx_combine<{c}, false>", x.size, r_log, r_log, x, eps_t, dx, np.int64(x.size))
        sums = {"m": (cache["l"].T @ dz, n_out)}
        parts, stride = 1, 0
    else:
        D = cupy.empty((n_batch, 2 * n_out), dtype)  # [da | dh]
        dz = cupy.empty_like(dy)
        _run(dtype, "nalu_grads<{c}>", dy.size, dy, cache["P"], cache["m"], D, dz, np.int64(dy.size),
             np.int32(n_out))
        r = D @ cache["WG"].T  # da @ W_a.T + dh @ G.T
        r_log = dz @ cache["Wm"].T
        dx = cupy.empty_like(x)
        _run(dtype, "dx_combine<{c}, true>", x.size, r, r_log, x, eps_t, dx, np.int64(x.size))
        dWG = x.T @ D  # (I, 2 O): [dW_a | dG]
        sums = {"a": (dWG, 2 * n_out), "m": (cache["l"].T @ dz, n_out), "g": (dWG.ravel()[n_out:], 2 * n_out)}
        parts, stride = 1, 0
    return dx, _finish(unit, params, cache, sums, parts, stride)


def _finish(unit: int, params: Params, cache: dict[str, Any], sums: dict[str, tuple[Any, int]], parts: int,
            stride: int) -> Params:
    """Weight gradients from their sums (``sums[c] = (array, row stride)`` for the paths c in a, m, g)."""
    (wa, ma), (wm, mm) = nac_names(unit, params)
    separate = wm != wa
    Wa = cache["Wa"]
    n_in, n_out = Wa.shape
    out = {key: cupy.empty((n_in, n_out), Wa.dtype) for key in params}
    first = next(iter(sums.values()))
    Sa, lda = sums.get("a", first)
    Sm, ldm = sums.get("m", first)
    Sg, ldg = sums.get("g", first)
    gwm, gmm = (out[wm], out[mm]) if separate else (out[wa], out[ma])
    _run(Wa.dtype, "finish<{c}, %d, %s>" % (unit, "true" if separate else "false"), Wa.size, np.int32(parts),
         np.int64(stride), Sa, np.int32(lda), Sm, np.int32(ldm), Sg, np.int32(ldg), cache["ta"], cache["sa"],
         cache["tm"], cache["sm"], out[wa], out[ma], gwm, gmm, out.get("G", out[wa]), np.int64(Wa.size),
         np.int32(n_out))
    return out
