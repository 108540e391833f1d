"""The Numba CPU kernels of the iNALU, NPU and RealNPU (:mod:`nalu_np.kernels.numba_units`, exported by the
``numba`` backend) against the NumPy reference.

Each kernel runs on two plans of the fused path: ``fused`` (one chunk) and ``chunks`` (blocks of 8 rows spread
over several threads, so that rows, blocks and threads do not divide evenly).  The comparison helpers and the
plan switch come from ``test_numba_kernels``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from hypothesis import given, settings, strategies as st  # noqa: E402
from test_numba_kernels import DTYPES, assert_close, check_kernel, code_path, off_kink, run_reference  # noqa: E402

import nalu_np as nn  # noqa: E402
from nalu_np import reference as ref  # noqa: E402
from nalu_np.kernels import numba_cpu as nb  # noqa: E402

PATHS = ("fused", "chunks")
# kernel -> hyper-parameters (the layers' defaults, and an iNALU with other ones)
HYPER: dict[str, dict[str, Any]] = {
    "inalu": {"eps": 1e-7, "omega": 20.0},
    "npu": {"eps": 1e-7},
    "realnpu": {"eps": 1e-6},
}


def make_params(kernel: str, I: int, O: int, rng: np.random.Generator, dtype: Any) -> dict[str, np.ndarray]:
    """Parameters off the kinks: iNALU multiplicative weights of both signs with ``|W_hat_mul| >= 0.3`` (so
    ``sign(W_m)`` is not at 0), NPU gates in ``[0.1, 0.9]`` and ``W_i != 0``."""
    if kernel == "inalu":
        p = {k: rng.normal(0.0, 0.8, (I, O)) for k in ("W_hat_add", "M_hat_add")}
        p["W_hat_mul"] = rng.choice([-1.0, 1.0], (I, O)) * rng.uniform(0.3, 2.0, (I, O))
        p["M_hat_mul"] = rng.normal(0.0, 0.8, (I, O))
        p["g"] = rng.normal(0.0, 1.0, O)
    else:
        p = {"W_r": rng.normal(0.0, 0.8, (I, O))}
        if kernel == "npu":
            p["W_i"] = rng.normal(0.0, 0.8, (I, O))
        p["g"] = rng.uniform(0.1, 0.9, I)
    return {k: v.astype(dtype) for k, v in p.items()}


def check(kernel: str, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray) -> None:
    """:func:`test_numba_kernels.check_kernel`, with no NumPy warning allowed from the kernels (they compute
    in Numba)."""
    check_kernel(kernel, HYPER[kernel], params, x, dy, strict=True)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kernel", list(HYPER))
@settings(max_examples=8)
@given(B=st.integers(1, 41), I=st.integers(1, 7), O=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_kernel_matches_reference(kernel: str, dtype: Any, path: str, B: int, I: int, O: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    params = make_params(kernel, I, O, rng, dtype)
    x = off_kink((B, I), rng, dtype)
    dy = rng.normal(size=(B, O)).astype(dtype)
    with code_path(path):
        check(kernel, params, x, dy)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kernel", list(HYPER))
def test_exact_zeros_in_x_and_gates_at_bounds(kernel: str, dtype: Any, path: str) -> None:
    """``x = 0`` exactly (``|x|`` kink: slope 0; iNALU: ``sign(0) = 0`` in the sign term and
    ``log(max(0, eps))``; NPU: ``r = g eps + 1 - g``) and NPU gates at the bounds 0 and 1 of their projection."""
    rng = np.random.default_rng(7)
    B, I, O = 19, 5, 3
    params = make_params(kernel, I, O, rng, dtype)
    if kernel != "inalu":
        params["g"][1], params["g"][3] = 1.0, 0.0
    x = off_kink((B, I), rng, dtype)
    x[::2, 1] = 0.0
    x[::3, 3] = 0.0
    x[5, :] = 0.0
    dy = rng.normal(size=(B, O)).astype(dtype)
    with code_path(path):
        check(kernel, params, x, dy)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
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
        check("inalu", params, x, dy)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kernel", ["npu", "realnpu"])
def test_npu_overflow_to_inf_matches_reference(kernel: str, dtype: Any, path: str) -> None:
    """``exp(A)`` beyond the dtype's range is ``inf``; ``inf * cos(phi)`` and the gradients that follow are the
    ``inf`` and NaN that IEEE arithmetic gives in the reference."""
    rng = np.random.default_rng(3)
    B, I, O = 9, 4, 2
    params = make_params(kernel, I, O, rng, dtype)
    params["W_r"][:] = 1.5
    params["g"][:] = 1.0
    x = off_kink((B, I), rng, dtype)
    x[:3] = np.finfo(dtype).max ** 0.5  # (|x|^1.5)^4 overflows
    dy = rng.uniform(0.5, 1.5, size=(B, O)).astype(dtype)
    y_ref = run_reference(kernel, params, x, dy, HYPER[kernel])[0]
    assert not np.isfinite(y_ref).all()
    with code_path(path):
        check(kernel, params, x, dy)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_large_batch_several_threads(dtype: Any) -> None:
    """The default plan on a batch large enough for several chunks, rows not a multiple of the block."""
    rng = np.random.default_rng(11)
    B, I, O = 3 * nb.MIN_CHUNK_ROWS + 77, 3, 2
    for kernel in HYPER:
        params = make_params(kernel, I, O, rng, dtype)
        check(kernel, params, off_kink((B, I), rng, dtype), rng.normal(size=(B, O)).astype(dtype))


@pytest.mark.parametrize("unit", [nn.INALU, nn.NPU, nn.RealNPU])
def test_layer_dispatch_with_strided_input(unit: Any) -> None:
    """``layer.forward(x, backend="numba")`` then ``layer.backward(dy, cache)``, on a strided view of ``x``."""
    rng = np.random.default_rng(5)
    layer = unit(6, 3, rng=1, dtype="float64")
    x = off_kink((20, 12), rng, np.float64)[:, ::2]
    y, cache = layer.forward(x, backend="numba")
    y_ref, cache_ref = layer.forward(np.ascontiguousarray(x), backend="numpy")
    dy = rng.normal(size=y.shape)
    dx, grads = layer.backward(dy, cache)
    dx_ref, grads_ref = layer.backward(dy, cache_ref)
    assert_close(y, y_ref, np.float64, "y")
    assert_close(dx, dx_ref, np.float64, "dx")
    assert list(grads) == list(layer.params)
    for k in grads:
        assert_close(grads[k], grads_ref[k], np.float64, k)


def test_registered_backend() -> None:
    be = nn.get_backend("numba")
    for kernel in HYPER:
        for half in ("forward", "backward"):
            assert f"{kernel}_{half}" in nb.__all__
            assert callable(be.kernel(f"{kernel}_{half}"))


@pytest.mark.parametrize("kernel", list(HYPER))
def test_bad_input_is_rejected(kernel: str) -> None:
    rng = np.random.default_rng(0)
    fwd, bwd = getattr(nb, kernel + "_forward"), getattr(nb, kernel + "_backward")
    params = make_params(kernel, 2, 3, rng, np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        fwd(params, np.ones((4, 2), np.int64))
    with pytest.raises(TypeError, match="must be a numpy.ndarray of dtype float64 like x"):
        fwd(params, np.ones((4, 2), np.float64))
    with pytest.raises(TypeError, match="2-d"):
        fwd(params, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="must have shape"):
        fwd(params, np.ones((4, 5), np.float32))  # 5 inputs, weights for 2
    bad = dict(params, g=params["g"][:1])
    with pytest.raises(ValueError, match="g must have shape"):
        fwd(bad, np.ones((4, 2), np.float32))
    y, cache = fwd(params, np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="dy"):
        bwd(params, cache, np.ones((4, 3), np.float64))
    with pytest.raises(ValueError, match="dy must have shape"):
        bwd(params, cache, np.ones((4, 2), np.float32))


def test_either_kernel_module_can_be_imported_first() -> None:
    """numba_units builds on numba_cpu's helpers and numba_cpu exports its kernels: no import cycle."""
    import subprocess
    import sys

    code = ("import nalu_np.kernels.numba_units as u, nalu_np.kernels.numba_cpu as c; "
            "assert c.npu_forward is u.npu_forward and 'inalu_backward' in c.__all__")
    subprocess.run([sys.executable, "-c", code], check=True)
