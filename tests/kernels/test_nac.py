"""The NAC and NACMul kernels and the log-space variants SigmoidNACMul and ClippedNACMul
(:mod:`nalu_np.kernels.numba.nac`) against the NumPy reference, on every code path of the numba backend
(:func:`support.kernels.code_path`) and on every compiled backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from support.kernels import (  # noqa: E402
    DTYPES, DTYPE_IDS, PATHS, TOL, check_large_batch, check_overflow, check_regularizer_block, transposed_case,
    unit_tests,
)

import nalu_np as nn  # noqa: E402
from nalu_np import reference as ref  # noqa: E402

CASES = ["nac", "nacmul", "sigmoidnacmul", "clippednacmul"]
LOG_PATH = ["nacmul", "sigmoidnacmul", "clippednacmul"]

#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(CASES, PATHS)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("unit", LOG_PATH)
def test_log_path_overflow_to_inf_matches_reference(unit: str, dtype: Any, path: str) -> None:
    check_overflow(unit, dtype, path)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("unit", ["sigmoidnacmul", "clippednacmul"])
def test_variants_large_batch_several_threads(unit: str, dtype: Any) -> None:
    check_large_batch(unit, dtype)


@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("unit", ["sigmoidnacmul", "clippednacmul"])
def test_variants_block_functions_on_a_whole_batch(unit: str, dtype: Any, need_dx: bool) -> None:
    """What the compiled step does with a SigmoidNACMul or ClippedNACMul layer: its weight (``sigma(W_hat)`` by
    ``sigmoid_weight_into``, or ``W``), the NACMul's log-space blocks on it, and the chain rule back
    (``sigmoid_weight_grad_into``), against the reference on a whole transposed batch."""
    from nalu_np.kernels.numba import nac

    params, xT, dT, (yT_ref, dxT_ref), grads = transposed_case(unit, dtype)
    eps = dtype(1e-6 if unit == "clippednacmul" else 1e-7)
    name = "W_hat" if unit == "sigmoidnacmul" else "W"
    I, B = xT.shape
    W = params[name].copy()
    if unit == "sigmoidnacmul":
        nac.sigmoid_weight_into(params[name], W)
        np.testing.assert_allclose(W, ref.sigmoid(params[name]), rtol=TOL[dtype])
    lT, mT = np.empty_like(xT), np.empty((W.shape[1], B), dtype)
    nac.nacmul_block_forward(xT, B, W, eps, lT, mT)
    np.testing.assert_allclose(mT, yT_ref, rtol=10 * TOL[dtype])
    acc, dxT = np.zeros_like(W), np.full_like(xT, 7.0)
    nac.nacmul_block_backward(xT, lT, mT, dT.copy(), B, W, eps, acc, dxT, need_dx)
    if unit == "sigmoidnacmul":
        dW_hat = np.empty_like(W)
        nac.sigmoid_weight_grad_into(acc, W, dW_hat)
        acc = dW_hat
    scale = float(np.abs(grads[name]).max())
    np.testing.assert_allclose(acc, grads[name], rtol=10 * TOL[dtype], atol=10 * TOL[dtype] * scale)
    np.testing.assert_allclose(dxT, dxT_ref if need_dx else 7.0, rtol=10 * TOL[dtype],
                               atol=10 * TOL[dtype] * float(np.abs(dxT_ref).max()))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_clipped_nacmul_regularizer_block_is_the_nmus(dtype: Any) -> None:
    """The compiled step's regularizer of a ClippedNACMul layer is the NMU's block, which agrees with the table's
    (the NMU's ``nmu_regularizer``, the regularizer of the ClippedNACMul row)."""
    from nalu_np import units

    assert units.spec("ClippedNACMul").regularizer is units.spec("NMU").regularizer
    check_regularizer_block("nmu", dtype)


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
