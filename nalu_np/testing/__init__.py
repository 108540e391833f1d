"""Gradient checking for nalu_np layers and your own: :func:`check_gradients` and hypothesis strategies.

>>> import numpy as np, nalu_np as nn
>>> layer = nn.NALU(3, 2, rng=0, dtype="float64")
>>> x = np.random.default_rng(1).uniform(0.5, 2.0, size=(4, 3))
>>> report = nn.testing.check_gradients(layer, x, rng=0)
>>> report.ok
True

``nalu_np.testing.strategies`` (imported on first use, needs ``hypothesis``) holds strategies for kink-free
and near-kink inputs.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._checker import FunctionPair, GradientReport, Record, StructuralCheck, check_gradients

__all__ = ["FunctionPair", "GradientReport", "Record", "StructuralCheck", "check_gradients", "strategies"]


def __getattr__(name: str) -> Any:
    if name == "strategies":
        return importlib.import_module(f"{__name__}.strategies")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
