"""NAC (``y = x W``) and NACMul (``y = exp(log(|x| + eps) W)``), ``W = tanh(W_hat) sigma(M_hat)``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import Params, exp, log_input, log_input_grad, nac_weight, nac_weight_backward

__all__ = ["nac_forward", "nac_backward", "nacmul_forward", "nacmul_backward"]


def nac_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the additive NAC.

    Parameters
    ----------
    params : dict
        ``W_hat``, ``M_hat`` of shape (I, O).
    x : ndarray, shape (B, I)

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``W = tanh(W_hat) * sigma(M_hat)``, ``y = x @ W``.
    """
    W, t, s = nac_weight(params["W_hat"], params["M_hat"])
    return x @ W, {"x": x, "W": W, "t": t, "s": s}


def nac_backward(params: Params, cache: dict[str, Any], dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the additive NAC.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W_hat``, ``M_hat``, shape (I, O).

    Notes
    -----
    ``dW = x.T @ delta``, ``dx = delta @ W.T``, then :func:`nac_weight_backward`.
    """
    dW = cache["x"].T @ dy
    dW_hat, dM_hat = nac_weight_backward(dW, cache["t"], cache["s"])
    return dy @ cache["W"].T, {"W_hat": dW_hat, "M_hat": dM_hat}


# ---------------------------------------------------------------------------------------------------------
# NACMul: y = exp(log(|x| + eps) W)
# ---------------------------------------------------------------------------------------------------------


def nacmul_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the log-space (multiplicative) NAC.

    Parameters
    ----------
    params : dict
        ``W_hat``, ``M_hat`` of shape (I, O).
    x : ndarray, shape (B, I)
    eps : float
        Keeps ``log`` finite at ``x = 0``.

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``l = log(|x| + eps)``, ``y = exp(l @ W)``; ``y`` is ``inf`` where ``l @ W`` overflows.
    """
    W, t, s = nac_weight(params["W_hat"], params["M_hat"])
    y = exp(log_input(x, eps) @ W)
    return y, {"x": x, "W": W, "t": t, "s": s, "y": y}


def nacmul_backward(
    params: Params, cache: dict[str, Any], dy: np.ndarray, eps: float = 1e-7
) -> tuple[np.ndarray, Params]:
    """Backward pass of the log-space NAC.

    Notes
    -----
    ``dz = delta * y``, ``dW = l.T @ dz``, ``dx = (dz @ W.T) * sign(x) / (|x| + eps)``; the slope of
    ``log(|x| + eps)`` at ``x = 0`` is taken as 0, between its one-sided values ``-1/eps`` and ``1/eps``.
    """
    x = cache["x"]
    dz = dy * cache["y"]
    dW_hat, dM_hat = nac_weight_backward(log_input(x, eps).T @ dz, cache["t"], cache["s"])
    dx = (dz @ cache["W"].T) * log_input_grad(x, eps)
    return dx, {"W_hat": dW_hat, "M_hat": dM_hat}
