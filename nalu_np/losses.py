"""Loss functions with their gradients, for any array module (NumPy, CuPy)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["mse"]

Array = Any


def mse(y: Array, t: Array) -> tuple[Array, Array]:
    """Mean squared error over all elements, and its gradient with respect to ``y``.

    Parameters
    ----------
    y : array, shape (B, O)
        Prediction (float32 or float64).
    t : array, shape (B, O)
        Target, same shape, dtype and array type as ``y`` (no broadcasting: a ``(B,)`` target against a
        ``(B, 1)`` prediction is an error, not a ``(B, B)`` loss).

    Returns
    -------
    loss : scalar of ``y``'s dtype
        A NumPy scalar, or a 0-d device array for GPU arrays (no device-to-host copy).
    dy : array, shape (B, O), ``y``'s dtype

    Notes
    -----
    ``L = mean((y - t)**2)`` over all ``N = B * O`` elements; ``dL/dy = 2 (y - t) / N``.
    """
    if type(y) is not type(t):
        raise TypeError(f"y and t must be arrays of the same type, got {type(y).__name__} and {type(t).__name__}")
    if tuple(y.shape) != tuple(t.shape):
        raise ValueError(f"y and t must have the same shape, got {tuple(y.shape)} and {tuple(t.shape)}")
    if np.dtype(y.dtype).kind != "f" or y.dtype != t.dtype:
        raise TypeError(f"y and t must have the same float dtype, got {y.dtype} and {t.dtype}")
    if y.size == 0:
        raise ValueError("mse of empty arrays")
    d = y - t
    return (d * d).mean(), d * y.dtype.type(2.0 / y.size)
