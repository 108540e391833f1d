"""The published arithmetic benchmarks as tasks (DESIGN section 7), their success criterion and statistics.

Tasks (in :data:`FACTORIES`, which :mod:`nalu_np.tasks` registers):

``simple-<op>``, op in ``add sub mul div squared root``
    :class:`SimpleFunctionTask`, the static "simple function" task of Madsen & Johansen (ICLR 2020).
``single-<op>``, op in ``add sub mul div``
    :class:`SingleModuleTask`, the single-module task of Mistry, Farrahi & Hare (2021), in any of its nine
    interpolation/extrapolation ranges (:data:`SINGLE_MODULE_RANGES`).

Both judge a run as the papers do (:func:`outcome`): the run succeeds when the extrapolation MSE at the
evaluation with the lowest interpolation MSE is below the task's threshold; it is "solved at" the first
evaluation whose extrapolation MSE is below the threshold; its sparsity error (:func:`sparsity_error`) is taken
at the best evaluation.  Success rates get a Wilson interval (:func:`wilson_interval`), as in the papers.

::

    import nalu_np as nn
    from nalu_np import arithmetic
    task = nn.tasks.get_task("simple-mul", seed=3, steps=100_000)
    init_rng, _ = nn.tasks.seed_rngs(3)
    model = task.build_model(init_rng)                    # NAU (100 -> 2) then NMU (2 -> 1)
    result = nn.train(model, task, seed=3)
    arithmetic.outcome(result.evaluations, task.threshold)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Callable, Iterable

import numpy as np

from ._checks import positive_int
from .backends import array_module, to_numpy
from .init import make_rng
from .reference import linear_schedule
from .stats import wilson_interval
from .primer import PRIMER2022_PROTOCOL, InaluRun, module_for_unit
from .studies import MADSEN2020_PROTOCOL, model_for_unit
from .layers import make_unit, supports_presets, unit_class
from .taskbase import Evaluation, Task
from .units import canonical_name as _canonical_unit
from .units import spec as _unit_spec
from .units import effective_weights as _unit_weights

__all__ = [
    "SIMPLE_FUNCTION_OPS",
    "SIMPLE_FUNCTION_THRESHOLDS",
    "SINGLE_MODULE_OPS",
    "SINGLE_MODULE_RANGES",
    "FACTORIES",
    "Range",
    "SimpleFunctionTask",
    "SingleModuleTask",
    "outcome",
    "effective_weights",
    "sparsity_error",
    "single_module_threshold",
    "wilson_interval",
]

Array = Any


# ---------------------------------------------------------------------------------------------------------
# the verdict on a run
# ---------------------------------------------------------------------------------------------------------


def _as_float(v: Any) -> float:
    """A metric as a float; the strings "nan"/"inf" of a JSON record become floats too."""
    return float(v)


def outcome(evaluations: Iterable[Evaluation], threshold: float,
            best_range: int = MADSEN2020_PROTOCOL.best_range) -> dict[str, Any]:
    """The papers' verdict on one run, from its evaluations.

    Parameters
    ----------
    evaluations : list of Evaluation
        In step order, with ``"interpolation_mse"`` and ``"extrapolation_mse"`` (and ``"sparsity_error"``
        when recorded) in their metrics.
    threshold : float
        Extrapolation MSE below which the run counts as solved.
    best_range : int
        The best evaluation is sought among the last ``best_range`` evaluations (the authors': 5000).

    Returns
    -------
    dict
        ``success`` (bool), ``best_step`` (step of the best evaluation), ``interpolation_mse``,
        ``extrapolation_mse`` and ``sparsity_error`` at that step (None when not recorded), and ``solved_at``
        (first step whose extrapolation MSE is below the threshold, None if none).

    Notes
    -----
    As the authors' analysis script (stable-nalu, ``export/function_task_static.r``, ``best.model.step.fn``
    and ``first.solved.step``): the best evaluation is the first one with the lowest interpolation MSE, NaN
    ignored, among the last ``best_range`` evaluations, or the last evaluation when all of those are NaN.  On
    their protocol (5001 evaluations, steps 0 to 5e6) that leaves out the untrained model at step 0; a run
    with fewer evaluations has all of them as candidates, step 0 included.  Success is
    ``extrapolation_mse[best] < threshold`` (false for NaN); "solved at" is the first evaluation step whose
    extrapolation MSE is below the threshold, whether or not it stays there.  Mistry et al.'s scripts
    (bmistry4/nalm-benchmark, ``export/single_layer_task/benchmark/plot_results.r``) use the same rule with
    the same 5000, so on the single-module task's 51 evaluations step 0 is a candidate too.
    """
    best_range = positive_int(best_range, "best_range")
    evals = list(evaluations)
    if not evals:
        return {"success": False, "best_step": None, "interpolation_mse": None, "extrapolation_mse": None,
                "sparsity_error": None, "solved_at": None}
    window = evals[-best_range:]
    interp = np.array([_as_float(e.metrics["interpolation_mse"]) for e in window])
    best = evals[-1] if np.all(np.isnan(interp)) else window[int(np.nanargmin(interp))]
    solved_at = next((e.step for e in evals if _as_float(e.metrics["extrapolation_mse"]) < threshold), None)
    extrap = _as_float(best.metrics["extrapolation_mse"])
    sparsity = best.metrics.get("sparsity_error")
    return {
        "success": bool(extrap < threshold),
        "best_step": best.step,
        "interpolation_mse": _as_float(best.metrics["interpolation_mse"]),
        "extrapolation_mse": extrap,
        "sparsity_error": None if sparsity is None else _as_float(sparsity),
        "solved_at": solved_at,
    }


def effective_weights(model: Any) -> dict[str, np.ndarray]:
    """The weight matrices of a unit or Sequential as the forward pass uses them (host float64).

    Per layer :func:`nalu_np.units.effective_weights`: ``W`` (NAU, NMU) and ``W_r``, ``W_i`` (NPU, RealNPU) as
    they are; ``tanh(c W_hat) * sigmoid(c M_hat)`` for each ``W_hat``/``M_hat`` pair (NAC, NACMul, NALU, INALU,
    G-NALU; ``c`` is 1, the G-NALU's ``ln(phi)``), under the name of its ``W_hat``.  Gates are left out.  Keys are the parameter names of ``model.params``
    (``"<index>.<name>"`` for a Sequential).
    """
    layers = getattr(model, "layers", None)
    parts = [("", model)] if layers is None else [(f"{i}.", layer) for i, layer in enumerate(layers)]
    return {prefix + k: w for prefix, layer in parts
            for k, w in _unit_weights({k: to_numpy(v) for k, v in layer.params.items()},
                                      getattr(getattr(layer, "spec", None), "nac_scale", 1.0)).items()}


def sparsity_error(model: Any) -> float:
    """Madsen & Johansen's sparsity error: ``max over all weights w of min(|w|, |1 - |w||)``.

    Taken over :func:`effective_weights`; 0 when every weight is -1, 0 or 1.  NaN for a model without
    weight matrices.
    """
    weights = effective_weights(model)
    if not weights:
        return float("nan")
    return float(max(np.max(np.minimum(np.abs(w), np.abs(1.0 - np.abs(w)))) for w in weights.values()))


# ---------------------------------------------------------------------------------------------------------
# shared machinery of the two tasks
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """Where inputs are drawn from: ``U[lo, hi)``, or with ``mirror`` each value's sign flipped with
    probability 1/2 (``U[-hi, -lo) ∪ U[lo, hi)``)."""

    lo: float
    hi: float
    mirror: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            raise ValueError(f"a range needs finite lo < hi, got [{self.lo}, {self.hi}]")
        if self.mirror and self.lo < 0:
            raise ValueError("a mirrored range is given by its positive half, lo >= 0")

    def sample(self, rng: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Uniform draws of ``shape`` in ``dtype`` from a Generator (float32 draws for a float32 dtype) or a
        legacy RandomState (float64 draws, as the papers' code)."""
        legacy = isinstance(rng, np.random.RandomState)
        if legacy:
            x = rng.uniform(self.lo, self.hi, size=shape).astype(dtype)
        else:
            x = rng.random(shape, dtype=dtype)
            x *= dtype.type(self.hi - self.lo)
            x += dtype.type(self.lo)
        if self.mirror:
            flip = (rng.randint(0, 2, size=shape) if legacy else rng.integers(0, 2, size=shape)) == 0
            x[flip] *= -1
        return x

    def moments(self) -> tuple[float, float, float]:
        """``E|x|``, ``E[x**2]`` and ``E[1/x**2]`` of a draw (the last is inf when 0 is inside the range)."""
        lo, hi = (self.lo, self.hi)
        second = (lo * lo + lo * hi + hi * hi) / 3.0
        if lo < 0 < hi:
            return (lo * lo + hi * hi) / (2.0 * (hi - lo)), second, math.inf
        return abs(lo + hi) / 2.0, second, (1.0 / (lo * hi) if lo * hi > 0 else math.inf)

    def __str__(self) -> str:
        f = "{:g}".format
        if self.mirror:
            return f"U[-{f(self.hi)},-{f(self.lo)}] ∪ U[{f(self.lo)},{f(self.hi)}]"
        return f"U[{f(self.lo)},{f(self.hi)}]"


#: the unit of the first layer of the simple function task's network for each unit of its second layer:
#: the additive sibling of a multiplicative unit, as in the authors' code (``--nac-mul``), else the unit itself
_FIRST_LAYER = {"NMU": "NAU", "NACMul": "NAC", "NPU": "NAU", "RealNPU": "NAU", "ClippedNACMul": "NAU",
                "SigmoidNACMul": "NAC"}

def _make(unit: str, in_features: int, out_features: int, rng: Any, dtype: np.dtype, preset: str | None) -> Any:
    """:func:`nalu_np.tasks.make_unit`, with ``preset`` only for units that have presets."""
    return make_unit(unit, in_features, out_features, rng=rng, dtype=dtype,
                     preset=preset if preset and supports_presets(unit) else None)


class _PaperTask(Task):
    """Fresh batches, fixed test sets, the linearly scheduled sparsity regularizer and the papers' verdict.

    Subclasses resolve the default ``lambda_hat`` and ramp before calling ``__init__``, set ``threshold``
    after, and implement ``_inputs_and_targets`` (x in the task's dtype, exact float64 targets)
    and ``_test_ranges``.

    Adam runs with ``overflow="propagate"`` (:attr:`optimizer_options`): both papers' code trains with
    ``torch.optim.Adam`` in PyTorch's default float32 (stable-nalu's experiments/simple_function_static.py,
    nalm-benchmark's experiments/single_layer_benchmark.py; neither sets a dtype), whose second moment overflows
    to ``inf`` for a gradient beyond ~5.8e20, freezing that weight for good, and whose infinite gradients make
    weights NaN.
    """

    batch_size = 128
    optimizer = "adam"
    optimizer_options = MappingProxyType({"overflow": "propagate"})
    lr = 1e-3
    eval_every: int | None = 1000
    #: samples in each test set (the papers: 10000)
    eval_size = 10000
    #: RandomState seeds of the interpolation and extrapolation test sets (the authors' code, from random.org)
    _TEST_SEEDS = (43953907, 8689336)
    threshold: float
    lambda_hat: float
    reg_start: float
    reg_end: float

    def __init__(self, *, steps: int, eval_every: int | None, lambda_hat: float,
                 reg_start: float | None, reg_end: float | None, ramp: tuple[float, float],
                 dtype: Any) -> None:
        super().__init__(dtype=dtype)
        self.steps = positive_int(steps, "steps")
        self.eval_every = None if eval_every is None else positive_int(eval_every, "eval_every")
        self.lambda_hat = float(lambda_hat)
        if not (math.isfinite(self.lambda_hat) and self.lambda_hat >= 0):
            raise ValueError(f"lambda_hat must be finite and >= 0, got {lambda_hat!r}")
        self.reg_start = float(ramp[0] * self.steps if reg_start is None else reg_start)
        self.reg_end = float(ramp[1] * self.steps if reg_end is None else reg_end)
        linear_schedule(0, self.lambda_hat, self.reg_start, self.reg_end)  # validates start <= end
        self._test_sets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    # -- data ----------------------------------------------------------------------------------------------
    def _inputs_and_targets(self, rng: Any, rng_range: Range, n: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _test_ranges(self) -> tuple[Range, Range]:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        x, t = self._inputs_and_targets(rng, self._test_ranges()[0], batch_size)
        return x, t.astype(self.dtype)

    def eval_sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``"interpolation"`` and ``"extrapolation"``: :attr:`eval_size` samples each, the same for every
        seed (drawn from fixed RandomState seeds, as the authors' code does); float64 targets."""
        if self._test_sets is None:
            self._test_sets = {
                name: self._inputs_and_targets(np.random.RandomState(seed), rng_range, self.eval_size)
                for name, rng_range, seed in zip(("interpolation", "extrapolation"), self._test_ranges(),
                                                 self._TEST_SEEDS)
            }
        return self._test_sets

    # -- regularizer ---------------------------------------------------------------------------------------
    def penalty(self, model: Any, step: int) -> tuple[float, dict[str, Array]] | None:
        """``lambda(step) * model.regularizer()`` with the linear schedule of Madsen & Johansen
        (:func:`nalu_np.reference.linear_schedule`); None while lambda is 0 or the model has no regularizer."""
        lam = linear_schedule(step, self.lambda_hat, self.reg_start, self.reg_end)
        if lam == 0.0 or not callable(getattr(model, "regularizer", None)):
            return None
        R, grads = model.regularizer()
        if not grads:
            return None
        return lam * float(R), {k: g * g.dtype.type(lam) for k, g in grads.items()}

    # -- verdict -------------------------------------------------------------------------------------------
    def model_metrics(self, model: Any) -> dict[str, float]:
        """Numbers about the model itself at an evaluation: ``{"sparsity_error": ...}``."""
        return {"sparsity_error": sparsity_error(model)}

    def outcome(self, evaluations: list[Evaluation]) -> dict[str, Any]:
        """:func:`outcome` with this task's threshold."""
        return outcome(evaluations, self.threshold)

    def success(self, evaluations: list[Evaluation]) -> bool:
        return bool(self.outcome(evaluations)["success"])

    def criterion(self) -> str:
        return (f"extrapolation MSE at the evaluation with the lowest interpolation MSE < {self.threshold:.5g} "
                f"(evaluated every {self.eval_every} steps on {self.eval_size} samples)")


# ---------------------------------------------------------------------------------------------------------
# Madsen & Johansen 2020: the simple function task
# ---------------------------------------------------------------------------------------------------------

#: op -> (symbol, target function of the two subset sums a, b)
SIMPLE_FUNCTION_OPS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "add": ("+", lambda a, b: a + b),
    "sub": ("−", lambda a, b: a - b),
    "mul": ("×", lambda a, b: a * b),
    "div": ("÷", lambda a, b: a / b),
    "squared": ("a²", lambda a, b: a * a),
    "root": ("√a", lambda a, b: np.sqrt(a)),
}

#: the success thresholds (extrapolation MSE of the solution with every weight off by 1e-5), as the authors'
#: code has them (:data:`nalu_np.studies.MADSEN2020_PROTOCOL`; the paper prints them rounded)
SIMPLE_FUNCTION_THRESHOLDS = dict(MADSEN2020_PROTOCOL.thresholds)

#: the unit of the second layer each op gets by default: NAU for + and −, NMU for × and a²; NMU cannot
#: divide or take roots, so ÷ and √a get the log-space NAC (the paper's NAC•)
_SIMPLE_DEFAULT_UNIT = {"add": "NAU", "sub": "NAU", "mul": "NMU", "squared": "NMU", "div": "NACMul",
                        "root": "NACMul"}


class SimpleFunctionTask(_PaperTask):
    """The static simple function task of Madsen & Johansen (2020), after Trask et al. (2018).

    ``x`` has 100 elements; ``a = sum(x[o:o+25])``, ``b = sum(x[o+13:o+38])`` (two subsets of 25 that
    overlap in 12 elements); the target is ``a ∘ b``.  Inputs are ``U[1, 2)`` for training and the
    interpolation test set, ``U[2, 6)`` for the extrapolation test set.  The network is two layers with a
    hidden size of 2: the second layer is ``unit``, the first its additive sibling (NAU before an NMU or a
    ClippedNACMul, NAC before a NACMul or a SigmoidNACMul, as the study's models; else the same unit, e.g. NALU
    then NALU for the NALU baseline).  Adam, lr 1e-3, batches
    of 128 drawn fresh each step, MSE plus ``lambda(t) * R`` (sum of the layers' sparsity regularizers).

    Parameters
    ----------
    op : {"add", "sub", "mul", "div", "squared", "root"}
    seed : int
        Fixes the subset offset ``o`` in 0..62: the first draw of ``numpy.random.RandomState(seed)``, as the
        authors' dataset code does, so a seed gives the same subsets as in their runs.
    unit : str, optional
        Unit of the second layer (default: NAU for + and −, NMU for × and a², NACMul for ÷ and √a).
    first_unit : str, optional
        Unit of the first layer (default: as described above).
    steps : int
        Training budget (the paper: 5_000_000).
    eval_every : int
        Steps between evaluations (the paper: 1000).
    lambda_hat : float, optional
        Final regularizer strength.  Default: the authors' protocol of the model whose second layer is
        ``unit`` (:attr:`protocol`): 0.01 for the NAU model, 10 for the NMU model, 0 for models without a
        sparsity regularizer (NAC+, NAC•, NALU) and for units outside the study.
    reg_start, reg_end : float, optional
        Steps where the linear ramp of ``lambda`` starts and ends.  Default: that model's ramp as a fraction
        of the protocol's 5e6 steps, scaled with the budget: ``steps / 1000`` and ``steps / 100`` for the
        NAU (the authors' 5e3 and 5e4), ``steps / 5`` and ``2 * steps / 5`` otherwise (1e6 and 2e6).
    dtype : {"float32", "float64"}

    Attributes
    ----------
    protocol : nalu_np.studies.ModelProtocol or None
        The model of :data:`nalu_np.studies.MADSEN2020_MODELS` the defaults come from
        (:func:`nalu_np.studies.model_for_unit`), None for a unit outside the study.

    Notes
    -----
    The success threshold is the published one (:data:`SIMPLE_FUNCTION_THRESHOLDS`).  The test sets hold
    10000 samples each, drawn with the authors' RandomState seeds; training batches come from the generator
    :func:`nalu_np.train` seeds with the run's seed.  Adam runs with ``overflow="propagate"`` (:class:`_PaperTask`),
    which the gated NAU/NMU's 100-input NMU path overflows in its first steps in most seeds (bench/RESULTS.md).
    """

    in_features = 100
    out_features = 1
    hidden_size = 2
    subset_size = 25
    overlap = 12
    interpolation_range = Range(1.0, 2.0)
    extrapolation_range = Range(2.0, 6.0)

    def __init__(self, op: str, *, seed: int = 0, unit: str | None = None, first_unit: str | None = None,
                 steps: int = 5_000_000, eval_every: int | None = 1000, lambda_hat: float | None = None,
                 reg_start: float | None = None, reg_end: float | None = None, dtype: Any = "float32") -> None:
        if op not in SIMPLE_FUNCTION_OPS:
            raise ValueError(f"unknown op {op!r} of the simple function task; known: {', '.join(SIMPLE_FUNCTION_OPS)}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.op = op
        self.symbol, self._fn = SIMPLE_FUNCTION_OPS[op]
        self.unit = _canonical_unit(_SIMPLE_DEFAULT_UNIT[op] if unit is None else unit)
        self.first_unit = None if first_unit is None else _canonical_unit(first_unit)
        self.protocol = model_for_unit(self.unit, self.first_unit)
        reg = None if self.protocol is None else self.protocol.regularizer
        if lambda_hat is None:
            lambda_hat = 0.0 if reg is None else reg.lambda_hat
        schedule = MADSEN2020_PROTOCOL.regularizer if reg is None else reg
        ramp = (schedule.start / MADSEN2020_PROTOCOL.steps, schedule.end / MADSEN2020_PROTOCOL.steps)
        super().__init__(steps=steps, eval_every=eval_every, lambda_hat=lambda_hat, reg_start=reg_start,
                         reg_end=reg_end, ramp=ramp, dtype=dtype)
        self.seed = int(seed)
        self.threshold = SIMPLE_FUNCTION_THRESHOLDS[op]
        span = 2 * self.subset_size - self.overlap
        self.offset = int(np.random.RandomState(self.seed).randint(0, self.in_features - span + 1))
        o = self.offset
        self.a_slice = slice(o, o + self.subset_size)
        self.b_slice = slice(o + self.subset_size - self.overlap, o + span)
        self.name = f"simple-{op}"
        self.description = (f"Madsen & Johansen's simple function task: t = {self._formula()} of x ~ U[1,2) in R^100 "
                            f"({self.first_unit or _FIRST_LAYER.get(self.unit, self.unit)} -> {self.unit})")

    def _formula(self) -> str:
        return {"squared": "a²", "root": "√a"}.get(self.op, f"a {self.symbol} b")

    def _test_ranges(self) -> tuple[Range, Range]:
        return self.interpolation_range, self.extrapolation_range

    def _inputs_and_targets(self, rng: Any, rng_range: Range, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng_range.sample(rng, (n, self.in_features), self.dtype)
        x64 = x.astype(np.float64)
        a = x64[:, self.a_slice].sum(axis=1)
        b = x64[:, self.b_slice].sum(axis=1)
        return x, self._fn(a, b)[:, None]

    def build_model(self, rng: Any = None, *, unit: str | None = None, preset: str | None = None) -> Any:
        """``Sequential([first(100, 2), unit(2, 1)])``, first layer drawn first.

        ``preset`` goes to the layers that have the seed articles' presets.  Without it, the network of a model
        of the study (:func:`nalu_np.studies.model_for_unit`) gets the authors' initialisation of each layer
        and its settings (``ModelProtocol.unit_inits``, e.g. ``"madsen2020"`` for the NAC and the NALU), any
        other network its units' defaults.
        """
        from .layers import Sequential

        second = self.unit if unit is None else _canonical_unit(unit)
        first = self.first_unit or _FIRST_LAYER.get(second, second)
        rng = make_rng(rng)
        shapes = ((first, self.in_features, self.hidden_size), (second, self.hidden_size, 1))
        model = model_for_unit(second, first)
        if preset is None and model is not None and model.init_available:
            return Sequential([make_unit(u, i, o, rng=rng, dtype=self.dtype, preset=init)
                               for (u, i, o), init in zip(shapes, model.unit_inits)])
        return Sequential([_make(u, i, o, rng, self.dtype, preset) for u, i, o in shapes])

    def __repr__(self) -> str:
        return (f"<task {self.name!r}: t = {self._formula()}, a = sum(x[{self.a_slice.start}:{self.a_slice.stop}]), "
                f"b = sum(x[{self.b_slice.start}:{self.b_slice.stop}]), unit {self.unit}, {self.steps} steps>")


# ---------------------------------------------------------------------------------------------------------
# Mistry, Farrahi & Hare 2021: the single-module task
# ---------------------------------------------------------------------------------------------------------

#: op -> (symbol, target function of x1, x2)
SINGLE_MODULE_OPS: dict[str, tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    op: SIMPLE_FUNCTION_OPS[op] for op in ("add", "sub", "mul", "div")
}

#: the nine (interpolation, extrapolation) ranges of the paper's benchmark, in its order
SINGLE_MODULE_RANGES: tuple[tuple[Range, Range], ...] = (
    (Range(-20, -10), Range(-40, -20)),
    (Range(-2, -1), Range(-6, -2)),
    (Range(-1.2, -1.1), Range(-6.1, -1.2)),
    (Range(-0.2, -0.1), Range(-2, -0.2)),
    (Range(-2, 2), Range(2, 6, mirror=True)),
    (Range(0.1, 0.2), Range(0.2, 2)),
    (Range(1, 2), Range(2, 6)),
    (Range(1.1, 1.2), Range(1.2, 6)),
    (Range(10, 20), Range(20, 40)),
)

#: the unit each op gets by default (the paper's recommended module per op)
_SINGLE_DEFAULT_UNIT = {"add": "NAU", "sub": "NAU", "mul": "NMU", "div": "RealNPU"}
#: lambda_hat of the NAU in the single-module benchmark scripts (the NMU keeps 10)
_SINGLE_LAMBDA = {"NAU": 0.01, "NMU": 10.0}


def single_module_threshold(op: str, extrapolation: Range, epsilon: float = 1e-5) -> float:
    """Success threshold of the single-module task: the expected extrapolation MSE of the exact solution
    with every weight off by ``epsilon``.

    Parameters
    ----------
    op : {"add", "sub", "mul", "div"}
    extrapolation : Range
    epsilon : float

    Returns
    -------
    float

    Notes
    -----
    The authors estimate it by simulation (``generate_exp_thresholds.r``: weights ``1 - eps`` on the used
    inputs, ``eps`` elsewhere, 1e6 samples).  For two independent inputs it has a closed form, used here:
    ``+``, ``−``: ``eps**2 * E[(|x1| + |x2|)**2] = eps**2 * (2 E[x**2] + 2 E|x|**2)``;
    ``×``: ``((1 - eps)**2 - 1)**2 * E[x**2]**2``;
    ``÷``: ``((1 - eps) / (1 + eps) - 1)**2 * E[x**2] * E[1 / x**2]``.
    """
    if op not in SINGLE_MODULE_OPS:
        raise ValueError(f"unknown op {op!r} of the single-module task; known: {', '.join(SINGLE_MODULE_OPS)}")
    e = float(epsilon)
    m1, m2, m_inv2 = extrapolation.moments()
    if op in ("add", "sub"):
        return e * e * (2.0 * m2 + 2.0 * m1 * m1)
    if op == "mul":
        return ((1.0 - e) ** 2 - 1.0) ** 2 * m2 * m2
    return ((1.0 - e) / (1.0 + e) - 1.0) ** 2 * m2 * m_inv2


def _range_index(r: Any) -> int:
    if isinstance(r, (int, np.integer)) and not isinstance(r, bool):
        if not 0 <= r < len(SINGLE_MODULE_RANGES):
            raise ValueError(f"range index must be in 0..{len(SINGLE_MODULE_RANGES) - 1}, got {r}")
        return int(r)
    names = [str(i) for i, _ in SINGLE_MODULE_RANGES]
    text = str(r).replace(" ", "")
    for i, name in enumerate(names):
        if text == name.replace(" ", ""):
            return i
    raise ValueError(f"unknown interpolation range {r!r}; give an index 0..8 or one of: {', '.join(names)}")


class SingleModuleTask(_PaperTask):
    """The single-module task of Mistry, Farrahi & Hare (2021): one unit learns ``y = x1 ∘ x2``.

    Parameters
    ----------
    op : {"add", "sub", "mul", "div"}
    range : int or str
        One of the paper's nine interpolation ranges (:data:`SINGLE_MODULE_RANGES`), by index or name such as
        ``"U[1,2]"``; its extrapolation range comes with it.  Default ``"U[1,2]"`` (extrapolation ``U[2,6]``).
    unit : str, optional
        Default: NAU for + and −, NMU for ×, RealNPU for ÷.
    steps : int
        Budget (the paper: 50_000).
    eval_every : int
        Steps between evaluations (the paper: 1000).
    lambda_hat : float, optional
        Default: the authors' protocol of the unit on ``op`` (:attr:`protocol`): 10 for the NMU, 0.01 for the
        NAU, 0 for the other units.
    reg_start, reg_end : float, optional
        Default ``0.4 * steps`` and ``0.7 * steps`` (the scripts' 20000 and 35000 of 50000).
    epsilon : float, optional
        Weight error of the threshold (:func:`single_module_threshold`); default the benchmark's,
        :data:`nalu_np.primer.PRIMER2022_PROTOCOL` ``.epsilon`` (1e-4, see there).
    dtype : {"float32", "float64"}

    Attributes
    ----------
    protocol : nalu_np.primer.ModuleProtocol or None
        The model of :data:`nalu_np.primer.PRIMER2022_MODELS` that runs ``unit`` on ``op``, whose settings are
        the defaults: the learning rate (5e-3 for the NPUs), the sparsity regularizer, the L1 schedule of the NPUs
        (``l1``), the iNALU's recipe, the initialisation and the unit's settings; None for a unit the benchmark does not run on ``op``
        (then lr 1e-3, no regularizer, the unit's defaults).
    l1 : nalu_np.primer.BetaSchedule or None
        The strength of the L1 term ``beta(t) * sum_p |p|`` over all parameters, its steps scaled with the
        budget (10000 of 50000 steps).
    recipe : nalu_np.primer.InaluRecipe or None
        The iNALU's gradient clipping (:attr:`clip_value`), saturation regularizer and reinitialisation of
        stalled runs (both engines; :attr:`recipe_run` holds the state of the latest run).

    Notes
    -----
    Batches of 128 drawn fresh each step from the interpolation range, Adam, MSE plus ``lambda(t) * R`` (plus
    the L1 term); test sets of 10000 samples.  ``a = x1``, ``b = x2`` as the authors' dataset gives them (input
    size 2, subset ratio 0.5, overlap 0: the subset offset is always 0).  The task does not depend on the seed.
    The compiled engine (:mod:`nalu_np.compiled`) trains it, as the simple function task's case ``I = 2``,
    ``a = x[0]``, ``b = x[1]``, for the units it knows, the :attr:`l1` term and the iNALU's :attr:`recipe`
    included (the recipe's switch and reinitialisations driven from Python between compiled calls, one seed
    per call: :func:`nalu_np.training.train`).
    """

    in_features = 2
    out_features = 1

    def __init__(self, op: str, *, range: Any = "U[1,2]", unit: str | None = None, steps: int = 50_000,
                 eval_every: int | None = 1000, lambda_hat: float | None = None, reg_start: float | None = None,
                 reg_end: float | None = None, epsilon: float | None = None, dtype: Any = "float32") -> None:
        if op not in SINGLE_MODULE_OPS:
            raise ValueError(f"unknown op {op!r} of the single-module task; known: {', '.join(SINGLE_MODULE_OPS)}")
        self.op = op
        self.symbol, self._fn = SINGLE_MODULE_OPS[op]
        self.unit = _canonical_unit(_SINGLE_DEFAULT_UNIT[op] if unit is None else unit)
        self.protocol = module_for_unit(self.unit, op)
        reg = None if self.protocol is None else self.protocol.regularizer
        if lambda_hat is None:
            lambda_hat = 0.0 if reg is None else reg.lambda_hat
        full = PRIMER2022_PROTOCOL.steps
        ramp = (0.4, 0.7) if reg is None else (reg.start / full, reg.end / full)
        super().__init__(steps=steps, eval_every=eval_every, lambda_hat=lambda_hat, reg_start=reg_start,
                         reg_end=reg_end, ramp=ramp, dtype=dtype)
        self.lr = 1e-3 if self.protocol is None else self.protocol.lr
        self.recipe = None if self.protocol is None else self.protocol.recipe
        self.clip_value = None if self.recipe is None else self.recipe.clip_value
        self._run: InaluRun | None = None
        schedule = None if self.protocol is None or self.protocol.l1 is None else self.protocol.l1.get(op)
        self.l1 = None if schedule is None else replace(
            schedule, every=max(1, round(schedule.every * self.steps / full)))
        self.range_index = _range_index(range)
        self.interpolation_range, self.extrapolation_range = SINGLE_MODULE_RANGES[self.range_index]
        self.epsilon = PRIMER2022_PROTOCOL.epsilon if epsilon is None else float(epsilon)
        self.threshold = single_module_threshold(op, self.extrapolation_range, self.epsilon)
        self.name = f"single-{op}"
        self.description = (f"Mistry et al.'s single-module task: y = x1 {self.symbol} x2, train "
                            f"{self.interpolation_range}, extrapolate {self.extrapolation_range} ({self.unit})")

    def _test_ranges(self) -> tuple[Range, Range]:
        return self.interpolation_range, self.extrapolation_range

    def _inputs_and_targets(self, rng: Any, rng_range: Range, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng_range.sample(rng, (n, 2), self.dtype)
        x64 = x.astype(np.float64)
        with np.errstate(divide="ignore"):
            return x, self._fn(x64[:, 0], x64[:, 1])[:, None]

    def penalty(self, model: Any, step: int) -> tuple[float, dict[str, Array]] | None:
        """The sparsity regularizer's term (:meth:`_PaperTask.penalty`) plus the recipe's terms: with
        :attr:`l1`, the NPUs' ``beta(step) * sum over all parameters of |p|`` (``torch.norm(p, 1)`` summed in
        the authors' ``Regualizer.l1``; its gradient ``beta * sign(p)``, 0 at 0); with the iNALU's
        :attr:`recipe`, during a run, its saturation regularizer (:func:`nalu_np.primer.saturation_regularizer`)
        at the steps after ``recipe.after`` while the last evaluated interpolation MSE is below ``recipe.below``."""
        saturation = None if self._run is None else self._run.penalty(model, step)
        terms = [t for t in (super().penalty(model, step), self._l1_term(model, step), saturation) if t is not None]
        if not terms:
            return None
        value = sum(t[0] for t in terms)
        grads: dict[str, Array] = {}
        for _, g in terms:
            for k, v in g.items():
                grads[k] = grads[k] + v if k in grads else v
        return value, grads

    def _l1_term(self, model: Any, step: int) -> tuple[float, dict[str, Array]] | None:
        if self.l1 is None:
            return None
        beta = self.l1(step)
        params = model.params
        return (beta * sum(float(abs(p).sum()) for p in params.values()),
                {k: array_module(p).sign(p) * p.dtype.type(beta) for k, p in params.items()})

    @property
    def recipe_run(self) -> InaluRun | None:
        """The :class:`nalu_np.primer.InaluRun` of the latest run with the iNALU's :attr:`recipe` (its
        ``reinits``, ``losses``), None before one or without the recipe."""
        return self._run

    def start(self, model: Any, evaluations: list[Evaluation], rng: Any) -> None:
        """With the iNALU's :attr:`recipe`: a :class:`nalu_np.primer.InaluRun` keeps the run's state (both
        engines call this; the Python engine then calls :meth:`after_step` each step, the compiled engine keeps
        the store itself and updates the run's ``reinits`` and ``losses``)."""
        self._run = None if self.recipe is None else InaluRun(self.recipe, model, evaluations, rng)

    def after_step(self, model: Any, step: int) -> None:
        """With the iNALU's :attr:`recipe`: :meth:`nalu_np.primer.InaluRun.after_step`."""
        if self._run is not None:
            self._run.after_step(model, step)

    def build_model(self, rng: Any = None, *, unit: str | None = None, preset: str | None = None) -> Any:
        """The unit (2 -> 1).  ``preset`` goes to units with the seed articles' presets; without it, a unit the
        benchmark runs on this op gets the authors' initialisation and settings (:attr:`protocol`: ``eps``, the
        NPUs' ``clamp_gate``), any other its defaults."""
        name = self.unit if unit is None else _canonical_unit(unit)
        protocol = module_for_unit(name, self.op)
        if preset is not None or protocol is None:
            return _make(name, 2, 1, rng, self.dtype, preset)
        settings = {**_unit_spec(name).init(protocol.init).settings, **protocol.options}
        return unit_class(name)(2, 1, rng=make_rng(rng), dtype=self.dtype, init=protocol.init, **settings)


# ---------------------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------------------


def _factories() -> dict[str, Callable[..., Task]]:
    factories: dict[str, Callable[..., Task]] = {}
    for op in SIMPLE_FUNCTION_OPS:
        factories[f"simple-{op}"] = functools.partial(SimpleFunctionTask, op)
    for op in SINGLE_MODULE_OPS:
        factories[f"single-{op}"] = functools.partial(SingleModuleTask, op)
    return factories


#: task name -> factory of the published benchmarks (registered by :mod:`nalu_np.tasks`)
FACTORIES = _factories()
