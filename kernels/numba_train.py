"""Compiled training of two-layer arithmetic networks on the simple function task: K steps in one call.

Small-batch training in Python pays for every step in interpreter overhead (dozens of NumPy calls of a few
microseconds each).  Here a whole run of steps -- build the batch, forward, MSE, backward, optional
regularizer, Adam step, projection -- is one Numba call, so a step costs what its arithmetic costs.

The networks are the ones of Madsen & Johansen's (2020) simple function task: ``Sequential([L1(I, H),
L2(H, O)])`` with each layer an ``NAU``, ``NMU`` or ``NALU`` (shared weights), e.g. NAU -> NMU for ``x``,
NAU -> NAU for ``+`` and ``-``, NALU -> NALU for the NALU baseline.  Inputs ``x_i ~ U(lo, hi)``,
``a = sum(x[o:o+25])``, ``b = sum(x[o+13:o+38])``, target ``a op b``, a fresh batch every step, MSE loss,
Adam, NAU weights clipped to ``[-1, 1]`` and NMU weights to ``[0, 1]`` after each step, and optionally the
sparsity regularizer ``lambda(t) * (R_1 + R_2)`` of the NAU/NMU layers.

Where the batches come from
---------------------------
Two ways, with the same training step:

* ``train_steps(..., u)``: the uniform numbers are passed in.  :func:`draw_uniforms` draws those of ``K``
  steps with NumPy's ``Generator``, exactly the numbers of ``K`` calls of ``rng.random((batch, I))``, and step
  ``k`` uses ``x = lo + (hi - lo) * u[k]``.  A step-by-step loop with the NumPy reference kernels and
  :class:`nalu_np.optim.Adam` that draws its batches that way computes the same run, to floating-point
  tolerance (the compiled code sums in another order).  This is what the tests compare.
* ``train_steps(..., steps=K, state=s)``: the numbers are made inside the compiled loop by xoshiro256**
  (Blackman & Vigna), 16 independent streams side by side so that the generator vectorises; ``s`` is its
  state (:func:`rng_state`), advanced in place.  A uniform is the top 24 (float32) or 53 (float64) bits of
  one output times ``2**-24`` or ``2**-53``: every value on that grid of ``[0, 1)`` equally likely.  The run
  depends only on the seed of the state, not on how the steps are split into calls.  With NumPy's generator
  the drawing costs several times the step's arithmetic (``bench/train.py``: ``numba-compiled`` against
  ``numba-compiled-rng``); this is what ``nalu-np sweep`` uses.

The model's parameters and the optimizer's moments and step count are updated in place, so compiled runs and
Python steps can be mixed freely.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .numba_math import from_int_bits, jit, vexp, vlog, vsigmoid

__all__ = ["SimpleFunction", "draw_uniforms", "rng_state", "uniforms", "supports", "train_steps", "predictor",
           "predict", "train", "LAYER_KINDS"]

_OPS = {"add": 0, "sub": 1, "mul": 2, "div": 3}
#: layer class name -> kind code of the compiled path, and its parameters in the order they are packed
LAYER_KINDS = {"NAU": 0, "NMU": 1, "NALU": 2}
_NAU, _NMU, _NALU = 0, 1, 2
_PARAMS = {"NAU": ("W",), "NMU": ("W",), "NALU": ("W_hat", "M_hat", "G")}
_BOUNDS = {"NAU": (-1.0, 1.0), "NMU": (0.0, 1.0), "NALU": (-np.inf, np.inf)}
_EW = dict(error_model="numpy", fastmath={"contract"})
_SUM = dict(error_model="numpy", fastmath={"reassoc", "contract", "nsz"})  # dot products: only rounding changes
_LANES = 16  # xoshiro256** streams side by side


@dataclass(frozen=True)
class SimpleFunction:
    """The simple function task: ``t = a op b`` with ``a``, ``b`` sums of two overlapping input slices.

    Parameters
    ----------
    op : {"add", "sub", "mul", "div"}
    offset : int
        ``o``: ``a = sum(x[o:o+subset])``, ``b = sum(x[o+overlap_start:o+overlap_start+subset])``.
    in_features : int
    lo, hi : float
        Inputs are drawn from ``U(lo, hi)``: ``(1, 2)`` for training.
    subset, overlap_start : int
        Slice length (25) and the start of ``b``'s slice relative to ``a``'s (13).
    """

    op: str = "mul"
    offset: int = 0
    in_features: int = 100
    lo: float = 1.0
    hi: float = 2.0
    subset: int = 25
    overlap_start: int = 13

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"unknown op {self.op!r}; one of {', '.join(_OPS)}")
        end = self.offset + self.overlap_start + self.subset
        if self.offset < 0 or end > self.in_features:
            raise ValueError(f"offset {self.offset}: the slices must lie in [0, {self.in_features}), they end at {end}")

    def inputs(self, u: np.ndarray) -> np.ndarray:
        """``x = lo + (hi - lo) * u`` in the dtype of ``u``."""
        dt = u.dtype.type
        return dt(self.lo) + dt(self.hi - self.lo) * u

    def targets(self, x: np.ndarray) -> np.ndarray:
        """``a op b`` of a batch ``x`` (B, I), shape (B, 1), dtype of ``x``: the sums and the op in float64,
        then rounded once."""
        o, s, v = self.offset, self.subset, self.overlap_start
        x64 = x.astype(np.float64)
        a = x64[:, o:o + s].sum(axis=1, keepdims=True)
        b = x64[:, o + v:o + v + s].sum(axis=1, keepdims=True)
        return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[self.op].astype(x.dtype)


def draw_uniforms(rng: np.random.Generator, steps: int, batch_size: int, in_features: int,
                  dtype: Any = np.float32) -> np.ndarray:
    """The uniform numbers of ``steps`` batches, shape (steps, batch_size, in_features).

    The same numbers, in the same order, as ``steps`` calls of
    ``rng.random((batch_size, in_features), dtype=dtype)``.
    """
    return rng.random((steps, batch_size, in_features), dtype=np.dtype(dtype).type)


# ---------------------------------------------------------------------------------------------------------
# the in-kernel generator: xoshiro256**, _LANES streams
# ---------------------------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


def rng_state(seed: int) -> np.ndarray:
    """A fresh xoshiro256** state for :func:`train_steps` and :func:`uniforms`, shape (4, 16), uint64.

    The 64 words come from SplitMix64 seeded with ``seed`` (the seeding its authors recommend), so no stream
    starts from the all-zero state and nearby seeds give unrelated streams.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    z, words = int(seed) & _MASK64, []
    for _ in range(4 * _LANES):
        z = (z + 0x9E3779B97F4A7C15) & _MASK64
        w = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        w = ((w ^ (w >> 27)) * 0x94D049BB133111EB) & _MASK64
        words.append(w ^ (w >> 31))
    return np.array(words, dtype=np.uint64).reshape(4, _LANES)


@jit(**_EW)
def _draw(state, out):
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


@jit(**_EW)
def _fill_uniform(state, lo, span, out):
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
    _draw(state, bits)
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
    _check_state(state)
    out = np.empty(int(n), np.dtype(dtype))
    _fill_uniform(state, out.dtype.type(0.0), out.dtype.type(1.0), out)
    return out


def _check_state(state: Any) -> None:
    if not (isinstance(state, np.ndarray) and state.dtype == np.uint64 and state.shape == (4, _LANES)
            and state.flags.c_contiguous and state.flags.writeable):
        raise TypeError("state must be a writeable C-contiguous uint64 array of shape (4, 16) from rng_state()")
    if not state.any(axis=0).all():
        raise ValueError("a xoshiro256** stream must not be all zero; make the state with rng_state()")


# ---------------------------------------------------------------------------------------------------------
# layers: weights (I, O) packed in one flat vector; activations kept transposed, (features, batch), so that
# the inner loops run along the batch (contiguous, no horizontal sums)
# ---------------------------------------------------------------------------------------------------------


@jit(**_EW)
def _linear(W, xT, outT):
    """``outT[j, b] = sum_i W[i, j] xT[i, b]``."""
    outT[:, :] = 0.0
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            w = W[i, j]
            for b in range(xT.shape[1]):
                outT[j, b] += w * xT[i, b]


@jit(**_SUM)
def _linear_grad(xT, dT, dW):
    """``dW[i, j] += sum_b xT[i, b] dT[j, b]``."""
    zero = xT.dtype.type(0.0)
    for i in range(xT.shape[0]):
        for j in range(dT.shape[0]):
            acc = zero
            for b in range(xT.shape[1]):
                acc += xT[i, b] * dT[j, b]
            dW[i, j] += acc


@jit(**_EW)
def _linear_back(W, dT, dxT):
    """``dxT[i, b] += sum_j W[i, j] dT[j, b]``."""
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            w = W[i, j]
            for b in range(dT.shape[1]):
                dxT[i, b] += w * dT[j, b]


@jit(**_EW)
def _log_abs(xT, eps, lT):
    """``lT = log(|xT| + eps)`` (the NALU's log path)."""
    for i in range(xT.shape[0]):
        for b in range(xT.shape[1]):
            lT[i, b] = vlog(abs(xT[i, b]) + eps)


@jit(**_EW)
def _prepare(kind, p, wts):
    """The weights of a layer (I, O) from its packed parameters ``p``.

    ``wts[0]``: the weight ``W`` (NAU, NMU) or ``tanh(W_hat) sigma(M_hat)`` (NALU); NALU also ``wts[1] = G``,
    ``wts[2] = tanh(W_hat)``, ``wts[3] = sigma(M_hat)``.  ``p`` holds (I, O) matrices row-major, one after the
    other in the order of ``_PARAMS``.
    """
    n_in, n_out = wts.shape[1], wts.shape[2]
    n = n_in * n_out
    for i in range(n_in):
        for j in range(n_out):
            k = i * n_out + j
            if kind == _NALU:
                t = np.tanh(p[k])
                s = vsigmoid(p[n + k])
                wts[0, i, j] = t * s
                wts[1, i, j] = p[2 * n + k]
                wts[2, i, j] = t
                wts[3, i, j] = s
            else:
                wts[0, i, j] = p[k]


@jit(**_EW)
def _forward(kind, xT, lT, wts, act, yT):
    """``yT = layer(xT)``, all (features, batch); for the NALU ``lT = log(|xT| + eps)`` must be filled, and
    ``act`` keeps ``a``, ``m``, ``g``.

    NMU: ``y_j = prod_i (W_ij x_i + 1 - W_ij)``.  NALU: ``y = g a + (1 - g) m`` with ``a = x W``,
    ``m = exp(log(|x| + eps) W)``, ``g = sigma(x G)``.
    """
    one = xT.dtype.type(1.0)
    B = xT.shape[1]
    if kind == _NAU:
        _linear(wts[0], xT, yT)
    elif kind == _NMU:
        W = wts[0]
        yT[:, :] = one
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                w = W[i, j]
                for b in range(B):
                    yT[j, b] *= w * xT[i, b] + (one - w)
    else:
        _linear(wts[0], xT, act[0])
        _linear(wts[0], lT, act[1])
        _linear(wts[1], xT, act[2])
        for j in range(yT.shape[0]):
            for b in range(B):
                m = vexp(act[1, j, b])
                g = vsigmoid(act[2, j, b])
                act[1, j, b] = m
                act[2, j, b] = g
                yT[j, b] = g * act[0, j, b] + (one - g) * m


@jit(**_EW)
def _backward(kind, xT, lT, wts, eps, act, dyT, dW, gp, dxT, need_dx, pre):
    """Gradients of a layer: into the packed gradient ``gp`` (layout of the packed parameters) and, when
    ``need_dx``, ``dxT`` (overwritten).  ``dW`` (2, I, O) and ``pre`` (I + 1, B) are scratch.

    NMU: the leave-one-out products ``prod_{k != i}`` from prefix and suffix products (exact with zero
    factors).  NALU: ``da = dy g``, ``dz = dy (1 - g) m``, ``dh = dy (a - m) g (1 - g)``; ``dW = x.T da +
    l.T dz`` into ``W_hat``, ``M_hat`` through ``tanh * sigma``, ``dG = x.T dh``, and
    ``dx = da W.T + (dz W.T) sign(x) / (|x| + eps) + dh G.T``.
    """
    one = xT.dtype.type(1.0)
    n_in, n_out = wts.shape[1], wts.shape[2]
    n = n_in * n_out
    B = xT.shape[1]
    dW[:, :, :] = 0.0
    if need_dx:
        dxT[:, :] = 0.0
    if kind == _NAU:
        _linear_grad(xT, dyT, dW[0])
        if need_dx:
            _linear_back(wts[0], dyT, dxT)
    elif kind == _NMU:
        W = wts[0]
        run = pre[n_in]
        for j in range(n_out):
            run[:] = one
            for i in range(n_in):
                w = W[i, j]
                for b in range(B):
                    pre[i, b] = run[b]
                    run[b] *= w * xT[i, b] + (one - w)
            run[:] = dyT[j]  # dy times the suffix product
            for i in range(n_in - 1, -1, -1):
                w = W[i, j]
                acc = 0.0
                for b in range(B):
                    c = pre[i, b] * run[b]
                    acc += c * (xT[i, b] - one)
                    if need_dx:
                        dxT[i, b] += c * w
                    run[b] *= w * xT[i, b] + (one - w)
                dW[0, i, j] += acc
    else:
        d = np.empty((3, n_out, B), xT.dtype)  # da, dz, dh
        for j in range(n_out):
            for b in range(B):
                a, m, g = act[0, j, b], act[1, j, b], act[2, j, b]
                dy = dyT[j, b]
                d[0, j, b] = dy * g
                d[1, j, b] = dy * (one - g) * m
                d[2, j, b] = dy * (a - m) * g * (one - g)
        _linear_grad(xT, d[0], dW[0])
        _linear_grad(lT, d[1], dW[0])
        _linear_grad(xT, d[2], dW[1])
        if need_dx:
            _linear_back(wts[0], d[1], dxT)
            for i in range(n_in):
                for b in range(B):
                    dxT[i, b] *= np.sign(xT[i, b]) / (abs(xT[i, b]) + eps)
            _linear_back(wts[0], d[0], dxT)
            _linear_back(wts[1], d[2], dxT)
    for i in range(n_in):
        for j in range(n_out):
            k = i * n_out + j
            if kind == _NALU:
                t, s = wts[2, i, j], wts[3, i, j]
                gp[k] = dW[0, i, j] * (one - t * t) * s
                gp[n + k] = dW[0, i, j] * t * s * (one - s)
                gp[2 * n + k] = dW[1, i, j]
            else:
                gp[k] = dW[0, i, j]


@jit(**_EW)
def _penalty(kind, p, lam, gp):
    """Add ``lam * dR/dW`` to ``gp`` and return ``lam * R``: ``R = mean(min(d, 1 - d))``, ``d = |W|`` (NAU)
    or ``W`` (NMU); the slope is ``sign(1/2 - d)`` (times ``sign(W)`` for the NAU).  0 for the NALU."""
    if kind == _NALU:
        return 0.0
    dt = p.dtype.type
    one = dt(1.0)
    half = dt(0.5)
    n = gp.shape[0]
    total = dt(0.0)
    for k in range(n):
        d = abs(p[k]) if kind == _NAU else p[k]
        total += min(d, one - d)
        slope = np.sign(half - d) * (np.sign(p[k]) if kind == _NAU else one)
        gp[k] += dt(lam) * (slope / dt(n))
    return lam * (total / dt(n))


@jit(**_EW)
def _adam(p, g, m, v, t, lr, b1, b2, eps, lo, hi):
    """One step of :class:`nalu_np.optim.Adam` (step number ``t``), then ``p = clip(p, lo, hi)`` elementwise
    (a NaN stays NaN)."""
    dt = p.dtype.type
    bc1 = dt(1.0 - b1**t)
    bc2 = dt(1.0 - b2**t)
    for k in range(p.shape[0]):
        gg = g[k]
        m[k] = m[k] * dt(b1) + dt(1.0 - b1) * gg
        v[k] = v[k] * dt(b2) + dt(1.0 - b2) * (gg * gg)
        denom = np.sqrt(v[k] / bc2) + dt(eps)
        q = p[k] - dt(lr) * (m[k] / bc1) / denom
        p[k] = q if q != q else min(max(q, lo[k]), hi[k])


@jit(**_EW)
def _schedule(step, lam_hat, start, end):
    """:func:`nalu_np.reference.linear_schedule`."""
    if start == end:
        return lam_hat if step >= start else 0.0
    return lam_hat * min(max((step - start) / (end - start), 0.0), 1.0)


@jit(**_EW)
def _targets(xT, op, o, s, v, a, c, t):
    """``t[b] = a op c`` with ``a = sum(x[o:o+s])``, ``c = sum(x[o+v:o+v+s])`` in float64 (scratch ``a``,
    ``c``), rounded once to the dtype of ``t``."""
    a[:] = 0.0
    c[:] = 0.0
    for i in range(s):
        for b in range(xT.shape[1]):
            a[b] += xT[o + i, b]
            c[b] += xT[o + v + i, b]
    for b in range(xT.shape[1]):
        if op == 0:
            t[b] = a[b] + c[b]
        elif op == 1:
            t[b] = a[b] - c[b]
        elif op == 2:
            t[b] = a[b] * c[b]
        else:
            t[b] = a[b] / c[b]


@jit(**_EW)
def _work(kinds, dims, dt, B):
    """Work arrays of the two layers for batches of ``B``: weights, activations and their logs."""
    I, H, O = dims[0], dims[1], dims[2]
    w1 = np.empty((4, I, H), dt)
    w2 = np.empty((4, H, O), dt)
    lx = np.empty((I if kinds[0] == _NALU else 0, B), dt)
    hT = np.empty((H, B), dt)
    lh = np.empty((H, B), dt)
    act1 = np.empty((3, H, B), dt)
    act2 = np.empty((3, O, B), dt)
    return w1, w2, lx, hT, lh, act1, act2


@jit(**_EW)
def _model_forward(kinds, eps, w1, w2, xT, lx, hT, lh, act1, act2, yT, have_lx):
    """``yT = L2(L1(xT))`` (both layers' weights prepared by :func:`_prepare`); ``lx = log(|xT| + eps)`` is
    computed here unless ``have_lx``."""
    dt = xT.dtype.type
    if kinds[0] == _NALU and not have_lx:
        _log_abs(xT, dt(eps[0]), lx)
    _forward(kinds[0], xT, lx, w1, act1, hT)
    if kinds[1] == _NALU:
        _log_abs(hT, dt(eps[1]), lh)
    _forward(kinds[1], hT, lh, w2, act2, yT)


@jit(**_EW)
def _run(kinds, dims, offs, eps, theta, m1, m2, lo, hi, u, state, steps, B, xlo, span, op, o, s, v,
         t0, lr, b1, b2, adam_eps, lam_hat, lam_start, lam_end, losses):
    """``steps`` training steps on the packed parameters ``theta`` with Adam moments ``m1``, ``m2``.

    ``kinds``, ``dims`` = (I, H, O), ``offs`` = (start of layer 1, start of layer 2, end), ``eps`` per layer.
    The batches are ``xlo + span * u[k]`` when ``u`` has ``steps`` entries, else drawn from ``state``.
    """
    I, H, O = dims[0], dims[1], dims[2]
    dt = theta.dtype
    grad = np.zeros_like(theta)
    xflat = np.empty(I * B, dt)
    xT = xflat.reshape((I, B))
    t = np.empty(B, dt)
    sa = np.empty(B)
    sc = np.empty(B)
    yT = np.empty((O, B), dt)
    dyT = np.empty((O, B), dt)
    dhT = np.empty((H, B), dt)
    dW1 = np.empty((2, I, H), dt)
    dW2 = np.empty((2, H, O), dt)
    pre = np.empty((max(I, H) + 1, B), dt)
    scale = dt.type(2.0 / (B * O))
    p1, p2 = theta[offs[0]:offs[1]], theta[offs[1]:offs[2]]
    g1, g2 = grad[offs[0]:offs[1]], grad[offs[1]:offs[2]]
    w1, w2, lx, hT, lh, act1, act2 = _work(kinds, dims, dt, B)
    given = u.shape[0] == steps
    for k in range(steps):
        step = t0 + k  # optimizer steps taken before this one
        if given:
            for b in range(B):
                for i in range(I):
                    xT[i, b] = dt.type(xlo) + dt.type(span) * u[k, b, i]
        else:
            _fill_uniform(state, dt.type(xlo), dt.type(span), xflat)
        _targets(xT, op, o, s, v, sa, sc, t)
        _prepare(kinds[0], p1, w1)
        _prepare(kinds[1], p2, w2)
        _model_forward(kinds, eps, w1, w2, xT, lx, hT, lh, act1, act2, yT, False)
        loss = 0.0
        for j in range(O):
            for b in range(B):
                d = yT[j, b] - t[b]
                loss += d * d
                dyT[j, b] = d * scale
        loss /= B * O
        _backward(kinds[1], hT, lh, w2, dt.type(eps[1]), act2, dyT, dW2, g2, dhT, True, pre)
        _backward(kinds[0], xT, lx, w1, dt.type(eps[0]), act1, dhT, dW1, g1, dhT, False, pre)
        lam = _schedule(step, lam_hat, lam_start, lam_end)
        if lam != 0.0:
            loss += _penalty(kinds[0], p1, lam, g1) + _penalty(kinds[1], p2, lam, g2)
        losses[k] = loss
        _adam(theta, grad, m1, m2, step + 1, lr, b1, b2, adam_eps, lo, hi)


@jit(**_EW)
def _log_input(kinds, eps, xT):
    """``log(|xT| + eps)`` when the first layer is a NALU, else an empty array."""
    lx = np.empty((xT.shape[0] if kinds[0] == _NALU else 0, xT.shape[1]), xT.dtype)
    if kinds[0] == _NALU:
        _log_abs(xT, xT.dtype.type(eps[0]), lx)
    return lx


@jit(**_EW)
def _predict(kinds, dims, offs, eps, theta, xT, lx, yT):
    """``yT = L2(L1(xT))`` for a batch of any size, (features, batch); ``lx`` from :func:`_log_input`."""
    w1, w2, _, hT, lh, act1, act2 = _work(kinds, dims, theta.dtype, xT.shape[1])
    _prepare(kinds[0], theta[offs[0]:offs[1]], w1)
    _prepare(kinds[1], theta[offs[1]:offs[2]], w2)
    _model_forward(kinds, eps, w1, w2, xT, lx, hT, lh, act1, act2, yT, True)


# ---------------------------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Packed:
    """A model's layers as the compiled code sees them, and the packing of its parameters (and of Adam's
    moments) into flat vectors."""

    keys: list[str]  # model.params keys in packed order
    kinds: np.ndarray
    dims: np.ndarray
    offs: np.ndarray
    eps: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    dtype: np.dtype

    def pack(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([arrays[k].ravel() for k in self.keys])

    def unpack(self, flat: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        start = 0
        for k in self.keys:
            a = arrays[k]
            a[...] = flat[start:start + a.size].reshape(a.shape)
            start += a.size


def supports(model: Any) -> str | None:
    """Why the compiled path cannot train ``model``, or None when it can."""
    from nalu_np.layers import Sequential

    if not (isinstance(model, Sequential) and len(model.layers) == 2):
        return f"the compiled path trains two-layer Sequential networks, got {model!r}"
    names = [type(layer).__name__ for layer in model.layers]
    if any(n not in LAYER_KINDS for n in names):
        return f"the compiled path trains layers of {', '.join(LAYER_KINDS)}, got {' -> '.join(names)}"
    if any(n == "NALU" and not layer.shared_weights for n, layer in zip(names, model.layers)):
        return "the compiled path trains the NALU with shared weights only"
    if model.layers[0].out_features != model.layers[1].in_features:
        return "the layers' sizes do not chain"
    dtypes = {p.dtype for p in model.params.values()}
    if len(dtypes) != 1 or dtypes.pop() not in (np.float32, np.float64):
        return "the compiled path needs float32 or float64 NumPy parameters of one dtype"
    if not all(isinstance(p, np.ndarray) for p in model.params.values()):
        return "the compiled path runs on NumPy arrays (backend numpy or numba)"
    return None


def _packing(model: Any) -> _Packed:
    why = supports(model)
    if why is not None:
        raise TypeError(why)
    keys, offs, lo, hi = [], [0], [], []
    for n, layer in enumerate(model.layers):
        name = type(layer).__name__
        for p in _PARAMS[name]:
            keys.append(f"{n}.{p}")
            size = layer.params[p].size
            lo.append(np.full(size, _BOUNDS[name][0]))
            hi.append(np.full(size, _BOUNDS[name][1]))
        offs.append(offs[-1] + sum(layer.params[p].size for p in _PARAMS[name]))
    l1, l2 = model.layers
    dtype = l1.params[_PARAMS[type(l1).__name__][0]].dtype
    return _Packed(
        keys=keys,
        kinds=np.array([LAYER_KINDS[type(layer).__name__] for layer in model.layers], np.int64),
        dims=np.array([l1.in_features, l1.out_features, l2.out_features], np.int64),
        offs=np.array(offs, np.int64),
        eps=np.array([float(getattr(layer, "eps", 0.0)) for layer in model.layers]),
        lo=np.concatenate(lo).astype(dtype), hi=np.concatenate(hi).astype(dtype), dtype=dtype,
    )


def _check_optimizer(model: Any, optimizer: Any) -> None:
    from nalu_np.optim import Adam

    if not isinstance(optimizer, Adam):
        raise TypeError(f"the compiled path steps with nalu_np.optim.Adam, got {type(optimizer).__name__}")
    if optimizer.clip_norm is not None or optimizer.clip_value is not None:
        raise ValueError("the compiled path does not clip gradients (clip_norm / clip_value must be None)")
    if set(optimizer.params) != set(model.params) or any(optimizer.params[k] is not v for k, v in model.params.items()):
        raise ValueError("the optimizer must be built on model.params")


def train_steps(model: Any, optimizer: Any, task: SimpleFunction, u: np.ndarray | None = None, *,
                steps: int | None = None, state: np.ndarray | None = None, batch_size: int = 128,
                regularizer: tuple[float, float, float] | None = None) -> np.ndarray:
    """Run training steps in one compiled call, with given uniforms ``u`` or with ``steps`` draws from ``state``.

    Parameters
    ----------
    model : Sequential
        Two layers, each ``NAU``, ``NMU`` or ``NALU`` (shared weights), NumPy float32 or float64 parameters;
        trained in place.
    optimizer : nalu_np.optim.Adam
        Built on ``model.params``, without gradient clipping; its moments and step count are updated in place.
        The projections are always NAU ``[-1, 1]``, NMU ``[0, 1]``, none for the NALU.
    task : SimpleFunction
    u : ndarray, shape (K, B, I), optional
        The uniform numbers of the K batches (:func:`draw_uniforms`), dtype of the model.
    steps : int, optional
        Instead of ``u``: the number of steps, with batches of ``batch_size`` drawn from ``state``.
    state : ndarray, shape (4, 16), uint64, optional
        The generator state (:func:`rng_state`), advanced in place.
    regularizer : (lambda_hat, start, end), optional
        Adds ``lambda(t) * (R_1 + R_2)`` to the loss at step ``t`` (``t = optimizer.t`` before the step), with
        :func:`nalu_np.reference.linear_schedule` and the NAU/NMU regularizers (a NALU layer has none).

    Returns
    -------
    losses : ndarray, shape (K,), float64
        The loss of each step (before its update), regularizer included.
    """
    pk = _packing(model)
    _check_optimizer(model, optimizer)
    I = int(pk.dims[0])
    if task.in_features != I or (pk.dims[2] != 1):
        raise ValueError(f"the task has {task.in_features} inputs and one target; the model maps {I} -> "
                         f"{int(pk.dims[2])}")
    if (u is None) == (steps is None and state is None):
        raise ValueError("pass either u, or steps and state")
    if u is not None:
        u = np.ascontiguousarray(u)
        if u.ndim != 3 or u.shape[2] != I or u.dtype != pk.dtype:
            raise ValueError(f"u must have shape (steps, batch, {I}) and dtype {pk.dtype}, got {u.shape} {u.dtype}")
        steps, batch_size = u.shape[0], u.shape[1]
        state = rng_state(0)
    else:
        if steps is None or state is None:
            raise ValueError("drawing the batches needs both steps and state")
        _check_state(state)
        steps = int(steps)
        if steps < 0 or batch_size < 1:
            raise ValueError(f"need steps >= 0 and batch_size >= 1, got {steps}, {batch_size}")
        u = np.empty((0, 1, I), pk.dtype)
    lam_hat, start, end = (0.0, 0.0, 0.0) if regularizer is None else map(float, regularizer)
    if regularizer is not None and not start <= end:
        raise ValueError(f"regularizer needs start <= end, got {regularizer}")
    theta = pk.pack(model.params)
    m1, m2 = pk.pack(optimizer.state["exp_avg"]), pk.pack(optimizer.state["exp_avg_sq"])
    losses = np.empty(steps, np.float64)
    b1, b2 = optimizer.betas
    _run(pk.kinds, pk.dims, pk.offs, pk.eps, theta, m1, m2, pk.lo, pk.hi, u, state, steps, int(batch_size),
         float(task.lo), float(task.hi - task.lo), _OPS[task.op], task.offset, task.subset, task.overlap_start,
         optimizer.t, float(optimizer.lr), float(b1), float(b2), float(optimizer.eps), lam_hat, start, end,
         losses)
    pk.unpack(theta, model.params)
    pk.unpack(m1, optimizer.state["exp_avg"])
    pk.unpack(m2, optimizer.state["exp_avg_sq"])
    optimizer.t += steps
    return losses


def predictor(model: Any, x: np.ndarray) -> Callable[[], np.ndarray]:
    """A function that returns the model's output for the fixed inputs ``x`` (B, I) with its parameters of the
    moment, shape (B, O), the model's dtype (compiled forward pass).

    ``x`` is laid out once, and for a NALU first layer its ``log(|x| + eps)`` computed once, so repeated
    evaluations on a fixed test set cost only the products.  The model's structure must not change.
    """
    pk = _packing(model)
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != pk.dims[0] or x.dtype != pk.dtype:
        raise ValueError(f"x must have shape (batch, {int(pk.dims[0])}) and dtype {pk.dtype}, got {x.shape} {x.dtype}")
    xT = np.ascontiguousarray(x.T)
    lx = _log_input(pk.kinds, pk.eps, xT)

    def evaluate() -> np.ndarray:
        yT = np.empty((int(pk.dims[2]), xT.shape[1]), pk.dtype)
        _predict(pk.kinds, pk.dims, pk.offs, pk.eps, pk.pack(model.params), xT, lx, yT)
        return np.ascontiguousarray(yT.T)

    return evaluate


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's output for ``x`` (B, I) with the compiled forward pass, shape (B, O), the model's dtype."""
    return predictor(model, x)()


def train(model: Any, optimizer: Any, task: SimpleFunction, steps: int, rng: np.random.Generator, *,
          batch_size: int = 128, chunk: int = 256, regularizer: tuple[float, float, float] | None = None
          ) -> np.ndarray:
    """Train for ``steps`` steps, drawing the batches of ``chunk`` steps at a time with NumPy's ``rng``.

    The next chunk is drawn in a helper thread while the compiled code trains on the current one (both
    release the GIL).  The draws happen one after the other, in order, so the result does not depend on
    ``chunk`` (see :func:`draw_uniforms`).

    Returns
    -------
    losses : ndarray, shape (steps,), float64
    """
    dtype = _packing(model).dtype
    out = np.empty(steps, np.float64)
    starts = list(range(0, steps, chunk))

    def draw(k0: int) -> np.ndarray:
        return draw_uniforms(rng, min(chunk, steps - k0), batch_size, task.in_features, dtype)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(draw, starts[0]) if starts else None
        for n, k0 in enumerate(starts):
            u = pending.result()
            pending = pool.submit(draw, starts[n + 1]) if n + 1 < len(starts) else None
            out[k0:k0 + len(u)] = train_steps(model, optimizer, task, u, regularizer=regularizer)
    return out
