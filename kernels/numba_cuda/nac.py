"""NAC and NACMul on the ``numba-cuda`` backend (the family's machinery is in :mod:`._nac_family`).

Small layers take the fused per-row kernels; larger ones one tiled kernel forward (the NACMul's log input and
``exp`` fused into it) and, backward, tiled kernels for ``dx`` and for the split-K weight-gradient sums.
"""

from __future__ import annotations

from typing import Any

from ..cuda_common import NAC, NACMUL, Params
from ._nac_family import backward, forward

__all__ = ["nac_forward", "nac_backward", "nacmul_forward", "nacmul_backward"]


def nac_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NAC, ``y = x @ (tanh(W_hat) * sigma(M_hat))``; see :func:`nalu_np.reference.nac_forward`.

    General path: the tiled kernel of the additive path alone.
    """
    return forward(NAC, params, x, 0.0)


def nac_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NAC; see :func:`nalu_np.reference.nac_backward`.

    General path: the tiled ``dx`` kernel and the split-K weight-gradient kernel.
    """
    return backward(NAC, params, cache, dy, 0.0)


def nacmul_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NACMul, ``y = exp(log(|x| + eps) @ W)``; see :func:`nalu_np.reference.nacmul_forward`.

    General path: the tiled kernel with ``log(|x| + eps)`` and ``exp`` fused.
    """
    return forward(NACMUL, params, x, eps)


def nacmul_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the NACMul; see :func:`nalu_np.reference.nacmul_backward`.

    General path: the path-gradient kernel, then the tiled ``dx`` and split-K kernels.
    """
    return backward(NACMUL, params, cache, dy, eps)
