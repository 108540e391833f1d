"""The NumPy reference: the truth every other backend is tested against.

Every unit is one pure function pair::

    y, cache = <unit>_forward(params, x, **hyper)
    dx, grads = <unit>_backward(params, cache, dy, **hyper)

with ``x`` of shape ``(batch, in_features)``, ``y`` and ``dy`` of shape ``(batch, out_features)``,
``params`` a dict of arrays (weight matrices of shape ``(in_features, out_features)``) and ``grads`` a dict
with the same keys.  The cache is whatever the forward pass keeps for the backward pass; callers treat it as
opaque.  Kernel modules (``nalu_np.kernels.*``) export the same names with the same signatures.

Conventions of the math (DESIGN section 4): ``sigma`` is the logistic function, ``*`` is elementwise,
``@`` is the matrix product and ``delta = dL/dy``.  The derivative of ``|x|`` at ``x = 0`` is taken as 0
(``np.sign(0) == 0``), which lies between the one-sided slopes of the kink.

``exp`` in the multiplicative path may overflow to ``inf``; that is a real result of the unit (the product
of large numbers is large), not an error, so no floating-point warning is raised for it.  Non-finite inputs
propagate as IEEE arithmetic says.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "sigmoid",
    "nac_weight",
    "nac_weight_backward",
    "log_input",
    "nac_forward",
    "nac_backward",
    "nacmul_forward",
    "nacmul_backward",
    "nalu_forward",
    "nalu_backward",
]

name = "numpy"
xp = np
array_type = np.ndarray

Params = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------------------


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function.

    Notes
    -----
    ``sigma(z) = 1 / (1 + exp(-z))`` for ``z >= 0`` and ``exp(z) / (1 + exp(z))`` for ``z < 0``, computed from
    ``e = exp(-|z|)`` so that ``exp`` never overflows; ``sigma(-inf) = 0``, ``sigma(inf) = 1``.
    """
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def nac_weight(W_hat: np.ndarray, M_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The constrained NAC weight and the factors its gradient needs.

    Parameters
    ----------
    W_hat, M_hat : ndarray, shape (I, O)

    Returns
    -------
    W : ndarray, shape (I, O)
        ``tanh(W_hat) * sigma(M_hat)``, in ``(-1, 1)`` and biased towards -1, 0, 1.
    t, s : ndarray, shape (I, O)
        ``tanh(W_hat)`` and ``sigma(M_hat)``.
    """
    t = np.tanh(W_hat)
    s = sigmoid(M_hat)
    return t * s, t, s


def nac_weight_backward(dW: np.ndarray, t: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chain rule through ``W = tanh(W_hat) * sigma(M_hat)``.

    Notes
    -----
    ``dW_hat = dW * (1 - t**2) * s`` and ``dM_hat = dW * t * s * (1 - s)``.
    """
    return dW * (1.0 - t * t) * s, dW * t * s * (1.0 - s)


def log_input(x: np.ndarray, eps: float) -> np.ndarray:
    """``log(|x| + eps)``, the input of the multiplicative path, shape of ``x``."""
    return np.log(np.abs(x) + x.dtype.type(eps))


def _log_input_grad(x: np.ndarray, eps: float) -> np.ndarray:
    """``d log(|x| + eps) / dx = sign(x) / (|x| + eps)``; 0 at the kink ``x = 0``."""
    return np.sign(x) / (np.abs(x) + x.dtype.type(eps))


def _exp(z: np.ndarray) -> np.ndarray:
    """``exp`` whose overflow to ``inf`` is a result, not a warning."""
    with np.errstate(over="ignore"):
        return np.exp(z)


def _nalu_paths(params: Params) -> tuple[tuple[str, str], tuple[str, str]]:
    """Parameter names of the additive and multiplicative NAC of a NALU (shared or separate weights)."""
    if "W_hat" in params:
        return ("W_hat", "M_hat"), ("W_hat", "M_hat")
    return ("W_hat_add", "M_hat_add"), ("W_hat_mul", "M_hat_mul")


# ---------------------------------------------------------------------------------------------------------
# NAC: y = x W
# ---------------------------------------------------------------------------------------------------------


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
    y = _exp(log_input(x, eps) @ W)
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
    dx = (dz @ cache["W"].T) * _log_input_grad(x, eps)
    return dx, {"W_hat": dW_hat, "M_hat": dM_hat}


# ---------------------------------------------------------------------------------------------------------
# NALU: y = g a + (1 - g) m
# ---------------------------------------------------------------------------------------------------------


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
    m = _exp(l @ Wm)
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
    dx = da @ cache["Wa"].T + (dz @ cache["Wm"].T) * _log_input_grad(x, eps) + dh @ params["G"].T
    grads = {"G": x.T @ dh}
    if wm == wa:
        grads[wa], grads[ma] = nac_weight_backward(dWa + dWm, cache["ta"], cache["sa"])
    else:
        grads[wa], grads[ma] = nac_weight_backward(dWa, cache["ta"], cache["sa"])
        grads[wm], grads[mm] = nac_weight_backward(dWm, cache["tm"], cache["sm"])
    return dx, {k: grads[k] for k in params}
