"""The G-NALU kernels of the numba backend (:mod:`nalu_np.kernels.numba.gnalu`, the NALU's on scaled parameters)
against the NumPy reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from support.kernels import DTYPES, DTYPE_IDS, PATHS, check_overflow, unit_tests  # noqa: E402

import nalu_np as nn  # noqa: E402

#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(["gnalu"], PATHS)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_overflow_to_inf_matches_reference(dtype: Any, path: str) -> None:
    check_overflow("gnalu", dtype, path)


def test_bad_input_is_refused_before_scaling() -> None:
    """A parameter of another dtype, or not an array, is a TypeError from the kernel, not from the scaling."""
    be = nn.get_backend("numba")
    x = np.ones((4, 3), np.float32)
    params = {k: np.ones((3, 2), np.float32) for k in ("W_hat", "M_hat", "G")}
    with pytest.raises(TypeError, match="dtype"):
        be.gnalu_forward({**params, "G": np.ones((3, 2))}, x)
    with pytest.raises(TypeError):
        be.gnalu_forward({**params, "G": [[1.0, 1.0]] * 3}, x)
