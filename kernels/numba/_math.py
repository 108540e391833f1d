"""Vectorisable ``exp``, ``log`` and ``tanh`` for Numba kernels, in float32 and float64.

Numba on a machine without Intel's SVML compiles ``math.exp`` / ``np.exp`` inside a loop to a scalar call into
libm, so a loop that calls them is never vectorised.  The functions here are written with only arithmetic,
comparisons, ``floor`` and bit casts, which LLVM turns into SIMD code when it vectorises the calling loop.

Accuracy (tested against NumPy in ``tests/kernels/test_numba_math.py``): a few ulp over the whole range,
including overflow to ``inf``, gradual underflow to subnormals and 0, ``log`` of subnormals, of 0 (``-inf``),
of negative numbers (NaN), and of ``inf`` and NaN.

Algorithms
----------
``exp``: ``n = floor(x log2(e) + 1/2)``, ``r = x - n ln2`` in two parts (Cody and Waite), a polynomial for
``exp(r)`` on ``|r| <= ln2 / 2`` (float32: the Cephes ``expf`` minimax polynomial; float64: Taylor to degree
13, truncation below 1e-17), then the scale ``2**n`` applied as two exact powers of two
``2**(n // 2) * 2**(n - n // 2)`` built from their bits, so that results near overflow and in the subnormal
range need no branch.

``log``: ``x = m 2**e`` with ``m`` in ``[sqrt(1/2), sqrt(2))`` from the bits (subnormal ``x`` scaled up first);
float32: the Cephes ``logf`` polynomial in ``m - 1``; float64: ``log m = 2 atanh(s)``, ``s = (m-1)/(m+1)``,
the odd series to ``s**23`` (truncation below 1e-19 for ``|s| <= 0.172``); then ``+ e ln2`` in two parts.

``tanh`` (Cephes ``tanhf`` / ``tanh``): for ``|x| < 0.625`` ``x (1 + z P(z))`` (float32) or ``x (1 + z P(z) / Q(z))``
(float64), ``z = x**2``; above, ``sign(x) (1 - 2 / (exp(2|x|) + 1))``, which reaches 1 where ``exp`` overflows.

The only fast-math flag they are compiled with is ``contract`` (fused multiply-add, which is at least as
accurate); the range reduction relies on the order of its operations, so never ``reassoc``.  Fast-math flags
are per instruction in LLVM, so when LLVM inlines them into a caller compiled with ``reassoc`` they stay exact.

Every kernel of the package is compiled with :func:`jit`, whose on-disk cache is stamped with the hash of all
the package's sources: editing any kernel file recompiles every kernel (Numba's own stamp is the function's
file only, which kept callers in other files on stale code).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from llvmlite import ir
import numba
from numba.core.caching import FunctionCache, IndexDataCacheFile
from numba import types
from numba.extending import intrinsic, overload

__all__ = ["jit", "STAMP", "sources_stamp", "vexp", "vlog", "vlog_normal", "vsigmoid", "vtanh", "as_int_bits", "from_int_bits"]


def sources_stamp(folder: str) -> str:
    """The SHA-256 of the ``*.py`` files in ``folder`` (names and contents, in name order)."""
    digest = hashlib.sha256()
    for name in sorted(f for f in os.listdir(folder) if f.endswith(".py")):
        with open(os.path.join(folder, name), "rb") as f:
            digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


#: the stamp of every cached kernel of this package: the hash of all its sources
STAMP = sources_stamp(os.path.dirname(os.path.abspath(__file__)))


class _PackageCache(FunctionCache):
    """Numba's on-disk cache of one function, stamped with :data:`STAMP` instead of its own file's hash.

    Numba keys a cached function on its own source file only, so a function that calls block functions of
    another module (``train.run`` calls ``nmu_block_backward`` ...) would keep their old compiled code after
    they were edited in a source checkout.  With the package's hash, an edit of any kernel file recompiles
    every kernel.  The location is Numba's (``__pycache__`` beside the source, a per-user directory where that
    is read-only, or ``NUMBA_CACHE_DIR``).
    """

    def __init__(self, py_func):
        super().__init__(py_func)
        self._cache_file = IndexDataCacheFile(cache_path=self._cache_path, filename_base=self._impl.filename_base,
                                              source_stamp=STAMP)


def jit(**options):
    """``numba.njit(nogil=True, **options)`` with the on-disk cache of :class:`_PackageCache`, or without a
    cache where Numba cannot keep one (no writable location: the function is compiled in each process
    instead of failing at import)."""

    def decorate(fn):
        dispatcher = numba.njit(nogil=True, **options)(fn)
        try:
            dispatcher._cache = _PackageCache(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
        return dispatcher

    return decorate


# ---------------------------------------------------------------------------------------------------------
# bit casts (the float's bits as the signed integer of the same width, and back)
# ---------------------------------------------------------------------------------------------------------

_INT_OF = {types.float32: types.int32, types.float64: types.int64}
_FLOAT_OF = {types.int32: types.float32, types.int64: types.float64}


@intrinsic
def as_int_bits(typingctx, x):
    """The bits of a float32 / float64 as int32 / int64."""
    if x not in _INT_OF:
        return None
    rt = _INT_OF[x]

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(rt.bitwidth))

    return rt(x), codegen


@intrinsic
def from_int_bits(typingctx, i):
    """The float32 / float64 whose bits are the int32 / int64 ``i``."""
    if i not in _FLOAT_OF:
        return None
    rt = _FLOAT_OF[i]

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType() if rt == types.float32 else ir.DoubleType())

    return rt(i), codegen


# ---------------------------------------------------------------------------------------------------------
# float32
# ---------------------------------------------------------------------------------------------------------

_f4 = np.float32
_i4 = np.int32
_EXP32_HI = _f4(88.72283935546875)  # largest x with a finite float32 exp(x), rounded up
_EXP32_LO = _f4(-103.97283935546875)  # below: exp(x) < half the smallest subnormal
_INF32 = _f4(np.inf)


@jit(error_model="numpy", fastmath={"contract"})
def _pow2_32(k):
    """``2.0**k`` as float32 for ``-126 <= k <= 127``, from its bits."""
    return from_int_bits(_i4((k + 127) << 23))


@jit(error_model="numpy", fastmath={"contract"})
def _exp32(x):
    xc = x if x < _EXP32_HI else _EXP32_HI  # NaN goes to HI here; restored below
    xc = xc if xc > _EXP32_LO else _EXP32_LO
    n = np.floor(xc * _f4(1.44269504088896341) + _f4(0.5))
    r = xc - n * _f4(0.693359375)
    r = r - n * _f4(-2.12194440e-4)
    z = r * r
    p = _f4(1.9875691500e-4)
    p = p * r + _f4(1.3981999507e-3)
    p = p * r + _f4(8.3334519073e-3)
    p = p * r + _f4(4.1665795894e-2)
    p = p * r + _f4(1.6666665459e-1)
    p = p * r + _f4(5.0000001201e-1)
    p = p * z + r + _f4(1.0)
    k = _i4(n)
    k1 = k >> _i4(1)
    y = p * _pow2_32(k1) * _pow2_32(k - k1)
    y = _INF32 if x > _EXP32_HI else y
    y = _f4(0.0) if x < _EXP32_LO else y
    return x + x if x != x else y


_SQRTHF32 = _f4(0.707106781186547524)
_TWO23 = _f4(8388608.0)
_TINY32 = _f4(np.finfo(np.float32).tiny)


@jit(error_model="numpy", fastmath={"contract"}, inline="always")
def _log32_core(xs, shift):
    """``log(xs) - shift * log(2)`` for a positive normal float32 ``xs`` (Cephes ``logf``)."""
    bits = as_int_bits(xs)
    e = ((bits >> 23) & 0xFF) - 126 - shift
    m = from_int_bits(_i4((bits & _i4(-2139095041)) | 0x3F000000))  # mantissa in [0.5, 1); -2139095041 = 0x807FFFFF
    small = m < _SQRTHF32
    e = e - 1 if small else e
    m = (m + m if small else m) - _f4(1.0)
    ef = _f4(_i4(e))  # through int32: AVX2 has no vector int64 -> float conversion
    z = m * m
    p = _f4(7.0376836292e-2)
    p = p * m + _f4(-1.1514610310e-1)
    p = p * m + _f4(1.1676998740e-1)
    p = p * m + _f4(-1.2420140846e-1)
    p = p * m + _f4(1.4249322787e-1)
    p = p * m + _f4(-1.6668057665e-1)
    p = p * m + _f4(2.0000714765e-1)
    p = p * m + _f4(-2.4999993993e-1)
    p = p * m + _f4(3.3333331174e-1)
    y = p * m * z
    y = y + ef * _f4(-2.12194440e-4)
    y = y - _f4(0.5) * z
    return (m + y) + ef * _f4(0.693359375)


@jit(error_model="numpy", fastmath={"contract"})
def _log32(x):
    sub = x < _TINY32
    y = _log32_core(x * _TWO23 if sub else x, 23 if sub else 0)
    y = _INF32 if x == _INF32 else y
    y = -_INF32 if x == _f4(0.0) else y
    return _f4(np.nan) if x < _f4(0.0) else (x + x if x != x else y)


@jit(error_model="numpy", fastmath={"contract"})
def _log32_normal(x):
    return x if not x < _INF32 else _log32_core(x, 0)  # inf and NaN are their own log


_TANH_SMALL = 0.625  # below: the odd polynomial / rational function; above: 1 - 2 / (exp(2|x|) + 1)


@jit(error_model="numpy", fastmath={"contract"}, inline="always")  # too big for LLVM to inline: a call keeps loops scalar
def _tanh32(x):
    a = abs(x)
    z = x * x
    p = _f4(-5.70498872745e-3)
    p = p * z + _f4(2.06390887954e-2)
    p = p * z + _f4(-5.37397155531e-2)
    p = p * z + _f4(1.33314422036e-1)
    p = p * z + _f4(-3.33332819422e-1)
    small = x * (p * z + _f4(1.0))  # as a product, so that tanh(-0) = -0
    big = _f4(1.0) - _f4(2.0) / (_exp32(a + a) + _f4(1.0))
    big = big if x >= _f4(0.0) else -big
    return small if a < _f4(_TANH_SMALL) else big


# ---------------------------------------------------------------------------------------------------------
# float64
# ---------------------------------------------------------------------------------------------------------

_f8 = np.float64
_i8 = np.int64
_EXP64_HI = 709.782712893384  # largest x with a finite exp(x)
_EXP64_LO = -745.1332191019412  # below: exp(x) rounds to 0
_LN2_HI = 6.93145751953125e-1  # few significant bits: n * _LN2_HI is exact
_LN2_LO = 1.42860682030941723212e-6
_INV_FACT = tuple(1.0 / float(np.prod(np.arange(1, k + 1, dtype=np.float64))) for k in range(14))


@jit(error_model="numpy", fastmath={"contract"})
def _pow2_64(k):
    """``2.0**k`` as float64 for ``-1022 <= k <= 1023``, from its bits."""
    return from_int_bits((k + _i8(1023)) << _i8(52))


@jit(error_model="numpy", fastmath={"contract"})
def _exp64(x):
    xc = x if x < _EXP64_HI else _EXP64_HI
    xc = xc if xc > _EXP64_LO else _EXP64_LO
    n = np.floor(xc * 1.4426950408889634 + 0.5)
    r = (xc - n * _LN2_HI) - n * _LN2_LO
    c = _INV_FACT
    p = c[13]
    p = p * r + c[12]
    p = p * r + c[11]
    p = p * r + c[10]
    p = p * r + c[9]
    p = p * r + c[8]
    p = p * r + c[7]
    p = p * r + c[6]
    p = p * r + c[5]
    p = p * r + c[4]
    p = p * r + c[3]
    p = p * r + c[2]
    p = p * r * r + r + 1.0
    k = _i8(_i4(n))  # through int32 (|n| <= 1075), which AVX2 converts in vectors
    k1 = k >> _i8(1)
    y = p * _pow2_64(k1) * _pow2_64(k - k1)
    y = np.inf if x > _EXP64_HI else y
    y = 0.0 if x < _EXP64_LO else y
    return x + x if x != x else y


_SQRTH64 = 0.7071067811865476
_TWO52 = 4503599627370496.0
_TINY64 = float(np.finfo(np.float64).tiny)
_MANT_MASK64 = np.int64(-9218868437227405313)  # 0x800FFFFFFFFFFFFF: sign and mantissa
_HALF_EXP64 = np.int64(0x3FE0000000000000)  # exponent of 0.5


@jit(error_model="numpy", fastmath={"contract"}, inline="always")
def _log64_core(xs, shift):
    """``log(xs) - shift * log(2)`` for a positive normal float64 ``xs`` (fdlibm's form)."""
    bits = as_int_bits(xs)
    e = ((bits >> _i8(52)) & _i8(0x7FF)) - _i8(1022) - _i8(shift)
    m = from_int_bits((bits & _MANT_MASK64) | _HALF_EXP64)  # in [0.5, 1)
    small = m < _SQRTH64
    e = e - _i8(1) if small else e
    m = m + m if small else m  # in [sqrt(1/2), sqrt(2))
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    p = 1.0 / 23.0
    p = p * z + 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    ef = _f8(_i4(e))  # through int32: AVX2 has no vector int64 -> float conversion
    # log m = 2 s + 2 s^3 p(s^2); 2 s = (m - 1) - s (m - 1) keeps the leading term exact-ish
    f = m - 1.0
    hfsq = 0.5 * f * f
    r = s * (hfsq + 2.0 * z * p)  # log m = f - hfsq + r, since 2 s = f - s f
    return ef * _LN2_HI + (f - (hfsq - (r + ef * _LN2_LO)))


@jit(error_model="numpy", fastmath={"contract"})
def _log64(x):
    sub = x < _TINY64
    y = _log64_core(x * _TWO52 if sub else x, 52 if sub else 0)
    y = np.inf if x == np.inf else y
    y = -np.inf if x == 0.0 else y
    return np.nan if x < 0.0 else (x + x if x != x else y)


@jit(error_model="numpy", fastmath={"contract"})
def _log64_normal(x):
    return x if not x < np.inf else _log64_core(x, 0)  # inf and NaN are their own log


_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)


@jit(error_model="numpy", fastmath={"contract"}, inline="always")  # too big for LLVM to inline: a call keeps loops scalar
def _tanh64(x):
    a = abs(x)
    z = x * x
    p = (_TANH_P[0] * z + _TANH_P[1]) * z + _TANH_P[2]
    q = ((z + _TANH_Q[0]) * z + _TANH_Q[1]) * z + _TANH_Q[2]
    small = x * (z * (p / q) + 1.0)  # as a product, so that tanh(-0) = -0
    big = 1.0 - 2.0 / (_exp64(a + a) + 1.0)
    big = big if x >= 0.0 else -big
    return small if a < _TANH_SMALL else big


# ---------------------------------------------------------------------------------------------------------
# dtype-generic entry points
# ---------------------------------------------------------------------------------------------------------


def vexp(x):
    """``exp(x)`` for a float32 or float64 scalar inside a jitted function (vectorisable)."""
    raise NotImplementedError("vexp is only callable from jitted code")


def vlog(x):
    """``log(x)`` for a float32 or float64 scalar inside a jitted function (vectorisable)."""
    raise NotImplementedError("vlog is only callable from jitted code")


def vlog_normal(x):
    """``log(x)`` for ``x`` a positive normal float32 or float64 (at least the dtype's smallest normal number),
    ``inf`` or NaN, inside a jitted function: :func:`vlog` without its cases of subnormal, zero and negative
    ``x`` (the same bits where both apply, about a third fewer operations: ``log(|x| + eps)`` with
    ``eps >= tiny``)."""
    raise NotImplementedError("vlog_normal is only callable from jitted code")


def vsigmoid(z):
    """The logistic function of a float32 or float64 scalar inside a jitted function (stable, vectorisable)."""
    raise NotImplementedError("vsigmoid is only callable from jitted code")


def vtanh(x):
    """``tanh(x)`` for a float32 or float64 scalar inside a jitted function (vectorisable)."""
    raise NotImplementedError("vtanh is only callable from jitted code")


def _by_dtype(fn, f32, f64, **options):
    """Overload the scalar function ``fn`` with the jitted ``f32`` for a float32 argument and ``f64`` for a
    float64 one (``options``: of :func:`numba.extending.overload`)."""
    def typer(x):
        if x == types.float32:
            return lambda x: f32(x)
        if x == types.float64:
            return lambda x: f64(x)
        return None

    overload(fn, **options)(typer)


_by_dtype(vexp, _exp32, _exp64)
_by_dtype(vlog, _log32, _log64)
_by_dtype(vlog_normal, _log32_normal, _log64_normal)


@overload(vsigmoid)
def _ov_vsigmoid(z):
    if z not in (types.float32, types.float64):
        return None
    one = (np.float32 if z == types.float32 else np.float64)(1.0)

    def impl(z):
        e = vexp(-abs(z))
        return (one if z >= 0 else e) / (one + e)

    return impl


_by_dtype(vtanh, _tanh32, _tanh64, inline="always")
