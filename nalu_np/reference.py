"""The NumPy reference: the truth every other backend is tested against.

Every unit is one pure function pair::

    y, cache = <unit>_forward(params, x, **hyper)
    dx, grads = <unit>_backward(params, cache, dy, **hyper)

with ``x`` of shape ``(batch, in_features)``, ``y`` and ``dy`` of shape ``(batch, out_features)``,
``params`` a dict of arrays (weight matrices of shape ``(in_features, out_features)``) and ``grads`` a dict
with the same keys.  The cache is whatever the forward pass keeps for the backward pass; callers treat it as
opaque.  Kernel packages (``nalu_np.kernels.<backend>``) export the same names with the same signatures.
Re-exported here: the building blocks the kernels are made of (:mod:`nalu_np.blocks`: the sigmoid, the NAC
weight, the log-space path, the NMU's product), the regularizers, projections and schedule the units train
with (:mod:`nalu_np.regularizers`), and the kernels of the study's baselines (:mod:`nalu_np.baselines`) and of
its variants of the NAC, NAU and NMU (:mod:`nalu_np.variants`).

Conventions of the math (DESIGN section 4): ``sigma`` is the logistic function, ``*`` is elementwise,
``@`` is the matrix product and ``delta = dL/dy``.  The derivative of ``|x|`` at ``x = 0`` is taken as 0
(``np.sign(0) == 0``), which lies between the one-sided slopes of the kink.

``exp`` in the multiplicative path may overflow to ``inf``; that is a real result of the unit (the product
of large numbers is large), not an error, so no floating-point warning is raised for it.  Non-finite inputs
propagate as IEEE arithmetic says.

The kernels of the units run their matrix products on the calling thread when every weight is small (with
threadpoolctl installed; :mod:`nalu_np._blas`): a threaded BLAS leaves its workers spinning after such products,
which slowed down a Numba kernel called next several times over.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._blas import on_caller
from .baselines import (dense_backward, dense_forward, relu6_backward, relu6_forward, relu_backward,  # re-exported
                        relu_forward)
from .blocks import (ieee, leave_one_out_products, log_input, log_input_grad, log_path,  # the public ones re-exported
                     log_path_backward, nac_weight, nac_weight_backward, nmu_product, nmu_product_backward,
                     quiet_exp, quiet_prod, sigmoid)
from .regularizers import clip_projection, l1_regularizer, linear_schedule, nau_regularizer, nmu_regularizer
from .variants import (clippednacmul_backward, clippednacmul_forward, gatednaunmu_backward,  # re-exported
                       gatednaunmu_forward, sigmoidnacmul_backward, sigmoidnacmul_forward)

__all__ = [
    "sigmoid", "nac_weight", "nac_weight_backward", "log_input", "log_input_grad", "log_path", "log_path_backward",
    "leave_one_out_products", "nmu_product", "nmu_product_backward",
    "nac_forward", "nac_backward", "nacmul_forward", "nacmul_backward", "nalu_forward", "nalu_backward",
    "gnalu_forward", "gnalu_backward", "LN_PHI", "nau_regularizer", "nmu_regularizer", "l1_regularizer", "clip_projection", "linear_schedule",
    "nau_forward", "nau_backward", "nmu_forward", "nmu_backward", "inalu_forward", "inalu_backward",
    "npu_forward", "npu_backward", "realnpu_forward", "realnpu_backward",
    "dense_forward", "dense_backward", "relu_forward", "relu_backward", "relu6_forward", "relu6_backward",
    "sigmoidnacmul_forward", "sigmoidnacmul_backward", "clippednacmul_forward", "clippednacmul_backward",
    "gatednaunmu_forward", "gatednaunmu_backward",
]

name = "numpy"
xp = np
array_type = np.ndarray

Params = dict[str, np.ndarray]


def _nalu_paths(params: Params) -> tuple[tuple[str, str], tuple[str, str]]:
    """Parameter names of the additive and multiplicative NAC of a NALU (shared or separate weights)."""
    if "W_hat" in params:
        return ("W_hat", "M_hat"), ("W_hat", "M_hat")
    return ("W_hat_add", "M_hat_add"), ("W_hat_mul", "M_hat_mul")


# ---------------------------------------------------------------------------------------------------------
# NAC: y = x W
# ---------------------------------------------------------------------------------------------------------


@ieee
@on_caller
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


@ieee
@on_caller
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


@ieee
@on_caller
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
    y, l = log_path(x, W, eps)
    return y, {"x": x, "l": l, "W": W, "t": t, "s": s, "y": y}


@ieee
@on_caller
def nacmul_backward(
    params: Params, cache: dict[str, Any], dy: np.ndarray, eps: float = 1e-7
) -> tuple[np.ndarray, Params]:
    """Backward pass of the log-space NAC.

    Notes
    -----
    :func:`nalu_np.blocks.log_path_backward` (``dz = delta * y``, ``dW = l.T @ dz``,
    ``dx = (dz @ W.T) * sign(x) / (|x| + eps)``, slope 0 of ``log(|x| + eps)`` at ``x = 0``), then
    :func:`nac_weight_backward`.
    """
    dx, dW = log_path_backward(cache["x"], cache["l"], cache["y"], cache["W"], dy, eps)
    dW_hat, dM_hat = nac_weight_backward(dW, cache["t"], cache["s"])
    return dx, {"W_hat": dW_hat, "M_hat": dM_hat}


# ---------------------------------------------------------------------------------------------------------
# NALU: y = g a + (1 - g) m
# ---------------------------------------------------------------------------------------------------------


@ieee
@on_caller
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
    m = quiet_exp(l @ Wm)
    g = sigmoid(x @ params["G"])
    with np.errstate(invalid="ignore"):  # (1 - g) * inf with g == 1 is NaN: IEEE's answer, returned as is
        y = g * a + (1.0 - g) * m
    cache = {"x": x, "l": l, "a": a, "m": m, "g": g, "Wa": Wa, "ta": ta, "sa": sa, "Wm": Wm, "tm": tm, "sm": sm}
    return y, cache


@ieee
@on_caller
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


# ---------------------------------------------------------------------------------------------------------
# G-NALU: the NALU in the golden-ratio base
# ---------------------------------------------------------------------------------------------------------

#: ``ln(phi)``, ``phi = (1 + sqrt(5)) / 2``: ``tanh`` and ``sigma`` in base ``phi`` are ``tanh(ln(phi) z)``
#: and ``sigma(ln(phi) z)``
LN_PHI = math.log((1.0 + math.sqrt(5.0)) / 2.0)


def _golden(params: Params) -> Params:
    """The G-NALU's parameters as the NALU's: each scaled by :data:`LN_PHI`."""
    return {k: v * v.dtype.type(LN_PHI) for k, v in params.items()}


def gnalu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the G-NALU (Rana et al. 2019, IEEE document 8995315; as the Primer runs it:
    ``--nalu-gate golden-ratio --nalu-mul golden-ratio --nac-weight golden-ratio``), shared weights.

    Parameters
    ----------
    params : dict
        ``W_hat``, ``M_hat``, ``G``, each of shape (I, O).
    x : ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    With ``tanh_phi(z) = (phi^(2z) - 1) / (phi^(2z) + 1) = tanh(c z)`` and ``sigma_phi(z) = 1 / (1 + phi^-z) =
    sigma(c z)``, ``c = ln(phi)`` (stable_nalu/functional/golden_ratio_base.py of bmistry4/nalm-benchmark):
    ``W = tanh_phi(W_hat) sigma_phi(M_hat)``, ``g = sigma_phi(x @ G)``, ``a = x @ W``, and
    ``m = phi^((log(|x| + eps) @ W) / ln(phi)) = exp(log(|x| + eps) @ W)``, ``y = g a + (1 - g) m``: the NALU
    (:func:`nalu_forward`) on the parameters ``c W_hat``, ``c M_hat``, ``c G``.
    """
    return nalu_forward(_golden(params), x, eps)


def gnalu_backward(params: Params, cache: dict[str, Any], dy: np.ndarray, eps: float = 1e-7
                   ) -> tuple[np.ndarray, Params]:
    """Backward pass of the G-NALU: :func:`nalu_backward` at the scaled parameters, each gradient times
    ``c = ln(phi)`` (the chain rule through ``p -> c p``).

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W_hat``, ``M_hat``, ``G``.
    """
    dx, grads = nalu_backward(_golden(params), cache, dy, eps)
    return dx, {k: g * g.dtype.type(LN_PHI) for k, g in grads.items()}


# ---------------------------------------------------------------------------------------------------------
# NAU: y = x W
# ---------------------------------------------------------------------------------------------------------


@ieee
@on_caller
def nau_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the neural addition unit (Madsen & Johansen 2020).

    Parameters
    ----------
    params : dict
        ``W`` of shape (I, O), kept in ``[-1, 1]`` by the projection ``clip_projection(-1, 1)`` after each
        optimizer step (the forward pass does not clip).
    x : ndarray, shape (B, I)

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``y = x @ W``.
    """
    return x @ params["W"], {"x": x}


@ieee
@on_caller
def nau_backward(params: Params, cache: dict[str, Any], dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the NAU.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).

    Notes
    -----
    ``dW = x.T @ delta``, ``dx = delta @ W.T``.
    """
    return dy @ params["W"].T, {"W": cache["x"].T @ dy}


# ---------------------------------------------------------------------------------------------------------
# NMU: y_j = prod_i (W_ij x_i + 1 - W_ij)
# ---------------------------------------------------------------------------------------------------------


@ieee
@on_caller
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
    y, f = nmu_product(x, params["W"])
    return y, {"x": x, "f": f}


@ieee
@on_caller
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
    dx, dW = nmu_product_backward(cache["x"], cache["f"], params["W"], dy)
    return dx, {"W": dW}


# ---------------------------------------------------------------------------------------------------------
# iNALU: y = g a + (1 - g) m s
# ---------------------------------------------------------------------------------------------------------


@ieee
@on_caller
def inalu_forward(
    params: Params, x: np.ndarray, eps: float = 1e-7, omega: float = 20.0
) -> tuple[np.ndarray, dict[str, Any]]:
    """Forward pass of the improved NALU (Schlör, Ring & Hotho 2020).

    Parameters
    ----------
    params : dict
        ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul`` of shape (I, O) and the gate ``g`` of
        shape (O,), one per output and independent of the input.
    x : ndarray, shape (B, I)
    eps : float
        Lower bound of ``|x|`` inside the log.
    omega : float
        Upper bound of the log-space sum, so that ``m <= exp(omega)`` never overflows.

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    With ``W_a = tanh(W_hat_add) * sigma(M_hat_add)`` and ``W_m = tanh(W_hat_mul) * sigma(M_hat_mul)``:
    ``a = x @ W_a``, ``l = log(max(|x|, eps))``, ``z = l @ W_m``, ``m = exp(min(z, omega))``, the sign term
    ``s[b, o] = prod_i f[b, i, o]`` with ``f[b, i, o] = sign(x[b, i]) * |W_m[i, o]| + 1 - |W_m[i, o]|``
    (in ``[-1, 1]``; ``sign(0) = 0``), the gate ``G = sigma(g)`` and ``y = G * a + (1 - G) * m * s``.
    """
    Wa, ta, sa = nac_weight(params["W_hat_add"], params["M_hat_add"])
    Wm, tm, sm = nac_weight(params["W_hat_mul"], params["M_hat_mul"])
    eps_ = x.dtype.type(eps)
    l = np.log(np.maximum(np.abs(x), eps_))
    z = l @ Wm
    m = quiet_exp(np.minimum(z, x.dtype.type(omega)))
    absWm = np.abs(Wm)
    f = np.sign(x)[:, :, None] * absWm + (1.0 - absWm)
    s = quiet_prod(f)
    G = sigmoid(params["g"])
    a = x @ Wa
    y = G * a + (1.0 - G) * m * s
    cache = {"x": x, "l": l, "z": z, "m": m, "f": f, "s": s, "G": G, "a": a,
             "Wa": Wa, "ta": ta, "sa": sa, "Wm": Wm, "tm": tm, "sm": sm}
    return y, cache


@ieee
@on_caller
def inalu_backward(
    params: Params, cache: dict[str, Any], dy: np.ndarray, eps: float = 1e-7, omega: float = 20.0
) -> tuple[np.ndarray, Params]:
    """Backward pass of the iNALU.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        Same keys as ``params``.

    Notes
    -----
    ``da = delta * G``, ``dz = delta * (1 - G) * s * m * [z < omega]`` and
    ``ds = delta * (1 - G) * m``.  With the leave-one-out products ``loo`` of the factors ``f`` (exact when a
    factor is 0) and ``c = ds[:, None, :] * loo``:

    - ``dW_a = x.T @ da``;
    - ``dW_m = l.T @ dz + sign(W_m) * sum_b c * (sign(x) - 1)``;
    - ``dg = sum_b delta * (a - m * s) * G * (1 - G)``;
    - ``dx = da @ W_a.T + (dz @ W_m.T) * [|x| > eps] * sign(x) / |x|``; the sign term is piecewise constant
      in ``x`` and contributes nothing.

    Choices at the kinks (values between the one-sided slopes): the clip ``min(z, omega)`` passes no gradient
    at ``z = omega``, ``max(|x|, eps)`` has slope 0 at ``|x| = eps``, and ``|W_m|`` has slope 0 at 0.
    """
    x, G, m, s = cache["x"], cache["G"], cache["m"], cache["s"]
    eps_ = x.dtype.type(eps)
    absx = np.abs(x)
    da = dy * G
    dms = dy * (1.0 - G)
    dz = dms * s * m * (cache["z"] < omega)
    c = (dms * m)[:, None, :] * leave_one_out_products(cache["f"])
    dWm = cache["l"].T @ dz + np.sign(cache["Wm"]) * np.einsum("bio,bi->io", c, np.sign(x) - 1.0)
    dl = np.where(absx > eps_, np.sign(x) / np.maximum(absx, eps_), x.dtype.type(0))
    dx = da @ cache["Wa"].T + (dz @ cache["Wm"].T) * dl
    grads = {"g": (dy * (cache["a"] - m * s)).sum(axis=0) * G * (1.0 - G)}
    grads["W_hat_add"], grads["M_hat_add"] = nac_weight_backward(x.T @ da, cache["ta"], cache["sa"])
    grads["W_hat_mul"], grads["M_hat_mul"] = nac_weight_backward(dWm, cache["tm"], cache["sm"])
    return dx, {k: grads[k] for k in params}


# ---------------------------------------------------------------------------------------------------------
# NPU and RealNPU: y = exp(W_r log r - W_i k) cos(W_i log r + W_r k)
# ---------------------------------------------------------------------------------------------------------



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
    E = quiet_exp(A)
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


@ieee
@on_caller
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


@ieee
@on_caller
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


@ieee
@on_caller
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


@ieee
@on_caller
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
