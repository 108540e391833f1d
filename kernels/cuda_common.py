"""What the two GPU backends (:mod:`nalu_np.kernels.cupy` and :mod:`nalu_np.kernels.numba_cuda`) share: launch
settings, the CUDA array type, the choice between the fused per-row path and the general path, the checks on
kernel arguments, the compile-time codes of the units and of the product units' factors, and the parameter
names and weights that start a forward pass of NAC, NACMul and NALU.

Launch settings are read from the environment when this module is first imported and may be changed at run
time through :data:`config` (the kernel factories take the values as arguments, so a change takes effect at
the next call):

=============================  =======  ===========================================================
variable                       default  meaning
=============================  =======  ===========================================================
``NALU_NP_CUDA_BLOCK``         256      threads per block of the 1-d kernels (a power of two)
``NALU_NP_CUDA_TILE``          16       side of the square tiles of the tiled kernels (numba-cuda)
``NALU_NP_CUDA_MAX_BLOCKS``    8 x SMs  blocks of the grid-stride kernels (fixes the reduction order)
``NALU_NP_CUDA_ROW_PATH_MAX``  8        fused per-row kernels when in_features * out_features <= this
``NALU_NP_CUDA_SPLITS``        64       most split-K parts of a weight gradient (numba-cuda general path)
=============================  =======  ===========================================================

Determinism: every weight gradient is a sum of per-block partial sums written to their own slots, then added
in a fixed order by a second kernel (no atomics), so with fixed settings the gradients are bitwise the same
from run to run.  Changing ``max_blocks`` or ``splits`` changes the summation order, hence the last bits.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["NAC", "NACMUL", "NALU", "NMU_FACTOR", "SIGN_FACTOR", "CudaArray", "LaunchConfig", "Params", "config",
           "require_device", "nac_names", "nac_cache", "use_row_path", "grid_stride_blocks"]

# unit codes of the NAC family: compile-time constants of the kernels
NAC, NACMUL, NALU = 0, 1, 2

# kinds of the product units' factors f = u(x) v(W) + 1 - v(W): compile-time constants of their kernels
NMU_FACTOR = 0  # u = x, v = W
SIGN_FACTOR = 1  # u = sign(x), v = |W| (the iNALU sign term)

Params = dict[str, Any]


def _env_int(var: str, default: int | None) -> int | None:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{var}={raw!r} is not an integer") from None
    if value < 0:
        raise ValueError(f"{var}={raw!r} must be >= 0")
    return value


@dataclass
class LaunchConfig:
    """Launch settings of the GPU kernels (see the module docstring for the environment variables)."""

    block: int = 256
    tile: int = 16
    max_blocks: int | None = None  # None: 8 per multiprocessor of the current device
    row_path_max: int = 8
    splits: int = 64

    def checked_block(self) -> int:
        b = self.block
        if b < 1 or b & (b - 1) or b > 1024:
            raise ValueError(f"config.block must be a power of two in [1, 1024], got {b}")
        return b

    def checked_tile(self) -> int:
        if not 1 <= self.tile <= 32:
            raise ValueError(f"config.tile must be in [1, 32], got {self.tile}")
        return self.tile


config = LaunchConfig(
    block=_env_int("NALU_NP_CUDA_BLOCK", 256),
    tile=_env_int("NALU_NP_CUDA_TILE", 16),
    max_blocks=_env_int("NALU_NP_CUDA_MAX_BLOCKS", None),
    row_path_max=_env_int("NALU_NP_CUDA_ROW_PATH_MAX", 8),
    splits=_env_int("NALU_NP_CUDA_SPLITS", 64),
)


def grid_stride_blocks(n: int, block: int, sm_count: int) -> int:
    """Blocks of a grid-stride kernel over ``n`` items: enough to cover them, at most ``config.max_blocks``."""
    cap = config.max_blocks if config.max_blocks else 8 * sm_count
    return max(1, min(-(-n // block), cap))


def use_row_path(n_in: int, n_out: int) -> bool:
    """True when the fused per-row kernels handle a layer of this size (each thread keeps ``3*I*O`` sums)."""
    return n_in * n_out <= config.row_path_max


class CudaArray(abc.ABC):
    """The array type of the GPU backends: any array in GPU memory.

    ``isinstance(a, CudaArray)`` is true for objects whose class implements ``__cuda_array_interface__``
    (CuPy, Numba device arrays, PyTorch CUDA tensors) and for the arrays of Numba's CUDA simulator; host
    arrays (NumPy) are not instances, so they are refused instead of being copied to the device per call.
    """

    @classmethod
    def __subclasshook__(cls, C: type) -> Any:
        if cls is CudaArray and any(
            "__cuda_array_interface__" in vars(B) or "__cuda_ndarray__" in vars(B) for B in C.__mro__
        ):
            return True
        return NotImplemented


def nac_names(unit: int, params: Params) -> tuple[tuple[str, str], tuple[str, str]]:
    """Parameter names ``(W_hat, M_hat)`` of the additive and of the multiplicative NAC of a NAC-family unit.

    NAC, NACMul and the NALU with shared weights use ``W_hat``, ``M_hat`` for both; the NALU with separate
    weights has ``W_hat_add``, ``M_hat_add`` and ``W_hat_mul``, ``M_hat_mul``.
    """
    if unit != NALU or "W_hat" in params:
        return ("W_hat", "M_hat"), ("W_hat", "M_hat")
    return ("W_hat_add", "M_hat_add"), ("W_hat_mul", "M_hat_mul")


def nac_cache(unit: int, params: Params, x: Any,
              nac_weight: Callable[[Any, Any], tuple[Any, Any, Any]]) -> dict[str, Any]:
    """The start of a NAC-family forward pass: its cache before any work over the batch.

    Parameters
    ----------
    unit : int
        ``NAC``, ``NACMUL`` or ``NALU``.
    params : dict of GPU arrays, shape (I, O)
    x : GPU array, shape (B, I)
    nac_weight : callable
        ``nac_weight(W_hat, M_hat) -> (W, t, s)``, the backend's kernel for ``W = t * s`` with
        ``t = tanh(W_hat)`` and ``s = sigma(M_hat)`` (the factors of its gradient).

    Returns
    -------
    dict
        ``x``; ``Wa``, ``ta``, ``sa`` of the additive path and ``Wm``, ``tm``, ``sm`` of the multiplicative
        path (the same arrays when the weights are shared), each of shape (I, O); ``row``, whether the layer
        takes the fused per-row path (backward takes the same one).
    """
    (wa, ma), (wm, mm) = nac_names(unit, params)
    Wa, ta, sa = nac_weight(params[wa], params[ma])
    Wm, tm, sm = (Wa, ta, sa) if wm == wa else nac_weight(params[wm], params[mm])
    return {"x": x, "Wa": Wa, "ta": ta, "sa": sa, "Wm": Wm, "tm": tm, "sm": sm,
            "row": use_row_path(*Wa.shape)}


def _on_device(a: Any) -> bool:
    """True unless ``a`` is an instance of a class that can export ``__cuda_array_interface__`` but this
    instance lives on the host (a PyTorch CPU tensor raises when asked for it)."""
    if getattr(type(a), "__cuda_ndarray__", False):  # Numba's own device arrays and the simulator's
        return True
    try:
        a.__cuda_array_interface__
    except Exception:  # noqa: BLE001 - AttributeError, RuntimeError, ... : not a device array
        return False
    return True


def require_device(backend: str, x: Any, params: Params, *more: Any,
                   array_type: type = CudaArray) -> np.dtype:
    """Check that ``x``, the parameters and ``more`` are ``array_type`` arrays of one float dtype; return it.

    Raises
    ------
    TypeError
        A host array (it would be copied to the device on every call), or mixed / non-float dtypes.
    """
    named = [("x", x), *(("params[%r]" % k, v) for k, v in params.items()), *(("array", a) for a in more)]
    for label, a in named:
        if not isinstance(a, array_type) or (array_type is CudaArray and not _on_device(a)):
            kinds = ("CuPy, Numba device array or anything with __cuda_array_interface__"
                     if array_type is CudaArray else f"{array_type.__module__}.{array_type.__name__}")
            raise TypeError(
                f"{label} must be a GPU array for backend {backend!r} ({kinds}), got "
                f"{type(a).__module__}.{type(a).__name__}; move it "
                f"explicitly with nalu_np.get_backend({backend!r}).asarray(...) or layer.to({backend!r})"
            )
    dtype = np.dtype(x.dtype)
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        raise TypeError(f"x has dtype {dtype}; nalu_np computes in float32 or float64")
    for label, a in named[1:]:
        if np.dtype(a.dtype) != dtype:
            raise TypeError(f"{label} has dtype {np.dtype(a.dtype)} but x has {dtype}: cast one of them")
    return dtype
