"""The NALU kernels and block functions (:mod:`nalu_np.kernels.numba.nalu`) against the NumPy reference, with
shared and with separate weights, on every code path of the numba backend and on every compiled backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from support.kernels import (  # noqa: E402
    DTYPES, DTYPE_IDS, PATHS, TOL, check_large_batch, check_layer_dispatch, check_overflow, transposed_case,
    unit_tests,
)

import nalu_np as nn  # noqa: E402
from nalu_np.kernels.numba import _common, nalu  # noqa: E402

CASES = ["nalu", "nalu_separate"]

#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(CASES, PATHS)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("unit", CASES)
def test_overflow_to_inf_matches_reference(unit: str, dtype: Any, path: str) -> None:
    check_overflow(unit, dtype, path)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_large_batch_several_threads(dtype: Any) -> None:
    check_large_batch("nalu", dtype)


def test_non_contiguous_input_and_layer_dispatch() -> None:
    check_layer_dispatch(nn.NALU(6, 3, rng=1, dtype="float64"))


@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_block_functions_on_a_whole_batch(dtype: Any, need_dx: bool) -> None:
    """The blocks the compiled training step calls (shared weights), on (features, B) arrays: the gradients of
    both paths summed into one accumulator, then through the NAC weights."""
    params, xT, dT, (yT_ref, dxT_ref), grads = transposed_case("nalu", dtype)
    tol = TOL[dtype]
    (I, B), O = xT.shape, params["G"].shape[1]
    eps = dtype(1e-7)
    W, t, s = _common.nac_weight(params["W_hat"], params["M_hat"])
    lT = np.empty_like(xT)
    _common.log_abs(xT, B, eps, lT)
    aT, mT, gT, yT, dA, dZ, dH = (np.empty((O, B), dtype) for _ in range(7))
    nalu.nalu_block_forward(xT, lT, B, W, W, params["G"], aT, mT, gT, yT)
    np.testing.assert_allclose(yT, yT_ref, rtol=tol, atol=tol)
    acc, accG = np.zeros((I, O), dtype), np.zeros((I, O), dtype)
    dxT = np.full_like(xT, 7.0)
    nalu.nalu_block_backward(xT, lT, dT, B, W, W, params["G"], eps, aT, mT, gT, dA, dZ, dH, acc, acc, accG, dxT,
                             need_dx)
    for got, k in zip(_common.nac_weight_backward(acc, t, s) + (accG,), ("W_hat", "M_hat", "G")):
        np.testing.assert_allclose(got, grads[k], rtol=tol, atol=tol, err_msg=k)
    np.testing.assert_allclose(dxT, dxT_ref if need_dx else 7.0, rtol=tol, atol=tol)
