"""NPU and RealNPU (Heim, Pevný & Šmídl 2020): ``y = exp(W_r log r - W_i k) cos(W_i log r + W_r k)``,
and the L1 regularizer they train with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import Params, exp

__all__ = ["l1_regularizer", "npu_forward", "npu_backward", "realnpu_forward", "realnpu_backward"]


def l1_regularizer(W: np.ndarray) -> tuple[Any, np.ndarray]:
    """L1 penalty ``mean(|W|)`` and its gradient ``sign(W) / W.size`` (0 at the kink ``W = 0``).

    The NPU paper (Heim, Pevný & Šmídl 2020) trains with an L1 penalty on the weights.
    """
    return np.abs(W).mean(), np.sign(W) / W.size


def _npu_forward(
    W_r: np.ndarray, W_i: np.ndarray | None, g: np.ndarray, x: np.ndarray, eps: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """Shared forward pass of NPU and RealNPU (``W_i is None``: RealNPU, the terms with ``W_i`` dropped)."""
    ax = np.abs(x) + x.dtype.type(eps)
    r = g * ax + (1.0 - g)
    logr = np.log(r)
    pi_neg = np.where(x < 0, x.dtype.type(np.pi), x.dtype.type(0))
    k = g * pi_neg
    A = logr @ W_r
    phi = k @ W_r
    if W_i is not None:
        A -= k @ W_i
        phi += logr @ W_i
    E = exp(A)
    with np.errstate(invalid="ignore"):  # inf * cos(phi) with cos(phi) == 0 is NaN: IEEE's answer
        y = E * np.cos(phi)
    return y, {"x": x, "ax": ax, "r": r, "logr": logr, "pi_neg": pi_neg, "k": k, "E": E, "phi": phi, "y": y}


def _npu_backward(
    W_r: np.ndarray, W_i: np.ndarray | None, g: np.ndarray, cache: dict[str, Any], dy: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Shared backward pass of NPU and RealNPU; grads ``W_r``, ``g`` and, unless ``W_i is None``, ``W_i``."""
    x, logr, k = cache["x"], cache["logr"], cache["k"]
    with np.errstate(invalid="ignore"):
        dA = dy * cache["y"]
        dphi = -dy * cache["E"] * np.sin(cache["phi"])
    grads = {"W_r": logr.T @ dA + k.T @ dphi}
    dlogr = dA @ W_r.T
    dk = dphi @ W_r.T
    if W_i is not None:
        grads["W_i"] = logr.T @ dphi - k.T @ dA
        dlogr += dphi @ W_i.T
        dk -= dA @ W_i.T
    dr = dlogr / cache["r"]
    grads["g"] = (dr * (cache["ax"] - 1.0) + dk * cache["pi_neg"]).sum(axis=0)
    return dr * g * np.sign(x), grads


def npu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the neural power unit (Heim, Pevný & Šmídl 2020).

    Parameters
    ----------
    params : dict
        ``W_r``, ``W_i`` of shape (I, O) (real and imaginary part of the exponents) and the relevance gate
        ``g`` of shape (I,), kept in ``[0, 1]`` by the projection ``clip_projection(0, 1)`` after each optimizer
        step (the forward pass does not clip; outside ``[0, 1]`` ``r`` may be <= 0 and ``log r`` NaN).
    x : ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    The real part of ``exp(log(x) @ (W_r + i W_i))`` with the complex log ``log|x| + i pi [x < 0]``, each input
    relaxed towards 1 by its gate:
    ``r = g * (|x| + eps) + 1 - g``, ``k = pi * g * [x < 0]``,
    ``y = exp(log(r) @ W_r - k @ W_i) * cos(log(r) @ W_i + k @ W_r)``.  ``y`` is ``inf`` where the exponent
    overflows.
    """
    return _npu_forward(params["W_r"], params["W_i"], params["g"], x, eps)


def npu_backward(
    params: Params, cache: dict[str, Any], dy: np.ndarray, eps: float = 1e-7
) -> tuple[np.ndarray, Params]:
    """Backward pass of the NPU.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W_r``, ``W_i`` (I, O) and ``g`` (I,).

    Notes
    -----
    With ``A = log(r) @ W_r - k @ W_i``, ``phi = log(r) @ W_i + k @ W_r``, ``E = exp(A)``:
    ``dA = delta * y``, ``dphi = -delta * E * sin(phi)``;
    ``dW_r = log(r).T @ dA + k.T @ dphi``, ``dW_i = log(r).T @ dphi - k.T @ dA``;
    ``dr = (dA @ W_r.T + dphi @ W_i.T) / r``, ``dk = dphi @ W_r.T - dA @ W_i.T``;
    ``dx = dr * g * sign(x)``, ``dg = sum_b (dr * (|x| + eps - 1) + dk * pi * [x < 0])``.
    At ``x = 0`` the slope of ``|x|`` is taken as 0 and the jump of ``[x < 0]`` contributes nothing.
    """
    dx, grads = _npu_backward(params["W_r"], params["W_i"], params["g"], cache, dy)
    return dx, {k: grads[k] for k in params}


def realnpu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the RealNPU: the NPU with ``W_i = 0``.

    Parameters
    ----------
    params : dict
        ``W_r`` of shape (I, O) and the relevance gate ``g`` of shape (I,) (see :func:`npu_forward`).
    x : ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``r = g * (|x| + eps) + 1 - g``, ``k = pi * g * [x < 0]``, ``y = exp(log(r) @ W_r) * cos(k @ W_r)``.
    """
    return _npu_forward(params["W_r"], None, params["g"], x, eps)


def realnpu_backward(
    params: Params, cache: dict[str, Any], dy: np.ndarray, eps: float = 1e-7
) -> tuple[np.ndarray, Params]:
    """Backward pass of the RealNPU.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W_r`` (I, O) and ``g`` (I,).

    Notes
    -----
    :func:`npu_backward` with ``W_i = 0``: ``dW_r = log(r).T @ dA + k.T @ dphi`` with ``dA = delta * y``,
    ``dphi = -delta * exp(A) * sin(phi)``; ``dr = (dA @ W_r.T) / r``, ``dk = dphi @ W_r.T``.
    """
    dx, grads = _npu_backward(params["W_r"], None, params["g"], cache, dy)
    return dx, {k: grads[k] for k in params}
