"""Building blocks of the reference units: the stable sigmoid, the NAC weight and the log path, products
without division, the sparsity regularizers' shape, projections and the regularizer schedule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Params", "sigmoid", "nac_weight", "nac_weight_backward", "log_input", "log_input_grad", "exp",
           "leave_one_out_products", "prod", "min_distance_regularizer", "clip_projection", "linear_schedule"]

Params = dict[str, np.ndarray]


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


def log_input_grad(x: np.ndarray, eps: float) -> np.ndarray:
    """``d log(|x| + eps) / dx = sign(x) / (|x| + eps)``; 0 at the kink ``x = 0``."""
    return np.sign(x) / (np.abs(x) + x.dtype.type(eps))


def exp(z: np.ndarray) -> np.ndarray:
    """``exp`` whose overflow to ``inf`` is a result, not a warning."""
    with np.errstate(over="ignore"):
        return np.exp(z)



def leave_one_out_products(f: np.ndarray) -> np.ndarray:
    """``loo[b, i, o] = prod_{k != i} f[b, k, o]`` from prefix and suffix products, shape of ``f`` (B, I, O).

    Notes
    -----
    ``loo = P * S`` with the exclusive prefix product ``P[:, i] = prod_{k < i} f[:, k]`` and the exclusive
    suffix product ``S[:, i] = prod_{k > i} f[:, k]``.  No division by ``f``, so the result is exact when a
    factor is 0 (where ``y / f`` would be ``0 / 0``).  Overflow to ``inf`` is a result, not a warning.
    """
    ones = np.ones_like(f[:, :1])
    with np.errstate(over="ignore"):
        prefix = np.concatenate([ones, np.cumprod(f[:, :-1], axis=1)], axis=1)
        suffix = np.concatenate([np.cumprod(f[:, :0:-1], axis=1)[:, ::-1], ones], axis=1)
        return prefix * suffix


def prod(f: np.ndarray) -> np.ndarray:
    """``prod_i f[:, i, :]``, shape (B, O); overflow to ``inf`` is a result, not a warning."""
    with np.errstate(over="ignore"):
        return np.prod(f, axis=1)


def min_distance_regularizer(d: np.ndarray, dd: Any) -> tuple[Any, np.ndarray]:
    """``mean(min(d, 1 - d))`` and its gradient, given ``d`` and its derivative ``dd`` with respect to W.

    The slope of ``min(d, 1 - d)`` is ``+1`` below ``d = 1/2`` and ``-1`` above; at ``d = 1/2`` it is taken
    as 0, between the one-sided slopes.
    """
    slope = np.sign(0.5 - d)
    return np.minimum(d, 1.0 - d).mean(), slope * dd / d.size



def clip_projection(lo: float, hi: float) -> Any:
    """The projection onto ``[lo, hi]`` that an optimizer applies to a parameter after each step.

    Parameters
    ----------
    lo, hi : float
        Bounds, ``lo <= hi``.

    Returns
    -------
    project : callable
        ``project(W) -> clip(W, lo, hi)``, a new array of the same shape, dtype and array type (works on any
        array with a ``clip`` method, so on the GPU backends too).  The projection is not part of the
        forward pass and has no derivative to take.
    """
    lo, hi = float(lo), float(hi)
    if not lo <= hi:
        raise ValueError(f"clip_projection needs lo <= hi, got lo={lo}, hi={hi}")

    def project(W: Any) -> Any:
        return W.clip(lo, hi)

    return project


def linear_schedule(t: float, lambda_hat: float, start: float, end: float) -> float:
    """Regularization strength at step ``t``: 0 before ``start``, ramping linearly to ``lambda_hat`` at ``end``.

    Parameters
    ----------
    t : float
        Training step.
    lambda_hat : float
        Final strength.
    start, end : float
        Steps where the ramp begins and ends, ``start <= end``; ``start == end`` is a step function
        (``lambda_hat`` from ``t >= start`` on).

    Returns
    -------
    lam : float

    Notes
    -----
    ``lambda(t) = lambda_hat * clip((t - start) / (end - start), 0, 1)`` (Madsen & Johansen 2020).
    """
    t, lambda_hat, start, end = float(t), float(lambda_hat), float(start), float(end)
    if not start <= end:
        raise ValueError(f"linear_schedule needs start <= end, got start={start}, end={end}")
    if start == end:
        return lambda_hat if t >= start else 0.0
    return lambda_hat * min(max((t - start) / (end - start), 0.0), 1.0)
