"""NAU on the ``numba-cuda`` backend: ``x @ W`` forward, ``dy @ W.T`` and the split-K sums of ``x.T @ dy``
backward, all with the NAC's tiled kernels (:mod:`._linalg`)."""

from __future__ import annotations

from typing import Any

from ..cuda_common import Params
from ._common import check
from ._linalg import matmul, matmul_t, sum_parts, tmm_parts

__all__ = ["nau_forward", "nau_backward"]


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
        ``x``; ``dW`` is formed from split-K partial sums in backward.
    """
    dtype = check(x, params)
    return matmul(x, params["W"], dtype), {"x": x}


def nau_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NAU: ``dW = x.T @ delta``, ``dx = delta @ W.T``.

    Returns
    -------
    dx : array of ``xp``, shape (B, I)
    grads : dict
        ``W``, shape (I, O); bitwise reproducible for fixed launch settings.
    """
    x = cache["x"]
    dtype = check(x, params, dy)
    W = params["W"]
    dW = sum_parts(tmm_parts(x, dy, dtype), *W.shape, dtype)
    return matmul_t(dy, W, dtype), {"W": dW}
