"""The ``cupy`` backend: every unit on CuPy arrays, with fused CUDA kernels and cuBLAS.

Arrays are :class:`cupy.ndarray` (``xp = cupy``) in float32 or float64; host arrays are refused with a
``TypeError`` (move them once with ``cupy.asarray`` or ``layer.to("cupy")``), never copied per call.

What lives where (the same module names as every backend package):

=====================  =================================================================================
``_common.py``         name, array type, device check, argument checks, compiling the CUDA sources, launches
``_nac_family.py``     the forward and backward passes that NAC, NACMul and NALU share, the NAC weight kernel
``nac.py``             NAC, NACMul
``nalu.py``            NALU (shared or separate weights)
``nau.py``             NAU (cuBLAS only)
``nmu.py``             NMU, and the products over the inputs that the iNALU sign term shares
``inalu.py``           iNALU
``npu.py``             NPU, RealNPU
``*.cu``, ``*.cuh``    the CUDA C++ (package data): ``common.cuh``, then one ``.cu`` per family
=====================  =================================================================================

Kernels are CUDA C++ compiled by NVRTC at first use through ``cupy.RawModule``; no fast-math, so ``exp``
overflows to ``inf`` as in the reference.  No atomics anywhere: weight gradients are bitwise reproducible from
run to run with fixed launch settings (cuBLAS GEMMs are deterministic on one GPU model and toolkit).  Launch
settings are :data:`nalu_np.kernels.cuda_common.config`.  The formulas are those of :mod:`nalu_np.reference`.
"""

from __future__ import annotations

from ._common import array_type, check_available, name, xp
from .inalu import inalu_backward, inalu_forward
from .nac import nac_backward, nac_forward, nacmul_backward, nacmul_forward
from .nalu import nalu_backward, nalu_forward
from .nau import nau_backward, nau_forward
from .nmu import nmu_backward, nmu_forward
from .npu import npu_backward, npu_forward, realnpu_backward, realnpu_forward

__all__ = [
    "name",
    "xp",
    "array_type",
    "check_available",
    "nac_forward",
    "nac_backward",
    "nacmul_forward",
    "nacmul_backward",
    "nalu_forward",
    "nalu_backward",
    "nau_forward",
    "nau_backward",
    "nmu_forward",
    "nmu_backward",
    "inalu_forward",
    "inalu_backward",
    "npu_forward",
    "npu_backward",
    "realnpu_forward",
    "realnpu_backward",
]
