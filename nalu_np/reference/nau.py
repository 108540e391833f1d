"""NAU (Madsen & Johansen 2020): ``y = x W``, ``W`` in ``[-1, 1]``, and its sparsity regularizer."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import Params, min_distance_regularizer

__all__ = ["nau_regularizer", "nau_forward", "nau_backward"]


def nau_regularizer(W: np.ndarray) -> tuple[Any, np.ndarray]:
    """Sparsity regularizer of the NAU (Madsen & Johansen 2020), which pushes weights to -1, 0 or 1.

    Parameters
    ----------
    W : ndarray, shape (I, O)

    Returns
    -------
    R : scalar of W's dtype
        ``mean(min(|W|, 1 - |W|))``.
    dR : ndarray, shape (I, O)
        ``dR/dW``.

    Notes
    -----
    ``dR/dW = sign(W) * sign(1/2 - |W|) / W.size``.  At the kinks the value between the one-sided slopes is
    taken: 0 at ``W = 0`` (``sign(0) = 0``) and at ``|W| = 1/2``.
    """
    return min_distance_regularizer(np.abs(W), np.sign(W))



def nau_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the neural addition unit (Madsen & Johansen 2020).

    Parameters
    ----------
    params : dict
        ``W`` of shape (I, O), kept in ``[-1, 1]`` by the projection ``clip_projection(-1, 1)`` after each
        optimizer step (the forward pass does not clip).
    x : ndarray, shape (B, I)

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``y = x @ W``.
    """
    return x @ params["W"], {"x": x}


def nau_backward(params: Params, cache: dict[str, Any], dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the NAU.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).

    Notes
    -----
    ``dW = x.T @ delta``, ``dx = delta @ W.T``.
    """
    return dy @ params["W"].T, {"W": cache["x"].T @ dy}
