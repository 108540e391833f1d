"""Random numbers inside compiled code: xoshiro256** (Blackman & Vigna), ``LANES`` streams side by side.

The streams run side by side so that the generator vectorises; a state has shape (4, LANES), uint64, and is
advanced in place.  A uniform is the top 24 (float32) or 53 (float64) bits of one output times ``2**-24`` or
``2**-53``: every value on that grid of ``[0, 1)`` equally likely.  :func:`rng_state` seeds a state with
SplitMix64, the seeding the generator's authors recommend.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._common import EW
from ._math import from_int_bits, jit as njit

__all__ = ["LANES", "rng_state", "draw", "fill_uniform", "uniforms", "check_state"]

LANES = 16  # xoshiro256** streams side by side
HALVES = 2  # passes of _fill_blocks over the streams (LANES / HALVES at a time)
_MASK64 = (1 << 64) - 1


def rng_state(seed: int) -> np.ndarray:
    """A fresh xoshiro256** state for :func:`uniforms` and the compiled training step, shape (4, 16), uint64.

    The 64 words come from SplitMix64 seeded with ``seed`` (the seeding its authors recommend), so no stream
    starts from the all-zero state and nearby seeds give unrelated streams.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    z, words = int(seed) & _MASK64, []
    for _ in range(4 * LANES):
        z = (z + 0x9E3779B97F4A7C15) & _MASK64
        w = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        w = ((w ^ (w >> 27)) * 0x94D049BB133111EB) & _MASK64
        words.append(w ^ (w >> 31))
    return np.array(words, dtype=np.uint64).reshape(4, LANES)


@njit(**EW)
def draw(state, out):
    """The next outputs of the ``L`` xoshiro256** streams in ``state`` (4, L), advanced in place, into ``out``
    (uint64, a multiple of ``L`` long): ``out[q]`` comes from stream ``q % L``.

    The state is worked on in local copies, one array per word, so that LLVM vectorises across the streams.
    The shift counts are written as ``np.uint64(k)`` in place: Numba types a module-level uint64 as int64, and
    uint64 mixed with int64 is float64 in Numba.
    """
    L = state.shape[1]
    s0, s1, s2, s3 = state[0].copy(), state[1].copy(), state[2].copy(), state[3].copy()
    for q0 in range(0, out.shape[0], L):
        for j in range(L):
            a0, a1, a2, a3 = s0[j], s1[j], s2[j], s3[j]
            r = a1 + (a1 << np.uint64(2))  # s1 * 5
            r = (r << np.uint64(7)) | (r >> np.uint64(57))
            out[q0 + j] = r + (r << np.uint64(3))  # * 9
            t = a1 << np.uint64(17)
            a2 ^= a0
            a3 ^= a1
            a1 ^= a2
            a0 ^= a3
            a2 ^= t
            s0[j], s1[j], s2[j] = a0, a1, a2
            s3[j] = (a3 << np.uint64(45)) | (a3 >> np.uint64(19))
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


def _splat(builder: ir.IRBuilder, ty: ir.Type, value: ir.Value, n: int) -> ir.Value:
    """``value`` in each of ``n`` lanes."""
    undef = ir.Constant(ir.VectorType(ty, n), ir.Undefined)
    first = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(first, undef, ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n))


@intrinsic
def _fill_blocks(typingctx, state, out, lo, span, nblocks):
    """``out[:nblocks * per] = lo + span * u`` for the next ``nblocks`` outputs of each of the ``LANES`` streams
    (``per = 2 * LANES`` uniforms a block for float32, ``LANES`` for float64), the numbers of
    :func:`fill_uniform`; ``state`` (4, LANES) is advanced in place.

    The step is written as LLVM vector code: the four state words stay in registers for the whole loop, which
    the array form of :func:`draw` cannot tell LLVM (it must assume that ``out`` and the state may overlap, so
    it keeps the state in memory).  The streams are taken in ``HALVES`` passes of ``LANES / HALVES`` each, so
    that a pass's state (4 words of ``<LANES / HALVES x i64>``) fits in the AVX2 registers beside its
    temporaries; pass ``h`` writes its part of every block, which gives the same numbers in the same places as
    one pass over all streams.  The float32 pair of an output is made from its two 32-bit halves (the output
    reinterpreted as ``<2 x i32>``: bits 9..31 of each half are bits 41..63 and 9..31 of the output), swapped
    into place.  The float is made as in :func:`fill_uniform` and ``lo + span * (f - 1)`` carries the same
    ``contract`` flag, so both give the same bits.
    """
    if not (isinstance(state, types.Array) and state.dtype == types.uint64 and state.ndim == 2
            and state.layout == "C" and isinstance(out, types.Array) and out.ndim == 1 and out.layout == "C"
            and out.dtype in (types.float32, types.float64) and lo == out.dtype and span == out.dtype
            and isinstance(nblocks, types.Integer)):
        return None
    f32 = out.dtype == types.float32

    def codegen(context, builder, sig, args):
        st = context.make_array(sig.args[0])(context, builder, args[0])
        ou = context.make_array(sig.args[1])(context, builder, args[1])
        i32, i64 = ir.IntType(32), ir.IntType(64)
        k = LANES // HALVES  # streams of one pass
        words = ir.VectorType(i64, k)
        ft = ir.FloatType() if f32 else ir.DoubleType()
        per = 2 * k if f32 else k  # floats of one pass in a block
        fvec = ir.VectorType(ft, per)

        def const(v, ty=words):
            return ir.Constant(ty, [v] * ty.count)

        def rotl(x, n):
            return builder.or_(builder.shl(x, const(n)), builder.lshr(x, const(64 - n)))

        lo_v, span_v = _splat(builder, ft, args[2], per), _splat(builder, ft, args[3], per)
        one = const(1.0, fvec)

        def scaled(bits):  # lo + span * (float(bits) - 1)
            prod = builder.fmul(span_v, builder.fsub(builder.bitcast(bits, fvec), one))
            prod.flags.append("contract")
            total = builder.fadd(lo_v, prod)
            total.flags.append("contract")
            return total

        src = builder.bitcast(st.data, i64.as_pointer())
        dst = builder.bitcast(ou.data, fvec.as_pointer())
        for h in range(HALVES):
            # state word w of streams h*k .. h*k+k-1, promoted to registers by LLVM
            addrs = [builder.bitcast(builder.gep(src, [ir.Constant(i64, w * LANES + h * k)]), words.as_pointer())
                     for w in range(4)]
            slots = [cgutils.alloca_once(builder, words) for _ in range(4)]
            for addr, slot in zip(addrs, slots):
                builder.store(builder.load(addr, align=8), slot)
            with cgutils.for_range(builder, args[4]) as loop:
                s0, s1, s2, s3 = (builder.load(slot) for slot in slots)
                r = builder.mul(rotl(builder.mul(s1, const(5)), 7), const(9))
                t = builder.shl(s1, const(17))
                s2 = builder.xor(s2, s0)
                s3 = builder.xor(s3, s1)
                s1 = builder.xor(s1, s2)
                s0 = builder.xor(s0, s3)
                s2 = builder.xor(s2, t)
                s3 = rotl(s3, 45)
                for slot, v in zip(slots, (s0, s1, s2, s3)):
                    builder.store(v, slot)
                if f32:  # u_2q from bits 41..63 (the high half), u_2q+1 from bits 9..31 (the low half)
                    halves = ir.VectorType(i32, per)
                    mant = builder.or_(builder.lshr(builder.bitcast(r, halves), const(9, halves)),
                                       const(0x3F800000, halves))
                    swap = ir.Constant(ir.VectorType(i32, per), [q ^ 1 for q in range(per)])
                    bits = builder.shuffle_vector(mant, mant, swap)
                else:
                    bits = builder.or_(builder.lshr(r, const(12)), const(0x3FF0000000000000))
                at = builder.add(builder.mul(loop.index, ir.Constant(i64, HALVES)), ir.Constant(i64, h))
                builder.store(scaled(bits), builder.gep(dst, [at]), align=4 if f32 else 8)
            for addr, slot in zip(addrs, slots):
                builder.store(builder.load(slot), addr, align=8)
        return context.get_dummy_value()

    return types.void(state, out, lo, span, nblocks), codegen


@njit(**EW)
def _fill_tail(state, lo, span, out):
    """:func:`fill_uniform` with :func:`draw`: whole blocks of ``L`` outputs are drawn and the unused end of the
    last one is dropped."""
    L = state.shape[1]
    n = out.shape[0]
    f32 = out.itemsize == 4
    words = (n + 1) // 2 if f32 else n
    bits = np.empty((words + L - 1) // L * L, np.uint64)
    draw(state, bits)
    one = out.dtype.type(1.0)
    for q in range(n):
        if f32:
            r = bits[q // 2] >> np.uint64(41) if q % 2 == 0 else (bits[q // 2] >> np.uint64(9)) & np.uint64(0x7FFFFF)
            out[q] = lo + span * (from_int_bits(np.int32(r | np.uint64(0x3F800000))) - one)
        else:
            r = (bits[q] >> np.uint64(12)) | np.uint64(0x3FF0000000000000)
            out[q] = lo + span * (from_int_bits(np.int64(r)) - one)


@njit(**EW)
def fill_uniform(state, lo, span, out):
    """``out[k] = lo + span * u_k`` with the next ``len(out)`` uniforms of the streams in ``state`` (4, LANES).

    ``u`` is built as a float in ``[1, 2)`` from random mantissa bits, minus 1.  float64 takes one number per
    output ``r_q`` (its top 52 bits); float32 two, ``u_2q`` from bits 41..63 and ``u_2q+1`` from bits 9..31.
    Whole blocks of ``LANES`` outputs are drawn and the unused end of the last one is dropped, so a call advances
    every stream by the same number of outputs.  ``out`` is C-contiguous; the whole blocks are made by
    :func:`_fill_blocks`, the rest by :func:`_fill_tail`.
    """
    per = 2 * LANES if out.itemsize == 4 else LANES
    blocks = out.shape[0] // per
    _fill_blocks(state, out, lo, span, blocks)
    if blocks * per < out.shape[0]:
        _fill_tail(state, lo, span, out[blocks * per:])


def uniforms(state: np.ndarray, n: int, dtype: Any = np.float32) -> np.ndarray:
    """The next ``n`` uniforms on ``[0, 1)`` of the generator state (advanced in place), the numbers a compiled
    training run with that state would use."""
    check_state(state)
    out = np.empty(int(n), np.dtype(dtype))
    fill_uniform(state, out.dtype.type(0.0), out.dtype.type(1.0), out)
    return out


def check_state(state: Any) -> None:
    """TypeError unless ``state`` is a writeable C-contiguous uint64 array of shape (4, LANES); ValueError when
    a stream is all zero (it would stay zero)."""
    if not (isinstance(state, np.ndarray) and state.dtype == np.uint64 and state.shape == (4, LANES)
            and state.flags.c_contiguous and state.flags.writeable):
        raise TypeError("state must be a writeable C-contiguous uint64 array of shape (4, 16) from rng_state()")
    if not state.any(axis=0).all():
        raise ValueError("a xoshiro256** stream must not be all zero; make the state with rng_state()")
