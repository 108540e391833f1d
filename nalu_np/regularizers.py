"""The regularizers, projections and schedule the units train with (Madsen & Johansen 2020; Heim et al. 2020).

Pure functions of the parameters, NumPy arrays in and out; :mod:`nalu_np.units` says which unit uses which,
and :mod:`nalu_np.reference` re-exports them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["nau_regularizer", "nmu_regularizer", "l1_regularizer", "clip_projection", "linear_schedule"]


def _min_of_distances(a: np.ndarray, da: np.ndarray, b: np.ndarray, db: np.ndarray) -> tuple[Any, np.ndarray]:
    """``mean(min(a, b))`` and its gradient, given the distances ``a``, ``b`` and their derivatives w.r.t. W.

    The gradient is the one PyTorch's autograd gives ``torch.mean(torch.min(a, b))``: ``da`` where
    ``a < b``, ``db`` where ``a > b`` and ``(da + db) / 2`` at a tie (``minimum``'s backward in PyTorch's
    ``derivatives.yaml`` hands half the gradient to each side), divided by ``W.size``.
    """
    grad = np.where(a < b, da, np.where(a > b, db, (da + db) / 2))
    return np.minimum(a, b).mean(), grad / a.size


def nau_regularizer(W: np.ndarray) -> tuple[Any, np.ndarray]:
    """Sparsity regularizer of the NAU (Madsen & Johansen 2020), which pushes weights to -1, 0 or 1.

    Parameters
    ----------
    W : ndarray, shape (I, O)

    Returns
    -------
    R : scalar of W's dtype
        ``mean(min(|W|, |1 - |W||))``.
    dR : ndarray, shape (I, O)
        ``dR/dW``, the gradient the authors' code gets from autograd.

    Notes
    -----
    As the authors write it (stable-nalu, ``stable_nalu/functional/regualizer.py``, ``_nac_bias_linear``:
    ``torch.mean(torch.min(W_abs, torch.abs(1 - W_abs)))``) and as PyTorch differentiates it, with
    ``sign(0) = 0`` for the slope of ``|.|`` at 0 and half of each side at a tie of the ``min``::

        dR/dW = sign(W) / n                        where |W| < 1/2
              = -sign(W) * sign(1 - |W|) / n       where |W| > 1/2
              = 0                                  where W = 0, |W| = 1/2 or |W| = 1

    (``n = W.size``).  So a weight sitting on the NAU's clip bound ``|W| = 1`` gets no regularizer gradient,
    and a weight beyond it (``|W| > 1``, only without the projection) is pulled back to the bound.
    """
    s = np.sign(W)
    a = np.abs(W)
    return _min_of_distances(a, s, np.abs(1 - a), -np.sign(1 - a) * s)


def nmu_regularizer(W: np.ndarray) -> tuple[Any, np.ndarray]:
    """Sparsity regularizer of the NMU (Madsen & Johansen 2020), which pushes weights to 0 or 1.

    Parameters
    ----------
    W : ndarray, shape (I, O)

    Returns
    -------
    R : scalar of W's dtype
        ``mean(min(|W|, |1 - W|))``.
    dR : ndarray, shape (I, O)
        ``dR/dW``, the gradient the authors' code gets from autograd.

    Notes
    -----
    As the authors write it (stable-nalu, ``stable_nalu/functional/regualizer.py``, ``_mnac_bias_linear``:
    ``torch.mean(torch.min(torch.abs(W - 0), torch.abs(1 - W)))``; its ``zero_epsilon`` is always 0) and as
    PyTorch differentiates it (``sign(0) = 0``, half of each side at a tie)::

        dR/dW = sign(W) / n                        where W < 1/2
              = -sign(1 - W) / n                   where W > 1/2
              = 0                                  where W = 0, W = 1/2 or W = 1

    (``n = W.size``).  So a weight on either clip bound of the NMU, 0 or 1, gets no regularizer gradient.
    """
    return _min_of_distances(np.abs(W), np.sign(W), np.abs(1 - W), -np.sign(1 - W))


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
    """L1 penalty ``mean(|W|)`` and its gradient ``sign(W) / W.size`` (0 at the kink ``W = 0``): the NPU
    units' default regularizer in nalu-np.

    Notes
    -----
    Neither published recipe is this one.  The Primer (Mistry et al. 2022) sums ``|p|`` over all parameters
    (:mod:`nalu_np.primer`).  The NPU paper's scripts (Heim, Pevný & Šmídl 2020; nmheim/NeuralPowerUnits,
    ``scripts/arithmetic/*_l1.jl``: ``L1 = β * norm(ps, 1)`` with ``ps = Flux.params(model)``) take Julia's
    ``norm`` of the collection of parameter arrays, which ``LinearAlgebra.generic_norm1`` evaluates as the sum
    of each array's ``norm``: ``Σ_A ||A||_F`` over every array of the model (a group penalty), not the
    elementwise L1.
    """
    return np.abs(W).mean(), np.sign(W) / W.size
