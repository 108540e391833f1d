"""The NumPy reference: the truth every other backend is tested against.

Every unit is one pure function pair::

    y, cache = <unit>_forward(params, x, **hyper)
    dx, grads = <unit>_backward(params, cache, dy, **hyper)

with ``x`` of shape ``(batch, in_features)``, ``y`` and ``dy`` of shape ``(batch, out_features)``,
``params`` a dict of arrays (weight matrices of shape ``(in_features, out_features)``) and ``grads`` a dict
with the same keys.  The cache is whatever the forward pass keeps for the backward pass; callers treat it as
opaque.  Kernel packages (``nalu_np.kernels.<backend>``) export the same names with the same signatures.

Layout, the same in every backend package: :mod:`._common` (building blocks), :mod:`.nac` (NAC, NACMul),
:mod:`.nalu`, :mod:`.nau`, :mod:`.nmu`, :mod:`.inalu`, :mod:`.npu` (NPU, RealNPU); this module is the face of
the ``numpy`` backend (``name``, ``xp``, ``array_type`` and the kernels).

Conventions of the math (DESIGN section 4): ``sigma`` is the logistic function, ``*`` is elementwise,
``@`` is the matrix product and ``delta = dL/dy``.  The derivative of ``|x|`` at ``x = 0`` is taken as 0
(``np.sign(0) == 0``), which lies between the one-sided slopes of the kink.

``exp`` in the multiplicative path may overflow to ``inf``; that is a real result of the unit (the product
of large numbers is large), not an error, so no floating-point warning is raised for it.  Non-finite inputs
propagate as IEEE arithmetic says.
"""

from __future__ import annotations

import numpy as np

from ._common import clip_projection, linear_schedule, log_input, log_input_grad, nac_weight, nac_weight_backward, sigmoid
from ._common import leave_one_out_products
from .inalu import inalu_backward, inalu_forward
from .nac import nac_backward, nac_forward, nacmul_backward, nacmul_forward
from .nalu import nalu_backward, nalu_forward
from .nau import nau_backward, nau_forward, nau_regularizer
from .nmu import nmu_backward, nmu_forward, nmu_regularizer
from .npu import l1_regularizer, npu_backward, npu_forward, realnpu_backward, realnpu_forward

__all__ = [
    "sigmoid",
    "nac_weight",
    "nac_weight_backward",
    "log_input",
    "nac_forward",
    "nac_backward",
    "nacmul_forward",
    "nacmul_backward",
    "nalu_forward",
    "nalu_backward",
    "nau_regularizer",
    "nmu_regularizer",
    "clip_projection",
    "linear_schedule",
    "nau_forward",
    "nau_backward",
    "nmu_forward",
    "nmu_backward",
    "inalu_forward",
    "inalu_backward",
    "l1_regularizer",
    "npu_forward",
    "npu_backward",
    "realnpu_forward",
    "realnpu_backward",
    "log_input_grad",
    "leave_one_out_products",
]

name = "numpy"
xp = np
array_type = np.ndarray
