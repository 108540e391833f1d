"""Numba CPU backend (``nn.set_backend("numba")``): fused forward and backward kernels of the arithmetic units.

The kernels have the names and signatures of :mod:`nalu_np.reference` and compute the same values in the dtype
of their input (float32 or float64; Numba compiles one version per dtype on first use).

What lives where
----------------
- :mod:`._common`: input checks, the plan and its tuning knobs (``BLOCK_BYTES``, ``MAX_BLOCK_ROWS``,
  ``MIN_CHUNK_ROWS``, ``BLAS_MIN_WEIGHTS``, ``BLAS_CHUNK_ROWS``, ``ROWS_MIN_IN``, ``KEEP_MAX_BYTES``,
  ``FREE_MAX``, read at call time), block helpers (load/store, matmul, grad, sum_partials), the blas path's work
  arrays, the NAC weights, and the optimizer blocks (regularizer, Adam, projection).  Its docstring tells how
  the work is laid out (the fused, rows and blas paths).
- :mod:`._math`: ``exp``, ``log`` and the sigmoid written so that LLVM vectorises them; :mod:`._tiles`: the
  register tiles of the block functions' matrix products.
- one module per unit family, each with its *block functions* (the unit's math on transposed blocks of shape
  (features, n)) and its layer kernels: :mod:`.nac` (NAC, NACMul, and the log-space SigmoidNACMul and
  ClippedNACMul), :mod:`.nalu`, :mod:`.nau`, :mod:`.nmu`, :mod:`.inalu`, :mod:`.npu` (NPU, RealNPU),
  :mod:`.dense` (the baselines Linear, ReLU, ReLU6), :mod:`.gated` (GatedNAUNMU), :mod:`.gnalu` (the G-NALU,
  the NALU's kernels on scaled parameters).
- :mod:`.rng` (xoshiro256** inside compiled code) and :mod:`.train` (the compiled training step, built from the
  units' block functions and the optimizer blocks; driven from :mod:`nalu_np.compiled`).

Kernels take arrays and scalars only; nothing here imports the layers, optimizers, tasks or training code.
"""

from __future__ import annotations

import numpy

from .dense import dense_backward, dense_forward, relu6_backward, relu6_forward, relu_backward, relu_forward
from .gated import gatednaunmu_backward, gatednaunmu_forward
from .gnalu import gnalu_backward, gnalu_forward
from .inalu import inalu_backward, inalu_forward
from .nac import (clippednacmul_backward, clippednacmul_forward, nac_backward, nac_forward, nacmul_backward,
                  nacmul_forward, sigmoidnacmul_backward, sigmoidnacmul_forward)
from .nalu import nalu_backward, nalu_forward
from .nau import nau_backward, nau_forward
from .nmu import nmu_backward, nmu_forward
from .npu import npu_backward, npu_forward, realnpu_backward, realnpu_forward

#: the public kernels, ``<unit>_forward`` and ``<unit>_backward``, as in :mod:`nalu_np.reference`
__all__ = [
    "nac_forward", "nac_backward", "nacmul_forward", "nacmul_backward", "nalu_forward", "nalu_backward",
    "gnalu_forward", "gnalu_backward", "nau_forward", "nau_backward", "nmu_forward", "nmu_backward", "inalu_forward", "inalu_backward",
    "npu_forward", "npu_backward", "realnpu_forward", "realnpu_backward", "dense_forward", "dense_backward",
    "relu_forward", "relu_backward", "relu6_forward", "relu6_backward", "sigmoidnacmul_forward",
    "sigmoidnacmul_backward", "clippednacmul_forward", "clippednacmul_backward", "gatednaunmu_forward",
    "gatednaunmu_backward",
]

name = "numba"
xp = numpy
array_type = numpy.ndarray
