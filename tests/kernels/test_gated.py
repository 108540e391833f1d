"""The GatedNAUNMU kernels and block functions (:mod:`nalu_np.kernels.numba.gated`) against the NumPy
reference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from support.kernels import (  # noqa: E402
    DTYPES, DTYPE_IDS, PATHS, TOL, check_large_batch, check_overflow, transposed_case, unit_tests,
)

import nalu_np as nn  # noqa: E402
from nalu_np import reference as ref  # noqa: E402

#: the tests of every unit (support.kernels.unit_tests)
(test_kernel_equals_reference_on_backend, test_kernel_matches_reference,
 test_exact_zeros_in_x) = unit_tests(["gatednaunmu"], PATHS)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_overflow_to_inf_matches_reference(dtype: Any, path: str) -> None:
    check_overflow("gatednaunmu", dtype, path)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_an_open_gate_on_an_overflowed_product_is_nan_as_the_reference(dtype: Any) -> None:
    """``g = 1`` and ``m = inf``: ``y = g a + (1 - g) m`` is NaN, IEEE's answer, in the kernel as in the
    reference; ``g = 0`` gives ``y = m = inf``."""
    big = np.finfo(dtype).max ** 0.5
    params = {"W_add": np.full((3, 2), 0.5, dtype), "W_mul": np.ones((3, 2), dtype),
              "G": np.array([[1.0, -1.0]] * 3, dtype)}
    x = np.array([[big, big, big], [1.5, 2.0, 0.5]], dtype)
    for kernel in (ref.gatednaunmu_forward, nn.get_backend("numba").gatednaunmu_forward):
        y = kernel(params, x)[0]
        assert np.isnan(y[0, 0]) and y[0, 1] == np.inf and np.isfinite(y[1]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_large_batch_several_threads(dtype: Any) -> None:
    check_large_batch("gatednaunmu", dtype)


@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_block_functions_on_a_whole_batch(dtype: Any, need_dx: bool) -> None:
    """The compiled step's blocks on a transposed batch: values and output, the gradients added to the
    accumulators, ``dxT`` overwritten only with ``need_dx``."""
    from nalu_np.kernels.numba import gated

    params, xT, dT, (yT_ref, dxT_ref), grads = transposed_case("gatednaunmu", dtype)
    Wa, Wm, G = params["W_add"], params["W_mul"], params["G"]
    (I, B), O = xT.shape, Wa.shape[1]
    tol = 10 * TOL[dtype]
    aT, mT, gT, yT = (np.empty((O, B), dtype) for _ in range(4))
    gated.gatednaunmu_block_forward(xT, B, Wa, Wm, G, aT, mT, gT, yT)
    x = xT.T.astype(np.float64)
    np.testing.assert_allclose(aT, (x @ Wa).T, rtol=tol, atol=tol)
    np.testing.assert_allclose(gT, ref.sigmoid(x @ G).T, rtol=tol, atol=tol)
    np.testing.assert_allclose(yT, yT_ref, rtol=tol, atol=tol)
    accs = [np.ones_like(Wa) for _ in range(3)]
    dxT = np.full_like(xT, 7.0)
    scratch = [np.empty((O, B), dtype) for _ in range(3)]
    gated.gatednaunmu_block_backward(xT, dT, B, Wa, Wm, G, aT, mT, gT, *scratch, *accs, dxT, need_dx,
                                     np.empty((I + 1, B), dtype), np.empty(B, dtype))
    for acc, k in zip(accs, ("W_add", "W_mul", "G")):
        np.testing.assert_allclose(acc, 1.0 + grads[k], rtol=tol, atol=tol * B, err_msg=k)
    np.testing.assert_allclose(dxT, dxT_ref if need_dx else 7.0, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_regularizer_block_is_the_sum_of_the_tables(dtype: Any) -> None:
    """``gatednaunmu_regularizer`` adds ``lam dR/dW`` of the table's regularizer (the NAU's of ``W_add`` plus the
    NMU's of ``W_mul``) and returns ``lam R``, weights at the kinks included, on flat views (the packed layout)."""
    from nalu_np.kernels.numba import gated

    layer = nn.GatedNAUNMU(5, 3, rng=0, dtype=dtype)
    rng = np.random.default_rng(2)
    layer.params["W_add"][...] = rng.uniform(-1.2, 1.2, (5, 3))
    layer.params["W_add"][0] = [0.0, 0.5, -1.0]
    layer.params["W_mul"][...] = rng.uniform(-0.2, 1.2, (5, 3))
    layer.params["W_mul"][0] = [0.0, 0.5, 1.0]
    R, dR = layer.regularizer()
    lam = 0.37
    base = {k: rng.normal(size=15).astype(dtype) for k in ("W_add", "W_mul")}
    d = {k: v.copy() for k, v in base.items()}
    value = gated.gatednaunmu_regularizer(layer.params["W_add"].reshape(-1), layer.params["W_mul"].reshape(-1), lam,
                                          d["W_add"], d["W_mul"])
    np.testing.assert_allclose(value, lam * float(R), rtol=TOL[dtype])
    for k in base:
        np.testing.assert_allclose(d[k], base[k] + dtype(lam) * dR[k].reshape(-1), rtol=TOL[dtype], atol=TOL[dtype])


def test_bad_shapes_are_refused_before_the_compiled_loops() -> None:
    nb = nn.get_backend("numba")
    params = {k: np.zeros((2, 3), np.float32) for k in ("W_add", "W_mul", "G")}
    with pytest.raises(ValueError, match="do not fit"):
        nb.gatednaunmu_forward(dict(params, G=np.zeros((2, 2), np.float32)), np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        nb.gatednaunmu_forward(params, np.ones((4, 5), np.float32))
    with pytest.raises(TypeError, match="W_mul must be a numpy.ndarray of dtype float32"):
        nb.gatednaunmu_forward(dict(params, W_mul=np.zeros((2, 3))), np.ones((4, 2), np.float32))
    y, cache = nb.gatednaunmu_forward(params, np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="dy must have shape"):
        nb.gatednaunmu_backward(params, cache, np.ones((4, 2), np.float32))
