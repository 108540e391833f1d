"""Compiled training of the stable-NALU style model: K steps of NAU -> NMU on the simple function task in one call.

Small-batch training in Python pays for every step in interpreter overhead (dozens of NumPy calls of a few
microseconds each).  Here a whole run of steps -- build the batch, forward, MSE, backward, optional
regularizer, Adam step, projection -- is one Numba call, so a step costs what its arithmetic costs.

The model is ``Sequential([NAU(I, H), NMU(H, 1)])`` (Madsen & Johansen 2020, "simple function" task): inputs
``x_i ~ U(lo, hi)``, ``a = sum(x[o:o+25])``, ``b = sum(x[o+13:o+38])``, target ``a op b``, a fresh batch every
step, MSE loss, Adam, NAU weights clipped to ``[-1, 1]`` and NMU weights to ``[0, 1]`` after each step.

Reproducibility
---------------
The random numbers are drawn in Python with NumPy's ``Generator`` and passed in:
:func:`draw_uniforms` draws the numbers of ``K`` steps in one call, which gives exactly the numbers of ``K``
calls of ``rng.random((batch, I), dtype=dtype)``, and step ``k`` uses ``x = lo + (hi - lo) * u[k]``.  A
step-by-step loop with the NumPy reference kernels and :class:`nalu_np.optim.Adam` that draws its batches
that way computes the same run, to floating-point tolerance (the compiled code sums in another order).

The model's parameters and the optimizer's moments and step count are updated in place, so compiled runs and
Python steps can be mixed freely.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .numba_math import jit

__all__ = ["SimpleFunction", "draw_uniforms", "train_steps", "train"]

_OPS = {"add": 0, "sub": 1, "mul": 2, "div": 3}
_EW = dict(error_model="numpy", fastmath={"contract"})
_SUM = dict(error_model="numpy", fastmath={"reassoc", "contract", "nsz"})  # dot products: only rounding changes


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
        """``a op b`` of a batch ``x`` (B, I), shape (B, 1), dtype of ``x``."""
        o, s, v = self.offset, self.subset, self.overlap_start
        a = x[:, o:o + s].sum(axis=1, keepdims=True)
        b = x[:, o + v:o + v + s].sum(axis=1, keepdims=True)
        return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[self.op]


def draw_uniforms(rng: np.random.Generator, steps: int, batch_size: int, in_features: int,
                  dtype: Any = np.float32) -> np.ndarray:
    """The uniform numbers of ``steps`` batches, shape (steps, batch_size, in_features).

    The same numbers, in the same order, as ``steps`` calls of
    ``rng.random((batch_size, in_features), dtype=dtype)``.
    """
    return rng.random((steps, batch_size, in_features), dtype=np.dtype(dtype).type)


# ---------------------------------------------------------------------------------------------------------
# one step, in pieces
# ---------------------------------------------------------------------------------------------------------


@jit(**_SUM)
def _batch(u, lo, span, op, o, s, v, x, t):
    """``x = lo + span * u`` and the targets ``t[b] = a op b``."""
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            x[b, i] = lo + span * u[b, i]
        a = x[b, o]
        c = x[b, o + v]
        for i in range(1, s):
            a += x[b, o + i]
            c += x[b, o + v + i]
        if op == 0:
            t[b] = a + c
        elif op == 1:
            t[b] = a - c
        elif op == 2:
            t[b] = a * c
        else:
            t[b] = a / c


@jit(**_SUM)
def _nau_forward(x, WT, h):
    """``h = x @ WT.T``: row-wise dot products with the transposed weights (both contiguous)."""
    zero = x.dtype.type(0.0)
    for b in range(x.shape[0]):
        for j in range(WT.shape[0]):
            acc = zero
            for i in range(x.shape[1]):
                acc += x[b, i] * WT[j, i]
            h[b, j] = acc


@jit(**_EW)
def _nmu_mse(h, W, t, pre, dW, dh):
    """NMU forward with one output, the MSE against ``t`` and the backward pass into ``dW`` and ``dh``.

    Returns the loss (float64).  Leave-one-out products by prefix and suffix products (exact with zero
    factors).
    """
    B, H = h.shape
    one = h.dtype.type(1.0)
    scale = h.dtype.type(2.0 / B)
    loss = 0.0
    for j in range(H):
        dW[j, 0] = 0.0
    for b in range(B):
        run = one
        for j in range(H):
            pre[j] = run
            run *= W[j, 0] * h[b, j] + (one - W[j, 0])
        d = run - t[b]
        loss += d * d
        dy = d * scale
        run = one
        for j in range(H - 1, -1, -1):
            c = dy * (pre[j] * run)
            dW[j, 0] += c * (h[b, j] - one)
            dh[b, j] = c * W[j, 0]
            run *= W[j, 0] * h[b, j] + (one - W[j, 0])
    return loss / B


@jit(**_EW)
def _nau_grad(x, dh, dWT, dW):
    """``dW = x.T @ dh``, accumulated transposed in ``dWT`` (contiguous rows), then copied into ``dW``."""
    dWT[:, :] = 0.0
    for b in range(x.shape[0]):
        for j in range(dh.shape[1]):
            d = dh[b, j]
            for i in range(x.shape[1]):
                dWT[j, i] += x[b, i] * d
    dW[:, :] = dWT.T


@jit(**_EW)
def _min_distance_penalty(W, lam, signed, dW):
    """Add ``lam * dR/dW`` to ``dW`` and return ``lam * R``: ``R = mean(min(d, 1 - d))``, ``d = |W|`` (NAU,
    ``signed``) or ``W`` (NMU); the slope is ``sign(1/2 - d)`` (times ``sign(W)`` for the NAU)."""
    dt = W.dtype.type
    one = dt(1.0)
    half = dt(0.5)
    n = W.size
    total = dt(0.0)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            d = abs(W[i, j]) if signed else W[i, j]
            total += min(d, one - d)
            slope = np.sign(half - d) * (np.sign(W[i, j]) if signed else one)
            dW[i, j] += dt(lam) * (slope / dt(n))
    return lam * (total / dt(n))


@jit(**_EW)
def _adam(p, g, m, v, t, lr, b1, b2, eps, lo, hi):
    """One step of :class:`nalu_np.optim.Adam` (step number ``t``), then ``p = clip(p, lo, hi)``."""
    dt = p.dtype.type
    bc1 = dt(1.0 - b1**t)
    bc2 = dt(1.0 - b2**t)
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            gg = g[i, j]
            m[i, j] = m[i, j] * dt(b1) + dt(1.0 - b1) * gg
            v[i, j] = v[i, j] * dt(b2) + dt(1.0 - b2) * (gg * gg)
            denom = np.sqrt(v[i, j] / bc2) + dt(eps)
            q = p[i, j] - dt(lr) * (m[i, j] / bc1) / denom
            p[i, j] = min(max(q, dt(lo)), dt(hi))


@jit(**_EW)
def _schedule(step, lam_hat, start, end):
    """:func:`nalu_np.reference.linear_schedule`."""
    if start == end:
        return lam_hat if step >= start else 0.0
    return lam_hat * min(max((step - start) / (end - start), 0.0), 1.0)


@jit(**_EW)
def _run(u, lo, span, op, o, s, v, W1, W2, m1, v1, m2, v2, t0, lr, b1, b2, eps, lam_hat, lam_start, lam_end,
         losses):
    K, B, I = u.shape
    H = W1.shape[1]
    dt = W1.dtype
    x = np.empty((B, I), dt)
    t = np.empty(B, dt)
    h = np.empty((B, H), dt)
    dh = np.empty((B, H), dt)
    pre = np.empty(H, dt)
    dW1 = np.empty_like(W1)
    dW2 = np.empty_like(W2)
    W1T = np.empty((H, I), dt)
    dW1T = np.empty((H, I), dt)
    for k in range(K):
        step = t0 + k  # optimizer steps taken before this one
        _batch(u[k], dt.type(lo), dt.type(span), op, o, s, v, x, t)
        W1T[:, :] = W1.T
        _nau_forward(x, W1T, h)
        loss = _nmu_mse(h, W2, t, pre, dW2, dh)
        _nau_grad(x, dh, dW1T, dW1)
        lam = _schedule(step, lam_hat, lam_start, lam_end)
        if lam != 0.0:
            loss += _min_distance_penalty(W1, lam, True, dW1) + _min_distance_penalty(W2, lam, False, dW2)
        losses[k] = loss
        _adam(W1, dW1, m1, v1, step + 1, lr, b1, b2, eps, -1.0, 1.0)
        _adam(W2, dW2, m2, v2, step + 1, lr, b1, b2, eps, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------------------------


def _unpack(model: Any, optimizer: Any) -> tuple[np.ndarray, ...]:
    """The arrays of ``Sequential([NAU(I, H), NMU(H, 1)])`` and of its Adam optimizer, checked."""
    from nalu_np.layers import NAU, NMU, Sequential
    from nalu_np.optim import Adam

    if not (isinstance(model, Sequential) and len(model.layers) == 2 and isinstance(model.layers[0], NAU)
            and isinstance(model.layers[1], NMU) and model.layers[1].out_features == 1):
        raise TypeError(f"the compiled path trains Sequential([NAU(I, H), NMU(H, 1)]), got {model!r}")
    if not isinstance(optimizer, Adam):
        raise TypeError(f"the compiled path steps with nalu_np.optim.Adam, got {type(optimizer).__name__}")
    if optimizer.clip_norm is not None or optimizer.clip_value is not None:
        raise ValueError("the compiled path does not clip gradients (clip_norm / clip_value must be None)")
    W1, W2 = model.layers[0].params["W"], model.layers[1].params["W"]
    state = optimizer.state
    arrays = (W1, W2, state["exp_avg"]["0.W"], state["exp_avg_sq"]["0.W"], state["exp_avg"]["1.W"],
              state["exp_avg_sq"]["1.W"])
    for a in arrays:
        if not isinstance(a, np.ndarray) or not a.flags.c_contiguous or a.dtype != W1.dtype:
            raise TypeError("model and optimizer arrays must be C-contiguous NumPy arrays of one dtype")
    if set(optimizer.params) != {"0.W", "1.W"} or optimizer.params["0.W"] is not W1:
        raise ValueError("the optimizer must be built on model.params")
    return arrays


def train_steps(model: Any, optimizer: Any, task: SimpleFunction, u: np.ndarray, *,
                regularizer: tuple[float, float, float] | None = None) -> np.ndarray:
    """Run ``len(u)`` training steps in one compiled call.

    Parameters
    ----------
    model : Sequential
        ``Sequential([NAU(I, H), NMU(H, 1)])`` on the NumPy/Numba backends (float32 or float64); trained in place.
    optimizer : nalu_np.optim.Adam
        Built on ``model.params``, without gradient clipping; its moments and step count are updated in place.
        The projections are always NAU ``[-1, 1]`` and NMU ``[0, 1]``.
    task : SimpleFunction
    u : ndarray, shape (K, B, I)
        The uniform numbers of the K batches (:func:`draw_uniforms`), dtype of the model.
    regularizer : (lambda_hat, start, end), optional
        Adds ``lambda(t) * (R_NAU + R_NMU)`` to the loss at step ``t`` (``t = optimizer.t`` before the step),
        with :func:`nalu_np.reference.linear_schedule` and the units' regularizers.

    Returns
    -------
    losses : ndarray, shape (K,), float64
        The loss of each step (before its update), regularizer included.
    """
    W1, W2, m1, v1, m2, v2 = _unpack(model, optimizer)
    u = np.asarray(u)
    if u.ndim != 3 or u.shape[2] != W1.shape[0] or u.shape[2] != task.in_features or u.dtype != W1.dtype:
        raise ValueError(f"u must have shape (steps, batch, {W1.shape[0]}) and dtype {W1.dtype}, got "
                         f"{u.shape} {u.dtype}")
    lam_hat, start, end = (0.0, 0.0, 0.0) if regularizer is None else map(float, regularizer)
    if regularizer is not None and not start <= end:
        raise ValueError(f"regularizer needs start <= end, got {regularizer}")
    losses = np.empty(u.shape[0], np.float64)
    b1, b2 = optimizer.betas
    _run(np.ascontiguousarray(u), float(task.lo), float(task.hi - task.lo), _OPS[task.op], task.offset,
         task.subset, task.overlap_start, W1, W2, m1, v1, m2, v2, optimizer.t, float(optimizer.lr), float(b1),
         float(b2), float(optimizer.eps), lam_hat, start, end, losses)
    optimizer.t += u.shape[0]
    return losses


def train(model: Any, optimizer: Any, task: SimpleFunction, steps: int, rng: np.random.Generator, *,
          batch_size: int = 128, chunk: int = 256, regularizer: tuple[float, float, float] | None = None
          ) -> np.ndarray:
    """Train for ``steps`` steps, drawing the batches of ``chunk`` steps at a time with ``rng``.

    The next chunk is drawn in a helper thread while the compiled code trains on the current one (both
    release the GIL).  The draws happen one after the other, in order, so the result does not depend on
    ``chunk`` (see :func:`draw_uniforms`).

    Returns
    -------
    losses : ndarray, shape (steps,), float64
    """
    dtype = model.layers[0].params["W"].dtype
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
