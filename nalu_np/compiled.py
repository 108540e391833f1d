"""The compiled training engine, Python side: arithmetic networks of 1 to 3 layers on the simple function task
and the single-module task, K steps in one compiled call (:mod:`nalu_np.kernels.numba.train`).

The networks are a single unit ``L(I, O)`` or ``Sequential([L1(I, H), L2(H, O)])``, ``Sequential([L1(I, H1),
L2(H1, H2), L3(H2, O)])`` (or a one-layer Sequential), each layer an ``NAU``, ``NMU``, ``NALU`` (shared or
separate weights), ``NAC``, ``NACMul``, one of the study's baselines ``Linear``, ``ReLU``, ``ReLU6``, one of its
variants ``ClippedNACMul``, ``SigmoidNACMul``, ``GatedNAUNMU``, an ``NPU`` or ``RealNPU`` (with or without
``clamp_gate``), a ``GNALU`` or an ``INALU``, in any order: e.g. Madsen & Johansen's (2020)
simple function task's NAU -> NMU for ``x``, NAU -> NAU for ``+`` and ``-``, NALU -> NALU for the NALU
baseline, NAC -> NACMul for its NAC• model, NAU -> ClippedNACMul for NAC•,NMU; one NMU (2 -> 1) for Mistry et
al.'s (2021) single-module task, and the Primer's NPU, RealNPU and iNALU there.  ``S`` seeds of one network train
together (:func:`train_seeds`), evaluated inside the calls.  Inputs ``x_i ~ U(lo, hi)``, ``a = sum(x[o:o+s])``,
``b = sum(x[o+v:o+v+s])`` (the simple function task: ``s = 25``, ``v = 13``, I = 100; the single-module task:
``o = 0``, ``s = v = 1``, I = 2, so ``a = x[0]``, ``b = x[1]``), target ``a op b``, a fresh batch every step, MSE loss, one of the optimizers
:class:`nalu_np.optim.Adam`, :class:`~nalu_np.optim.SGD` (with or without momentum) and
:class:`~nalu_np.optim.RMSProp` (:data:`OPTIMIZER_KINDS`) with optional gradient clipping (their ``clip_value``,
then ``clip_norm`` over all parameters, as :class:`nalu_np.optim.Optimizer`), each layer's parameters clipped
to its ``bounds`` after each step (NAU ``[-1, 1]``, NMU ``[0, 1]``, ...), and optionally the sparsity regularizer
``lambda(t) * sum_l R_l`` of the layers that have one (NAU, NMU, ClippedNACMul, GatedNAUNMU, the NPUs' L1 mean of
their weights), and optionally the L1 term ``beta(t) * sum |p|`` over all parameters with a piecewise constant
``beta`` (the Primer's NPU recipe, :class:`nalu_np.primer.BetaSchedule`), and optionally the iNALU recipe's
saturation regularizer from a given step on (:func:`train_seeds`' ``saturation``; the recipe's switch and
reinitialisation are driven from Python, :func:`nalu_np.training.compiled_unsupported` says where).

This module packs a model and its optimizer's state into flat arrays -- each layer's ``params`` in their order,
the bounds from its ``bounds``, its kind from its ``kernel`` prefix -- calls the compiled step, and unpacks.  It
imports Numba only when it trains or predicts, so ``import nalu_np.compiled`` works without it.

Where the batches come from
---------------------------
Two ways, with the same training step:

* ``train_steps(..., u)``: the uniform numbers are passed in.  :func:`draw_uniforms` draws those of ``K``
  steps with NumPy's ``Generator``, exactly the numbers of ``K`` calls of ``rng.random((batch, I))``, and step
  ``k`` uses ``x = lo + (hi - lo) * u[k]``.  A step-by-step loop with the NumPy reference kernels and the same
  :mod:`nalu_np.optim` optimizer, drawing its batches that way, computes the same run, to floating-point
  tolerance (the compiled code sums in another order).  This is what the tests compare.
* ``train_steps(..., steps=K, state=s)``: the numbers are made inside the compiled loop by xoshiro256**
  (:mod:`nalu_np.kernels.numba.rng`, 16 streams side by side so that the generator vectorises); ``s`` is its
  state (:func:`rng_state`), advanced in place.  The run depends only on the seed of the state, not on how the
  steps are split into calls.  With NumPy's generator the drawing costs several times the step's arithmetic
  (``bench/train.py``: ``numba-compiled`` against ``numba-compiled-rng``); this is what ``nalu-np sweep`` uses.

The model's parameters and the optimizer's state (Adam's ``exp_avg``, ``exp_avg_sq``, SGD's ``momentum``,
RMSProp's ``square_avg``) and step count are updated in place, so compiled runs and Python steps can be mixed
freely.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["SimpleFunction", "SeedsRun", "draw_uniforms", "rng_state", "uniforms", "supports", "train_seeds",
           "train_steps", "predictor",
           "predict", "train", "LAYER_KINDS", "CLAMPED_KINDS", "SEPARATE_KINDS", "OPTIMIZER_KINDS", "MAX_LAYERS"]

_OPS = {"add": 0, "sub": 1, "mul": 2, "div": 3, "squared": 4, "root": 5}
#: the layers the engine trains, by their ``kernel`` prefix, and their kind codes in the compiled step
#: (``NAU``, ``NMU``, ``NALU``, ``LINEAR``, ``RELU``, ``RELU6``, ``NAC``, ``NACMUL``, ``CLIPPEDNACMUL``,
#: ``SIGMOIDNACMUL``, ``GATEDNAUNMU``, ``NPU``, ``REALNPU``, ``GNALU``, ``INALU`` of
#: :mod:`nalu_np.kernels.numba.kinds`)
LAYER_KINDS = {"nau": 0, "nmu": 1, "nalu": 2, "dense": 3, "relu": 4, "relu6": 5, "nac": 6, "nacmul": 7,
               "clippednacmul": 8, "sigmoidnacmul": 9, "gatednaunmu": 10, "npu": 11, "realnpu": 12, "gnalu": 15,
               "inalu": 16}
#: the kind codes of the NPUs with ``clamp_gate`` (``CLAMPEDNPU``, ``CLAMPEDREALNPU``)
CLAMPED_KINDS = {"npu": 13, "realnpu": 14}
#: the kind code of the NALU with ``shared_weights=False`` (``SEPARATENALU``: ``W_hat_add``, ``M_hat_add``,
#: ``W_hat_mul``, ``M_hat_mul``, ``G``)
SEPARATE_KINDS = {"nalu": 17}


@dataclass(frozen=True)
class SimpleFunction:
    """The simple function task: ``t = a op b`` with ``a``, ``b`` sums of two overlapping input slices.

    The single-module task is its case ``in_features=2, offset=0, subset=1, overlap_start=1`` (``a = x[0]``,
    ``b = x[1]``, :meth:`single_module`).

    Parameters
    ----------
    op : {"add", "sub", "mul", "div", "squared", "root"}
        ``a + b``, ``a - b``, ``a * b``, ``a / b``, ``a * a``, ``sqrt(a)``.
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

    @classmethod
    def single_module(cls, op: str, lo: float, hi: float) -> "SimpleFunction":
        """The single-module task ``t = x[0] op x[1]``, ``x ~ U(lo, hi)^2``: ``I = 2``, ``a = sum(x[0:1])``,
        ``b = sum(x[1:2])``."""
        return cls(op=op, offset=0, in_features=2, lo=lo, hi=hi, subset=1, overlap_start=1)

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
        fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
              "squared": lambda a, b: a * a, "root": lambda a, b: np.sqrt(a)}[self.op]
        return fn(a, b).astype(x.dtype)


def draw_uniforms(rng: np.random.Generator, steps: int, batch_size: int, in_features: int,
                  dtype: Any = np.float32) -> np.ndarray:
    """The uniform numbers of ``steps`` batches, shape (steps, batch_size, in_features).

    The same numbers, in the same order, as ``steps`` calls of
    ``rng.random((batch_size, in_features), dtype=dtype)``.
    """
    return rng.random((steps, batch_size, in_features), dtype=np.dtype(dtype).type)


def rng_state(seed: int) -> np.ndarray:
    """A fresh xoshiro256** state for :func:`train_steps` and :func:`uniforms`, shape (4, 16), uint64; see
    :func:`nalu_np.kernels.numba.rng.rng_state`."""
    from .kernels.numba import rng

    return rng.rng_state(seed)


def uniforms(state: np.ndarray, n: int, dtype: Any = np.float32) -> np.ndarray:
    """The next ``n`` uniforms on ``[0, 1)`` of the generator state (advanced in place), the numbers a compiled
    training run with that state would use; see :func:`nalu_np.kernels.numba.rng.uniforms`."""
    from .kernels.numba import rng

    return rng.uniforms(state, n, dtype)


@dataclass
class _Packed:
    """A model's layers as the compiled code sees them, and the packing of its parameters (and of the optimizer's
    state arrays) into flat vectors."""

    keys: list[str]  # model.params keys in packed order
    kinds: np.ndarray
    dims: np.ndarray
    offs: np.ndarray
    eps: np.ndarray
    omega: np.ndarray
    segs: np.ndarray  # where each of the model's parameter arrays starts in the flat vector, then the end
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


def _layers(model: Any) -> tuple[list[Any], list[str]] | None:
    """The layers of ``model`` and the prefixes of their keys in ``model.params`` (``"<index>."`` in a
    Sequential, ``""`` for a bare unit), or None for something else."""
    from nalu_np.layers import Layer, Sequential

    if isinstance(model, Sequential):
        return list(model.layers), [f"{n}." for n in range(len(model.layers))]
    if isinstance(model, Layer):
        return [model], [""]
    return None


#: the most layers the engine trains (:data:`nalu_np.kernels.numba.train.MAX_LAYERS`)
MAX_LAYERS = 3


def supports(model: Any) -> str | None:
    """Why the compiled path cannot train ``model``, or None when it can.

    It trains a unit or a ``Sequential`` of 1 to :data:`MAX_LAYERS` layers whose sizes chain, each of the kinds
    :data:`LAYER_KINDS` (the NALU with shared or separate weights; the NPUs with or without ``clamp_gate``), with
    NumPy float32 or float64 parameters of one dtype.
    """
    if importlib.util.find_spec("numba") is None:
        return "the compiled path needs numba (pip install 'nalu-np[numba]')"
    found = _layers(model)
    if found is None or not 1 <= len(found[0]) <= MAX_LAYERS:
        return f"the compiled path trains a unit or a Sequential of 1 to {MAX_LAYERS} layers, got {model!r}"
    layers = found[0]
    kernels = [getattr(layer, "kernel", None) for layer in layers]
    if any(k not in LAYER_KINDS for k in kernels):
        names = " -> ".join(type(layer).__name__ for layer in layers)
        from nalu_np.units import UNITS

        known = ", ".join(name for name, spec in UNITS.items() if spec.kernel in LAYER_KINDS)
        return f"the compiled path trains layers of {known}, got {names}"
    if any(a.out_features != b.in_features for a, b in zip(layers, layers[1:])):
        return "the layers' sizes do not chain"
    dtypes = {p.dtype for p in model.params.values()}
    if len(dtypes) != 1 or dtypes.pop() not in (np.float32, np.float64):
        return "the compiled path needs float32 or float64 NumPy parameters of one dtype"
    if not all(isinstance(p, np.ndarray) for p in model.params.values()):
        return "the compiled path runs on NumPy arrays (backend numpy or numba)"
    return None


def _kind(layer: Any) -> int:
    """The kind code of ``layer`` from its ``kernel`` prefix (:data:`CLAMPED_KINDS` for an NPU with
    ``clamp_gate``, :data:`SEPARATE_KINDS` for a NALU with ``shared_weights=False``)."""
    if getattr(layer, "clamp_gate", False):
        return CLAMPED_KINDS[layer.kernel]
    if not getattr(layer, "shared_weights", True):
        return SEPARATE_KINDS[layer.kernel]
    return LAYER_KINDS[layer.kernel]


def _packing(model: Any) -> _Packed:
    """The packing of ``model``: each layer's ``params`` in their order, the ``bounds`` of those it projects
    (:meth:`~nalu_np.layers.Layer.projections`; the others unbounded) per element, its kind (:func:`_kind`);
    ``dims`` (L + 1,) the features between the layers, ``offs``
    (L + 1,) where each layer's parameters start in the flat vector, then its end, ``eps`` and ``omega`` (L,; 0
    for a layer without), ``segs`` where each parameter array starts, then the end."""
    why = supports(model)
    if why is not None:
        raise TypeError(why)
    layers, prefixes = _layers(model)
    keys, offs, lo, hi = [], [0], [], []
    for prefix, layer in zip(prefixes, layers):
        projected = layer.projections()
        bounds = {k: b for k, b in getattr(layer, "bounds", {}).items() if k in projected}
        for k, p in layer.params.items():
            keys.append(prefix + k)
            a, b = bounds.get(k, (-np.inf, np.inf))
            lo.append(np.full(p.size, a))
            hi.append(np.full(p.size, b))
        offs.append(offs[-1] + sum(p.size for p in layer.params.values()))
    dtype = next(iter(layers[0].params.values())).dtype
    return _Packed(
        keys=keys,
        kinds=np.array([_kind(layer) for layer in layers], np.int64),
        dims=np.array([layers[0].in_features] + [layer.out_features for layer in layers], np.int64),
        offs=np.array(offs, np.int64),
        eps=np.array([float(getattr(layer, "eps", 0.0)) for layer in layers]),
        omega=np.array([float(getattr(layer, "omega", 0.0)) for layer in layers]),
        segs=np.cumsum([0] + [p.size for layer in layers for p in layer.params.values()]).astype(np.int64),
        lo=np.concatenate(lo).astype(dtype), hi=np.concatenate(hi).astype(dtype), dtype=dtype,
    )


#: the optimizers the engine steps with, by class name, and their codes in the compiled step (``ADAM``, ``SGD``,
#: ``RMSPROP`` of :mod:`nalu_np.kernels.numba.train`)
OPTIMIZER_KINDS = {"Adam": 0, "SGD": 1, "RMSProp": 2}


def _check_optimizer(model: Any, optimizer: Any) -> None:
    from nalu_np import optim

    kind = type(optimizer).__name__
    if kind not in OPTIMIZER_KINDS or type(optimizer) is not getattr(optim, kind):
        # exactly these classes: a subclass may change the update rule the compiled step mirrors
        raise TypeError(f"the compiled path steps with nalu_np.optim.{', '.join(OPTIMIZER_KINDS)} (not a "
                        f"subclass), got {type(optimizer).__module__}.{type(optimizer).__qualname__}")
    if set(optimizer.params) != set(model.params) or any(optimizer.params[k] is not v for k, v in model.params.items()):
        raise ValueError("the optimizer must be built on model.params")


def _hyper(optimizer: Any) -> tuple[int, np.ndarray]:
    """The optimizer's code (:data:`OPTIMIZER_KINDS`) and its hyper-parameters as the compiled step takes them,
    shape (:data:`nalu_np.kernels.numba.train.HYPER`,), float64: ``lr``, the rule's settings (Adam ``beta1,
    beta2, eps`` and ``overflow``, 1 for ``"propagate"``; SGD ``momentum``; RMSProp ``alpha, eps``; then zeros),
    ``clip_value``, ``clip_norm`` (``inf`` for none)."""
    kind = type(optimizer).__name__
    rule = {"Adam": lambda o: (*o.betas, o.eps, float(o.overflow == "propagate")), "SGD": lambda o: (o.momentum,),
            "RMSProp": lambda o: (o.alpha, o.eps)}[kind](optimizer)
    clips = [np.inf if c is None else c for c in (optimizer.clip_value, optimizer.clip_norm)]
    return OPTIMIZER_KINDS[kind], np.array([optimizer.lr, *rule, *[0.0] * (4 - len(rule)), *clips], np.float64)


@dataclass
class SeedsRun:
    """What one :func:`train_seeds` call returns, per seed ``q`` (rows).

    Attributes
    ----------
    losses : ndarray, shape (S, steps), float64
        The loss of each step (before its update), regularizer and L1 term included; the row ends at
        ``done[q]``.
    evaluations : ndarray, shape (S, E, sets + 1), float64
        Each evaluation's MSE on every test set, then the sparsity error; the row ends at ``nevals[q]``.
    steps : list of ndarray
        The optimizer step (``optimizer.t``) of each of a seed's evaluations.
    done, nevals : ndarray, shape (S,), int64
        Steps taken (fewer than asked when the loss stopped being finite) and evaluations written.
    """

    losses: np.ndarray
    evaluations: np.ndarray
    steps: list[np.ndarray]
    done: np.ndarray
    nevals: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        """Per seed: whether a loss was not finite."""
        return np.array([not np.all(np.isfinite(row[:n])) for row, n in zip(self.losses, self.done)])


def _threads() -> int:
    """Threads for :func:`train_seeds`: Numba's thread count (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``:
    a sweep's worker sets its share of the cores)."""
    import numba

    return max(1, numba.get_num_threads())


def _eval_layout(pk: _Packed, xs: list[np.ndarray], block: int) -> tuple[np.ndarray, np.ndarray]:
    """The test sets' inputs in the kernel's layout, (sets, blocks, I, block) (the last block padded with the
    set's first sample), and ``log(|x| + eps)`` of them for a first layer that takes it (NALU, NACMul,
    ClippedNACMul, SigmoidNACMul; else I = 0)."""
    from .kernels.numba import train as kernel

    I = int(pk.dims[0])
    n = {len(x) for x in xs}
    if len(n) > 1:
        raise ValueError(f"the test sets must have one size, got {sorted(n)}")
    N = n.pop() if n else 0
    nblk = -(-N // block)
    out = np.empty((len(xs), nblk, I, block), pk.dtype)
    for j, x in enumerate(xs):
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != I or x.dtype != pk.dtype:
            raise ValueError(f"a test set must have shape (N, {I}) and dtype {pk.dtype}, got {x.shape} {x.dtype}")
        padded = np.concatenate([x, np.repeat(x[:1], nblk * block - N, axis=0)])
        out[j] = padded.reshape(nblk, block, I).transpose(0, 2, 1)
    logs = np.empty((len(xs), nblk, I if kernel.takes_log_input(pk.kinds[0]) else 0, block), pk.dtype)
    for j in range(len(xs)):
        for b in range(nblk):
            logs[j, b] = kernel.log_input(pk.kinds, pk.eps, out[j, b])
    return out, logs


def _l1_pieces(l1: tuple[Sequence[int], Sequence[float]] | None) -> tuple[np.ndarray, np.ndarray]:
    """The L1 term's ``(starts, betas)`` as the kernel takes them, int64 and float64 (both empty: none)."""
    if l1 is None:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    at, beta = np.asarray(l1[0], np.int64).ravel(), np.asarray(l1[1], np.float64).ravel()
    if at.shape != beta.shape or np.any(np.diff(at) <= 0) or not np.all(np.isfinite(beta)):
        raise ValueError(f"l1 needs increasing starts and as many finite strengths, got {l1}")
    return at, beta


def train_seeds(models: Sequence[Any], optimizers: Sequence[Any], tasks: Sequence[SimpleFunction],
                u: np.ndarray | None = None, *, steps: int | None = None, states: np.ndarray | None = None,
                batch_size: int = 128, regularizer: tuple[float, float, float] | None = None,
                l1: tuple[Sequence[int], Sequence[float]] | None = None,
                saturation: tuple[float, float, int] | None = None,
                eval_sets: Sequence[tuple[np.ndarray, np.ndarray]] = (), eval_every: int = 0,
                first_eval: bool = False) -> SeedsRun:
    """Train ``S`` runs (seeds) of one network in one compiled call, the seeds spread over the threads.

    Parameters
    ----------
    models : sequence of Sequential or unit
        ``S`` models of one structure and dtype (a unit or 1 to 3 layers of the kinds :data:`LAYER_KINDS` whose
        sizes chain, mapping I -> 1, the NALU with shared or separate weights, NumPy float32 or float64 parameters;
        :func:`supports`); trained in place.
    optimizers : sequence of nalu_np.optim.Adam, SGD or RMSProp
        One per model, built on its ``params``, all of one class (:data:`OPTIMIZER_KINDS`; not a subclass) and one
        set of hyper-parameters, ``clip_value`` and ``clip_norm`` included (clipping as
        :class:`nalu_np.optim.Optimizer`: elementwise, then the global norm over all the model's parameters);
        their state (:attr:`~nalu_np.optim.Optimizer.state`) and step counts are read and updated in place.
        The projections are the layers' ``bounds``.
    tasks : sequence of SimpleFunction
        One per model; they may differ in ``offset`` only.
    u : ndarray, shape (S, K, B, I), optional
        The uniform numbers of each seed's K batches (:func:`draw_uniforms`), dtype of the models.
    steps : int, optional
        Instead of ``u``: K, with batches of ``batch_size`` drawn from ``states``.
    states : ndarray, shape (S, 4, 16), uint64, optional
        The seeds' generator states (:func:`rng_state` each), advanced in place.
    regularizer : (lambda_hat, start, end), optional
        Adds ``lambda(t) * sum_l R_l`` to the loss at step ``t`` (``t = optimizer.t`` before the step), with
        :func:`nalu_np.reference.linear_schedule` and the layers' regularizers (a NALU layer has none).
    l1 : (starts, betas), optional
        Adds the L1 term ``beta(t) * sum |p|`` over all parameters to the loss at step ``t`` (``t =
        optimizer.t`` before the step), its gradient ``beta(t) * sign(p)`` (0 at 0): ``beta(t) = betas[j]`` from
        step ``starts[j]`` (increasing) on, 0 before ``starts[0]`` (:meth:`nalu_np.primer.BetaSchedule.pieces`).
    saturation : (weight, omega, start), optional
        Adds the iNALU recipe's saturation regularizer ``weight * R`` (:func:`nalu_np.primer.saturation_regularizer`
        with ``omega``, over each of the model's parameter arrays) to the loss at the steps ``t >= start`` (``t =
        optimizer.t`` before the step).
    eval_sets : sequence of (x, t)
        Fixed test sets: inputs ``x`` (N, I) in the models' dtype, shared by the seeds, and targets ``t``
        (S, N) per seed (float64).
    eval_every : int
        Evaluate after every ``eval_every`` steps of the call and after its last one (0: never); with
        ``first_eval`` also before the first.  A seed whose loss stops being finite stops at its next
        evaluation.

    Returns
    -------
    SeedsRun
    """
    from .kernels.numba import rng, train as kernel

    S = len(models)
    if S == 0 or len(optimizers) != S or len(tasks) != S:
        raise ValueError(f"need one optimizer and one task per model, got {S} models, {len(optimizers)} "
                         f"optimizers, {len(tasks)} tasks")
    packs = [_packing(m) for m in models]
    pk = packs[0]
    if any(p.keys != pk.keys or p.dtype != pk.dtype or not np.array_equal(p.dims, pk.dims)
           or not np.array_equal(p.kinds, pk.kinds) or not np.array_equal(p.eps, pk.eps)
           or not np.array_equal(p.omega, pk.omega) for p in packs):
        raise ValueError("the models must have one structure, dtype, eps and omega")
    for model, opt in zip(models, optimizers):
        _check_optimizer(model, opt)
    opt_kind, hyper = _hyper(optimizers[0])
    if any(type(o) is not type(optimizers[0]) for o in optimizers):
        raise ValueError("the optimizers must be of one type")
    if any(not np.array_equal(_hyper(o)[1], hyper) for o in optimizers):
        raise ValueError("the optimizers must have one set of hyper-parameters (clipping included)")
    slot_names = optimizers[0].slots
    task = tasks[0]
    if any(replace(t, offset=task.offset) != task for t in tasks):
        raise ValueError("the tasks may differ in their offset only")
    I = int(pk.dims[0])
    if task.in_features != I or pk.dims[-1] != 1:
        raise ValueError(f"the task has {task.in_features} inputs and one target; the model maps {I} -> "
                         f"{int(pk.dims[-1])}")
    if (u is None) == (steps is None and states is None):
        raise ValueError("pass either u, or steps and states")
    if u is not None:
        u = np.ascontiguousarray(u)
        if u.ndim != 4 or u.shape[0] != S or u.shape[3] != I or u.dtype != pk.dtype:
            raise ValueError(f"u must have shape ({S}, steps, batch, {I}) and dtype {pk.dtype}, got {u.shape} "
                             f"{u.dtype}")
        steps, batch_size = u.shape[1], u.shape[2]
        states = np.stack([rng.rng_state(0)] * S)
    else:
        if steps is None or states is None:
            raise ValueError("drawing the batches needs both steps and states")
        if not (isinstance(states, np.ndarray) and states.ndim == 3 and states.shape[0] == S):
            raise TypeError(f"states must be an array of {S} generator states, shape ({S}, 4, 16)")
        for q in range(S):
            rng.check_state(states[q])
        if not states.flags.c_contiguous:
            raise TypeError("states must be C-contiguous")
        steps = int(steps)
        if steps < 0 or batch_size < 1:
            raise ValueError(f"need steps >= 0 and batch_size >= 1, got {steps}, {batch_size}")
        u = np.empty((S, 0, 1, I), pk.dtype)
    every = int(eval_every)
    if every < 0:
        raise ValueError(f"eval_every must be >= 0, got {eval_every}")
    lam_hat, start, end = (0.0, 0.0, 0.0) if regularizer is None else map(float, regularizer)
    if regularizer is not None and not start <= end:
        raise ValueError(f"regularizer needs start <= end, got {regularizer}")
    l1_at, l1_beta = _l1_pieces(l1)
    sat_weight, sat_omega, sat_start = (0.0, 0.0, 0) if saturation is None else (
        float(saturation[0]), float(saturation[1]), int(saturation[2]))
    xs, lxs = _eval_layout(pk, [x for x, _ in eval_sets], int(batch_size))
    ts = np.empty((S, len(eval_sets), len(eval_sets[0][0]) if eval_sets else 0), np.float64)
    for j, (x, t) in enumerate(eval_sets):
        t = np.asarray(t, dtype=np.float64)
        if t.shape != (S, len(x)):
            raise ValueError(f"the targets of a test set must have shape ({S}, {len(x)}), got {t.shape}")
        ts[:, j] = t
    if every == 0:
        schedule = []  # the steps of the call after which it evaluates: every `every`-th and the last
    else:
        schedule = ([0] if first_eval else []) + list(range(every, steps, every)) + ([steps] if steps else [])
    theta = np.stack([pk.pack(m.params) for m in models])
    slots = np.stack([np.stack([pk.pack(o.state[name]) for name in slot_names]) for o in optimizers])
    t0 = np.array([o.t for o in optimizers], np.int64)
    losses = np.full((S, steps), np.nan)
    evals = np.full((S, len(schedule), len(eval_sets) + 1), np.nan)
    done, nevals = np.zeros(S, np.int64), np.zeros(S, np.int64)
    offsets = np.array([t.offset for t in tasks], np.int64)
    active = np.ones(S, np.bool_)

    def run(q0: int, q1: int) -> None:  # seeds q0..q1-1: views of their rows, the same compiled code for any S
        kernel.run(pk.kinds, pk.dims, pk.offs, pk.eps, pk.omega, theta[q0:q1], slots[q0:q1], pk.lo, pk.hi,
                   u[q0:q1], states[q0:q1], active[q0:q1], steps, int(batch_size), float(task.lo),
                   float(task.hi - task.lo), _OPS[task.op], offsets[q0:q1], task.subset, task.overlap_start,
                   t0[q0:q1], opt_kind, hyper, lam_hat, start, end, l1_at, l1_beta, pk.segs, sat_weight, sat_omega,
                   sat_start, every, bool(first_eval), xs, lxs, ts[q0:q1], losses[q0:q1], evals[q0:q1], done[q0:q1],
                   nevals[q0:q1])

    threads = min(S, _threads())
    bounds = [S * k // threads for k in range(threads + 1)]
    if threads == 1:
        run(0, S)
    else:  # the kernel releases the GIL
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    at = []
    for q, (model, opt) in enumerate(zip(models, optimizers)):
        pk.unpack(theta[q], model.params)
        for name, row in zip(slot_names, slots[q]):
            pk.unpack(row, opt.state[name])
        at.append(opt.t + np.array(schedule[:nevals[q]], np.int64))
        opt.t += int(done[q])
    return SeedsRun(losses=losses, evaluations=evals, steps=at, done=done, nevals=nevals)


def train_steps(model: Any, optimizer: Any, task: SimpleFunction, u: np.ndarray | None = None, *,
                steps: int | None = None, state: np.ndarray | None = None, batch_size: int = 128,
                regularizer: tuple[float, float, float] | None = None,
                l1: tuple[Sequence[int], Sequence[float]] | None = None) -> np.ndarray:
    """Run training steps of one model in one compiled call, with given uniforms ``u`` or with ``steps`` draws
    from ``state``: :func:`train_seeds` for one seed, without evaluations.

    Parameters
    ----------
    model : Sequential or unit
        Accepted by :func:`supports` (1 to 3 layers of the kinds :data:`LAYER_KINDS`, mapping I -> 1); trained in
        place.
    optimizer : nalu_np.optim.Adam, SGD or RMSProp
        Built on ``model.params``, with optional clipping (see :func:`train_seeds`); its state and step count
        are updated in place.
        The projections are the layers' ``bounds`` (NAU ``[-1, 1]``, NMU ``[0, 1]``, none for the NALU, ...).
    task : SimpleFunction
    u : ndarray, shape (K, B, I), optional
        The uniform numbers of the K batches (:func:`draw_uniforms`), dtype of the model.
    steps : int, optional
        Instead of ``u``: the number of steps, with batches of ``batch_size`` drawn from ``state``.
    state : ndarray, shape (4, 16), uint64, optional
        The generator state (:func:`rng_state`), advanced in place.
    regularizer : (lambda_hat, start, end), optional
    l1 : (starts, betas), optional
        See :func:`train_seeds`.

    Returns
    -------
    losses : ndarray, shape (K,), float64
        The loss of each step (before its update), regularizer and L1 term included.
    """
    from .kernels.numba import rng

    if state is not None:
        rng.check_state(state)
        states = state.reshape(1, *state.shape)  # a view: advanced in place
    else:
        states = None
    if u is not None:
        u = np.asarray(u)
        if u.ndim != 3:
            raise ValueError(f"u must have shape (steps, batch, in_features), got {u.shape}")
        u = u[None]
    return train_seeds([model], [optimizer], [task], u, steps=steps, states=states, batch_size=batch_size,
                       regularizer=regularizer, l1=l1).losses[0]


def predictor(model: Any, x: np.ndarray) -> Callable[[], np.ndarray]:
    """A function that returns the model's output for the fixed inputs ``x`` (B, I) with its parameters of the
    moment, shape (B, O), the model's dtype (compiled forward pass).

    ``x`` is laid out once, and for a log-space first layer its ``log(|x| + eps)`` computed once, so repeated
    evaluations on a fixed test set cost only the products.  The model's structure must not change.
    """
    from .kernels.numba import train as kernel

    pk = _packing(model)
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != pk.dims[0] or x.dtype != pk.dtype:
        raise ValueError(f"x must have shape (batch, {int(pk.dims[0])}) and dtype {pk.dtype}, got {x.shape} {x.dtype}")
    xT = np.ascontiguousarray(x.T)
    lx = kernel.log_input(pk.kinds, pk.eps, xT)

    def evaluate() -> np.ndarray:
        yT = np.empty((int(pk.dims[-1]), xT.shape[1]), pk.dtype)
        kernel.predict(pk.kinds, pk.dims, pk.offs, pk.eps, pk.omega, pk.pack(model.params), xT, lx, yT)
        return np.ascontiguousarray(yT.T)

    return evaluate


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's output for ``x`` (B, I) with the compiled forward pass, shape (B, O), the model's dtype."""
    return predictor(model, x)()


def train(model: Any, optimizer: Any, task: SimpleFunction, steps: int, rng: np.random.Generator, *,
          batch_size: int = 128, chunk: int = 256, regularizer: tuple[float, float, float] | None = None,
          l1: tuple[Sequence[int], Sequence[float]] | None = None) -> np.ndarray:
    """Train for ``steps`` steps, drawing the batches of ``chunk`` steps at a time with NumPy's ``rng``.

    The next chunk is drawn in a helper thread while the compiled code trains on the current one (both
    release the GIL).  The draws happen one after the other, in order, so the result does not depend on
    ``chunk`` (see :func:`draw_uniforms`).  ``regularizer`` and ``l1`` as :func:`train_seeds`.

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
            out[k0:k0 + len(u)] = train_steps(model, optimizer, task, u, regularizer=regularizer, l1=l1)
    return out
