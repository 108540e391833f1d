"""The ``numba-cuda`` backend: every unit as ``@cuda.jit`` kernels (the numba-cuda package).

Arrays
------
Inputs are any GPU arrays: CuPy arrays, Numba device arrays, or anything else with
``__cuda_array_interface__`` (``array_type`` is :class:`~nalu_np.kernels.cuda_common.CudaArray`, an ABC that
these types match and NumPy arrays do not: host arrays are refused, never copied per call).  Outputs are
arrays of ``xp``: ``xp = cupy`` when CuPy can be imported (and the simulator is off); otherwise ``xp`` is
``numba.cuda`` itself, Numba's device-array API (``to_device``, ``device_array``, ``copy_to_host``), and the
outputs are Numba device arrays.  :func:`asarray` moves a host array to the device in either case.  Numba
device arrays have no arithmetic, so code that does array arithmetic on the results (optimizers, losses)
needs CuPy.  Under ``NUMBA_ENABLE_CUDASIM=1`` (:data:`SIMULATOR`) the same kernels run on the CPU in Numba's
simulator (slowly, for the tests); the arrays are then the simulator's.

What lives where (the same module names as every backend package)
-----------------------------------------------------------------
=====================  =================================================================================
``_common.py``         name, array module, device check, ``asarray``, device functions, launches
``_nac_family.py``     per-row and tiled kernels of NAC, NACMul and NALU, their forward and backward passes
``_linalg.py``         matrix products (the NAC's tiled kernels) and fixed-order sums over the batch
``nac.py``             NAC, NACMul
``nalu.py``            NALU (shared or separate weights)
``nau.py``             NAU
``nmu.py``             NMU, and the products over the inputs that the iNALU sign term shares
``inalu.py``           iNALU
``npu.py``             NPU, RealNPU
=====================  =================================================================================

No atomics: weight gradients are bitwise reproducible run to run for fixed launch settings.  Launch settings
(block size, tile, number of blocks, path threshold, splits) are in :data:`nalu_np.kernels.cuda_common.config`.
The formulas are those of :mod:`nalu_np.reference`; ``exp`` overflows to ``inf`` as there.
"""

from __future__ import annotations

from ._common import SIMULATOR, array_type, asarray, check_available, name, xp
from .inalu import inalu_backward, inalu_forward
from .nac import nac_backward, nac_forward, nacmul_backward, nacmul_forward
from .nalu import nalu_backward, nalu_forward
from .nau import nau_backward, nau_forward
from .nmu import nmu_backward, nmu_forward
from .npu import npu_backward, npu_forward, realnpu_backward, realnpu_forward

__all__ = [
    "name",
    "SIMULATOR",
    "xp",
    "array_type",
    "asarray",
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
