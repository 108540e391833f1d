"""The baselines' kernels (:mod:`nalu_np.kernels.numba.dense`: Linear, ReLU, ReLU6) against the NumPy
reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from support.kernels import DTYPES, DTYPE_IDS, PATHS, unit_tests  # noqa: E402

from nalu_np import reference as ref  # noqa: E402

#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(["dense", "relu", "relu6"], PATHS)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kernel", ["dense", "relu", "relu6"])
def test_block_functions_are_the_layer_kernels(kernel: str, dtype: Any) -> None:
    """The compiled step's block functions on a transposed batch give the reference's values and gradients,
    with outputs on both sides of the ReLU6 kinks."""
    from nalu_np.kernels.numba import dense

    rng = np.random.default_rng(3)
    I, O, B = 7, 3, 40
    W = rng.normal(0, 1, (I, O)).astype(dtype)
    b = np.array([-1.0, 3.0, 7.0], dtype)
    x = rng.normal(0, 2, (B, I)).astype(dtype)
    dy = rng.normal(size=(B, O)).astype(dtype)
    params = {"W": W, "b": b}
    y, cache = getattr(ref, f"{kernel}_forward")(params, x)
    dx, grads = getattr(ref, f"{kernel}_backward")(params, cache, dy)
    lo, hi = (dtype(v) for v in dense.ACTIVATIONS[kernel])
    zT, yT = np.empty((O, B), dtype), np.empty((O, B), dtype)
    dense.dense_block_forward(np.ascontiguousarray(x.T), B, W, b, lo, hi, zT, yT)
    acc, accb, delta, dxT = np.zeros((I, O), dtype), np.zeros(O, dtype), np.empty((O, B), dtype), np.empty((I, B), dtype)
    dense.dense_block_backward(np.ascontiguousarray(x.T), zT, np.ascontiguousarray(dy.T), B, W, lo, hi, acc, accb,
                               delta, dxT, True)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(yT.T, y, rtol=tol, atol=tol)
    np.testing.assert_allclose(dxT.T, dx, rtol=tol, atol=tol)
    np.testing.assert_allclose(acc, grads["W"], rtol=tol, atol=tol * B)
    np.testing.assert_allclose(accb, grads["b"], rtol=tol, atol=tol * B)
    if kernel == "relu6":
        assert (y == 0).any() and (y == 6).any() and ((y > 0) & (y < 6)).any()


@pytest.mark.parametrize("kernel", ["relu", "relu6"])
def test_no_gradient_at_the_kinks_as_pytorch(kernel: str) -> None:
    """At z = 0 (and z = 6 for ReLU6) the slope is 0, as PyTorch's relu / relu6 backward; NaN passes through."""
    from nalu_np.kernels import numba as nb

    params = {"W": np.eye(3), "b": np.zeros(3)}
    x = np.array([[0.0, 6.0, 3.0], [-1.0, 7.0, 2.0], [np.nan, 1.0, 1.0]])
    for fwd, bwd in ((getattr(ref, f"{kernel}_forward"), getattr(ref, f"{kernel}_backward")),
                     (getattr(nb, f"{kernel}_forward"), getattr(nb, f"{kernel}_backward"))):
        y, cache = fwd(params, x)
        dx, _ = bwd(params, cache, np.ones_like(x))
        assert np.isnan(y[2]).all()  # NaN * 0 is NaN: the row's every output
        np.testing.assert_array_equal(dx[0], [0.0, 1.0 if kernel == "relu" else 0.0, 1.0])
        np.testing.assert_array_equal(y[0], [0.0, 6.0, 3.0])
        np.testing.assert_array_equal(y[1], [0.0, 7.0 if kernel == "relu" else 6.0, 2.0])
