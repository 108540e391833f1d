"""Random numbers inside compiled code: xoshiro256** (Blackman & Vigna), ``LANES`` streams side by side.

The streams run side by side so that the generator vectorises; a state has shape (4, LANES), uint64, and is
advanced in place.  A uniform is the top 24 (float32) or 53 (float64) bits of one output times ``2**-24`` or
``2**-53``: every value on that grid of ``[0, 1)`` equally likely.  :func:`rng_state` seeds a state with
SplitMix64, the seeding the generator's authors recommend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import EW
from ._math import from_int_bits, jit as njit

__all__ = ["LANES", "rng_state", "draw", "fill_uniform", "uniforms", "check_state"]

LANES = 16  # xoshiro256** streams side by side
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


@njit(**EW)
def fill_uniform(state, lo, span, out):
    """``out[k] = lo + span * u_k`` with the next ``len(out)`` uniforms of the streams in ``state`` (4, L).

    ``u`` is built as a float in ``[1, 2)`` from random mantissa bits, minus 1.  float64 takes one number per
    output ``r_q`` (its top 52 bits); float32 two, ``u_2q`` from bits 41..63 and ``u_2q+1`` from bits 9..31.
    Whole blocks of ``L`` outputs are drawn and the unused end of the last one is dropped, so a call advances
    every stream by the same number of outputs.
    """
    L = state.shape[1]
    n = out.shape[0]
    f32 = out.itemsize == 4
    words = (n + 1) // 2 if f32 else n
    bits = np.empty((words + L - 1) // L * L, np.uint64)
    draw(state, bits)
    one = out.dtype.type(1.0)
    if f32:
        for q in range(n // 2):
            r = bits[q]
            hi = np.int32((r >> np.uint64(41)) | np.uint64(0x3F800000))
            low = np.int32(((r >> np.uint64(9)) & np.uint64(0x7FFFFF)) | np.uint64(0x3F800000))
            out[2 * q] = lo + span * (from_int_bits(hi) - one)
            out[2 * q + 1] = lo + span * (from_int_bits(low) - one)
        if n % 2:
            hi = np.int32((bits[n // 2] >> np.uint64(41)) | np.uint64(0x3F800000))
            out[n - 1] = lo + span * (from_int_bits(hi) - one)
    else:
        for q in range(n):
            r = (bits[q] >> np.uint64(12)) | np.uint64(0x3FF0000000000000)
            out[q] = lo + span * (from_int_bits(np.int64(r)) - one)


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
