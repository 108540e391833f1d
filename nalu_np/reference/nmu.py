"""NMU (Madsen & Johansen 2020): ``y_j = prod_i (W_ij x_i + 1 - W_ij)``, ``W`` in ``[0, 1]``, and its regularizer."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import Params, leave_one_out_products, min_distance_regularizer, prod

__all__ = ["nmu_regularizer", "nmu_forward", "nmu_backward"]


def nmu_regularizer(W: np.ndarray) -> tuple[Any, np.ndarray]:
    """Sparsity regularizer of the NMU (Madsen & Johansen 2020), which pushes weights to 0 or 1.

    Parameters
    ----------
    W : ndarray, shape (I, O)

    Returns
    -------
    R : scalar of W's dtype
        ``mean(min(W, 1 - W))``.
    dR : ndarray, shape (I, O)

    Notes
    -----
    ``dR/dW = sign(1/2 - W) / W.size``, 0 at the kink ``W = 1/2``.
    """
    return min_distance_regularizer(W, 1.0)



def nmu_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the neural multiplication unit (Madsen & Johansen 2020).

    Parameters
    ----------
    params : dict
        ``W`` of shape (I, O), kept in ``[0, 1]`` by the projection ``clip_projection(0, 1)`` after each
        optimizer step (the forward pass does not clip).
    x : ndarray, shape (B, I)

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``f[b, i, o] = W[i, o] * x[b, i] + 1 - W[i, o]`` and ``y[b, o] = prod_i f[b, i, o]``: input ``i`` enters
    output ``o`` when ``W = 1`` and is replaced by 1 when ``W = 0``.  The factors (B, I, O) are cached.
    """
    W = params["W"]
    f = x[:, :, None] * W + (1.0 - W)
    return prod(f), {"x": x, "f": f}


def nmu_backward(params: Params, cache: dict[str, Any], dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the NMU.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).

    Notes
    -----
    With the leave-one-out products ``loo[b, i, o] = prod_{k != i} f[b, k, o]`` (prefix times suffix
    products, exact when a factor is 0) and ``c = delta[:, None, :] * loo``:
    ``dW[i, o] = sum_b c[b, i, o] * (x[b, i] - 1)`` and ``dx[b, i] = sum_o c[b, i, o] * W[i, o]``.
    """
    x = cache["x"]
    c = dy[:, None, :] * leave_one_out_products(cache["f"])
    return np.einsum("bio,io->bi", c, params["W"]), {"W": np.einsum("bio,bi->io", c, x - 1.0)}
