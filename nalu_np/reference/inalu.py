"""iNALU (Schlör, Ring & Hotho 2020): ``y = g a + (1 - g) m s`` with a clipped log path and a sign term."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import Params, exp, leave_one_out_products, nac_weight, nac_weight_backward, prod, sigmoid

__all__ = ["inalu_forward", "inalu_backward"]


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
    m = exp(np.minimum(z, x.dtype.type(omega)))
    absWm = np.abs(Wm)
    f = np.sign(x)[:, :, None] * absWm + (1.0 - absWm)
    s = prod(f)
    G = sigmoid(params["g"])
    a = x @ Wa
    y = G * a + (1.0 - G) * m * s
    cache = {"x": x, "l": l, "z": z, "m": m, "f": f, "s": s, "G": G, "a": a,
             "Wa": Wa, "ta": ta, "sa": sa, "Wm": Wm, "tm": tm, "sm": sm}
    return y, cache


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
