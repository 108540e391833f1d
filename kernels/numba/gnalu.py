"""The G-NALU (the NALU in the golden-ratio base, as the Primer runs it): the NALU's kernels on its parameters
scaled by ``ln(phi)``; see :func:`nalu_np.reference.gnalu_forward`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._common import Params, check
from .nalu import nalu_backward, nalu_forward

__all__ = ["gnalu_forward", "gnalu_backward", "LN_PHI"]

#: ``ln(phi)``, ``phi = (1 + sqrt(5)) / 2``, as :data:`nalu_np.reference.LN_PHI`
LN_PHI = math.log((1.0 + math.sqrt(5.0)) / 2.0)


def _golden(params: Params) -> Params:
    """The NALU parameters ``ln(phi) p`` of the G-NALU's ``p``."""
    return {k: v * v.dtype.type(LN_PHI) for k, v in params.items()}


def gnalu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the G-NALU: ``params`` ``W_hat``, ``M_hat``, ``G`` (I, O), ``x`` (B, I); returns ``y``
    (B, O) and an opaque cache.

    Notes
    -----
    :func:`~nalu_np.kernels.numba.nalu.nalu_forward` on ``ln(phi) W_hat``, ``ln(phi) M_hat``, ``ln(phi) G``:
    ``W = tanh_phi(W_hat) sigma_phi(M_hat)``, ``g = sigma_phi(x @ G)``, ``y = g a + (1 - g) m``.
    """
    check(x, params)
    return nalu_forward(_golden(params), x, eps)


def gnalu_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Params]:
    """Backward pass of the G-NALU: the NALU's at the scaled parameters, each gradient times ``ln(phi)``;
    returns ``dx`` (B, I) and the gradients of ``W_hat``, ``M_hat``, ``G``."""
    check(dy, params)
    dx, grads = nalu_backward(_golden(params), cache, dy, eps)
    return dx, {k: g * g.dtype.type(LN_PHI) for k, g in grads.items()}
