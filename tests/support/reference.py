"""Helpers of the reference tests (``tests/reference/``): the cases every unit is tested on, and layers and
inputs set off the kinks.

``ALL_UNITS`` are the layer classes of the unit table (:mod:`nalu_np.units`), in its order; ``SEED_UNITS`` are
those with the seed articles' initialisations (NAC, NACMul, NALU) and ``LATER_UNITS`` the others (NAU, NMU,
iNALU, NPU, RealNPU).  ``SEED_CASES`` builds the seed units under both articles' presets and with a preset's
initialisation under the other article's settings; ``CASES`` adds one case per later unit, built by
:func:`make`.  A case is ``build(in_features, out_features, rng, dtype) -> layer``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import layers, units

__all__ = ["ALL_UNITS", "SEED_UNITS", "LATER_UNITS", "SEED_CASES", "CASES", "signed", "make", "param_shapes",
           "check_regularizer_gradient"]

Build = Callable[[int, int, Any, str], Any]

ALL_UNITS: list[type] = [layers.unit_class(name) for name in units.UNITS]
SEED_UNITS: list[type] = [cls for cls in ALL_UNITS if layers.supports_presets(cls.__name__)]
LATER_UNITS: list[type] = [cls for cls in ALL_UNITS if cls not in SEED_UNITS]

SEED_CASES: dict[str, Build] = {
    "NAC-003": lambda i, o, rng, dt: nn.NAC(i, o, rng=rng, dtype=dt),
    "NAC-000": lambda i, o, rng, dt: nn.NAC(i, o, rng=rng, dtype=dt, init="seed-000"),
    "NACMul-003": lambda i, o, rng, dt: nn.NACMul(i, o, rng=rng, dtype=dt),
    "NACMul-000": lambda i, o, rng, dt: nn.NACMul(i, o, rng=rng, dtype=dt, eps=1e-6, init="seed-000"),
    "NALU-shared-003": lambda i, o, rng, dt: nn.NALU.preset("seed-003", i, o, rng=rng, dtype=dt),
    "NALU-separate-000": lambda i, o, rng, dt: nn.NALU.preset("seed-000", i, o, rng=rng, dtype=dt),
    "NALU-shared-000init": lambda i, o, rng, dt: nn.NALU(i, o, rng=rng, dtype=dt, init="seed-000"),
    "NALU-separate-003init": lambda i, o, rng, dt: nn.NALU(i, o, rng=rng, dtype=dt, shared_weights=False),
}


def signed(rng: np.random.Generator, shape: tuple[int, ...], lo: float = 0.1, hi: float = 2.0) -> np.ndarray:
    """Magnitudes in [lo, hi] with random signs: off the kinks at 0."""
    return rng.uniform(lo, hi, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def make(unit: type, i: int, o: int, seed: Any, dtype: str = "float64") -> Any:
    """A layer with parameters away from the kinks and boundaries and with every path exercised: multiplicative
    NAC weights of both signs (|W_hat_mul| >= 0.3, iNALU), gates that the table bounds drawn 0.1 inside their
    box (NPU: g in [0.1, 0.9]) and imaginary weights != 0 (NPU)."""
    rng = np.random.default_rng(seed)
    layer = unit(i, o, rng=rng, dtype=dtype)
    spec = units.spec(unit.__name__)
    p = layer.params
    if "W_hat_mul" in p:
        p["W_hat_mul"][...] = signed(rng, p["W_hat_mul"].shape, 0.3, 2.0)
    if spec.gate in spec.bounds:
        lo, hi = spec.bounds[spec.gate]
        p[spec.gate][...] = rng.uniform(lo + 0.1, hi - 0.1, size=p[spec.gate].shape)
    if "W_i" in p:
        p["W_i"][...] = rng.uniform(-0.5, 0.5, size=p["W_i"].shape)
    return layer


def _later_case(unit: type) -> Build:
    return lambda i, o, rng, dt: make(unit, i, o, rng, dt)


CASES: dict[str, Build] = {**SEED_CASES, **{cls.__name__: _later_case(cls) for cls in LATER_UNITS}}


def param_shapes(layer: Any, in_features: int, out_features: int) -> dict[str, tuple[int, ...]]:
    """The table's ``{name: shape}`` of ``layer``'s parameters (separate NALU weights where it has them)."""
    shared = getattr(layer, "shared_weights", True)
    return units.param_shapes(type(layer).__name__, in_features, out_features, shared)


def check_regularizer_gradient(reg: Callable[[np.ndarray], tuple[Any, np.ndarray]], W: np.ndarray,
                               h: float = 1e-6, rel: float = 1e-6) -> None:
    """``reg(W) -> (R, dR/dW)``: every entry of dR/dW against a central difference of R (W off the kinks)."""
    _, dR = reg(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += h
        Wm[idx] -= h
        assert dR[idx] == pytest.approx((reg(Wp)[0] - reg(Wm)[0]) / (2 * h), rel=rel), idx
