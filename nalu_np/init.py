"""Initialisation presets named after the two seed articles (DESIGN section 4).

=========== ====================================== ======= ===============
preset      W_hat, M_hat                 G         eps     NALU weights
=========== ====================================== ======= ===============
seed-003    truncated N(0, 0.02**2)      same      1e-7    shared (paper)
seed-000    U(-2, 2)                     N(0, 1)   1e-6    separate
=========== ====================================== ======= ===============

``truncated N`` redraws values beyond two standard deviations, as TensorFlow's ``truncated_normal`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Preset", "PRESETS", "preset", "make_rng", "nac_params", "nalu_params", "truncated_normal"]


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
