"""The iNALU kernels (:mod:`nalu_np.kernels.numba.inalu`) against the NumPy reference, on the two plans of the
fused path (``fused``: one chunk; ``chunks``: blocks of 8 rows over several threads) and on every compiled
backend.  No NumPy warning may come from the kernels (they compute in Numba)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from support.kernels import (  # noqa: E402
    DTYPES, DTYPE_IDS, FUSED_PATHS, check_bad_input, check_large_batch, check_layer_dispatch, check_unit, code_path,
    make_params, off_kink, unit_tests,
)

import nalu_np as nn  # noqa: E402
from nalu_np import reference as ref  # noqa: E402

#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(["inalu"], FUSED_PATHS, strict=True, max_examples=8)


@pytest.mark.parametrize("path", FUSED_PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_inalu_clip_at_omega_and_eps(dtype: Any, path: str) -> None:
    """Large ``|x|`` puts ``z = log|x| @ W_m`` above ``omega`` (``m = exp(omega)``, no gradient through ``z``);
    ``0 < |x| < eps`` is clipped to ``eps`` (slope 0)."""
    rng = np.random.default_rng(5)
    B, I, O = 11, 4, 3
    params = make_params("inalu", I, O, rng, dtype)
    params["W_hat_mul"][:, 0] = 2.0  # W_m = tanh(2) sigma(M_hat) > 0: z large for large |x|
    params["M_hat_mul"][:, 0] = 3.0
    x = off_kink((B, I), rng, dtype)
    x[:4] *= dtype(1e8)
    x[6, 2] = dtype(3e-8)  # below eps = 1e-7 (a normal number in float32 too)
    x[7, 0] = dtype(-1e-8)
    dy = rng.normal(size=(B, O)).astype(dtype)
    with np.errstate(all="ignore"):
        _, cache = ref.inalu_forward(params, x)
    assert (cache["z"] > 20.0).any() and (cache["z"] < 20.0).any()
    with code_path(path):
        check_unit("inalu", params, x, dy, strict=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_large_batch_several_threads(dtype: Any) -> None:
    check_large_batch("inalu", dtype, strict=True)


def test_layer_dispatch_with_strided_input() -> None:
    check_layer_dispatch(nn.INALU(6, 3, rng=1, dtype="float64"))


def test_bad_input_is_rejected() -> None:
    check_bad_input("inalu")
