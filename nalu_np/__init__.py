"""nalu-np: neural arithmetic units (NAC, NALU and successors) with hand-derived gradients.

``import nalu_np`` imports NumPy only; backends (Numba, CuPy, Numba-CUDA) load on first use, and the
submodules ``testing``, ``optim`` and the training tools load when first reached.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .backends import (
    Backend,
    BackendUnavailableError,
    available_backends,
    backend_names,
    get_backend,
    register_backend,
    set_backend,
    use_backend,
)
from .layers import (GNALU, INALU, NAC, NALU, NAU, NMU, NPU, ClippedNACMul, GatedNAUNMU, Layer, Linear, NACMul, RealNPU,
                     ReLU, ReLU6, Sequential, SigmoidNACMul)

__all__ = [
    "__version__",
    "Backend",
    "BackendUnavailableError",
    "available_backends",
    "backend_names",
    "get_backend",
    "register_backend",
    "set_backend",
    "use_backend",
    "Layer",
    "NAC",
    "NACMul",
    "NALU",
    "NAU",
    "NMU",
    "INALU",
    "NPU",
    "RealNPU",
    "Linear",
    "ReLU",
    "ReLU6",
    "SigmoidNACMul",
    "ClippedNACMul",
    "GatedNAUNMU",
    "GNALU",
    "Sequential",
    "testing",
    "train",
    "train_many",
]

_LAZY_SUBMODULES = {"testing", "reference", "init", "optim", "losses", "tasks", "checkpoint", "training",
                    "arithmetic", "sweep"}
_TRAINING = {"train", "train_many"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _TRAINING:  # the training loop, nalu_np.training.train / train_many
        return getattr(importlib.import_module(f"{__name__}.training"), name)
    raise AttributeError(f"module 'nalu_np' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY_SUBMODULES | _TRAINING)
