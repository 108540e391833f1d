"""The regularizers, projections and schedule the units train with (Madsen & Johansen 2020; Heim et al. 2020).

Pure functions of the parameters, NumPy arrays in and out; :mod:`nalu_np.units` says which unit uses which,
and :mod:`nalu_np.reference` re-exports them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["nau_regularizer", "nmu_regularizer", "l1_regularizer", "clip_projection", "linear_schedule"]


def _min_distance_regularizer(d: np.ndarray, dd: Any) -> tuple[Any, np.ndarray]:
    """``mean(min(d, 1 - d))`` and its gradient, given ``d`` and its derivative ``dd`` with respect to W.

    The slope of ``min(d, 1 - d)`` is ``+1`` below ``d = 1/2`` and ``-1`` above; at ``d = 1/2`` it is taken
    as 0, between the one-sided slopes.
    """
    slope = np.sign(0.5 - d)
    return np.minimum(d, 1.0 - d).mean(), slope * dd / d.size


def nau_regularizer(W: np.ndarray) -> tuple[Any, np.ndarray]:
    """Sparsity regularizer of the NAU (Madsen & Johansen 2020), which pushes weights to -1, 0 or 1.

    Parameters
    ----------
    W : ndarray, shape (I, O)

    Returns
    -------
    R : scalar of W's dtype
        ``mean(min(|W|, 1 - |W|))``.
    dR : ndarray, shape (I, O)
        ``dR/dW``.

    Notes
    -----
    ``dR/dW = sign(W) * sign(1/2 - |W|) / W.size``.  At the kinks the value between the one-sided slopes is
    taken: 0 at ``W = 0`` (``sign(0) = 0``) and at ``|W| = 1/2``.
    """
    return _min_distance_regularizer(np.abs(W), np.sign(W))


def nmu_regularizer(W: np.ndarray) -> tuple[Any, np.ndarray]:
    """Sparsity regularizer of the NMU (Madsen & Johansen 2020), which pushes weights to 0 or 1.

    Parameters
    ----------
    W : ndarray, shape (I, O)

    Returns
    -------
    R : scalar of W's dtype
        ``mean(min(W, 1 - W))``.
    dR : ndarray, shape (I, O)

    Notes
    -----
    ``dR/dW = sign(1/2 - W) / W.size``, 0 at the kink ``W = 1/2``.
    """
    return _min_distance_regularizer(W, 1.0)


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



def l1_regularizer(W: np.ndarray) -> tuple[Any, np.ndarray]:
    """L1 penalty ``mean(|W|)`` and its gradient ``sign(W) / W.size`` (0 at the kink ``W = 0``).

    The NPU paper (Heim, Pevný & Šmídl 2020) trains with an L1 penalty on the weights.
    """
    return np.abs(W).mean(), np.sign(W) / W.size
