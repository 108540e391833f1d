"""The baseline layers of Madsen & Johansen's all-models table, NumPy reference kernels: an affine map with a
bias, then the identity (``Linear``), ``max(z, 0)`` (``ReLU``) or ``min(max(z, 0), 6)`` (``ReLU6``).

Their kernels are the ``dense``, ``relu`` and ``relu6`` entries of :mod:`nalu_np.reference` (re-exported
there).  As PyTorch's ``relu`` and ``relu6`` (``hardtanh(0, 6)``) differentiate them, the slope is 1 strictly
inside ``(lo, hi)`` and 0 at and beyond the kinks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ACTIVATIONS", "affine_forward", "affine_backward", "dense_forward", "dense_backward", "relu_forward",
           "relu_backward", "relu6_forward", "relu6_backward"]

Params = dict[str, Any]

#: activation name -> the interval ``(lo, hi)`` its output is clipped to
ACTIVATIONS = {"dense": (-np.inf, np.inf), "relu": (0.0, np.inf), "relu6": (0.0, 6.0)}


def affine_forward(params: Params, x: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, dict[str, Any]]:
    """``y = clip(x @ W + b, lo, hi)``: ``W`` (I, O), ``b`` (O,), ``x`` (B, I) -> ``y`` (B, O), and the cache
    (``x`` and the pre-activation ``z``).  NaN passes through the clip."""
    with np.errstate(all="ignore"):
        z = x @ params["W"] + params["b"]
        y = z if lo == -np.inf and hi == np.inf else np.where(np.isnan(z), z, np.clip(z, lo, hi))
    return y, {"x": x, "z": z, "lo": lo, "hi": hi}


def affine_backward(params: Params, cache: dict[str, Any], dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """``delta = dy * [lo < z < hi]``; ``dx = delta @ W.T`` (B, I), ``dW = x.T @ delta`` (I, O), ``db = sum_b
    delta`` (O,)."""
    z, lo, hi = cache["z"], cache["lo"], cache["hi"]
    with np.errstate(all="ignore"):
        delta = dy if lo == -np.inf and hi == np.inf else np.where((z > lo) & (z < hi), dy, dy.dtype.type(0))
        return delta @ params["W"].T, {"W": cache["x"].T @ delta, "b": delta.sum(axis=0)}


def dense_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of ``Linear``: ``y = x @ W + b``.

    Parameters
    ----------
    params : dict
        ``W`` (I, O) and ``b`` (O,).
    x : ndarray, shape (B, I)

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict
    """
    return affine_forward(params, x, *ACTIVATIONS["dense"])


def dense_backward(params: Params, cache: dict[str, Any], dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of ``Linear``: ``dx = dy @ W.T``, ``dW = x.T @ dy``, ``db = sum_b dy``."""
    return affine_backward(params, cache, dy)


def relu_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of ``ReLU``: ``y = max(x @ W + b, 0)`` (shapes as :func:`dense_forward`)."""
    return affine_forward(params, x, *ACTIVATIONS["relu"])


def relu_backward(params: Params, cache: dict[str, Any], dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of ``ReLU``: ``delta = dy [z > 0]``, then as :func:`dense_backward`."""
    return affine_backward(params, cache, dy)


def relu6_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of ``ReLU6``: ``y = min(max(x @ W + b, 0), 6)`` (shapes as :func:`dense_forward`)."""
    return affine_forward(params, x, *ACTIVATIONS["relu6"])


def relu6_backward(params: Params, cache: dict[str, Any], dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of ``ReLU6``: ``delta = dy [0 < z < 6]``, then as :func:`dense_backward`."""
    return affine_backward(params, cache, dy)
