"""The Primer's single-module benchmark on its authors' protocol (Mistry, Farrahi & Hare, JMLR 2022).

"A Primer for Neural Arithmetic Logic Modules" trains one unit on ``y = x1 ∘ x2`` for nine pairs of
interpolation and extrapolation ranges (:data:`nalu_np.arithmetic.SINGLE_MODULE_RANGES`), 25 seeds each:

:data:`PRIMER2022_PROTOCOL`
    The settings every model shares (:class:`BenchmarkProtocol`).
:data:`PRIMER2022_MODELS`
    Record name -> :class:`ModuleProtocol`: the ops it runs, the flags of the batch script, the nalu-np unit, its
    initialisation and settings, learning rate, regularizer, L1 schedule and the iNALU's recipe.
:func:`module_for_unit`
    The protocol of a nalu-np unit, which :class:`nalu_np.arithmetic.SingleModuleTask` takes its defaults from.
:func:`authors_reruns`
    The only results of the benchmark in the repository: the authors' later runs of its NAU and NMU cells.

Every entry names its sources, files of :data:`PRIMER2022_REPOSITORY` (read at its commit 120ec8e).  What the code
runs is followed where it and the flags' names disagree (e.g. ``--nac-mul`` reaches no layer of the single-layer
network, and the experiment's ``eps = torch.finfo().eps`` is never passed on), and the entry says so.
"""

from __future__ import annotations

import copy
import csv
import decimal
import io
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping, Sequence

import numpy as np

from .backends import array_module
from .studies import Regularizer

__all__ = ["PRIMER2022_REPOSITORY", "BetaSchedule", "ModuleProtocol", "BenchmarkProtocol", "PRIMER2022_PROTOCOL",
           "PRIMER2022_MODELS", "module_for_unit", "FLOAT32_EPS", "InaluRecipe", "INALU_RECIPE", "InaluRun",
           "saturation_regularizer", "authors_reruns"]

#: the authors' repository, which every source below is a file of
PRIMER2022_REPOSITORY = "bmistry4/nalm-benchmark"

_BATCH = "lfs_batch_jobs/single_layer_task/benchmarking/single_layer_benchmark.sh"
_EXPERIMENT = "experiments/single_layer_benchmark.py"
_NETWORK = "stable_nalu/network/single_layer.py"
_DATASET = "stable_nalu/dataset/_simple_function_abstact.py"
_THRESHOLDS = "export/single_layer_task/benchmark/generate_exp_thresholds.r"
_PLOT = "export/single_layer_task/benchmark/plot_results.r"
_SUMMARY = "export/_compute_summary.r"
_REGULARIZER = "stable_nalu/functional/regualizer.py"

#: ``torch.finfo(torch.float).eps``, the ``eps`` of the Primer's NPU layers (stable_nalu/layer/npu.py, npu_real.py)
FLOAT32_EPS = 1.1920928955078125e-07


@dataclass(frozen=True)
class BetaSchedule:
    """The strength of the NPU recipes' L1 term: ``start``, multiplied by ``growth`` every ``every`` steps
    while it is below ``end``.

    As the experiment script updates it (``--regualizer-beta-start/-end/-step/-growth``, in ``decimal.Decimal``
    so that it stops at ``end`` exactly): at step ``t`` (0-based) it has grown ``min(t // every, k)`` times, ``k``
    the first count that reaches ``end``.  Mul: 1e-7 until step 9999, 1e-6 until 19999, then 1e-5.
    """

    start: float
    end: float
    every: int = 10_000
    growth: int = 10

    def __call__(self, step: int) -> float:
        """The strength at the 0-based step ``step``."""
        beta = decimal.Decimal(str(self.start))
        end = decimal.Decimal(str(self.end))
        for _ in range(max(int(step), 0) // self.every):
            if beta >= end:
                break
            beta *= self.growth
        return float(beta)

    def pieces(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """The strength on the steps ``0 .. steps - 1`` as constant pieces: ``starts`` (int64, from 0, multiples
        of ``every``) and ``betas`` (float64, the values of :meth:`__call__` there), ``beta(t) = betas[j]`` for
        ``starts[j] <= t < starts[j + 1]``; the pieces end where the strength stops changing (at ``end``)."""
        starts, betas = [0], [self(0)]
        while starts[-1] + self.every < steps:
            beta = self(starts[-1] + self.every)
            if beta == betas[-1]:  # grown to end (or a growth of 1): constant from here on
                break
            starts.append(starts[-1] + self.every)
            betas.append(beta)
        return np.array(starts, np.int64), np.array(betas, np.float64)


@dataclass(frozen=True)
class InaluRecipe:
    """The iNALU's training recipe as the Primer's experiment script runs it (``--clip-grad-value 0.1
    --reinit``; experiments/single_layer_benchmark.py).

    Attributes
    ----------
    clip_value : float
        Every gradient element clipped to ``[-clip_value, clip_value]`` before the optimizer step.
    weight, after, below, omega : float
        The saturation regularizer ``weight * R`` (:func:`saturation_regularizer` with ``omega``) joins the
        loss at the 0-based steps ``t > after`` while the last evaluated interpolation MSE is ``< below``.
    check_every, min_losses, loss_threshold : int, int, float
        Reinitialisation of a stalled run: after each step the last evaluated interpolation MSE is stored;
        at the steps ``t > 0`` with ``t % check_every == 0`` and more than ``min_losses`` stored, the
        parameters are drawn afresh (the optimizer's state kept) and the store emptied when
        ``mean(first half) <= mean(second half) + std(second half)`` and ``mean(second half) > loss_threshold``
        (:meth:`stalled`).
    """

    clip_value: float = 0.1
    weight: float = 0.05
    after: int = 10_000
    below: float = 1.0
    omega: float = 20.0
    check_every: int = 10
    min_losses: int = 5000
    loss_threshold: float = 1.0

    def stalled(self, step: int, losses: Sequence[float]) -> bool:
        """Whether the run is re-initialised after the 0-based ``step`` with the stored ``losses``."""
        if step <= 0 or step % self.check_every or len(losses) <= self.min_losses:
            return False
        half = len(losses) // 2
        first, second = np.asarray(losses[:half]), np.asarray(losses[half:])
        return bool(first.mean() <= second.mean() + second.std() and second.mean() > self.loss_threshold)

    def first_stall(self, start: int, count: int, values: Sequence[float], counts: Sequence[int],
                    value: float) -> int | None:
        """The first of the 0-based steps ``start .. start + count - 1`` after which the run is re-initialised,
        when the store holds ``counts[j]`` copies of ``values[j]``, in order, and each of those steps stores
        ``value``; None when there is none.

        The compiled engine's check between two evaluations, where every step stores the same last evaluated
        MSE: it decides as :meth:`stalled` on the store spelt out, with sums over the pieces (O(pieces) per
        checked step, the checked steps of the interval at once), and calls :meth:`stalled` itself where those
        sums are within rounding of a tie or not finite.
        """
        values = np.append(np.asarray(values, np.float64), np.float64(value))
        starts = np.concatenate([[0], np.cumsum(np.asarray(counts, np.int64))])  # the new piece starts last
        held = int(starts[-1])
        first = max(start, 1, start + self.min_losses - held)  # t > 0 and held + (t - start + 1) > min_losses
        ts = np.arange(-(-first // self.check_every) * self.check_every, start + count, self.check_every)
        if ts.size == 0:
            return None
        n = held + ts - start + 1  # the store's size after step t
        half = n // 2
        ends = np.append(starts[1:], np.iinfo(np.int64).max)
        in_first = np.clip(np.minimum(ends, half[:, None]) - starts, 0, None)
        in_second = np.clip(np.minimum(ends, n[:, None]) - np.maximum(starts, half[:, None]), 0, None)
        with np.errstate(invalid="ignore", over="ignore"):
            m1 = (in_first * values).sum(axis=1) / half
            m2 = (in_second * values).sum(axis=1) / (n - half)
            s2 = np.sqrt((in_second * (values - m2[:, None]) ** 2).sum(axis=1) / (n - half))
            near = 1e-10 * (np.abs(m1) + np.abs(m2) + s2 + abs(self.loss_threshold))
            gap, above = m2 + s2 - m1, m2 - self.loss_threshold  # stalled: gap >= 0 and above > 0
        for j, t in enumerate(ts):
            if np.isfinite(near[j]):
                if gap[j] < -near[j] or above[j] < -near[j]:
                    continue
                if gap[j] > near[j] and above[j] > near[j]:
                    return int(t)
            if self.stalled(int(t), np.repeat(values, np.append(np.diff(starts), n[j] - held))):
                return int(t)
        return None


#: the recipe of the Primer's iNALU runs
INALU_RECIPE = InaluRecipe()


class InaluRun:
    """One training run under an :class:`InaluRecipe`: the state the recipe keeps (the Python engine's
    :meth:`nalu_np.taskbase.Task.start` and ``after_step`` hooks drive it; the compiled engine starts it the same
    way, keeps the store itself with :meth:`InaluRecipe.first_stall` and writes ``reinits`` and ``losses`` back).

    Parameters
    ----------
    recipe : InaluRecipe
    model : layer
        The model to train; the reinitialisations continue ``rng`` past one draw of its parameters: the
        initial draw, where the model was built from ``rng``'s seed as the sweep does (the authors' draws
        continue torch's generator after the initial ones).
    evaluations : list of Evaluation
        The run's evaluations, appended in place as they are made.
    rng : numpy.random.Generator

    Attributes
    ----------
    losses : list of float
        The stored interpolation MSEs.
    reinits : int
        Reinitialisations so far.
    """

    def __init__(self, recipe: InaluRecipe, model: Any, evaluations: list[Any], rng: np.random.Generator) -> None:
        self.recipe = recipe
        self.evaluations = evaluations
        self.rng = rng
        self.losses: list[float] = []
        self.reinits = 0
        copy.deepcopy(model).reinitialise(rng)

    def last_interpolation(self) -> float:
        """The interpolation MSE of the latest evaluation."""
        return float(self.evaluations[-1].metrics["interpolation_mse"])

    def penalty(self, model: Any, step: int) -> tuple[float, dict[str, Any]] | None:
        """``weight * R`` (:func:`saturation_regularizer`) and its gradient at the 0-based ``step`` when
        ``step > after`` and the last evaluated interpolation MSE is below ``below``; else None."""
        r = self.recipe
        if step <= r.after or not self.last_interpolation() < r.below:
            return None
        value, grads = saturation_regularizer(model.params, r.omega)
        return r.weight * value, {k: g * g.dtype.type(r.weight) for k, g in grads.items()}

    def after_step(self, model: Any, step: int) -> None:
        """Store the last evaluated interpolation MSE after the update of the 0-based ``step``, and
        re-initialise the parameters in place (the optimizer's state kept) when the run has stalled
        (:meth:`InaluRecipe.stalled`)."""
        self.losses.append(self.last_interpolation())
        if self.recipe.stalled(step, self.losses):
            model.reinitialise(self.rng)
            self.losses = []
            self.reinits += 1


def saturation_regularizer(params: Mapping[str, Any], omega: float = 20.0) -> tuple[float, dict[str, Any]]:
    """The iNALU's regularizer, which pushes every parameter away from 0 towards saturation.

    Parameters
    ----------
    params : dict
        The unit's raw parameters (``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul``, ``g``).
    omega : float

    Returns
    -------
    R : float
        ``sum over the parameters of mean(max(omega - |p|, 0))``.
    grads : dict
        ``dR/dp = -sign(p) / p.size`` where ``|p| < omega``, else 0.

    Notes
    -----
    The authors' ``Regualizer`` ``_inalu`` (stable_nalu/functional/regualizer.py): ``mean(relu(min(p, -p) +
    omega))`` per parameter, summed over the layer's parameters (stable_nalu/layer/inalu.py).  At ``p = 0`` the
    tie of the ``min`` splits the gradient, which gives 0, as ``sign(0)`` does here.
    """
    value = 0.0
    grads = {}
    for k, p in params.items():
        xp = array_module(p)
        gap = p.dtype.type(omega) - xp.abs(p)
        value += float(xp.maximum(gap, 0).mean())
        grads[k] = -xp.sign(p) * (gap > 0) / p.dtype.type(p.size)
    return value, grads


@dataclass(frozen=True)
class BenchmarkProtocol:
    """The settings every model of the Primer's single-module benchmark shares.

    Attributes
    ----------
    name : str
    steps : int
        ``--max-iterations``: the loop runs ``range(steps + 1)``, and its last logged evaluation is the one
        before the update of step ``steps``, i.e. after ``steps`` updates, which is what nalu-np's ``steps``
        updates end with.
    batch_size : int
    optimizer : str
    eval_every : int
        ``--log-interval``: the evaluations are at steps 0, 1000, ..., 50000.
    eval_size : int
    test_seeds : tuple of int
        Seeds of the interpolation and extrapolation sets.
    seeds : int
        ``0 .. seeds - 1``.
    epsilon : float
        The weight error of the simulated success thresholds (see the notes of :data:`PRIMER2022_PROTOCOL`).
    best_range : int
        The best evaluation is sought among the last ``best_range`` (all 51 here).
    sources : tuple of str
    """

    name: str
    steps: int
    batch_size: int
    optimizer: str
    eval_every: int
    eval_size: int
    test_seeds: tuple[int, int]
    seeds: int
    epsilon: float
    best_range: int
    sources: tuple[str, ...] = ()


#: The single-module benchmark (``sltr-in2``): 50,000 iterations, batch 128, Adam, evaluation every 1000 steps on
#: 10,000 samples each (seeds 43953907, 8689336), 25 seeds.  Thresholds: ``plot_results.r`` reads a simulated
#: threshold per op and range (``eps_thrs_sltr.csv``, not in the repository); the only generator,
#: ``generate_exp_thresholds.r``, simulates the MSE of the exact solution with every weight off by ``epsilon =
#: 1e-4`` (from the revision of March 2022 that introduced simulated thresholds, before the JMLR publication).
#: Before that revision the plots compared the MSE with ``exp_setups.csv``'s 1e-5 directly.  nalu-np uses the
#: simulated thresholds with 1e-4 in closed form (:func:`nalu_np.arithmetic.single_module_threshold`).
PRIMER2022_PROTOCOL = BenchmarkProtocol(
    name="primer2022-single-module", steps=50_000, batch_size=128, optimizer="adam", eval_every=1000,
    eval_size=10_000, test_seeds=(43953907, 8689336), seeds=25, epsilon=1e-4, best_range=5000,
    sources=(_BATCH, _EXPERIMENT, _DATASET, _THRESHOLDS, _PLOT, _SUMMARY),
)


@dataclass(frozen=True)
class ModuleProtocol:
    """One model of the single-module benchmark, as its batch script runs it.

    Attributes
    ----------
    name : str
        Record name (the batch script's experiment name).
    ops : tuple of str
        The ops the batch script runs it on.
    flags : str
        The batch script's flags besides ranges, seed, iterations and output options.
    layer : str
        The authors' layer class the network builds.
    unit : str or None
        The nalu-np unit; None where nalu-np has none.
    init : str or None
        The nalu-np initialisation (:data:`nalu_np.units.UNITS`) that is the authors'.
    lr : float
    regularizer : Regularizer or None
        The sparsity regularizer's strength and ramp (None: none in the loss).
    l1 : dict or None
        Op -> :class:`BetaSchedule` of the L1 term ``beta(t) * sum over all parameters of |p|`` (the NPUs).
    options : dict
        Constructor arguments of the nalu-np unit that make it the authors' layer (``eps``, the NPUs'
        ``clamp_gate``), over those of its initialisation.
    recipe : InaluRecipe or None
        The iNALU's clipping, regularizer and reinitialisation (``--clip-grad-value 0.1 --reinit``).
    notes : str
    sources : tuple of str
    """

    name: str
    ops: tuple[str, ...]
    flags: str
    layer: str
    unit: str | None
    init: str | None = None
    lr: float = 1e-3
    regularizer: Regularizer | None = None
    l1: Mapping[str, BetaSchedule] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    recipe: InaluRecipe | None = None
    notes: str = ""
    sources: tuple[str, ...] = field(default=(_BATCH, _EXPERIMENT, _NETWORK))

    @property
    def available(self) -> bool:
        """Whether nalu-np has the model's unit."""
        return self.unit is not None


_RAMP = (20_000, 35_000)
_ADD_SUB = ("add", "sub")
_MUL_DIV = ("mul", "div")
_NPU_L1 = {"mul": BetaSchedule(1e-7, 1e-5), "div": BetaSchedule(1e-9, 1e-7)}
_NPU_FLAGS = ("--nac-mul {mode} --learning-rate 5e-3 --regualizer-beta-start 1e-7 --regualizer-beta-end 1e-5 "
              "--regualizer-l1 --regualizer-shape none --regualizer 0 (div: beta 1e-9 -> 1e-7)")
_NPU_OPTIONS = {"eps": FLOAT32_EPS, "clamp_gate": True}

#: the models of the benchmark's ``sltr-in2`` section, by record name, in the batch script's order
PRIMER2022_MODELS: dict[str, ModuleProtocol] = {m.name: m for m in (
    ModuleProtocol(
        "NMU", ("mul",), "--layer-type ReRegualizedLinearMNAC --nac-mul mnac --regualizer-scaling-start 20000 "
        "--regualizer-scaling-end 35000", "ReRegualizedLinearMNAC", "NMU", "madsen2020",
        regularizer=Regularizer(10.0, *_RAMP),
        notes="lambda 10 (the default), W ~ U(0.25, 0.75) clipped to [0, 1] after each step.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/re_regualized_linear_mnac.py", _REGULARIZER),
    ),
    ModuleProtocol(
        "MNAC", _MUL_DIV, "--layer-type MNAC --nac-mul normal", "NAC (in exp(NAC(log(|x| + 1e-7))))", "NACMul",
        "madsen2020", options={"eps": 1e-7},
        notes="The network maps --layer-type MNAC to the NAC layer in log space with eps 1e-7 "
              "(single_layer.py); the MNAC layer class is not used.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/nac.py"),
    ),
    ModuleProtocol(
        "NALU", ("mul", "div", "add", "sub"), "--layer-type NALU", "NALU", "NALU", "madsen2020", options={"eps": 1e-7},
        notes="Shared NAC weights, one gate without bias, eps 1e-7.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/_abstract_nalu.py"),
    ),
    ModuleProtocol(
        "NPU", _MUL_DIV, "--layer-type NPU " + _NPU_FLAGS.format(mode="npu"), "NPU", "NPU", "heim2020", lr=5e-3,
        l1=_NPU_L1, options=_NPU_OPTIONS,
        notes="L1 = sum of |p| over W_real, W_im and the raw g; eps torch.finfo(float32).eps; g clamped to "
              "[0, 1] in the forward pass, never projected (nalu-np's clamp_gate).",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/npu.py", _REGULARIZER),
    ),
    ModuleProtocol(
        "RealNPU", _MUL_DIV, "--layer-type RealNPU " + _NPU_FLAGS.format(mode="real-npu"), "RealNPU", "RealNPU",
        "heim2020", lr=5e-3, l1=_NPU_L1, options=_NPU_OPTIONS,
        notes="L1 = sum of |p| over W_real and the raw g; eps and g as the NPU's.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/npu_real.py", _REGULARIZER),
    ),
    ModuleProtocol(
        "iNALU", ("mul", "div", "add", "sub"), "--layer-type iNALU --clip-grad-value 0.1 --reinit", "iNALU", "INALU",
        "schloer2020", options={"eps": 1e-7}, recipe=INALU_RECIPE,
        notes="Gradients clipped to [-0.1, 0.1]; the saturation regularizer and the reinitialisation of stalled "
              "runs of INALU_RECIPE (the reinitialisation keeps Adam's state, as the script does).  The record's "
              "sparsity error is nalu-np's, the largest over W_a and W_m; the authors' tag averages the two.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/inalu.py", _REGULARIZER),
    ),
    ModuleProtocol(
        "G-NALU", ("mul", "div", "add", "sub"),
        "--layer-type NALU --nalu-gate golden-ratio --nalu-mul golden-ratio --nac-weight golden-ratio", "NALU", "GNALU",
        "madsen2020", options={"eps": 1e-7},
        notes="tanh and sigmoid in base phi: the weights' and the gate's pre-activations scaled by ln(phi); "
              "m = phi^(W log(|x| + eps) / ln(phi)), which is the NALU's exp(W log(|x| + eps)).",
        sources=(_BATCH, _EXPERIMENT, "stable_nalu/functional/golden_ratio_base.py"),
    ),
    ModuleProtocol(
        "NAC", _ADD_SUB, "--layer-type NAC", "NAC", "NAC", "madsen2020",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/nac.py"),
    ),
    ModuleProtocol(
        "NAU", _ADD_SUB, "--layer-type ReRegualizedLinearNAC --regualizer-scaling-start 20000 "
        "--regualizer-scaling-end 35000 --regualizer 0.01", "ReRegualizedLinearNAC", "NAU", "madsen2020",
        regularizer=Regularizer(0.01, *_RAMP),
        notes="W ~ U(-0.5, 0.5) clipped to [-1, 1] after each step.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/re_regualized_linear_nac.py", _REGULARIZER),
    ),
)}


_RERUNS_FILE = "primer2022_mcfc_reruns.csv"


def authors_reruns() -> list[dict[str, Any]]:
    """The authors' own later runs of the benchmark's NAU (+) and NMU (×) cells, the only results for it in
    :data:`PRIMER2022_REPOSITORY`.

    Returns
    -------
    list of dict
        ``model``, ``op``, ``range`` (interpolation range, as :func:`nalu_np.reproduce.range_label` names it),
        ``seeds``, ``successes`` and ``source``.

    Notes
    -----
    From ``notes/MCFC_findings.pdf`` (2023), figures 1 and 2: the NAU and NMU baselines of that note, run by
    the benchmark's pipeline at the repository's head with 25 seeds, "the same evaluation metrics as Mistry et
    al. (2022)" (the ε of the thresholds unstated).  The success rates are read off the plotted points; with 25
    seeds each is a count.  The Primer's own figures are not in the repository.
    """
    text = resources.files("nalu_np").joinpath("data", _RERUNS_FILE).read_text(encoding="utf-8")
    return [{**r, "seeds": int(r["seeds"]), "successes": int(r["successes"])}
            for r in csv.DictReader(io.StringIO(text))]


def module_for_unit(unit: str, op: str) -> ModuleProtocol | None:
    """The model of :data:`PRIMER2022_MODELS` that runs the nalu-np unit ``unit`` on ``op``, or None."""
    for m in PRIMER2022_MODELS.values():
        if m.unit == unit and op in m.ops:
            return m
    return None
