"""NAC and NACMul on the ``cupy`` backend (the family's machinery is in :mod:`._nac_family`).

The NAC's general path is one cuBLAS product forward and two backward; the NACMul's adds a fused kernel for
``log(|x| + eps)``, one for ``exp`` and two for its gradients.  Small layers take the fused per-row kernels.
"""

from __future__ import annotations

from typing import Any

from ..cuda_common import NAC, NACMUL, Params
from ._nac_family import backward, forward

__all__ = ["nac_forward", "nac_backward", "nacmul_forward", "nacmul_backward"]


def nac_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NAC, ``y = x @ (tanh(W_hat) * sigma(M_hat))``; see :func:`nalu_np.reference.nac_forward`.

    General path: one cuBLAS product ``x @ W`` after the weight kernel.
    """
    return forward(NAC, params, x, 0.0)


def nac_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NAC; see :func:`nalu_np.reference.nac_backward`.

    General path: ``dy @ W.T`` and ``x.T @ dy`` on cuBLAS, then the chain rule in one kernel.
    """
    return backward(NAC, params, cache, dy, 0.0)


def nacmul_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NACMul, ``y = exp(log(|x| + eps) @ W)``; see :func:`nalu_np.reference.nacmul_forward`.

    General path: a fused ``log(|x| + eps)``, one cuBLAS product, ``exp`` in place.
    """
    return forward(NACMUL, params, x, eps)


def nacmul_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the NACMul; see :func:`nalu_np.reference.nacmul_backward`.

    General path: two cuBLAS products between fused elementwise kernels.
    """
    return backward(NACMUL, params, cache, dy, eps)
