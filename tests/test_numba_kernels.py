"""The Numba CPU backend against the NumPy reference, and its vectorisable exp/log against NumPy's.

Every kernel is compared on the three code paths of :mod:`nalu_np.kernels.numba_cpu`: ``fused`` (one chunk,
the forward pass keeps its values for the backward pass), ``chunks`` (tiny blocks spread over several threads,
so that rows, blocks and threads do not divide evenly; the backward pass recomputes the forward values) and
``rows`` (NALU row by row, the layout for many inputs; the other units take their ``fused`` path there) and
``blas`` (matrix products in NumPy, elementwise passes in Numba).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("numba")

from hypothesis import given, settings, strategies as st  # noqa: E402
from numba import njit  # noqa: E402

import nalu_np as nn  # noqa: E402
from nalu_np import reference as ref  # noqa: E402
from nalu_np.kernels import numba_cpu as nb  # noqa: E402
from nalu_np.kernels import numba_math as nm  # noqa: E402

DTYPES = (np.float32, np.float64)
TOL = {np.float32: 1e-5, np.float64: 1e-12}
PATHS = ("fused", "chunks", "rows", "blas")

# unit -> (kernel prefix, parameter names, hyper-parameters)
UNITS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "nac": ("nac", ("W_hat", "M_hat"), {}),
    "nacmul": ("nacmul", ("W_hat", "M_hat"), {"eps": 1e-7}),
    "nalu": ("nalu", ("W_hat", "M_hat", "G"), {"eps": 1e-7}),
    "nalu_separate": ("nalu", ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul", "G"), {"eps": 1e-6}),
    "nau": ("nau", ("W",), {}),
    "nmu": ("nmu", ("W",), {}),
}


@contextlib.contextmanager
def code_path(path: str) -> Iterator[None]:
    """Force one of the kernel module's code paths by setting its tuning knobs."""
    knobs = ("BLAS_MIN_WEIGHTS", "BLAS_CHUNK_ROWS", "MIN_CHUNK_ROWS", "MAX_BLOCK_ROWS", "KEEP_MAX_BYTES",
             "ROWS_MIN_IN")
    saved = {k: getattr(nb, k) for k in knobs}
    try:
        nb.ROWS_MIN_IN = 1 << 62
        if path == "chunks":  # tiny blocks over several threads; the backward pass recomputes the forward's
            nb.MIN_CHUNK_ROWS, nb.MAX_BLOCK_ROWS, nb.KEEP_MAX_BYTES = 1, 8, 0
        elif path == "rows":  # NALU row by row, over several threads
            nb.ROWS_MIN_IN, nb.MIN_CHUNK_ROWS = 1, 1
        elif path == "blas":  # matrix products through BLAS, in chunks of 2 rows (the last one partial)
            nb.BLAS_MIN_WEIGHTS, nb.BLAS_CHUNK_ROWS = 1, 2
        else:
            nb.MIN_CHUNK_ROWS = 1 << 62
        yield
    finally:
        for k, v in saved.items():
            setattr(nb, k, v)


def make_params(unit: str, I: int, O: int, rng: np.random.Generator, dtype: Any) -> dict[str, np.ndarray]:
    names = UNITS[unit][1]
    if unit == "nmu":
        return {"W": rng.uniform(-0.2, 1.2, (I, O)).astype(dtype)}
    return {k: rng.normal(0.0, 0.8, (I, O)).astype(dtype) for k in names}


def off_kink(shape: tuple[int, int], rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """Signed magnitudes in [0.1, 2]: away from the |x| kink at 0."""
    return (rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape)).astype(dtype)


def _rel_error(got: np.ndarray, want: np.ndarray, what: str) -> float:
    """Largest error over the finite entries relative to the largest of them; non-finite entries must match."""
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin], want[~fin].astype(got.dtype), err_msg=f"{what}: non-finite entries differ")
    assert np.isfinite(got[fin]).all(), f"{what}: non-finite where the reference is finite"
    if not fin.any():
        return 0.0
    scale = max(float(np.abs(want[fin]).max()), np.finfo(got.dtype).tiny)
    return float(np.abs(got[fin].astype(np.float64) - want[fin]).max()) / scale


def assert_close(got: np.ndarray, want: np.ndarray, dtype: Any, what: str, truth: np.ndarray | None = None) -> None:
    """Same dtype and shape; the same non-finite entries; the finite ones within TOL of the largest.

    For float32, ``truth`` is the reference computed in float64 on the same inputs: where the float32
    reference itself is off by more than TOL (cancellation, e.g. ``g a + (1 - g) m`` with opposite terms), the
    kernel passes if it is no further from the truth than twice the float32 reference's error.
    """
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape, (what, got.dtype, got.shape, want.shape)
    err = _rel_error(got, want, what)
    if err <= TOL[dtype]:
        return
    assert truth is not None, f"{what}: relative error {err:.3g} > {TOL[dtype]:g}"
    ref_err = _rel_error(want, truth, what + " (float32 reference vs float64)")
    own_err = _rel_error(got, truth, what + " (vs float64)")
    assert own_err <= max(TOL[dtype], 2.0 * ref_err), (
        f"{what}: relative error {err:.3g} against the float32 reference, {own_err:.3g} against float64 "
        f"(the float32 reference's own: {ref_err:.3g})"
    )


def run_reference(kernel: str, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray,
                  hyper: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    with np.errstate(all="ignore"):
        y, cache = getattr(ref, kernel + "_forward")(params, x, **hyper)
        dx, grads = getattr(ref, kernel + "_backward")(params, cache, dy, **hyper)
    return y, dx, grads


def check_kernel(kernel: str, hyper: dict[str, Any], params: dict[str, np.ndarray], x: np.ndarray,
                 dy: np.ndarray, *, strict: bool = False) -> None:
    """Forward and backward of the numba kernel ``kernel`` against the reference (float32 also against the
    float64 reference, see ``assert_close``); inputs not mutated; gradients in ``params``' order.  ``strict``:
    no NumPy floating-point warning may come from the kernel calls."""
    y_ref, dx_ref, g_ref = run_reference(kernel, params, x, dy, hyper)
    truth: tuple[Any, Any, Any] = (None, None, {})
    if x.dtype == np.float32:
        truth = run_reference(kernel, {k: v.astype(np.float64) for k, v in params.items()},
                              x.astype(np.float64), dy.astype(np.float64), hyper)
    before = {k: v.copy() for k, v in params.items()}
    x0, dy0 = x.copy(), dy.copy()
    with np.errstate(all="raise") if strict else contextlib.nullcontext():
        y, cache = getattr(nb, kernel + "_forward")(params, x, **hyper)
        dx, grads = getattr(nb, kernel + "_backward")(params, cache, dy, **hyper)
    dt = x.dtype.type
    assert_close(y, y_ref, dt, "y", truth[0])
    assert_close(dx, dx_ref, dt, "dx", truth[1])
    assert list(grads) == list(params)
    for k in params:
        assert_close(grads[k], g_ref[k], dt, f"grad {k}", truth[2].get(k))
        np.testing.assert_array_equal(params[k], before[k])
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)


def check_unit(unit: str, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray) -> None:
    kernel, _, hyper = UNITS[unit]
    check_kernel(kernel, hyper, params, x, dy)


# ---------------------------------------------------------------------------------------------------------
# kernels against the reference
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("unit", list(UNITS))
@settings(max_examples=12)
@given(B=st.integers(1, 41), I=st.integers(1, 7), O=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_kernel_matches_reference(unit: str, dtype: Any, path: str, B: int, I: int, O: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    params = make_params(unit, I, O, rng, dtype)
    x = off_kink((B, I), rng, dtype)
    dy = rng.normal(size=(B, O)).astype(dtype)
    with code_path(path):
        check_unit(unit, params, x, dy)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("unit", list(UNITS))
def test_exact_zeros_in_x(unit: str, dtype: Any, path: str) -> None:
    """``x = 0`` exactly: the |x| kink (slope 0 of log(|x| + eps)) and NMU factors that are exactly 0."""
    rng = np.random.default_rng(7)
    B, I, O = 19, 5, 3
    params = make_params(unit, I, O, rng, dtype)
    if unit == "nmu":
        params["W"][1, :] = 1.0  # factor W x + 1 - W = x: exactly 0 where x = 0
        params["W"][3, 0] = 1.0
    x = off_kink((B, I), rng, dtype)
    x[::2, 1] = 0.0
    x[::3, 3] = 0.0
    x[5, :] = 0.0
    dy = rng.normal(size=(B, O)).astype(dtype)
    with code_path(path):
        check_unit(unit, params, x, dy)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("unit", ["nacmul", "nalu", "nalu_separate", "nmu"])
def test_overflow_to_inf_matches_reference(unit: str, dtype: Any, path: str) -> None:
    """Products too large for the dtype are ``inf`` (and ``(1 - g) inf`` is NaN where g = 1), as in NumPy."""
    rng = np.random.default_rng(3)
    B, I, O = 9, 4, 2
    params = make_params(unit, I, O, rng, dtype)
    big = np.finfo(dtype).max ** 0.5
    x = off_kink((B, I), rng, dtype)
    x[:4] = big  # exp(sum log|x| W) and prod(x) overflow for W near 1
    for k in params:
        if k.startswith("W_hat"):
            params[k][:] = 1.5  # W = tanh(1.5) sigma(4) = 0.89 (not where 1 - tanh^2 cancels)
        elif k.startswith("M_hat"):
            params[k][:] = 4.0
        elif k == "W":
            params[k][:] = 1.0
        elif k == "G":
            params[k][:, 0] = -1.0  # g = 0 for the big rows: y = m = inf
            params[k][:, 1:] = 1.0  # g = 1: y = NaN from (1 - g) * inf
    dy = rng.uniform(0.5, 1.5, size=(B, O)).astype(dtype)  # one sign: no cancellation of the huge terms
    y_ref = getattr(ref, UNITS[unit][0] + "_forward")(params, x, **UNITS[unit][2])[0]
    assert not np.isfinite(y_ref).all()
    with np.errstate(all="ignore"), code_path(path):
        check_unit(unit, params, x, dy)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_large_batch_several_threads(dtype: Any) -> None:
    """The default plan on a batch large enough for every thread, rows not a multiple of the block."""
    rng = np.random.default_rng(11)
    B, I, O = 3 * 4096 + 77, 3, 2
    for unit in ("nalu", "nmu"):
        params = make_params(unit, I, O, rng, dtype)
        check_unit(unit, params, off_kink((B, I), rng, dtype), rng.normal(size=(B, O)).astype(dtype))


def test_non_contiguous_input_and_layer_dispatch() -> None:
    rng = np.random.default_rng(5)
    layer = nn.NALU(6, 3, rng=1, dtype="float64")
    xx = off_kink((20, 12), rng, np.float64)
    x = xx[:, ::2]  # a strided view
    y, cache = layer.forward(x, backend="numba")
    y_ref, cache_ref = layer.forward(np.ascontiguousarray(x), backend="numpy")
    dy = rng.normal(size=y.shape)
    dx, grads = layer.backward(dy, cache)
    dx_ref, grads_ref = layer.backward(dy, cache_ref)
    assert_close(y, y_ref, np.float64, "y")
    assert_close(dx, dx_ref, np.float64, "dx")
    for k in grads:
        assert_close(grads[k], grads_ref[k], np.float64, k)


def test_registered_backend() -> None:
    assert "numba" in nn.available_backends()
    be = nn.get_backend("numba")
    assert be.name == "numba" and be.xp is np and be.array_type is np.ndarray
    for unit in ("nac", "nacmul", "nalu", "nau", "nmu"):
        for half in ("forward", "backward"):
            assert callable(be.kernel(f"{unit}_{half}"))


def test_bad_input_is_rejected() -> None:
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


# ---------------------------------------------------------------------------------------------------------
# the vectorisable exp and log
# ---------------------------------------------------------------------------------------------------------


@njit(error_model="numpy")
def _vexp_array(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = nm.vexp(x[i])
    return out


@njit(error_model="numpy")
def _vlog_array(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = nm.vlog(x[i])
    return out


@njit(error_model="numpy")
def _vsigmoid_array(x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = nm.vsigmoid(x[i])
    return out


def _ulp_error(got: np.ndarray, exact: np.ndarray, dtype: Any) -> float:
    """Largest error in units of the last place of the exact value rounded to ``dtype``; non-finite must match."""
    with np.errstate(over="ignore"):
        want = exact.astype(dtype)
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin], want[~fin])
    ulp = np.spacing(np.abs(want[fin])).astype(np.float64)
    return float((np.abs(got[fin].astype(np.float64) - exact[fin]) / ulp).max(initial=0.0))


def _exact(fn: Any, x: np.ndarray) -> np.ndarray:
    """``fn`` in float64 for float32 input (exact enough); NumPy's own float64 result for float64 input."""
    with np.errstate(all="ignore"):
        return fn(x.astype(np.float64))


def _samples(dtype: Any, lo: float, hi: float, n: int = 200_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(lo, hi, n).astype(dtype)


def _all_bit_patterns(dtype: Any, n: int = 200_000) -> np.ndarray:
    """Random bit patterns: every sign, exponent (subnormals, inf, NaN) and mantissa."""
    itype = np.uint32 if dtype == np.float32 else np.uint64
    rng = np.random.default_rng(1)
    return rng.integers(0, np.iinfo(itype).max, n, dtype=itype, endpoint=True).view(dtype)


# float32 is compared against float64 math (true error); float64 against NumPy's (itself within 1 ulp)
MAX_ULP = {np.float32: 3.0, np.float64: 3.0}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_vexp_accuracy(dtype: Any) -> None:
    hi = 89.0 if dtype == np.float32 else 710.0
    lo = -104.0 if dtype == np.float32 else -746.0
    for x in (_samples(dtype, -3.0, 3.0), _samples(dtype, lo, hi), _all_bit_patterns(dtype)):
        assert _ulp_error(_vexp_array(x), _exact(np.exp, x), dtype) <= MAX_ULP[dtype]
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, hi, -hi, lo, 1e-30, -1e-30], dtype)
    assert _ulp_error(_vexp_array(specials), _exact(np.exp, specials), dtype) <= MAX_ULP[dtype]
    assert _vexp_array(np.zeros(1, dtype))[0] == 1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_vexp_overflow_and_underflow_edges(dtype: Any) -> None:
    fi = np.finfo(dtype)
    top = np.log(np.float64(fi.max))  # the largest finite result is exp(top)
    x = np.array([np.nextafter(dtype(top), dtype(0)), np.nextafter(dtype(top), dtype(np.inf)),
                  dtype(top) + 1, np.log(np.float64(fi.smallest_subnormal)), np.log(np.float64(fi.tiny))], dtype)
    got = _vexp_array(x)
    assert np.isfinite(got[0]) and np.isinf(got[1]) and np.isinf(got[2])
    assert _ulp_error(got, _exact(np.exp, x), dtype) <= MAX_ULP[dtype]
    sub = np.linspace(np.log(np.float64(fi.smallest_subnormal)), np.log(np.float64(fi.tiny)), 5001).astype(dtype)
    assert _ulp_error(_vexp_array(sub), _exact(np.exp, sub), dtype) <= MAX_ULP[dtype]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_vlog_accuracy(dtype: Any) -> None:
    fi = np.finfo(dtype)
    near_one = _samples(dtype, 0.5, 2.0)
    wide = np.exp(_samples(np.float64, np.log(fi.smallest_subnormal), np.log(fi.max))).astype(dtype)
    for x in (near_one, wide, _all_bit_patterns(dtype)):
        with np.errstate(all="ignore"):
            assert _ulp_error(_vlog_array(x), _exact(np.log, x), dtype) <= MAX_ULP[dtype]
    specials = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1.0, fi.smallest_subnormal, fi.tiny, fi.max],
                        dtype)
    with np.errstate(all="ignore"):
        assert _ulp_error(_vlog_array(specials), _exact(np.log, specials), dtype) <= MAX_ULP[dtype]
    assert _vlog_array(np.ones(1, dtype))[0] == 0.0


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_vsigmoid_matches_reference(dtype: Any) -> None:
    x = np.concatenate([_samples(dtype, -120.0, 120.0, 20_000), np.array([0, np.inf, -np.inf], dtype)])
    got = _vsigmoid_array(x)
    want = ref.sigmoid(x)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).smallest_subnormal)


def test_jit_falls_back_without_a_cache_locator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Numba can keep no cache (read-only package and home), the kernels compile per process."""
    real = nm.numba.njit
    calls = []

    def njit_without_cache(*args: Any, cache: bool = False, **kwargs: Any) -> Any:
        calls.append(cache)
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(*args, **kwargs)

    monkeypatch.setattr(nm.numba, "njit", njit_without_cache)

    @nm.jit(error_model="numpy")
    def f(x):
        return nm.vexp(x) + 1.0

    assert calls == [True, False]
    assert f(0.0) == 2.0
