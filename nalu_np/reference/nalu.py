"""NALU: ``y = g a + (1 - g) m``, shared (seed 003) or separate (seed 000) NAC weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import Params, exp, log_input, log_input_grad, nac_weight, nac_weight_backward, sigmoid

__all__ = ["nalu_forward", "nalu_backward"]


def _nalu_paths(params: Params) -> tuple[tuple[str, str], tuple[str, str]]:
    """Parameter names of the additive and multiplicative NAC of a NALU (shared or separate weights)."""
    if "W_hat" in params:
        return ("W_hat", "M_hat"), ("W_hat", "M_hat")
    return ("W_hat_add", "M_hat_add"), ("W_hat_mul", "M_hat_mul")



def nalu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the NALU, with shared or separate NAC weights.

    Parameters
    ----------
    params : dict
        Shared weights (the paper, seed 003): ``W_hat``, ``M_hat``, ``G``.  Separate weights (seed 000):
        ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul``, ``G``.  All of shape (I, O).
    x : ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``a = x @ W_a``, ``m = exp(log(|x| + eps) @ W_m)``, ``g = sigma(x @ G)``, ``y = g * a + (1 - g) * m``
    with ``W_a = W_m`` for shared weights.  No gate bias.
    """
    (wa, ma), (wm, mm) = _nalu_paths(params)
    Wa, ta, sa = nac_weight(params[wa], params[ma])
    Wm, tm, sm = (Wa, ta, sa) if wm == wa else nac_weight(params[wm], params[mm])
    l = log_input(x, eps)
    a = x @ Wa
    m = exp(l @ Wm)
    g = sigmoid(x @ params["G"])
    with np.errstate(invalid="ignore"):  # (1 - g) * inf with g == 1 is NaN: IEEE's answer, returned as is
        y = g * a + (1.0 - g) * m
    cache = {"x": x, "l": l, "a": a, "m": m, "g": g, "Wa": Wa, "ta": ta, "sa": sa, "Wm": Wm, "tm": tm, "sm": sm}
    return y, cache


def nalu_backward(
    params: Params, cache: dict[str, Any], dy: np.ndarray, eps: float = 1e-7
) -> tuple[np.ndarray, Params]:
    """Backward pass of the NALU.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        Same keys as ``params``.

    Notes
    -----
    With ``da = delta * g``, ``dz = delta * (1 - g) * m`` and the gate pre-activation gradient
    ``dh = delta * (a - m) * g * (1 - g)``:
    ``dW_a = x.T @ da``, ``dW_m = l.T @ dz``, ``dG = x.T @ dh`` and
    ``dx = da @ W_a.T + (dz @ W_m.T) * sign(x) / (|x| + eps) + dh @ G.T``.
    With shared weights ``dW = dW_a + dW_m`` flows into the one ``W_hat``, ``M_hat``.
    """
    (wa, ma), (wm, mm) = _nalu_paths(params)
    x, g, m = cache["x"], cache["g"], cache["m"]
    da = dy * g
    with np.errstate(invalid="ignore"):
        dz = dy * (1.0 - g) * m
        dh = dy * (cache["a"] - m) * g * (1.0 - g)
    dWa = x.T @ da
    dWm = cache["l"].T @ dz
    dx = da @ cache["Wa"].T + (dz @ cache["Wm"].T) * log_input_grad(x, eps) + dh @ params["G"].T
    grads = {"G": x.T @ dh}
    if wm == wa:
        grads[wa], grads[ma] = nac_weight_backward(dWa + dWm, cache["ta"], cache["sa"])
    else:
        grads[wa], grads[ma] = nac_weight_backward(dWa, cache["ta"], cache["sa"])
        grads[wm], grads[mm] = nac_weight_backward(dWm, cache["tm"], cache["sm"])
    return dx, {k: grads[k] for k in params}
