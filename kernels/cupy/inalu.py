"""iNALU on the ``cupy`` backend: its separate additive and multiplicative NACs (weights by the NAC family's
kernel), the clipped log-space path and the sign term, a product over the inputs of :mod:`.nmu`.

Matrix products go to cuBLAS; everything elementwise is one fused kernel of ``inalu.cu`` per pass; the sum
over the batch of the gate gradient is ``cupy.sum`` (a block reduction).
"""

from __future__ import annotations

from typing import Any

import cupy
import numpy as np

from ..cuda_common import SIGN_FACTOR, Params
from ._common import check, contiguous, kernel, launch
from ._nac_family import nac_weight
from .nmu import batch_sum, loo, product

__all__ = ["FILE", "kernel_names", "inalu_forward", "inalu_backward"]

#: the CUDA C++ of the iNALU (after ``common.cuh``)
FILE = "inalu.cu"


def kernel_names(c: str) -> list[str]:
    """Name expressions of every kernel of ``inalu.cu`` for the C type ``c``."""
    return [f"{k}<{c}>" for k in ("inalu_log", "inalu_output", "inalu_grads", "inalu_dx", "inalu_finish",
                                  "inalu_gate")]


def _run(dtype: np.dtype, expression: str, n: int, *args: Any) -> None:
    launch(kernel(FILE, kernel_names, dtype.str, expression), n, *args)


def inalu_forward(params: Params, x: Any, eps: float = 1e-7, omega: float = 20.0) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the iNALU; see :func:`nalu_np.reference.inalu_forward`.

    Parameters
    ----------
    params : dict
        ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul`` (I, O) and ``g`` (O,), cupy.ndarray.
    x : cupy.ndarray, shape (B, I)
    eps, omega : float

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict
        ``x``, ``l = log(max(|x|, eps))``, ``a = x @ W_a``, ``z = l @ W_m`` and the sign term ``s`` (batch-
        sized), and both NAC weights with their gradient factors.

    Notes
    -----
    ``y = G * (x @ W_a) + (1 - G) * exp(min(log(max(|x|, eps)) @ W_m, omega)) * s``, ``G = sigma(g)``, with the
    sign term ``s[b, o] = prod_i (sign(x[b, i]) |W_m[i, o]| + 1 - |W_m[i, o]|)``.
    """
    dtype = check(x, params)
    x = contiguous(x)
    Wa, ta, sa = nac_weight(params["W_hat_add"], params["M_hat_add"])
    Wm, tm, sm = nac_weight(params["W_hat_mul"], params["M_hat_mul"])
    l = cupy.empty_like(x)
    _run(dtype, "inalu_log<{c}>", x.size, x, dtype.type(eps), l, np.int64(x.size))
    a = x @ Wa
    z = l @ Wm
    s = product(SIGN_FACTOR, x, Wm, dtype)
    y = cupy.empty_like(a)
    _run(dtype, "inalu_output<{c}>", y.size, a, z, s, contiguous(params["g"]), dtype.type(omega), y,
         np.int64(y.size), np.int32(y.shape[1]))
    return y, {"x": x, "l": l, "a": a, "z": z, "s": s, "Wa": Wa, "ta": ta, "sa": sa, "Wm": Wm, "tm": tm, "sm": sm}


def inalu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7,
                   omega: float = 20.0) -> tuple[Any, Params]:
    """Backward pass of the iNALU; see :func:`nalu_np.reference.inalu_backward` for the formulas.

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        Same keys as ``params``.
    """
    x = cache["x"]
    dtype = check(x, params, dy)
    dy = contiguous(dy)
    g = contiguous(params["g"])
    Wa, Wm = cache["Wa"], cache["Wm"]
    n = np.int64(dy.size)
    da, dz, cm, gt = (cupy.empty_like(dy) for _ in range(4))
    _run(dtype, "inalu_grads<{c}>", dy.size, dy, cache["a"], cache["z"], cache["s"], g, dtype.type(omega),
         da, dz, cm, gt, n, np.int32(dy.shape[1]))
    Ss = batch_sum(*loo(SIGN_FACTOR, x, Wm, cm, dtype))
    out = {key: cupy.empty_like(Wa) for key in ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul")}
    _run(dtype, "inalu_finish<{c}>", Wa.size, x.T @ da, cache["l"].T @ dz, Ss, Wm, cache["ta"], cache["sa"],
         cache["tm"], cache["sm"], out["W_hat_add"], out["M_hat_add"], out["W_hat_mul"], out["M_hat_mul"],
         np.int64(Wa.size))
    out["g"] = cupy.empty_like(g)
    _run(dtype, "inalu_gate<{c}>", g.size, gt.sum(axis=0), g, out["g"], np.int64(g.size))
    dx = cupy.empty_like(x)
    _run(dtype, "inalu_dx<{c}>", x.size, x, da @ Wa.T, dz @ Wm.T, dtype.type(eps), dx, np.int64(x.size))
    return dx, {key: out[key] for key in params}
