"""Madsen & Johansen's (ICLR 2020) variants of their units in the all-models table, NumPy reference kernels: two
log-space NACs with positive weights (``SigmoidNACMul``, ``ClippedNACMul``) and the gated NAU/NMU
(``GatedNAUNMU``).

Their kernels are the ``sigmoidnacmul``, ``clippednacmul`` and ``gatednaunmu`` entries of
:mod:`nalu_np.reference` (re-exported there).  They are built from the paths the NACMul and the NMU use
(:func:`nalu_np.blocks.log_path`, :func:`nalu_np.blocks.nmu_product`), so each formula is written once.

- ``SigmoidNACMul``: the authors' ``PosNAC`` (stable_nalu/layer/pos_nac.py), ``W = sigma(W_hat)``, run in log
  space by the network's ``--nac-mul normal``: ``y = exp(log(|x| + eps) @ W)``.
- ``ClippedNACMul``: the authors' ``ReRegualizedLinearPosNAC`` (stable_nalu/layer/re_regualized_linear_pos_nac.py)
  in log space: the same path with ``W`` a parameter kept in ``[0, 1]`` by the projection after each step.
- ``GatedNAUNMU``: the authors' ``ReRegualizedLinearNALU`` with ``--nalu-two-nac --nalu-mul mnac``
  (stable_nalu/layer/_abstract_nalu.py): ``y = g a + (1 - g) m`` with the NAU's ``a = x @ W_add``, the NMU's
  ``m`` and the gate ``g = sigma(x @ G)`` (no bias).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .blocks import ieee, log_path, log_path_backward, nmu_product, nmu_product_backward, sigmoid

__all__ = ["sigmoidnacmul_forward", "sigmoidnacmul_backward", "clippednacmul_forward", "clippednacmul_backward",
           "gatednaunmu_forward", "gatednaunmu_backward"]

Params = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------------------
# the log-space NACs with positive weights: y = exp(log(|x| + eps) W), W in (0, 1) or [0, 1]
# ---------------------------------------------------------------------------------------------------------


@ieee
def sigmoidnacmul_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of ``SigmoidNACMul``, the authors' ``PosNAC`` in log space.

    Parameters
    ----------
    params : dict
        ``W_hat`` of shape (I, O).
    x : ndarray, shape (B, I)
    eps : float
        Keeps ``log`` finite at ``x = 0``.

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``W = sigma(W_hat)`` (in ``(0, 1)``), ``y = exp(log(|x| + eps) @ W)``; ``inf`` where the exponent overflows.
    """
    W = sigmoid(params["W_hat"])
    y, l = log_path(x, W, eps)
    return y, {"x": x, "l": l, "W": W, "y": y}


@ieee
def sigmoidnacmul_backward(params: Params, cache: dict[str, Any], dy: np.ndarray, eps: float = 1e-7
                           ) -> tuple[np.ndarray, Params]:
    """Backward pass of ``SigmoidNACMul``.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W_hat``, shape (I, O).

    Notes
    -----
    :func:`nalu_np.blocks.log_path_backward` gives ``dx`` and ``dW = l.T @ (delta * y)``; then
    ``dW_hat = dW * W * (1 - W)``.
    """
    W = cache["W"]
    dx, dW = log_path_backward(cache["x"], cache["l"], cache["y"], W, dy, eps)
    return dx, {"W_hat": dW * W * (1.0 - W)}


@ieee
def clippednacmul_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of ``ClippedNACMul``, the authors' ``ReRegualizedLinearPosNAC`` in log space.

    Parameters
    ----------
    params : dict
        ``W`` of shape (I, O), kept in ``[0, 1]`` by the projection ``clip_projection(0, 1)`` after each
        optimizer step (the forward pass does not clip).
    x : ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``y = exp(log(|x| + eps) @ W)``; ``inf`` where the exponent overflows.
    """
    y, l = log_path(x, params["W"], eps)
    return y, {"x": x, "l": l, "y": y}


@ieee
def clippednacmul_backward(params: Params, cache: dict[str, Any], dy: np.ndarray, eps: float = 1e-7
                           ) -> tuple[np.ndarray, Params]:
    """Backward pass of ``ClippedNACMul``.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).

    Notes
    -----
    :func:`nalu_np.blocks.log_path_backward`: ``dz = delta * y``, ``dW = l.T @ dz``,
    ``dx = (dz @ W.T) * sign(x) / (|x| + eps)`` (slope 0 of ``log(|x| + eps)`` at ``x = 0``).
    """
    dx, dW = log_path_backward(cache["x"], cache["l"], cache["y"], params["W"], dy, eps)
    return dx, {"W": dW}


# ---------------------------------------------------------------------------------------------------------
# the gated NAU/NMU: y = g a + (1 - g) m
# ---------------------------------------------------------------------------------------------------------


@ieee
def gatednaunmu_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of ``GatedNAUNMU``: a sigmoid gate between a NAU and an NMU.

    Parameters
    ----------
    params : dict
        ``W_add`` (the NAU's, kept in ``[-1, 1]``), ``W_mul`` (the NMU's, kept in ``[0, 1]``; both by the
        projection after each optimizer step) and the gate's ``G``, all of shape (I, O).
    x : ndarray, shape (B, I)

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``a = x @ W_add``, ``m[b, o] = prod_i (W_mul[i, o] x[b, i] + 1 - W_mul[i, o])``, ``g = sigma(x @ G)``,
    ``y = g * a + (1 - g) * m``.  No gate bias.  ``(1 - g) * inf`` with ``g == 1`` is NaN, IEEE's answer.
    """
    a = x @ params["W_add"]
    m, f = nmu_product(x, params["W_mul"])
    g = sigmoid(x @ params["G"])
    return g * a + (1.0 - g) * m, {"x": x, "a": a, "m": m, "f": f, "g": g}


@ieee
def gatednaunmu_backward(params: Params, cache: dict[str, Any], dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of ``GatedNAUNMU``.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W_add``, ``W_mul``, ``G``, shape (I, O).

    Notes
    -----
    With ``da = delta * g``, ``dm = delta * (1 - g)`` and the gate pre-activation gradient
    ``dh = delta * (a - m) * g * (1 - g)``: ``dW_add = x.T @ da``, ``dG = x.T @ dh``, the NMU's
    ``(dx_m, dW_mul)`` of ``dm`` (:func:`nalu_np.blocks.nmu_product_backward`, leave-one-out products without
    division) and ``dx = da @ W_add.T + dx_m + dh @ G.T``.
    """
    x, g, m = cache["x"], cache["g"], cache["m"]
    da = dy * g
    dm = dy * (1.0 - g)
    dh = dy * (cache["a"] - m) * g * (1.0 - g)
    dx_m, dW_mul = nmu_product_backward(x, cache["f"], params["W_mul"], dm)
    dx = da @ params["W_add"].T + dx_m + dh @ params["G"].T
    return dx, {"W_add": x.T @ da, "W_mul": dW_mul, "G": x.T @ dh}
