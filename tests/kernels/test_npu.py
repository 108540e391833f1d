"""The NPU and RealNPU kernels (:mod:`nalu_np.kernels.numba.npu`) against the NumPy reference, on the two plans
of the fused path and on every compiled backend.  No NumPy warning may come from the kernels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from support.kernels import (  # noqa: E402
    DTYPES, DTYPE_IDS, FUSED_PATHS, UNITS, check_bad_input, check_large_batch, check_layer_dispatch, check_unit,
    code_path, make_params, off_kink, run_reference, unit_tests,
)

import nalu_np as nn  # noqa: E402

CASES = ["npu", "realnpu"]

#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(CASES, FUSED_PATHS, strict=True, max_examples=8)


@pytest.mark.parametrize("path", FUSED_PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("unit", CASES)
def test_npu_overflow_to_inf_matches_reference(unit: str, dtype: Any, path: str) -> None:
    """``exp(A)`` beyond the dtype's range is ``inf``; ``inf * cos(phi)`` and the gradients that follow are the
    ``inf`` and NaN that IEEE arithmetic gives in the reference."""
    rng = np.random.default_rng(3)
    B, I, O = 9, 4, 2
    params = make_params(unit, I, O, rng, dtype)
    params["W_r"][:] = 1.5
    params["g"][:] = 1.0
    x = off_kink((B, I), rng, dtype)
    x[:3] = np.finfo(dtype).max ** 0.5  # (|x|^1.5)^4 overflows
    dy = rng.uniform(0.5, 1.5, size=(B, O)).astype(dtype)
    y_ref = run_reference(unit, params, x, dy, UNITS[unit][2])[0]
    assert not np.isfinite(y_ref).all()
    with code_path(path):
        check_unit(unit, params, x, dy, strict=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("unit", CASES)
def test_large_batch_several_threads(unit: str, dtype: Any) -> None:
    check_large_batch(unit, dtype, strict=True)


@pytest.mark.parametrize("unit", [nn.NPU, nn.RealNPU])
def test_layer_dispatch_with_strided_input(unit: Any) -> None:
    check_layer_dispatch(unit(6, 3, rng=1, dtype="float64"))


@pytest.mark.parametrize("unit", CASES)
def test_bad_input_is_rejected(unit: str) -> None:
    check_bad_input(unit)
