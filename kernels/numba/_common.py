"""What every unit module of the ``numba`` backend shares: input checks, the plan and its tuning knobs, block
helpers, the blas path's row passes and work arrays, the NAC weights, and the optimizer blocks.

How the work is laid out
------------------------
Three paths, chosen per call from the shape:

*fused* (few inputs, e.g. ``(1048576, 2, 1)``): the batch is cut into blocks of ``nb`` rows (:func:`plan`);
each block is transposed into buffers of shape ``(features, nb)`` so that every inner loop runs over rows,
contiguous, and LLVM vectorises it (``exp`` and ``log`` included, see :mod:`nalu_np.kernels.numba._math`).  One
sweep over ``x`` does the whole forward pass, one sweep the whole backward pass.  The math of a unit on one
such block is a *block function* of its module (``nalu_block_forward``, ``nmu_block_backward``, ...); the
compiled training step (:mod:`nalu_np.kernels.numba.train`) calls the same block functions on a whole batch
laid out the same way.  When the NALU's block values fit in ``KEEP_MAX_BYTES`` the forward pass keeps them for
the backward pass; otherwise the backward pass recomputes them from ``x`` (fresh memory beyond what malloc
reuses costs page faults that exceed the recomputation).

*rows* (the NALU and the linear kernels of NAU, NAC and the dense layers, with ``in_features >= ROWS_MIN_IN``,
e.g. ``(128, 100, 2)``): row by row, every inner loop runs over the contiguous inputs of one row (``log``, dot
products; in the backward pass one pass per row and output updates ``dx`` and every weight gradient, transposed
(O, I)); the NALU keeps ``l``, ``a``, ``m``, ``g`` for the backward pass.

*blas* (``in_features * out_features >= BLAS_MIN_WEIGHTS``, e.g. ``(65536, 64, 64)``): the matrix products go
to NumPy's BLAS, with the products that share an operand concatenated (``x @ [W_a | G]``, ``x.T @ [da | dh]``,
``[da | dh] @ [W_a | G].T``), and the elementwise work is done in a few Numba passes on the calling thread:
parallel Numba passes between BLAS calls leave two thread pools (Numba's OpenMP, OpenBLAS's) spin-waiting
against each other on the same cores, which measured 2.6 times slower for the forward pass at
``(65536, 64, 64)``.  Both passes go through the batch in chunks of ``BLAS_CHUNK_ROWS`` rows (products, then
the elementwise passes on their results while these are in cache); the weight gradients are summed over the
chunks in float64.  The arrays that the forward pass keeps for the backward pass (``l``, ``[a | g]``, ``m``)
and the backward pass's chunk buffers come from a small free list (:class:`Work`) and go back to it when the
cache (or the backward call) is done with them: fresh arrays of tens of MB page-fault on every call, which
cost more than the products at ``(65536, 64, 64)``.

In the fused and rows paths the batch is split into one contiguous chunk per thread (``prange``); weight
gradients are summed per chunk into ``partial[chunk]`` (float64) and added up after the parallel loop, so no
two threads write the same memory.  A batch too small to share runs on the calling thread without starting the
thread pool.  Weights (``tanh(W_hat) sigma(M_hat)``), the passes and the chain rule back to the raw weights run
in one compiled call per pass, so that small batches pay little interpreter overhead.

The tuning knobs below are module attributes read at call time, so that tests can force each path by setting
them here.  The caches of the kernels are tuples private to their module: callers pass them back to the
backward function unchanged.

Numerics are those of the reference: ``exp`` overflows to ``inf`` (a result, no warning), ``(1 - g) * inf`` with
``g == 1`` is NaN, the slope of ``log(|x| + eps)`` at ``x = 0`` is 0.  No fast-math flag that assumes finite
values is used (``EW``, ``SUM``, ``PAR``); loops that sum (weight gradients) allow reassociation, which only
changes rounding.
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np

from ._math import jit as njit, vlog, vlog_normal, vsigmoid, vtanh
from ._tiles import TILES, matmul_pairs4, matmul_tiles4, matmul_tiles8, matmul_tiles16

Params = dict[str, np.ndarray]

# Tuning knobs of plan() and the paths (read at call time: tests force small blocks, several chunks, each path).
BLOCK_BYTES = 48 * 1024  # target size of one thread's block buffers (stays in L2)
MAX_BLOCK_ROWS = 512
MIN_CHUNK_ROWS = 4096  # fewer rows per thread than this: run on one thread
BLAS_MIN_WEIGHTS = 1024  # in_features * out_features from which the matrix products go to BLAS
BLAS_CHUNK_ROWS = 2048  # rows per chunk of the blas path
ROWS_MIN_IN = 16  # NALU and linear kernels with at least this many inputs (and no BLAS) work row by row
# The fused forward keeps its block values for the backward pass up to this size: in one allocation, which
# glibc's malloc reuses from call to call below its largest mmap threshold (32 MiB); beyond, every call would
# page-fault fresh memory, which costs more than recomputing the values from x.
KEEP_MAX_BYTES = 30 << 20
FREE_MAX = 4  # sets of blas-path work arrays kept for reuse (one forward cache alive, one dying, one backward)
_FREE: list[tuple[Any, tuple[np.ndarray, ...]]] = []
_FREE_LOCK = threading.Lock()

EW = dict(error_model="numpy", fastmath={"contract"})  # elementwise: exact IEEE semantics
SUM = dict(error_model="numpy", fastmath={"reassoc", "contract", "nsz"})  # reductions: only rounding changes
# parallel: the prange loops only.  Numba's other parallel transforms would turn every np.zeros and array
# expression of a kernel's set-up into a parallel loop, each of which starts the thread pool (~5 us a call).
PAR = dict(error_model="numpy", fastmath={"contract"},
           parallel=dict(prange=True, numpy=False, comprehension=False, reduction=False, setitem=False, stencil=False,
                         fusion=False, inplace_binop=False))


# ---------------------------------------------------------------------------------------------------------
# input checks and the plan
# ---------------------------------------------------------------------------------------------------------


def check(x: np.ndarray, params: Params, dy: np.ndarray | None = None) -> np.dtype:
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


def check_shapes(x: np.ndarray, params: Params, weights: tuple[str, ...], gate_size: int | None,
                 dy: np.ndarray | None = None) -> tuple[int, int, int]:
    """``(B, I, O)`` from ``x`` and ``params[weights[0]]``; ValueError when a weight is not (I, O), the gate
    ``g`` not of length ``gate_size`` (I or O; ``None``: the number of outputs) or ``dy`` not (B, O).  The
    compiled loops do not check bounds, so a wrong shape must not reach them."""
    B, I = x.shape
    O = params[weights[0]].shape[-1]
    for k in weights:
        if params[k].shape != (I, O):
            raise ValueError(f"{k} must have shape (in_features, out_features) = {(I, O)}, got {params[k].shape}")
    n = O if gate_size is None else gate_size
    if params["g"].shape != (n,):
        raise ValueError(f"g must have shape {(n,)}, got {params['g'].shape}")
    if dy is not None and dy.shape != (B, O):
        raise ValueError(f"dy must have shape (batch, out_features) = {(B, O)}, got {dy.shape}")
    return B, I, O


def plan(batch: int, n_in: int, n_out: int, itemsize: int) -> tuple[int, int]:
    """Rows per block and number of chunks (threads) for the fused path."""
    per_row = (3 * n_in + 4 * n_out) * itemsize
    nb = int(max(8, min(MAX_BLOCK_ROWS, BLOCK_BYTES // per_row)))
    nb -= nb % 8
    nblocks = -(-batch // nb)
    return nb, chunks(batch, nblocks)


def chunks(batch: int, most: int) -> int:
    """The number of chunks (threads) for ``batch`` rows: at most ``most``, one per ``MIN_CHUNK_ROWS`` rows, one
    per thread; 1 for a batch too small to share (without asking Numba for its threads, which costs ~2 us)."""
    if batch < 2 * MIN_CHUNK_ROWS or most < 2:
        return 1
    return max(1, min(numba.get_num_threads(), most, batch // MIN_CHUNK_ROWS))


def use_blas(n_in: int, n_out: int) -> bool:
    """Whether the matrix products go to BLAS (``in_features * out_features >= BLAS_MIN_WEIGHTS``)."""
    return n_in * n_out >= BLAS_MIN_WEIGHTS


def use_rows(n_in: int) -> bool:
    """Whether the NALU and the linear kernels work row by row (``in_features >= ROWS_MIN_IN``, when no BLAS)."""
    return n_in >= ROWS_MIN_IN


def keep(batch: int, n_in: int, n_out: int, nb: int, itemsize: int) -> bool:
    """Whether the forward pass keeps its block values for the backward pass (when they are small: fresh
    large arrays cost page faults and memory traffic that recomputing from ``x`` does not)."""
    return -(-batch // nb) * nb * (2 * n_in + 3 * n_out) * itemsize <= KEEP_MAX_BYTES


def partials(nchunks: int, shape: tuple[int, ...]) -> np.ndarray:
    """Zeroed float64 per-chunk partial sums, shape ``(nchunks,) + shape``."""
    return np.zeros((nchunks,) + shape, np.float64)


# ---------------------------------------------------------------------------------------------------------
# NAC weights: W = tanh(W_hat) * sigma(M_hat) (NAC, NACMul, NALU, iNALU)
# ---------------------------------------------------------------------------------------------------------


@njit(**EW)
def nac_weight_into(W_hat, M_hat, W, t, s):
    """``t = tanh(W_hat)``, ``s = sigma(M_hat)``, ``W = t s``, all (I, O), written into ``W``, ``t``, ``s``
    (C-contiguous; the inputs may have any layout).  One flat loop, so that it vectorises for any ``O``."""
    wh, mh = np.ascontiguousarray(W_hat).reshape(-1), np.ascontiguousarray(M_hat).reshape(-1)
    wf, tf, sf = W.reshape(-1), t.reshape(-1), s.reshape(-1)
    for k in range(wh.shape[0]):
        tt = vtanh(wh[k])
        ss = vsigmoid(mh[k])
        tf[k] = tt
        sf[k] = ss
        wf[k] = tt * ss


@njit(**EW)
def nac_weight(W_hat, M_hat):
    """``(W, t, s)`` of :func:`nac_weight_into` in new arrays."""
    W, t, s = np.empty_like(W_hat), np.empty_like(W_hat), np.empty_like(W_hat)
    nac_weight_into(W_hat, M_hat, W, t, s)
    return W, t, s


@njit(**EW)
def nac_weight_grad_into(dW, t, s, dW_hat, dM_hat):
    """``dW_hat = dW (1 - t^2) s``, ``dM_hat = dW t s (1 - s)`` (in the dtype of ``t``; ``dW`` may be float64),
    all (I, O); ``t``, ``s`` and the outputs C-contiguous.  One flat loop, as :func:`nac_weight_into`."""
    dt = t.dtype
    one = dt.type(1.0)
    d_, tf, sf = np.ascontiguousarray(dW).reshape(-1), t.reshape(-1), s.reshape(-1)
    dwf, dmf = dW_hat.reshape(-1), dM_hat.reshape(-1)
    for k in range(tf.shape[0]):
        d = dt.type(d_[k])
        dwf[k] = d * (one - tf[k] * tf[k]) * sf[k]
        dmf[k] = d * tf[k] * sf[k] * (one - sf[k])


@njit(**EW)
def nac_weight_backward(dW, t, s):
    """``(dW_hat, dM_hat)`` of :func:`nac_weight_grad_into` in new arrays."""
    dW_hat, dM_hat = np.empty_like(t), np.empty_like(t)
    nac_weight_grad_into(dW, t, s, dW_hat, dM_hat)
    return dW_hat, dM_hat


@njit(**SUM)
def sum_partials(p):
    """``p.sum(axis=0)`` of the per-chunk partial sums, shape (chunks, ...) -> (...), float64."""
    out = np.zeros(p.shape[1:], np.float64)
    for c in range(p.shape[0]):
        out += p[c]
    return out


@njit(**EW)
def flush(buf, acc):
    """``acc += buf`` (``acc`` float64, same shape), then ``buf = 0``: the rows paths sum weight gradients in
    the dtype over a few hundred rows, then into their chunk's float64 partial sum."""
    for o in range(buf.shape[0]):
        for i in range(buf.shape[1]):
            acc[o, i] += buf[o, i]
            buf[o, i] = 0.0


# ---------------------------------------------------------------------------------------------------------
# block helpers (buffers have shape (features, nb); loops over rows innermost; n <= nb rows are used)
# ---------------------------------------------------------------------------------------------------------


@njit(**EW)
def load(a, r0, nb, aT):
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


@njit(**EW)
def store(aT, r0, nb, a):
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


@njit(**EW)
def log_abs(xT, nb, eps, lT):
    """``lT[:, :nb] = log(|xT| + eps)`` (the log path of NACMul and NALU); for ``eps`` at least the dtype's
    smallest normal number (so ``|x| + eps`` is normal, inf or NaN) by :func:`vlog_normal`, about a third faster
    than :func:`vlog` and the same bits."""
    if eps >= np.finfo(eps).tiny:
        for i in range(xT.shape[0]):
            for r in range(nb):
                lT[i, r] = vlog_normal(abs(xT[i, r]) + eps)
    else:
        for i in range(xT.shape[0]):
            for r in range(nb):
                lT[i, r] = vlog(abs(xT[i, r]) + eps)


@njit(**EW)
def times_log_abs_grad(tT, xT, nb, eps):
    """``tT *= sign(xT) / (|xT| + eps)`` (slope 0 at ``x = 0`` through ``sign``)."""
    for i in range(xT.shape[0]):
        for r in range(nb):
            v = xT[i, r]
            tT[i, r] = tT[i, r] * (np.sign(v) / (abs(v) + eps))


@njit(**EW)
def matmul(inT, nb, W, outT):
    """``outT[o, r] = sum_i inT[i, r] W[i, o]`` for ``r < nb``, summed over ``i`` in order.

    Where the rows are contiguous and ``nb`` spans at least one tile, tiles of columns are summed in registers
    (:mod:`nalu_np.kernels.numba._tiles`): two outputs at a time in tiles of 4 registers each, a last single
    output in the widest tile that fits, the last tile of a row ending at ``nb`` (it overlaps the one before and
    writes the same numbers into the columns they share); else a plain loop.
    """
    size = inT.itemsize
    T = 0
    if inT.strides[1] == size and outT.strides[1] == outT.itemsize:
        for b in TILES:
            if T == 0 and nb * size >= b:
                T = b // size
    o = 0
    if T > 0:
        P = TILES[2] // size  # the columns of a tile of matmul_pairs4
        k = nb // P
        while o + 2 <= W.shape[1]:
            matmul_pairs4(inT, W, outT, o, 0, k)
            matmul_pairs4(inT, W, outT, o, nb - P, 1 if k * P < nb else 0)
            o += 2
    for o in range(o, W.shape[1]):
        if T > 0:
            k = nb // T
            if T * size == TILES[0]:
                matmul_tiles16(inT, W, outT, o, 0, k)
                matmul_tiles16(inT, W, outT, o, nb - T, 1 if k * T < nb else 0)
            elif T * size == TILES[1]:
                matmul_tiles8(inT, W, outT, o, 0, k)
                matmul_tiles8(inT, W, outT, o, nb - T, 1 if k * T < nb else 0)
            else:
                matmul_tiles4(inT, W, outT, o, 0, k)
                matmul_tiles4(inT, W, outT, o, nb - T, 1 if k * T < nb else 0)
            continue
        for r in range(nb):
            outT[o, r] = 0.0
        for i in range(W.shape[0]):
            w = W[i, o]
            for r in range(nb):
                outT[o, r] += inT[i, r] * w


@njit(**EW)
def matmul_t(dT, nb, W, outT, accumulate):
    """``outT[i, r] (+)= sum_o dT[o, r] W[i, o]``."""
    for i in range(W.shape[0]):
        if not accumulate:
            for r in range(nb):
                outT[i, r] = 0.0
        for o in range(W.shape[1]):
            w = W[i, o]
            for r in range(nb):
                outT[i, r] += dT[o, r] * w


@njit(**EW)
def prefix_products(aT, n, W, o, pre, run):
    """The exclusive prefix products ``pre[i, r] = prod_{k < i} f_k`` of the factors
    ``f_i = aT[i, r] W[i, o] + 1 - W[i, o]`` of output ``o``, and their whole product in ``run`` (nb,): the
    NMU's factors (``aT = x``) and the iNALU's sign term (``aT = sign(x)``, ``W = |W_m|``)."""
    one = aT.dtype.type(1.0)
    for r in range(n):
        run[r] = one
    for i in range(W.shape[0]):
        w = W[i, o]
        w1 = one - w
        for r in range(n):
            pre[i, r] = run[r]
            run[r] *= aT[i, r] * w + w1


@njit(**EW)
def gate_mix(gT, aT, mT, n, yT):
    """``yT = g a + (1 - g) m`` on the first ``n`` columns of the (O, nb) blocks: the gated units' output."""
    one = gT.dtype.type(1.0)
    for o in range(yT.shape[0]):
        for r in range(n):
            g = gT[o, r]
            yT[o, r] = g * aT[o, r] + (one - g) * mT[o, r]


@njit(**SUM)
def grad(inT, dT, nb, acc):
    """``acc[i, o] += sum_r inT[i, r] dT[o, r]`` (a block of ``in.T @ d``; summed in the dtype of ``inT``).

    The sums are taken 4 inputs by 2 outputs at a time where they fit (:func:`_grad_pairs`): each row of
    ``inT`` is read once for two outputs, and the 8 independent sums hide the latency of the multiply-add
    (measured 1.6 to 2 times as fast as one sum at a time at (100, 128) by 2); the rest one by one.
    """
    I, O = acc.shape
    o = 0
    while o + 2 <= O:
        _grad_pairs(inT, dT, nb, acc, o)
        _grad_sums(inT, dT, nb, acc, I - I % 4, o, o + 2)
        o += 2
    _grad_sums(inT, dT, nb, acc, 0, o, O)


@njit(**SUM)
def _grad_pairs(inT, dT, nb, acc, o):
    """:func:`grad` on ``acc[:I - I % 4, o:o + 2]``, 4 inputs at a time."""
    zero = inT.dtype.type(0.0)
    for i in range(0, acc.shape[0] - 3, 4):
        s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = zero
        for r in range(nb):
            d0, d1 = dT[o, r], dT[o + 1, r]
            x0, x1, x2, x3 = inT[i, r], inT[i + 1, r], inT[i + 2, r], inT[i + 3, r]
            s00 += x0 * d0
            s01 += x0 * d1
            s10 += x1 * d0
            s11 += x1 * d1
            s20 += x2 * d0
            s21 += x2 * d1
            s30 += x3 * d0
            s31 += x3 * d1
        acc[i, o] += s00
        acc[i, o + 1] += s01
        acc[i + 1, o] += s10
        acc[i + 1, o + 1] += s11
        acc[i + 2, o] += s20
        acc[i + 2, o + 1] += s21
        acc[i + 3, o] += s30
        acc[i + 3, o + 1] += s31


@njit(**SUM)
def _grad_sums(inT, dT, nb, acc, i0, o0, o1):
    """:func:`grad` on ``acc[i0:, o0:o1]``, one sum at a time."""
    zero = inT.dtype.type(0.0)
    for i in range(i0, acc.shape[0]):
        for o in range(o0, o1):
            s = zero
            for r in range(nb):
                s += inT[i, r] * dT[o, r]
            acc[i, o] += s


@njit(**SUM)
def row_sums(T, n, acc):
    """``acc[j] += sum_{r < n} T[j, r]`` (``acc`` is float64)."""
    zero = T.dtype.type(0.0)
    for j in range(T.shape[0]):
        s = zero
        for r in range(n):
            s += T[j, r]
        acc[j] += s


@njit(**EW)
def block_range(c, nchunks, batch, nb):
    """The blocks ``b0:b1`` of chunk ``c`` when ``batch`` rows in blocks of ``nb`` are split ``nchunks`` ways."""
    nblocks = (batch + nb - 1) // nb
    return c * nblocks // nchunks, (c + 1) * nblocks // nchunks


# ---------------------------------------------------------------------------------------------------------
# blas path: elementwise passes over rows, on the calling thread (see the module docstring)
# ---------------------------------------------------------------------------------------------------------


@njit(**EW)
def log_abs_rows(x, eps, l):
    """``l = log(|x| + eps)`` (:func:`log_abs` on all columns); returns ``l``."""
    log_abs(x, x.shape[1], eps, l)
    return l


@njit(**EW)
def add_log_grad_rows(dx, t, x, eps):
    """``dx += t * sign(x) / (|x| + eps)`` in place."""
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = x[b, i]
            dx[b, i] += t[b, i] * (np.sign(v) / (abs(v) + eps))


class Work:
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


def row_chunks(batch: int) -> list[slice]:
    """Slices of ``BLAS_CHUNK_ROWS`` rows that cover the batch: the blas path works chunk by chunk so that
    the elementwise passes find the products' results in cache."""
    return [slice(r, min(r + BLAS_CHUNK_ROWS, batch)) for r in range(0, batch, BLAS_CHUNK_ROWS)]


# ---------------------------------------------------------------------------------------------------------
# optimizer blocks: the sparsity regularizer, Adam and the projection (used by the compiled training step)
# ---------------------------------------------------------------------------------------------------------


@njit(**EW)
def min_distance_penalty(W, signed, lam, dW):
    """Add ``lam * dR/dW`` to ``dW`` and return ``lam * R`` (float64): ``R = mean(min(|W|, |1 - |W||))`` when
    ``signed`` (NAU), else ``R = mean(min(|W|, |1 - W|))`` (NMU).

    ``W`` and ``dW`` are contiguous arrays of one shape.  The slope is the authors' (PyTorch's autograd of the
    formula, as :func:`nalu_np.reference.nau_regularizer` and :func:`~nalu_np.reference.nmu_regularizer`): the
    slope of the smaller of the two distances, their mean at a tie, ``sign(0) = 0`` for ``|.|`` at 0 -- so 0 at
    ``W = 0``, at the tie ``1/2`` and on the bound (``|W| = 1`` for the NAU, ``W = 1`` for the NMU).
    """
    w = W.reshape(-1)
    g = dW.reshape(-1)
    dt = w.dtype.type
    one = dt(1.0)
    half = dt(0.5)
    n = w.shape[0]
    total = dt(0.0)
    for k in range(n):
        x = w[k]
        a = abs(x)
        da = np.sign(x)
        if signed:
            b = abs(one - a)
            db = -np.sign(one - a) * da
        else:
            b = abs(one - x)
            db = -np.sign(one - x)
        total += min(a, b)
        slope = da if a < b else (db if a > b else (da + db) * half)
        g[k] += dt(lam) * (slope / dt(n))
    return lam * (total / dt(n))


@njit(**EW)
def clip(q, lo, hi):
    """``min(max(q, lo), hi)`` of a scalar, NaN passed through (the projection of one parameter element)."""
    return q if q != q else min(max(q, lo), hi)


@njit(**EW)
def adam_step(p, g, m, v, t, lr, b1, b2, eps, propagate, lo, hi):
    """One step of :class:`nalu_np.optim.Adam` (step number ``t``) on flat ``p`` with gradient ``g`` and moments
    ``m``, ``v`` (all updated in place), then the projection ``p = clip(p, lo, hi)`` elementwise.

    Notes
    -----
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p = clip(p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), lo, hi)``: Adam's ``overflow="clip"``
    (``propagate`` false), where a ``g`` beyond ``sqrt(max / 2)`` of the dtype enters the moments clipped to it.
    With ``"propagate"``, PyTorch's operations: ``v = b2 v + ((1 - b2) g) g`` unclipped and
    ``p = clip(p - (lr / (1 - b1^t)) (m / (sqrt(v) / sqrt(1 - b2^t) + eps)), lo, hi)`` (see
    :class:`nalu_np.optim.Adam`).
    """
    dt = p.dtype.type
    if propagate:
        step = dt(lr / (1.0 - b1**t))
        root = dt(np.sqrt(1.0 - b2**t))
        for k in range(p.shape[0]):
            m[k] = m[k] * dt(b1) + dt(1.0 - b1) * g[k]
            v[k] = v[k] * dt(b2) + (dt(1.0 - b2) * g[k]) * g[k]
            p[k] = clip(p[k] - step * (m[k] / (np.sqrt(v[k]) / root + dt(eps))), lo[k], hi[k])
        return
    bc1 = dt(1.0 - b1**t)
    bc2 = dt(1.0 - b2**t)
    lim = dt(1.3043817436596711e19) if p.itemsize == 4 else dt(9.480751908109176e153)  # sqrt(max / 2)
    for k in range(p.shape[0]):
        gg = g[k]
        if abs(gg) > lim:  # its square would overflow: clipped, as nalu_np.optim.Adam
            gg = lim if gg > 0 else -lim
        m[k] = m[k] * dt(b1) + dt(1.0 - b1) * gg
        v[k] = v[k] * dt(b2) + dt(1.0 - b2) * (gg * gg)
        denom = np.sqrt(v[k] / bc2) + dt(eps)
        p[k] = clip(p[k] - dt(lr) * (m[k] / bc1) / denom, lo[k], hi[k])


@njit(**EW)
def sgd_step(p, g, b, t, lr, momentum, lo, hi):
    """One step of :class:`nalu_np.optim.SGD` (step number ``t``) on flat ``p`` with gradient ``g`` and
    momentum buffer ``b`` (updated in place; untouched when ``momentum == 0``), then the projection
    ``p = clip(p, lo, hi)`` elementwise.

    Notes
    -----
    ``b = momentum b + g`` (``b = g`` at ``t = 1``), ``p = clip(p - lr b, lo, hi)``; with ``momentum == 0``
    ``p = clip(p - lr g, lo, hi)``.
    """
    dt = p.dtype.type
    for k in range(p.shape[0]):
        step = g[k]
        if momentum != 0.0:
            b[k] = step if t == 1 else b[k] * dt(momentum) + step
            step = b[k]
        p[k] = clip(p[k] - dt(lr) * step, lo[k], hi[k])


@njit(**EW)
def rmsprop_step(p, g, v, lr, alpha, eps, lo, hi):
    """One step of :class:`nalu_np.optim.RMSProp` on flat ``p`` with gradient ``g`` and mean square ``v``
    (updated in place), then the projection ``p = clip(p, lo, hi)`` elementwise.

    Notes
    -----
    ``v = alpha v + (1 - alpha) g^2``, ``p = clip(p - lr g / (sqrt(v) + eps), lo, hi)`` (no gradient limit:
    a ``g^2`` that overflows makes ``v`` infinite, as in :class:`nalu_np.optim.RMSProp`).
    """
    dt = p.dtype.type
    for k in range(p.shape[0]):
        gg = g[k]
        v[k] = v[k] * dt(alpha) + dt(1.0 - alpha) * (gg * gg)
        p[k] = clip(p[k] - dt(lr) * gg / (np.sqrt(v[k]) + dt(eps)), lo[k], hi[k])


@njit(**EW)
def clip_gradient(g, clip_value, clip_norm):
    """Clip the flat gradient ``g`` in place as :class:`nalu_np.optim.Optimizer` does before its update rule;
    ``inf`` turns either clipping off.

    Notes
    -----
    First ``g = clip(g, -clip_value, clip_value)`` elementwise (NaN passed through), then, with
    ``norm = sqrt(sum g^2)`` summed in float64 over all of ``g`` (all the parameters together),
    ``g = g * (clip_norm / norm)`` when ``norm > clip_norm`` (a NaN norm is not, and leaves ``g`` as it is).
    """
    dt = g.dtype.type
    if clip_value < np.inf:
        c = dt(clip_value)
        for k in range(g.shape[0]):
            g[k] = clip(g[k], -c, c)
    if clip_norm < np.inf:
        total = 0.0
        for k in range(g.shape[0]):
            total += np.float64(g[k]) * np.float64(g[k])
        norm = np.sqrt(total)
        if norm > clip_norm:
            scale = dt(clip_norm / norm)
            for k in range(g.shape[0]):
                g[k] = g[k] * scale
