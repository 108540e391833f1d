"""The NAU kernels and block functions (:mod:`nalu_np.kernels.numba.nau`) against the NumPy reference."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("numba")

from support.kernels import DTYPES, DTYPE_IDS, PATHS, check_weight_blocks, unit_tests  # noqa: E402


#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(["nau"], PATHS)


@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_block_functions_and_regularizer_on_a_whole_batch(dtype: Any, need_dx: bool) -> None:
    check_weight_blocks("nau", dtype, need_dx)
