"""NALU on the ``numba-cuda`` backend, shared or separate weights (the family's machinery is in
:mod:`._nac_family`).

The general path's tiled forward kernel computes the additive path, the exponent of the multiplicative path and
the gate's pre-activation in one pass over the tiles, with the gate, ``exp`` and output fused into its
epilogue.
"""

from __future__ import annotations

from typing import Any

from ..cuda_common import NALU, Params
from ._nac_family import backward, forward

__all__ = ["nalu_forward", "nalu_backward"]


def nalu_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NALU, shared or separate weights; see :func:`nalu_np.reference.nalu_forward`.

    Parameters
    ----------
    params : dict of GPU arrays, shape (I, O)
    x : GPU array, shape (B, I)
    eps : float
        Added to ``|x|`` in the log of the multiplicative path.

    Returns
    -------
    y : array of ``xp``, shape (B, O)
    cache : dict
        ``x``, both NAC weights with their gradient factors and the path; on the tiled path also
        ``a``, ``m`` and ``g`` (B, O), written by the forward kernel's epilogue.

    Notes
    -----
    ``y = g * (x @ W_a) + (1 - g) * exp(log(|x| + eps) @ W_m)``, ``g = sigma(x @ G)``.
    """
    return forward(NALU, params, x, eps)


def nalu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the NALU; see :func:`nalu_np.reference.nalu_backward`.

    Returns
    -------
    dx : array of ``xp``, shape (B, I)
    grads : dict
        Same keys as ``params``, shape (I, O); bitwise reproducible for fixed launch settings.
    """
    return backward(NALU, params, cache, dy, eps)
