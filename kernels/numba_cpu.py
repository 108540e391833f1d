"""Numba CPU backend: fused forward and backward kernels of the arithmetic units.

The functions have the names and signatures of :mod:`nalu_np.reference` and compute the same values in the
dtype of their input (float32 or float64; Numba compiles one version per dtype on first use).

How the work is laid out
------------------------
Three paths, chosen per call from the shape:

*fused* (few inputs, e.g. ``(1048576, 2, 1)``): the batch is cut into blocks of ``nb`` rows (:func:`_plan`);
each block is transposed into buffers of shape ``(features, nb)`` so that every inner loop runs over rows,
contiguous, and LLVM vectorises it (``exp`` and ``log`` included, see :mod:`nalu_np.kernels.numba_math`).  One
sweep over ``x`` does the whole forward pass, one sweep the whole backward pass.  When the block values fit
in ``KEEP_MAX_BYTES`` the forward pass keeps them for the backward pass; otherwise the backward pass
recomputes them from ``x`` (fresh memory beyond what malloc reuses costs page faults that exceed the
recomputation).

*rows* (NALU with ``in_features >= ROWS_MIN_IN``, e.g. ``(128, 100, 2)``): row by row, every inner loop runs
over the contiguous inputs of one row (``log``, dot products, ``dx`` and weight-gradient updates); ``l``,
``a``, ``m``, ``g`` are kept for the backward pass.

*blas* (``in_features * out_features >= BLAS_MIN_WEIGHTS``, e.g. ``(65536, 64, 64)``): the matrix products go
to NumPy's BLAS, with the products that share an operand concatenated (``x @ [W_a | G]``, ``x.T @ [da | dh]``,
``[da | dh] @ [W_a | G].T``), and the elementwise work is done in a few Numba passes on the calling thread:
parallel Numba passes between BLAS calls leave two thread pools (Numba's OpenMP, OpenBLAS's) spin-waiting
against each other on the same cores, which measured 2.6 times slower for the forward pass at
``(65536, 64, 64)``.  Both passes go through the batch in chunks of ``BLAS_CHUNK_ROWS`` rows (products, then
the elementwise passes on their results while these are in cache); the weight gradients are summed over the
chunks in float64.  The arrays that the forward pass keeps for the backward pass (``l``, ``[a | g]``, ``m``)
and the backward pass's chunk buffers come from a small free list (:class:`_Work`) and go back to it when the
cache (or the backward call) is done with them: fresh arrays of tens of MB page-fault on every call, which
cost more than the products at ``(65536, 64, 64)``.

In the fused and rows paths the batch is split into one contiguous chunk per thread (``prange``); weight
gradients are summed per chunk into ``partial[chunk]`` (float64) and added up after the parallel loop, so no
two threads write the same memory.  A batch too small to share runs on the calling thread without starting the
thread pool.  Weights (``tanh(W_hat) sigma(M_hat)``), the passes and the chain rule back to the raw weights run
in one compiled call per pass for the NALU, so that small batches pay little interpreter overhead.

The cache is a tuple private to this module: callers pass it back to the backward function unchanged.

Numerics are those of the reference: ``exp`` overflows to ``inf`` (a result, no warning), ``(1 - g) * inf`` with
``g == 1`` is NaN, the slope of ``log(|x| + eps)`` at ``x = 0`` is 0.  No fast-math flag that assumes finite
values is used; loops that sum (weight gradients) allow reassociation, which only changes rounding.
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
from numba import prange

from .numba_math import jit as njit, vexp, vlog, vsigmoid

__all__ = [
    "nac_forward",
    "nac_backward",
    "nacmul_forward",
    "nacmul_backward",
    "nalu_forward",
    "nalu_backward",
    "nau_forward",
    "nau_backward",
    "nmu_forward",
    "nmu_backward",
    "inalu_forward",
    "inalu_backward",
    "npu_forward",
    "npu_backward",
    "realnpu_forward",
    "realnpu_backward",
]

name = "numba"
xp = np
array_type = np.ndarray

Params = dict[str, np.ndarray]

# Tuning knobs of _plan (module attributes so that tests can force small blocks and several chunks).
BLOCK_BYTES = 48 * 1024  # target size of one thread's block buffers (stays in L2)
MAX_BLOCK_ROWS = 512
MIN_CHUNK_ROWS = 4096  # fewer rows per thread than this: run on one thread
BLAS_MIN_WEIGHTS = 1024  # in_features * out_features from which the matrix products go to BLAS
BLAS_CHUNK_ROWS = 2048  # rows per chunk of the blas path
ROWS_MIN_IN = 16  # NALU with at least this many inputs (and no BLAS) works row by row
# The fused forward keeps its block values for the backward pass up to this size: in one allocation, which
# glibc's malloc reuses from call to call below its largest mmap threshold (32 MiB); beyond, every call would
# page-fault fresh memory, which costs more than recomputing the values from x.
KEEP_MAX_BYTES = 30 << 20
FREE_MAX = 4  # sets of blas-path work arrays kept for reuse (one forward cache alive, one dying, one backward)
_FREE: list[tuple[Any, tuple[np.ndarray, ...]]] = []
_FREE_LOCK = threading.Lock()

_EW = dict(error_model="numpy", fastmath={"contract"})  # elementwise: exact IEEE semantics
_SUM = dict(error_model="numpy", fastmath={"reassoc", "contract", "nsz"})  # reductions: only rounding changes
_PAR = dict(error_model="numpy", fastmath={"contract"}, parallel=True)


# ---------------------------------------------------------------------------------------------------------
# input checks and the plan
# ---------------------------------------------------------------------------------------------------------


def _check(x: np.ndarray, params: Params, dy: np.ndarray | None = None) -> np.dtype:
    """The common dtype of ``x``, ``params`` and ``dy``; TypeError for anything else."""
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise TypeError(f"x must be a 2-d numpy.ndarray, got {type(x).__name__} {getattr(x, 'shape', '')}")
    dt = x.dtype
    if dt not in (np.float32, np.float64):
        raise TypeError(f"the numba backend computes in float32 or float64, got x of dtype {dt}")
    named = list(params.items()) + ([] if dy is None else [("dy", dy)])
    for k, v in named:
        if not isinstance(v, np.ndarray) or v.dtype != dt:
            raise TypeError(f"{k} must be a numpy.ndarray of dtype {dt} like x, got {getattr(v, 'dtype', type(v))}")
    return dt


def _plan(batch: int, n_in: int, n_out: int, itemsize: int) -> tuple[int, int]:
    """Rows per block and number of chunks (threads) for the fused path."""
    per_row = (3 * n_in + 4 * n_out) * itemsize
    nb = int(max(8, min(MAX_BLOCK_ROWS, BLOCK_BYTES // per_row)))
    nb -= nb % 8
    nblocks = -(-batch // nb)
    nchunks = max(1, min(numba.get_num_threads(), nblocks, batch // MIN_CHUNK_ROWS))
    return nb, nchunks


def _use_blas(n_in: int, n_out: int) -> bool:
    return n_in * n_out >= BLAS_MIN_WEIGHTS


def _keep(batch: int, n_in: int, n_out: int, nb: int, itemsize: int) -> bool:
    """Whether the forward pass keeps its block values for the backward pass (when they are small: fresh
    large arrays cost page faults and memory traffic that recomputing from ``x`` does not)."""
    return -(-batch // nb) * nb * (2 * n_in + 3 * n_out) * itemsize <= KEEP_MAX_BYTES


# ---------------------------------------------------------------------------------------------------------
# NAC weights: W = tanh(W_hat) * sigma(M_hat)
# ---------------------------------------------------------------------------------------------------------


@njit(**_EW)
def _nac_weight(W_hat, M_hat):
    t = np.tanh(W_hat)
    s = np.empty_like(M_hat)
    for i in range(M_hat.shape[0]):
        for j in range(M_hat.shape[1]):
            s[i, j] = vsigmoid(M_hat[i, j])
    return t * s, t, s


@njit(**_EW)
def _nac_weight_backward(dW, t, s):
    """``dW_hat = dW (1 - t^2) s``, ``dM_hat = dW t s (1 - s)``, in the dtype of ``t``."""
    dt = t.dtype
    one = dt.type(1.0)
    dW_hat = np.empty_like(t)
    dM_hat = np.empty_like(t)
    for i in range(t.shape[0]):
        for j in range(t.shape[1]):
            d = dt.type(dW[i, j])
            dW_hat[i, j] = d * (one - t[i, j] * t[i, j]) * s[i, j]
            dM_hat[i, j] = d * t[i, j] * s[i, j] * (one - s[i, j])
    return dW_hat, dM_hat


@njit(**_SUM)
def _sum_partials(p):
    """``p.sum(axis=0)`` of the per-chunk partial sums, shape (chunks, I, O) -> (I, O)."""
    out = np.zeros(p.shape[1:], np.float64)
    for c in range(p.shape[0]):
        out += p[c]
    return out


# ---------------------------------------------------------------------------------------------------------
# block helpers of the fused path (buffers have shape (features, nb); loops over rows innermost)
# ---------------------------------------------------------------------------------------------------------


@njit(**_EW)
def _load(a, r0, nb, aT):
    """``aT[j, r] = a[r0 + r, j]`` for ``r < nb`` (``a`` C-contiguous; flat indexing, and constant strides
    for one and two columns, let LLVM vectorise)."""
    n = a.shape[1]
    flat = a.reshape(-1)
    if n == 1:
        for r in range(nb):
            aT[0, r] = flat[r0 + r]
    elif n == 2:
        for r in range(nb):
            aT[0, r] = flat[2 * (r0 + r)]
            aT[1, r] = flat[2 * (r0 + r) + 1]
    else:
        for j in range(n):
            for r in range(nb):
                aT[j, r] = flat[(r0 + r) * n + j]


@njit(**_EW)
def _store(aT, r0, nb, a):
    """``a[r0 + r, j] = aT[j, r]`` for ``r < nb`` (``a`` C-contiguous)."""
    n = a.shape[1]
    flat = a.reshape(-1)
    if n == 1:
        for r in range(nb):
            flat[r0 + r] = aT[0, r]
    elif n == 2:
        for r in range(nb):
            flat[2 * (r0 + r)] = aT[0, r]
            flat[2 * (r0 + r) + 1] = aT[1, r]
    else:
        for j in range(n):
            for r in range(nb):
                flat[(r0 + r) * n + j] = aT[j, r]


@njit(**_EW)
def _log_abs(xT, nb, eps, lT):
    """``lT = log(|xT| + eps)``."""
    for i in range(xT.shape[0]):
        for r in range(nb):
            lT[i, r] = vlog(abs(xT[i, r]) + eps)


@njit(**_EW)
def _times_log_abs_grad(tT, xT, nb, eps):
    """``tT *= sign(xT) / (|xT| + eps)``."""
    for i in range(xT.shape[0]):
        for r in range(nb):
            v = xT[i, r]
            tT[i, r] = tT[i, r] * (np.sign(v) / (abs(v) + eps))


@njit(**_EW)
def _matmul(inT, nb, W, outT):
    """``outT[o, r] = sum_i inT[i, r] W[i, o]``."""
    for o in range(W.shape[1]):
        for r in range(nb):
            outT[o, r] = 0.0
        for i in range(W.shape[0]):
            w = W[i, o]
            for r in range(nb):
                outT[o, r] += inT[i, r] * w


@njit(**_EW)
def _matmul_t(dT, nb, W, outT, accumulate):
    """``outT[i, r] (+)= sum_o dT[o, r] W[i, o]``."""
    for i in range(W.shape[0]):
        if not accumulate:
            for r in range(nb):
                outT[i, r] = 0.0
        for o in range(W.shape[1]):
            w = W[i, o]
            for r in range(nb):
                outT[i, r] += dT[o, r] * w


@njit(**_SUM)
def _grad(inT, dT, nb, acc):
    """``acc[i, o] += sum_r inT[i, r] dT[o, r]`` (a block of ``in.T @ d``; ``acc`` is float64)."""
    zero = inT.dtype.type(0.0)
    for i in range(acc.shape[0]):
        for o in range(acc.shape[1]):
            s = zero
            for r in range(nb):
                s += inT[i, r] * dT[o, r]
            acc[i, o] += s


@njit(**_EW)
def _block_range(c, nchunks, batch, nb):
    nblocks = (batch + nb - 1) // nb
    return c * nblocks // nchunks, (c + 1) * nblocks // nchunks


# ---------------------------------------------------------------------------------------------------------
# fused path: NAC
# ---------------------------------------------------------------------------------------------------------


@njit(**_EW)
def _nac_fwd_chunk(x, W, nb, c, nchunks, y):
    B, I = x.shape
    xT = np.empty((I, nb), x.dtype)
    yT = np.empty((W.shape[1], nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _load(x, r0, n, xT)
        _matmul(xT, n, W, yT)
        _store(yT, r0, n, y)


@njit(**_PAR)
def _nac_fwd(x, W, nb, nchunks, y):
    if nchunks == 1:
        _nac_fwd_chunk(x, W, nb, 0, 1, y)
    else:
        for c in prange(nchunks):
            _nac_fwd_chunk(x, W, nb, c, nchunks, y)


@njit(**_EW)
def _nac_bwd_chunk(x, dy, W, nb, c, nchunks, dx, pW):
    B, I = x.shape
    O = W.shape[1]
    xT = np.empty((I, nb), x.dtype)
    dT = np.empty((O, nb), x.dtype)
    tT = np.empty((I, nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _load(x, r0, n, xT)
        _load(dy, r0, n, dT)
        _grad(xT, dT, n, pW)
        _matmul_t(dT, n, W, tT, False)
        _store(tT, r0, n, dx)


@njit(**_PAR)
def _nac_bwd(x, dy, W, nb, nchunks, dx, pW):
    if nchunks == 1:
        _nac_bwd_chunk(x, dy, W, nb, 0, 1, dx, pW[0])
    else:
        for c in prange(nchunks):
            _nac_bwd_chunk(x, dy, W, nb, c, nchunks, dx, pW[c])


# ---------------------------------------------------------------------------------------------------------
# fused path: NACMul
# ---------------------------------------------------------------------------------------------------------


@njit(**_EW)
def _nacmul_block(x, r0, n, W, eps, xT, lT, mT):
    """Forward values of one block: ``xT``, ``lT = log(|x| + eps)``, ``mT = exp(l @ W)``."""
    _load(x, r0, n, xT)
    _log_abs(xT, n, eps, lT)
    _matmul(lT, n, W, mT)
    for o in range(mT.shape[0]):
        for r in range(n):
            mT[o, r] = vexp(mT[o, r])


@njit(**_EW)
def _nacmul_fwd_chunk(x, W, eps, nb, c, nchunks, y):
    B, I = x.shape
    xT = np.empty((I, nb), x.dtype)
    lT = np.empty((I, nb), x.dtype)
    mT = np.empty((W.shape[1], nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _nacmul_block(x, r0, n, W, eps, xT, lT, mT)
        _store(mT, r0, n, y)


@njit(**_PAR)
def _nacmul_fwd(x, W, eps, nb, nchunks, y):
    if nchunks == 1:
        _nacmul_fwd_chunk(x, W, eps, nb, 0, 1, y)
    else:
        for c in prange(nchunks):
            _nacmul_fwd_chunk(x, W, eps, nb, c, nchunks, y)


@njit(**_EW)
def _nacmul_bwd_chunk(x, dy, W, eps, nb, c, nchunks, dx, pW):
    B, I = x.shape
    O = W.shape[1]
    xT = np.empty((I, nb), x.dtype)
    lT = np.empty((I, nb), x.dtype)
    mT = np.empty((O, nb), x.dtype)
    tT = np.empty((I, nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _nacmul_block(x, r0, n, W, eps, xT, lT, mT)
        for o in range(O):
            for r in range(n):
                mT[o, r] = dy[r0 + r, o] * mT[o, r]  # dz = delta * y
        _grad(lT, mT, n, pW)
        _matmul_t(mT, n, W, tT, False)
        _times_log_abs_grad(tT, xT, n, eps)
        _store(tT, r0, n, dx)


@njit(**_PAR)
def _nacmul_bwd(x, dy, W, eps, nb, nchunks, dx, pW):
    if nchunks == 1:
        _nacmul_bwd_chunk(x, dy, W, eps, nb, 0, 1, dx, pW[0])
    else:
        for c in prange(nchunks):
            _nacmul_bwd_chunk(x, dy, W, eps, nb, c, nchunks, dx, pW[c])


# ---------------------------------------------------------------------------------------------------------
# fused path: NALU
# ---------------------------------------------------------------------------------------------------------


@njit(**_EW)
def _nalu_block(x, r0, n, Wa, Wm, G, eps, xT, lT, aT, mT, gT):
    """Forward values of one block: ``a = x @ W_a``, ``m = exp(l @ W_m)``, ``g = sigma(x @ G)``."""
    _load(x, r0, n, xT)
    _log_abs(xT, n, eps, lT)
    _matmul(xT, n, Wa, aT)
    _matmul(lT, n, Wm, mT)
    _matmul(xT, n, G, gT)
    for o in range(mT.shape[0]):
        for r in range(n):
            mT[o, r] = vexp(mT[o, r])
            gT[o, r] = vsigmoid(gT[o, r])


@njit(**_EW)
def _nalu_store(n_blocks, I, O, nb, dtype):
    """Block buffers ``xT, lT`` (blocks, I, nb) and ``aT, mT, gT`` (blocks, O, nb), carved from one allocation
    (one large block is reused by malloc from call to call; several are trimmed and page-faulted again)."""
    ni = n_blocks * I * nb
    no = n_blocks * O * nb
    buf = np.empty(2 * ni + 3 * no, dtype)
    return (buf[:ni].reshape((n_blocks, I, nb)), buf[ni:2 * ni].reshape((n_blocks, I, nb)),
            buf[2 * ni:2 * ni + no].reshape((n_blocks, O, nb)),
            buf[2 * ni + no:2 * ni + 2 * no].reshape((n_blocks, O, nb)),
            buf[2 * ni + 2 * no:].reshape((n_blocks, O, nb)))


@njit(**_EW)
def _nalu_fwd_chunk(x, Wa, Wm, G, eps, nb, c, nchunks, y, st, keep):
    """Forward pass of the blocks of chunk ``c``; with ``keep``, block ``b``'s values stay in ``st[.][b]``
    for the backward pass (else ``st`` holds one block of scratch per chunk)."""
    B, I = x.shape
    O = G.shape[1]
    one = x.dtype.type(1.0)
    XT, LT, AT, MT, GT = st if keep else _nalu_store(1, I, O, nb, x.dtype)
    yT = np.empty((O, nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        k = b if keep else 0
        r0 = b * nb
        n = min(nb, B - r0)
        aT, mT, gT = AT[k], MT[k], GT[k]
        _nalu_block(x, r0, n, Wa, Wm, G, eps, XT[k], LT[k], aT, mT, gT)
        for o in range(O):
            for r in range(n):
                g = gT[o, r]
                yT[o, r] = g * aT[o, r] + (one - g) * mT[o, r]
        _store(yT, r0, n, y)


@njit(**_PAR)
def _nalu_fwd(x, Wh_a, Mh_a, Wh_m, Mh_m, G, shared, eps, nb, nchunks, keep):
    """Weights, then the forward pass; returns ``y``, the weights and their factors, and the block store."""
    B, I = x.shape
    O = G.shape[1]
    Wa, ta, sa = _nac_weight(Wh_a, Mh_a)
    if shared:
        Wm, tm, sm = Wa, ta, sa
    else:
        Wm, tm, sm = _nac_weight(Wh_m, Mh_m)
    st = _nalu_store((B + nb - 1) // nb if keep else 1, I, O, nb if keep else 1, x.dtype)
    y = np.empty((B, O), x.dtype)
    if nchunks == 1:
        _nalu_fwd_chunk(x, Wa, Wm, G, eps, nb, 0, 1, y, st, keep)
    else:
        for c in prange(nchunks):
            _nalu_fwd_chunk(x, Wa, Wm, G, eps, nb, c, nchunks, y, st, keep)
    return y, (Wa, ta, sa), (Wm, tm, sm), st


@njit(**_EW)
def _nalu_bwd_chunk(x, dy, Wa, Wm, G, eps, nb, c, nchunks, dx, pWa, pWm, pG, st, kept, shared):
    """Backward pass of the blocks of chunk ``c``; the gradients are summed in arrays of this thread and
    written to ``pWa, pWm, pG`` (this chunk's slices) at the end (no cache line shared between threads)."""
    B, I = x.shape
    O = G.shape[1]
    one = x.dtype.type(1.0)
    XT, LT, AT, MT, GT = st if kept else _nalu_store(1, I, O, nb, x.dtype)
    dT = np.empty((O, nb), x.dtype)
    dA = np.empty((O, nb), x.dtype)
    dZ = np.empty((O, nb), x.dtype)
    dH = np.empty((O, nb), x.dtype)
    tT = np.empty((I, nb), x.dtype)
    accA = np.zeros((I, O))
    accM = accA if shared else np.zeros((I, O))
    accG = np.zeros((I, O))
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        k = b if kept else 0
        r0 = b * nb
        n = min(nb, B - r0)
        xT, lT, aT, mT, gT = XT[k], LT[k], AT[k], MT[k], GT[k]
        if not kept:
            _nalu_block(x, r0, n, Wa, Wm, G, eps, xT, lT, aT, mT, gT)
        _load(dy, r0, n, dT)
        for o in range(O):
            for r in range(n):
                d = dT[o, r]
                g = gT[o, r]
                m = mT[o, r]
                dA[o, r] = d * g
                dZ[o, r] = d * (one - g) * m
                dH[o, r] = d * (aT[o, r] - m) * g * (one - g)
        _grad(xT, dA, n, accA)
        _grad(lT, dZ, n, accM)
        _grad(xT, dH, n, accG)
        _matmul_t(dZ, n, Wm, tT, False)
        _times_log_abs_grad(tT, xT, n, eps)
        _matmul_t(dA, n, Wa, tT, True)
        _matmul_t(dH, n, G, tT, True)
        _store(tT, r0, n, dx)
    pWa[:, :] = accA
    pWm[:, :] = accM
    pG[:, :] = accG


@njit(**_PAR)
def _nalu_bwd(x, dy, wa, wm, G, shared, eps, nb, nchunks, st, kept):
    """The backward pass, the per-chunk gradient sums added up, and the chain rule into the raw weights."""
    B, I = x.shape
    O = G.shape[1]
    Wa, ta, sa = wa
    Wm, tm, sm = wm
    dx = np.empty_like(x)
    pWa = np.zeros((nchunks, I, O))
    pWm = pWa if shared else np.zeros((nchunks, I, O))  # shared: dW_a + dW_m in one sum
    pG = np.zeros((nchunks, I, O))
    if nchunks == 1:
        _nalu_bwd_chunk(x, dy, Wa, Wm, G, eps, nb, 0, 1, dx, pWa[0], pWm[0], pG[0], st, kept, shared)
    else:
        for c in prange(nchunks):
            _nalu_bwd_chunk(x, dy, Wa, Wm, G, eps, nb, c, nchunks, dx, pWa[c], pWm[c], pG[c], st, kept, shared)
    dWh_a, dMh_a = _nac_weight_backward(_sum_partials(pWa), ta, sa)
    if shared:
        dWh_m, dMh_m = dWh_a, dMh_a
    else:
        dWh_m, dMh_m = _nac_weight_backward(_sum_partials(pWm), tm, sm)
    dG = _sum_partials(pG).astype(x.dtype)
    return dx, dWh_a, dMh_a, dWh_m, dMh_m, dG


# ---------------------------------------------------------------------------------------------------------
# rows path: NALU with many inputs (every inner loop runs over the contiguous inputs of one row)
# ---------------------------------------------------------------------------------------------------------


@njit(**_SUM)
def _dot(u, v):
    """``sum(u * v)`` of two contiguous vectors (vectorised with reassociation)."""
    acc = u.dtype.type(0.0)
    for i in range(u.shape[0]):
        acc += u[i] * v[i]
    return acc


@njit(**_EW)
def _axpy(out, alpha, v):
    """``out += alpha * v``."""
    for i in range(out.shape[0]):
        out[i] += alpha * v[i]


@njit(**_EW)
def _nalu_rows_fwd_chunk(x, WaT, WmT, GT, eps, r0, r1, l, a, m, g, y):
    one = x.dtype.type(1.0)
    for r in range(r0, r1):
        xr = x[r]
        lr = l[r]
        for i in range(xr.shape[0]):
            lr[i] = vlog(abs(xr[i]) + eps)
        for o in range(WaT.shape[0]):
            za = _dot(xr, WaT[o])
            mm = vexp(_dot(lr, WmT[o]))
            gg = vsigmoid(_dot(xr, GT[o]))
            a[r, o] = za
            m[r, o] = mm
            g[r, o] = gg
            y[r, o] = gg * za + (one - gg) * mm


@njit(**_PAR)
def _nalu_rows_fwd(x, Wh_a, Mh_a, Wh_m, Mh_m, G, shared, eps, nchunks):
    """Weights, then the forward pass row by row; keeps ``l, a, m, g`` for the backward pass."""
    B, I = x.shape
    O = G.shape[1]
    Wa, ta, sa = _nac_weight(Wh_a, Mh_a)
    if shared:
        Wm, tm, sm = Wa, ta, sa
    else:
        Wm, tm, sm = _nac_weight(Wh_m, Mh_m)
    WaT, WmT, GT = np.ascontiguousarray(Wa.T), np.ascontiguousarray(Wm.T), np.ascontiguousarray(G.T)
    buf = np.empty(B * I + 3 * B * O, x.dtype)  # one allocation (see KEEP_MAX_BYTES)
    l = buf[:B * I].reshape((B, I))
    a = buf[B * I:B * I + B * O].reshape((B, O))
    m = buf[B * I + B * O:B * I + 2 * B * O].reshape((B, O))
    g = buf[B * I + 2 * B * O:].reshape((B, O))
    y = np.empty((B, O), x.dtype)
    if nchunks == 1:
        _nalu_rows_fwd_chunk(x, WaT, WmT, GT, eps, 0, B, l, a, m, g, y)
    else:
        for c in prange(nchunks):
            _nalu_rows_fwd_chunk(x, WaT, WmT, GT, eps, c * B // nchunks, (c + 1) * B // nchunks, l, a, m, g, y)
    return y, (Wa, ta, sa), (Wm, tm, sm), (l, a, m, g)


@njit(**_EW)
def _flush(buf, acc):
    """``acc += buf`` (float64), then ``buf = 0``."""
    for o in range(buf.shape[0]):
        for i in range(buf.shape[1]):
            acc[o, i] += buf[o, i]
            buf[o, i] = 0.0


@njit(**_EW)
def _nalu_rows_bwd_chunk(x, dy, WaT, WmT, GT, eps, r0, r1, l, a, m, g, dx, pWa, pWm, pG, shared):
    """Backward pass of rows ``r0:r1``; the weight gradients (transposed, (O, I)) are summed in the dtype over
    at most 256 rows, then added into the float64 ``pWa, pWm, pG``."""
    O, I = WaT.shape
    one = x.dtype.type(1.0)
    bWa = np.zeros((O, I), x.dtype)
    bWm = bWa if shared else np.zeros((O, I), x.dtype)
    bG = np.zeros((O, I), x.dtype)
    tz = np.empty(I, x.dtype)
    for r in range(r0, r1):
        xr = x[r]
        lr = l[r]
        dxr = dx[r]
        dxr[:] = 0.0
        tz[:] = 0.0
        for o in range(O):
            d = dy[r, o]
            gg = g[r, o]
            mm = m[r, o]
            da = d * gg
            dz = d * (one - gg) * mm
            dh = d * (a[r, o] - mm) * gg * (one - gg)
            _axpy(dxr, da, WaT[o])
            _axpy(dxr, dh, GT[o])
            _axpy(tz, dz, WmT[o])
            _axpy(bWa[o], da, xr)
            _axpy(bWm[o], dz, lr)
            _axpy(bG[o], dh, xr)
        for i in range(I):
            v = xr[i]
            dxr[i] += tz[i] * (np.sign(v) / (abs(v) + eps))
        if (r - r0) % 256 == 255 or r == r1 - 1:
            _flush(bWa, pWa)
            if not shared:
                _flush(bWm, pWm)
            _flush(bG, pG)


@njit(**_PAR)
def _nalu_rows_bwd(x, dy, wa, wm, G, shared, eps, nchunks, kept):
    B, I = x.shape
    O = G.shape[1]
    Wa, ta, sa = wa
    Wm, tm, sm = wm
    l, a, m, g = kept
    WaT, WmT, GT = np.ascontiguousarray(Wa.T), np.ascontiguousarray(Wm.T), np.ascontiguousarray(G.T)
    dx = np.empty_like(x)
    pWa = np.zeros((nchunks, O, I))
    pWm = pWa if shared else np.zeros((nchunks, O, I))
    pG = np.zeros((nchunks, O, I))
    if nchunks == 1:
        _nalu_rows_bwd_chunk(x, dy, WaT, WmT, GT, eps, 0, B, l, a, m, g, dx, pWa[0], pWm[0], pG[0], shared)
    else:
        for c in prange(nchunks):
            _nalu_rows_bwd_chunk(x, dy, WaT, WmT, GT, eps, c * B // nchunks, (c + 1) * B // nchunks, l, a, m, g,
                                 dx, pWa[c], pWm[c], pG[c], shared)
    dWh_a, dMh_a = _nac_weight_backward(np.ascontiguousarray(_sum_partials(pWa).T), ta, sa)
    if shared:
        dWh_m, dMh_m = dWh_a, dMh_a
    else:
        dWh_m, dMh_m = _nac_weight_backward(np.ascontiguousarray(_sum_partials(pWm).T), tm, sm)
    dG = np.ascontiguousarray(_sum_partials(pG).T).astype(x.dtype)
    return dx, dWh_a, dMh_a, dWh_m, dMh_m, dG


# ---------------------------------------------------------------------------------------------------------
# blas path: elementwise passes on the calling thread (see the module docstring)
# ---------------------------------------------------------------------------------------------------------


@njit(**_EW)
def _log_abs_rows(x, eps, l):
    """``l = log(|x| + eps)``; returns ``l``."""
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            l[b, i] = vlog(abs(x[b, i]) + eps)
    return l


@njit(**_EW)
def _exp_rows(z):
    """``exp(z)`` in place."""
    for b in range(z.shape[0]):
        for o in range(z.shape[1]):
            z[b, o] = vexp(z[b, o])


@njit(**_EW)
def _mul_rows(a, b):
    """``a * b``."""
    out = np.empty_like(a)
    for r in range(a.shape[0]):
        for o in range(a.shape[1]):
            out[r, o] = a[r, o] * b[r, o]
    return out


@njit(**_EW)
def _add_log_grad_rows(dx, t, x, eps):
    """``dx += t * sign(x) / (|x| + eps)`` in place."""
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = x[b, i]
            dx[b, i] += t[b, i] * (np.sign(v) / (abs(v) + eps))


@njit(**_EW)
def _nalu_combine_rows(ah, m, y):
    """``ah = [a | h]``, ``m = l @ W_m`` on entry; ``m = exp(m)``, ``h = sigma(h) = g``, ``y = g a + (1-g) m``."""
    O = m.shape[1]
    one = m.dtype.type(1.0)
    for b in range(m.shape[0]):
        for o in range(O):
            g = vsigmoid(ah[b, O + o])
            e = vexp(m[b, o])
            ah[b, O + o] = g
            m[b, o] = e
            y[b, o] = g * ah[b, o] + (one - g) * e


@njit(**_EW)
def _nalu_delta_rows(dy, ag, m, dd, dz):
    """From ``delta``, ``[a | g]`` and ``m``: ``dd = [da | dh]`` and ``dz``."""
    B, O = m.shape
    one = m.dtype.type(1.0)
    for b in range(B):
        for o in range(O):
            d = dy[b, o]
            g = ag[b, O + o]
            mm = m[b, o]
            dd[b, o] = d * g
            dd[b, O + o] = d * (ag[b, o] - mm) * g * (one - g)
            dz[b, o] = d * (one - g) * mm


# ---------------------------------------------------------------------------------------------------------
# public kernels
# ---------------------------------------------------------------------------------------------------------


class _Work:
    """Work arrays of the given shapes and dtype for the blas path, drawn from a small free list and given back
    to it when this object dies (after the backward call that made it, or with the cache of the forward call
    that made it): steady training reuses them instead of page-faulting fresh arrays of tens of MB on every
    call.  Only for arrays that no result aliases."""

    __slots__ = ("key", "arrays")

    def __init__(self, *shapes: tuple[int, ...], dtype: np.dtype):
        self.key = (shapes, np.dtype(dtype))
        with _FREE_LOCK:
            found = next((k for k, (key, _) in enumerate(_FREE) if key == self.key), None)
            arrays = None if found is None else _FREE.pop(found)[1]
        self.arrays = arrays if arrays is not None else tuple(np.empty(sh, dtype) for sh in shapes)

    def __del__(self, free=_FREE, lock=_FREE_LOCK):  # bound here: still there when the module is torn down
        with lock:
            free.append((self.key, self.arrays))
            del free[:-FREE_MAX]


def _row_chunks(batch: int) -> list[slice]:
    """Slices of ``BLAS_CHUNK_ROWS`` rows that cover the batch: the blas path works chunk by chunk so that
    the elementwise passes find the products' results in cache."""
    return [slice(r, min(r + BLAS_CHUNK_ROWS, batch)) for r in range(0, batch, BLAS_CHUNK_ROWS)]


def _partials(nchunks: int, shape: tuple[int, int]) -> np.ndarray:
    return np.zeros((nchunks,) + shape, np.float64)


def _linear_forward(x: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``x @ W`` (x C-contiguous)."""
    B, I = x.shape
    O = W.shape[1]
    if _use_blas(I, O):
        return x @ W
    y = np.empty((B, O), x.dtype)
    _nac_fwd(x, W, *_plan(B, I, O, x.itemsize), y)
    return y


def _linear_backward(x: np.ndarray, W: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dx = dy @ W.T`` and ``dW = x.T @ dy`` (float64)."""
    B, I = x.shape
    O = W.shape[1]
    if _use_blas(I, O):
        return dy @ W.T, (x.T @ dy).astype(np.float64)
    nb, nchunks = _plan(B, I, O, x.itemsize)
    pW = _partials(nchunks, (I, O))
    dx = np.empty_like(x)
    _nac_bwd(x, dy, W, nb, nchunks, dx, pW)
    return dx, _sum_partials(pW)


def nac_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of the additive NAC; see :func:`nalu_np.reference.nac_forward`.

    Parameters
    ----------
    params : dict
        ``W_hat``, ``M_hat`` of shape (I, O).
    x : ndarray, shape (B, I)

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : opaque

    Notes
    -----
    ``W = tanh(W_hat) * sigma(M_hat)``, ``y = x @ W``.
    """
    _check(x, params)
    x = np.ascontiguousarray(x)
    W, t, s = _nac_weight(params["W_hat"], params["M_hat"])
    return _linear_forward(x, W), (x, W, t, s)


def nac_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the additive NAC; see :func:`nalu_np.reference.nac_backward`.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W_hat``, ``M_hat``, shape (I, O).

    Notes
    -----
    ``dW = x.T @ delta``, ``dx = delta @ W.T``, then the chain rule through ``tanh`` and ``sigma``.
    """
    x, W, t, s = cache
    _check(x, {}, dy)
    dx, dW = _linear_backward(x, W, np.ascontiguousarray(dy))
    dW_hat, dM_hat = _nac_weight_backward(dW, t, s)
    return dx, {"W_hat": dW_hat, "M_hat": dM_hat}


def nacmul_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the log-space NAC; see :func:`nalu_np.reference.nacmul_forward`.

    Parameters
    ----------
    params : dict
        ``W_hat``, ``M_hat`` of shape (I, O).
    x : ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : opaque

    Notes
    -----
    ``y = exp(log(|x| + eps) @ W)``; ``inf`` where the exponent overflows.
    """
    dt = _check(x, params)
    x = np.ascontiguousarray(x)
    W, t, s = _nac_weight(params["W_hat"], params["M_hat"])
    e = dt.type(eps)
    B, I = x.shape
    O = W.shape[1]
    if _use_blas(I, O):
        l = _log_abs_rows(x, e, np.empty_like(x))
        y = l @ W
        _exp_rows(y)
        return y, (x, W, t, s, l, y)
    y = np.empty((B, O), dt)
    _nacmul_fwd(x, W, e, *_plan(B, I, O, x.itemsize), y)
    return y, (x, W, t, s, None, None)


def nacmul_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Params]:
    """Backward pass of the log-space NAC; see :func:`nalu_np.reference.nacmul_backward`.

    Notes
    -----
    ``dz = delta * y``, ``dW = l.T @ dz``, ``dx = (dz @ W.T) * sign(x) / (|x| + eps)``.
    """
    x, W, t, s, l, y = cache
    dt = _check(x, {}, dy)
    dy = np.ascontiguousarray(dy)
    e = dt.type(eps)
    B, I = x.shape
    O = W.shape[1]
    if l is not None:
        dz = _mul_rows(dy, y)
        dW = (l.T @ dz).astype(np.float64)
        dx = np.zeros_like(x)
        _add_log_grad_rows(dx, dz @ W.T, x, e)
    else:
        nb, nchunks = _plan(B, I, O, x.itemsize)
        pW = _partials(nchunks, (I, O))
        dx = np.empty_like(x)
        _nacmul_bwd(x, dy, W, e, nb, nchunks, dx, pW)
        dW = _sum_partials(pW)
    dW_hat, dM_hat = _nac_weight_backward(dW, t, s)
    return dx, {"W_hat": dW_hat, "M_hat": dM_hat}


def _nalu_names(params: Params) -> tuple[bool, tuple[str, str], tuple[str, str]]:
    """``shared`` and the names of the raw weights of the additive and the multiplicative path."""
    if "W_hat" in params:
        return True, ("W_hat", "M_hat"), ("W_hat", "M_hat")
    return False, ("W_hat_add", "M_hat_add"), ("W_hat_mul", "M_hat_mul")


def nalu_forward(params: Params, x: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Any]:
    """Forward pass of the NALU (shared or separate weights); see :func:`nalu_np.reference.nalu_forward`.

    Parameters
    ----------
    params : dict
        ``W_hat``, ``M_hat``, ``G`` (shared) or ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul``,
        ``G`` (separate), all of shape (I, O).
    x : ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : opaque

    Notes
    -----
    ``a = x @ W_a``, ``m = exp(log(|x| + eps) @ W_m)``, ``g = sigma(x @ G)``, ``y = g * a + (1 - g) * m``.
    """
    dt = _check(x, params)
    x = np.ascontiguousarray(x)
    shared, (wa, ma), (wm, mm) = _nalu_names(params)
    G = params["G"]
    e = dt.type(eps)
    B, I = x.shape
    O = G.shape[1]
    if _use_blas(I, O):
        Wa, ta, sa = _nac_weight(params[wa], params[ma])
        Wm, tm, sm = (Wa, ta, sa) if shared else _nac_weight(params[wm], params[mm])
        y = np.empty((B, O), dt)
        work = _Work((B, I), (B, 2 * O), (B, O), dtype=dt)
        l, ah, m = work.arrays
        wcat = np.concatenate((Wa, G), axis=1)
        for r in _row_chunks(B):
            _log_abs_rows(x[r], e, l[r])
            np.matmul(x[r], wcat, out=ah[r])
            np.matmul(l[r], Wm, out=m[r])
            _nalu_combine_rows(ah[r], m[r], y[r])  # ah becomes [a | g], m becomes exp(l @ W_m)
        return y, ("blas", shared, x, (Wa, ta, sa), (Wm, tm, sm), G, (work, wcat))
    nb, nchunks = _plan(B, I, O, x.itemsize)
    if I >= ROWS_MIN_IN:
        y, wa_, wm_, kept = _nalu_rows_fwd(x, params[wa], params[ma], params[wm], params[mm], G, shared, e, nchunks)
        return y, ("rows", shared, x, wa_, wm_, G, (nchunks, kept))
    keep = _keep(B, I, O, nb, x.itemsize)
    y, wa_, wm_, st = _nalu_fwd(x, params[wa], params[ma], params[wm], params[mm], G, shared, e, nb, nchunks, keep)
    return y, ("fused", shared, x, wa_, wm_, G, (nb, nchunks, keep, st))


def nalu_backward(params: Params, cache: Any, dy: np.ndarray, eps: float = 1e-7) -> tuple[np.ndarray, Params]:
    """Backward pass of the NALU; see :func:`nalu_np.reference.nalu_backward`.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        Same keys as ``params``.

    Notes
    -----
    ``da = delta g``, ``dz = delta (1 - g) m``, ``dh = delta (a - m) g (1 - g)``; ``dW_a = x.T @ da``,
    ``dW_m = l.T @ dz``, ``dG = x.T @ dh``,
    ``dx = da @ W_a.T + (dz @ W_m.T) * sign(x) / (|x| + eps) + dh @ G.T``; shared weights get
    ``dW_a + dW_m``.
    """
    path, shared, x, wa, wm, G, extra = cache
    dt = _check(x, {}, dy)
    dy = np.ascontiguousarray(dy)
    e = dt.type(eps)
    _, (kwa, kma), (kwm, kmm) = _nalu_names(params)
    if path == "rows":
        nchunks, kept = extra
        dx, dWh_a, dMh_a, dWh_m, dMh_m, dG = _nalu_rows_bwd(x, dy, wa, wm, G, shared, e, nchunks, kept)
        grads = {kwa: dWh_a, kma: dMh_a, kwm: dWh_m, kmm: dMh_m, "G": dG}
        return dx, {k: grads[k] for k in params}
    if path == "fused":
        nb, nchunks, keep, st = extra
        dx, dWh_a, dMh_a, dWh_m, dMh_m, dG = _nalu_bwd(x, dy, wa, wm, G, shared, e, nb, nchunks, st, keep)
        grads = {kwa: dWh_a, kma: dMh_a, kwm: dWh_m, kmm: dMh_m, "G": dG}
        return dx, {k: grads[k] for k in params}
    O = G.shape[1]
    work, wcat = extra
    l, ag, m = work.arrays
    B, I = x.shape
    n = min(B, BLAS_CHUNK_ROWS)
    scratch = _Work((n, 2 * O), (n, O), (n, I), (I, 2 * O), (I, O), dtype=dt)  # held until we return
    dd, dz, t, pcat, pm = scratch.arrays
    gcat = np.zeros((I, 2 * O))
    dWm = np.zeros((I, O))
    dx = np.empty_like(x)
    for r in _row_chunks(B):
        k = r.stop - r.start
        _nalu_delta_rows(dy[r], ag[r], m[r], dd[:k], dz[:k])
        gcat += np.matmul(x[r].T, dd[:k], out=pcat)
        dWm += np.matmul(l[r].T, dz[:k], out=pm)
        np.matmul(dd[:k], wcat.T, out=dx[r])
        _add_log_grad_rows(dx[r], np.matmul(dz[:k], wm[0].T, out=t[:k]), x[r], e)
    dWa, dG = np.ascontiguousarray(gcat[:, :O]), gcat[:, O:]
    grads = {"G": dG.astype(dt)}
    if shared:
        grads[kwa], grads[kma] = _nac_weight_backward(dWa + dWm, wa[1], wa[2])
    else:
        grads[kwa], grads[kma] = _nac_weight_backward(dWa, wa[1], wa[2])
        grads[kwm], grads[kmm] = _nac_weight_backward(dWm, wm[1], wm[2])
    return dx, {k: grads[k] for k in params}


# ---------------------------------------------------------------------------------------------------------
# NAU and NMU (Madsen & Johansen 2020)
# ---------------------------------------------------------------------------------------------------------


def nau_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of the NAU; see :func:`nalu_np.reference.nau_forward`.

    Parameters
    ----------
    params : dict
        ``W`` of shape (I, O).
    x : ndarray, shape (B, I)

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : opaque

    Notes
    -----
    ``y = x @ W``.
    """
    _check(x, params)
    x = np.ascontiguousarray(x)
    return _linear_forward(x, params["W"]), x


def nau_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the NAU: ``dx = delta @ W.T``, ``dW = x.T @ delta``.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).
    """
    x = cache
    dt = _check(x, params, dy)
    dx, dW = _linear_backward(x, params["W"], np.ascontiguousarray(dy))
    return dx, {"W": dW.astype(dt)}


@njit(**_EW)
def _nmu_fwd_chunk(x, W, nb, c, nchunks, y):
    B, I = x.shape
    O = W.shape[1]
    one = x.dtype.type(1.0)
    xT = np.empty((I, nb), x.dtype)
    yT = np.empty((O, nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _load(x, r0, n, xT)
        for o in range(O):
            for r in range(n):
                yT[o, r] = one
            for i in range(I):
                w = W[i, o]
                w1 = one - w
                for r in range(n):
                    yT[o, r] *= xT[i, r] * w + w1
        _store(yT, r0, n, y)


@njit(**_PAR)
def _nmu_fwd(x, W, nb, nchunks, y):
    if nchunks == 1:
        _nmu_fwd_chunk(x, W, nb, 0, 1, y)
    else:
        for c in prange(nchunks):
            _nmu_fwd_chunk(x, W, nb, c, nchunks, y)


@njit(**_SUM)
def _nmu_bwd_chunk(x, dy, W, nb, c, nchunks, dx, pW):
    B, I = x.shape
    O = W.shape[1]
    one = x.dtype.type(1.0)
    zero = x.dtype.type(0.0)
    xT = np.empty((I, nb), x.dtype)
    dT = np.empty((O, nb), x.dtype)
    pre = np.empty((I, nb), x.dtype)  # exclusive prefix products of one output
    run = np.empty(nb, x.dtype)
    tT = np.empty((I, nb), x.dtype)
    b0, b1 = _block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        _load(x, r0, n, xT)
        _load(dy, r0, n, dT)
        for i in range(I):
            for r in range(n):
                tT[i, r] = zero
        for o in range(O):
            for r in range(n):
                run[r] = one
            for i in range(I):
                w = W[i, o]
                w1 = one - w
                for r in range(n):
                    pre[i, r] = run[r]
                    run[r] *= xT[i, r] * w + w1
            for r in range(n):
                run[r] = one
            for i in range(I - 1, -1, -1):  # suffix products, then c = delta * prefix * suffix
                w = W[i, o]
                w1 = one - w
                s = zero
                for r in range(n):
                    cc = dT[o, r] * (pre[i, r] * run[r])
                    s += cc * (xT[i, r] - one)
                    tT[i, r] += cc * w
                    run[r] *= xT[i, r] * w + w1
                pW[i, o] += s
        _store(tT, r0, n, dx)


@njit(**_PAR)
def _nmu_bwd(x, dy, W, nb, nchunks, dx, pW):
    if nchunks == 1:
        _nmu_bwd_chunk(x, dy, W, nb, 0, 1, dx, pW[0])
    else:
        for c in prange(nchunks):
            _nmu_bwd_chunk(x, dy, W, nb, c, nchunks, dx, pW[c])


def nmu_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of the NMU; see :func:`nalu_np.reference.nmu_forward`.

    Parameters
    ----------
    params : dict
        ``W`` of shape (I, O).
    x : ndarray, shape (B, I)

    Returns
    -------
    y : ndarray, shape (B, O)
    cache : opaque
        Only ``x``: the factors are recomputed by the backward pass (no (B, I, O) array is stored).

    Notes
    -----
    ``y[b, o] = prod_i (W[i, o] x[b, i] + 1 - W[i, o])``; overflow to ``inf`` is a result.
    """
    _check(x, params)
    x = np.ascontiguousarray(x)
    B, I = x.shape
    W = params["W"]
    y = np.empty((B, W.shape[1]), x.dtype)
    _nmu_fwd(x, W, *_plan(B, I, W.shape[1], x.itemsize), y)
    return y, x


def nmu_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the NMU; see :func:`nalu_np.reference.nmu_backward`.

    Returns
    -------
    dx : ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).

    Notes
    -----
    Leave-one-out products ``loo[b, i, o] = prod_{k != i} f[b, k, o]`` as exclusive prefix times suffix
    products (exact when a factor is 0, no division), ``c = delta * loo``,
    ``dW[i, o] = sum_b c[b, i, o] (x[b, i] - 1)``, ``dx[b, i] = sum_o c[b, i, o] W[i, o]``.
    """
    x = cache
    dt = _check(x, params, dy)
    W = params["W"]
    B, I = x.shape
    O = W.shape[1]
    nb, nchunks = _plan(B, I, O, x.itemsize)
    pW = _partials(nchunks, (I, O))
    dx = np.empty_like(x)
    _nmu_bwd(x, np.ascontiguousarray(dy), W, nb, nchunks, dx, pW)
    return dx, {"W": _sum_partials(pW).astype(dt)}


_UNIT_KERNELS = ("inalu_forward", "inalu_backward", "npu_forward", "npu_backward", "realnpu_forward",
                 "realnpu_backward")


def __getattr__(name: str) -> Any:
    """iNALU, NPU and RealNPU live in :mod:`numba_units`, which builds on the helpers above: they are looked up
    there on first use, so that either module can be imported first."""
    if name in _UNIT_KERNELS:
        from . import numba_units

        return getattr(numba_units, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
