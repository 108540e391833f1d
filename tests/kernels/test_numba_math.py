"""The vectorisable exp, log, sigmoid and tanh of the numba backend (:mod:`nalu_np.kernels.numba._math`) against
NumPy's, and its ``jit`` decorator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from numba import njit  # noqa: E402
from support.kernels import DTYPES  # noqa: E402

from nalu_np import reference as ref  # noqa: E402
from nalu_np.kernels.numba import _math as nm  # noqa: E402


def _elementwise(fn: Any) -> Any:
    """A compiled ``x -> [fn(v) for v in x]`` over a 1-d array, for a scalar function of jitted code."""

    @njit(error_model="numpy")
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = fn(x[i])
        return out

    return apply


_vexp_array, _vlog_array, _vlog_normal_array, _vsigmoid_array, _vtanh_array = (
    _elementwise(fn) for fn in (nm.vexp, nm.vlog, nm.vlog_normal, nm.vsigmoid, nm.vtanh))


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
def test_vlog_normal_is_vlog_on_its_domain(dtype: Any) -> None:
    """``vlog_normal`` gives ``vlog``'s bits on every positive normal number, inf and NaN (random bit patterns,
    the edges); ``log_abs`` takes it for ``eps >= tiny`` and ``vlog`` below, with the same results."""
    from nalu_np.kernels.numba._common import log_abs

    fi = np.finfo(dtype)
    x = np.abs(_all_bit_patterns(dtype))
    x = np.concatenate([x[~(x < fi.tiny)], np.array([fi.tiny, fi.max, np.inf, np.nan, 1.0], dtype)])
    np.testing.assert_array_equal(_vlog_normal_array(x), _vlog_array(x))
    v = np.concatenate([_all_bit_patterns(dtype)[:4000], np.array([0.0, -0.0, fi.smallest_subnormal], dtype)])
    for eps in (dtype(1e-7), fi.tiny, dtype(0.0), fi.smallest_subnormal):
        out = np.empty((1, v.size), dtype)
        log_abs(v[None], v.size, eps, out)
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(out[0], _vlog_array(np.abs(v) + eps))

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_vsigmoid_matches_reference(dtype: Any) -> None:
    x = np.concatenate([_samples(dtype, -120.0, 120.0, 20_000), np.array([0, np.inf, -np.inf], dtype)])
    got = _vsigmoid_array(x)
    want = ref.sigmoid(x)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).smallest_subnormal)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_vtanh_accuracy(dtype: Any) -> None:
    """Within a few ulp of tanh on both sides of the switch at |x| = 0.625, over every bit pattern (subnormals
    kept, inf to +-1, NaN to NaN), odd and with the sign of zero."""
    fi = np.finfo(dtype)
    for x in (_samples(dtype, -1.0, 1.0), _samples(dtype, -0.7, 0.7), _samples(dtype, -30.0, 30.0),
              _all_bit_patterns(dtype)):
        assert _ulp_error(_vtanh_array(x), _exact(np.tanh, x), dtype) <= MAX_ULP[dtype]
    edge = np.nextafter(dtype(0.625), dtype(0))
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, edge, 0.625, -0.625, fi.smallest_subnormal, fi.tiny,
                         fi.max, -fi.max, 1e-30], dtype)
    got = _vtanh_array(specials)
    assert _ulp_error(got, _exact(np.tanh, specials), dtype) <= MAX_ULP[dtype]
    assert np.signbit(got[1]) and not np.signbit(got[0]) and list(got[2:4]) == [1.0, -1.0]
    x = _samples(dtype, -5.0, 5.0, 1000)
    np.testing.assert_array_equal(_vtanh_array(-x), -_vtanh_array(x))


def test_jit_falls_back_without_a_cache_locator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Numba can keep no cache (read-only package and home), the kernels compile per process."""
    from numba.core.caching import NullCache

    def no_locator(py_func: Any) -> Any:
        raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")

    monkeypatch.setattr(nm, "_PackageCache", no_locator)

    @nm.jit(error_model="numpy")
    def f(x):
        return nm.vexp(x) + 1.0

    assert isinstance(f._cache, NullCache)
    assert f(0.0) == 2.0
