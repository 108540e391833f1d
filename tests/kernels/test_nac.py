"""The NAC and NACMul kernels (:mod:`nalu_np.kernels.numba.nac`) against the NumPy reference, on every code path
of the numba backend (:func:`support.kernels.code_path`) and on every compiled backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from support.kernels import DTYPES, DTYPE_IDS, PATHS, check_overflow, unit_tests  # noqa: E402

import nalu_np as nn  # noqa: E402

CASES = ["nac", "nacmul"]

#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(CASES, PATHS)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_nacmul_overflow_to_inf_matches_reference(dtype: Any, path: str) -> None:
    check_overflow("nacmul", dtype, path)


def test_bad_input_is_rejected() -> None:
    nb = nn.get_backend("numba")
    params = {"W_hat": np.zeros((2, 1), np.float32), "M_hat": np.zeros((2, 1), np.float32)}
    with pytest.raises(TypeError, match="W_hat must be a numpy.ndarray of dtype float64 like x"):
        nb.nac_forward(params, np.zeros((3, 2), np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        nb.nac_forward(params, np.zeros((3, 2), np.int32))
    with pytest.raises(TypeError, match="2-d"):
        nb.nac_forward(params, np.zeros(3, np.float32))
    y, cache = nb.nac_forward(params, np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="dy"):
        nb.nac_backward(params, cache, np.ones((3, 1), np.float64))
