"""The building blocks of the NumPy reference kernels: the stable sigmoid, the NAC weight, the log-space path of
the NACMul, the NMU's product without division, and IEEE results without warnings.

Pure functions of NumPy arrays.  :mod:`nalu_np.reference` and the reference kernels of other modules
(:mod:`nalu_np.variants`) build the units from them, so that a path two units share is written once;
:mod:`nalu_np.reference` re-exports the public ones.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

__all__ = ["ieee", "quiet_exp", "quiet_prod", "sigmoid", "nac_weight", "nac_weight_backward", "log_input",
           "log_input_grad", "log_path", "log_path_backward", "leave_one_out_products", "nmu_product",
           "nmu_product_backward"]


def ieee(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel`` with NumPy's floating-point warnings off: ``inf`` and NaN from non-finite inputs or overflow
    are results, as on every other backend (whose kernels never warn)."""

    @functools.wraps(kernel)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return kernel(*args, **kwargs)

    return quiet


def quiet_exp(z: np.ndarray) -> np.ndarray:
    """``exp`` whose overflow to ``inf`` is a result, not a warning."""
    with np.errstate(over="ignore"):
        return np.exp(z)


def quiet_prod(f: np.ndarray) -> np.ndarray:
    """``prod_i f[:, i, :]``, shape (B, O); overflow to ``inf`` is a result, not a warning."""
    with np.errstate(over="ignore"):
        return np.prod(f, axis=1)


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


def log_path(x: np.ndarray, W: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The log-space path of the NACMul and its relatives: ``y = exp(log(|x| + eps) @ W)``.

    Parameters
    ----------
    x : ndarray, shape (B, I)
    W : ndarray, shape (I, O)
        The weight as the path uses it (``tanh(W_hat) sigma(M_hat)`` for the NACMul).
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
        ``inf`` where the exponent overflows.
    l : ndarray, shape (B, I)
        ``log(|x| + eps)``, for :func:`log_path_backward`.
    """
    l = log_input(x, eps)
    return quiet_exp(l @ W), l


def log_path_backward(x: np.ndarray, l: np.ndarray, y: np.ndarray, W: np.ndarray, dy: np.ndarray,
                      eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Backward pass of :func:`log_path`: ``(dx, dW)``, shapes (B, I) and (I, O).

    Notes
    -----
    ``dz = delta * y``, ``dW = l.T @ dz``, ``dx = (dz @ W.T) * sign(x) / (|x| + eps)``; the slope of
    ``log(|x| + eps)`` at ``x = 0`` is taken as 0, between its one-sided values ``-1/eps`` and ``1/eps``.
    """
    dz = dy * y
    return (dz @ W.T) * log_input_grad(x, eps), l.T @ dz


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


def nmu_product(x: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The NMU's gated product: ``y[b, o] = prod_i f[b, i, o]``, ``f[b, i, o] = W[i, o] x[b, i] + 1 - W[i, o]``.

    Parameters
    ----------
    x : ndarray, shape (B, I)
    W : ndarray, shape (I, O)

    Returns
    -------
    y : ndarray, shape (B, O)
        Overflow to ``inf`` is a result.
    f : ndarray, shape (B, I, O)
        The factors, for :func:`nmu_product_backward`.
    """
    f = x[:, :, None] * W + (1.0 - W)
    return quiet_prod(f), f


def nmu_product_backward(x: np.ndarray, f: np.ndarray, W: np.ndarray, dy: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Backward pass of :func:`nmu_product`: ``(dx, dW)``, shapes (B, I) and (I, O).

    Notes
    -----
    With the leave-one-out products ``loo`` of the factors (:func:`leave_one_out_products`, exact when a factor
    is 0) and ``c = delta[:, None, :] * loo``: ``dW[i, o] = sum_b c[b, i, o] * (x[b, i] - 1)`` and
    ``dx[b, i] = sum_o c[b, i, o] * W[i, o]``.
    """
    c = dy[:, None, :] * leave_one_out_products(f)
    return np.einsum("bio,io->bi", c, W), np.einsum("bio,bi->io", c, x - 1.0)
