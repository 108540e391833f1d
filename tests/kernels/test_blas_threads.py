"""Steady speed of the numba kernels after other calls (issue 12, part 6), the parts that can be checked without
timing: the NumPy reference's products with small weights run on one BLAS thread, scoped to the call and
restored after it (:mod:`nalu_np._blas`), the same values without threadpoolctl, and the numba NALU's kept
block values drawn from the free list without two live caches sharing them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nalu_np import _blas
from nalu_np import reference as ref


def _blas_threads() -> int:
    import threadpoolctl

    return min(info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas")


def _nalu_params(I: int, O: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {k: rng.normal(0.0, 0.5, (I, O)) for k in ("W_hat", "M_hat", "G")}


@pytest.fixture
def two_blas_threads() -> Any:
    """BLAS on two threads for the test (so that a limit to one can be seen), restored afterwards."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not any(i["user_api"] == "blas" for i in threadpoolctl.threadpool_info()):
        pytest.skip("no BLAS library that threadpoolctl controls")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() < 2:
            pytest.skip("this BLAS runs on one thread only")
        yield


@pytest.mark.parametrize("I, O, rows, inside", [(2, 1, 1 << 18, 1), (100, 2, 2048, 1), (64, 64, 2048, 2),
                                                (100, 2, 128, 2), (2, 1, 8, 2)])
def test_small_weights_run_blas_on_one_thread_for_the_call_only(two_blas_threads: None, I: int, O: int, rows: int,
                                                                inside: int) -> None:
    """One thread for a large batch on small weights; BLAS's own threads for large weights, and for a small
    batch (which BLAS does not thread, where the limit would cost as much as the call)."""
    seen = []

    @_blas.on_caller
    def kernel(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        seen.append(_blas_threads())
        return x @ params["W_hat"]

    rng = np.random.default_rng(0)
    params, x = _nalu_params(I, O, rng), rng.normal(size=(rows, I))
    np.testing.assert_array_equal(kernel(params, x), x @ params["W_hat"])
    np.testing.assert_array_equal(kernel(params=params, x=x), x @ params["W_hat"])
    assert seen == [inside, inside]
    assert _blas_threads() == 2  # restored


def test_limit_restored_when_the_kernel_raises(two_blas_threads: None) -> None:
    with pytest.raises(ValueError):
        ref.nalu_forward(_nalu_params(2, 1, np.random.default_rng(0)), np.ones((1 << 18, 3)))  # limited, then raises
    assert _blas_threads() == 2


def test_reference_unchanged_without_threadpoolctl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without threadpoolctl the reference runs unlimited and says so; its values are those of the limited run."""
    rng = np.random.default_rng(1)
    params, x, dy = _nalu_params(3, 2, rng), rng.uniform(-2, 2, (64, 3)), rng.normal(size=(64, 2))
    y, cache = ref.nalu_forward(params, x)
    dx, grads = ref.nalu_backward(params, cache, dy)
    monkeypatch.setattr(_blas, "_controller", [None])
    assert not _blas.limited()
    y0, cache0 = ref.nalu_forward(params, x)
    dx0, grads0 = ref.nalu_backward(params, cache0, dy)
    np.testing.assert_allclose(y0, y, rtol=1e-13)
    np.testing.assert_allclose(dx0, dx, rtol=1e-13)
    for k in grads:
        np.testing.assert_allclose(grads0[k], grads[k], rtol=1e-12)


def test_limited_says_whether_threadpoolctl_is_there() -> None:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        assert not _blas.limited()
    else:
        assert _blas.limited()


def test_numba_nalu_kept_values_reused_but_never_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused NALU keeps its block values in arrays of the free list: a forward call after a finished one
    reuses them, and two live caches have their own (each backward pass matches the reference)."""
    pytest.importorskip("numba")
    from nalu_np.kernels import numba as nb
    from nalu_np.kernels.numba import _common

    monkeypatch.setattr(_common, "MIN_CHUNK_ROWS", 64)  # several chunks (threads) on this small batch
    rng = np.random.default_rng(2)
    params = {k: v.astype(np.float32) for k, v in _nalu_params(2, 1, rng).items()}
    xs = [rng.uniform(-2, 2, (3000, 2)).astype(np.float32) for _ in range(2)]
    dys = [rng.normal(size=(3000, 1)).astype(np.float32) for _ in range(2)]
    assert nb.nalu_forward(params, xs[0])[1][0] == "fused" and nb.nalu_forward(params, xs[0])[1][-1][2]  # kept

    def store(cache: Any) -> int:
        return cache[-1][3][0].ctypes.data

    _, cache = nb.nalu_forward(params, xs[0])
    first = store(cache)
    nb.nalu_backward(params, cache, dys[0])
    del cache
    caches = [nb.nalu_forward(params, x)[1] for x in xs]
    assert first in {store(c) for c in caches}  # reused
    assert store(caches[0]) != store(caches[1])  # not shared
    for x, dy, cache in zip(xs, dys, caches):
        dx, grads = nb.nalu_backward(params, cache, dy)
        dx_ref, grads_ref = ref.nalu_backward(params, ref.nalu_forward(params, x)[1], dy)
        np.testing.assert_allclose(dx, dx_ref, rtol=2e-4, atol=2e-5)
        for k in grads:
            np.testing.assert_allclose(grads[k], grads_ref[k], rtol=2e-4, atol=2e-3)
