"""The NMU kernels and block functions (:mod:`nalu_np.kernels.numba.nmu`) against the NumPy reference."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("numba")

from support.kernels import (  # noqa: E402
    DTYPES, DTYPE_IDS, PATHS, check_large_batch, check_overflow, check_weight_blocks,
    unit_tests,
)


#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(["nmu"], PATHS)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_overflow_to_inf_matches_reference(dtype: Any, path: str) -> None:
    check_overflow("nmu", dtype, path)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_large_batch_several_threads(dtype: Any) -> None:
    check_large_batch("nmu", dtype)


@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_block_functions_and_regularizer_on_a_whole_batch(dtype: Any, need_dx: bool) -> None:
    check_weight_blocks("nmu", dtype, need_dx)
