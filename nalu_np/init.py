"""Initialisation presets named after the two seed articles (DESIGN section 4).

=========== ====================================== ======= ===============
preset      W_hat, M_hat                 G         eps     NALU weights
=========== ====================================== ======= ===============
seed-003    truncated N(0, 0.02**2)      same      1e-7    shared (paper)
seed-000    U(-2, 2)                     N(0, 1)   1e-6    separate
=========== ====================================== ======= ===============

``truncated N`` redraws values beyond two standard deviations, as TensorFlow's ``truncated_normal`` does.
Madsen & Johansen's NAC initialisation (:func:`nac_w_optimal_r`) is a unit-table entry of its own
(:data:`nalu_np.units.UNITS`, ``"madsen2020"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Preset", "PRESETS", "preset", "make_rng", "nac_params", "nalu_params", "truncated_normal",
           "nac_w_variance", "nac_w_optimal_r"]


def make_rng(rng: Any) -> np.random.Generator:
    """``rng`` as a Generator: None (fresh entropy), an int seed, or a Generator (used as is)."""
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def positive_float(value: Any, name: str) -> float:
    """``value`` as a finite float > 0, or a clear error."""
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a number, got {value!r}") from err
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    """Normal(0, std**2) samples, redrawn until they lie within two standard deviations (float64)."""
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out


def nac_w_variance(r: float) -> float:
    """Variance of ``W = tanh(W_hat) * sigmoid(M_hat)`` for ``W_hat, M_hat ~ U(-r, r)`` independent.

    ``Var W = (1 - tanh(r) / r) * (r - tanh(r / 2)) / (2 r)`` (0 at ``r = 0``), as the authors write it
    (stable-nalu, ``stable_nalu/layer/nac.py``, ``nac_w_variance``).
    """
    if r == 0:
        return 0.0
    return float((1 - np.tanh(r) / r) * (r - np.tanh(r / 2)) * (1 / (2 * r)))


def nac_w_optimal_r(fan_in: int, fan_out: int) -> float:
    """The ``r`` of Madsen & Johansen's NAC initialisation ``W_hat, M_hat ~ U(-r, r)``: the root in [0, 10] of
    ``max(fan_in + fan_out, 5) * nac_w_variance(r) = 2`` (Glorot's variance for ``W``).

    The bisection is the one the authors call (``scipy.optimize.bisect(f, 0, 10)`` in
    ``stable_nalu/layer/nac.py``, ``nac_w_optimal_r``), step for step: its defaults ``xtol = 2e-12``,
    ``rtol = 4 * float64 eps``, at most 100 halvings, so ``r`` is the same float.
    """
    fan = max(fan_in + fan_out, 5)

    def f(r: float) -> float:
        return fan * nac_w_variance(r) - 2

    xa, xb = 0.0, 10.0
    fa, fb = f(xa), f(xb)
    if fa * fb > 0:  # pragma: no cover - the variance rises from 0 to above 2 / 5 on [0, 10]
        raise ValueError(f"no root of the NAC variance equation in [0, 10] for fan {fan}")
    if fa == 0:
        return xa
    if fb == 0:
        return xb
    xtol, rtol = 2e-12, 4 * np.finfo(np.float64).eps
    dm = xb - xa
    xm = xa
    for _ in range(100):
        dm *= 0.5
        xm = xa + dm
        fm = f(xm)
        if fm * fa >= 0:
            xa = xm
        if fm == 0 or abs(dm) < xtol + rtol * abs(xm):
            break
    return xm


Sampler = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]


@dataclass(frozen=True)
class Preset:
    """One seed article's settings: samplers for the NAC weights and the gate, ``eps``, weight sharing."""

    nac: Sampler
    gate: Sampler
    eps: float
    shared_weights: bool


PRESETS: dict[str, Preset] = {
    "seed-003": Preset(
        nac=lambda rng, shape: truncated_normal(rng, shape, 0.02),
        gate=lambda rng, shape: truncated_normal(rng, shape, 0.02),
        eps=1e-7,
        shared_weights=True,
    ),
    "seed-000": Preset(
        nac=lambda rng, shape: rng.uniform(-2.0, 2.0, size=shape),
        gate=lambda rng, shape: rng.normal(0.0, 1.0, size=shape),
        eps=1e-6,
        shared_weights=False,
    ),
}


def preset(name: str) -> Preset:
    """The preset called ``name``; ValueError naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown init preset {name!r}; known presets: {', '.join(PRESETS)}") from None


def nac_params(rng: np.random.Generator, i: int, o: int, init: str, dtype: np.dtype,
               suffix: str = "") -> dict[str, np.ndarray]:
    """``W_hat<suffix>``, ``M_hat<suffix>`` of shape (i, o) drawn from preset ``init``."""
    p = preset(init)
    return {f"W_hat{suffix}": p.nac(rng, (i, o)).astype(dtype), f"M_hat{suffix}": p.nac(rng, (i, o)).astype(dtype)}


def nalu_params(rng: np.random.Generator, i: int, o: int, init: str, dtype: np.dtype,
                shared_weights: bool) -> dict[str, np.ndarray]:
    """NALU parameters: shared ``W_hat``, ``M_hat`` or separate ``*_add``, ``*_mul``, then the gate ``G``."""
    if shared_weights:
        params = nac_params(rng, i, o, init, dtype)
    else:
        params = {**nac_params(rng, i, o, init, dtype, "_add"), **nac_params(rng, i, o, init, dtype, "_mul")}
    params["G"] = preset(init).gate(rng, (i, o)).astype(dtype)
    return params
