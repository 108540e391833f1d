"""NAU on the ``cupy`` backend: ``x @ W`` forward, ``dy @ W.T`` and ``x.T @ dy`` backward, all cuBLAS."""

from __future__ import annotations

from typing import Any

from ..cuda_common import Params
from ._common import check, contiguous

__all__ = ["nau_forward", "nau_backward"]


def nau_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NAU, ``y = x @ W`` (cuBLAS); see :func:`nalu_np.reference.nau_forward`.

    Parameters
    ----------
    params : dict
        ``W``, cupy.ndarray of shape (I, O).
    x : cupy.ndarray, shape (B, I)

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict
        ``x``, C-contiguous.
    """
    check(x, params)
    x = contiguous(x)  # one cuBLAS layout, so the result does not depend on the input's strides
    return x @ params["W"], {"x": x}


def nau_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NAU: ``dW = x.T @ delta``, ``dx = delta @ W.T`` (cuBLAS).

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).
    """
    x = cache["x"]
    check(x, params, dy)
    dy = contiguous(dy)
    return dy @ params["W"].T, {"W": x.T @ dy}
