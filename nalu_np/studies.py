"""The published studies on their authors' protocols: the protocol of each model, to the flag, and the published
tables as data (DESIGN section 7).

Madsen & Johansen (ICLR 2020), the static simple function task ("arithmetic datasets"), every model of the
appendix table ``function_task_static_all``:

:data:`MADSEN2020_PROTOCOL`
    The settings every model shares (:class:`StudyProtocol`).
:data:`MADSEN2020_MODELS`
    Record name -> :class:`ModelProtocol`: the paper's label, the flags of the batch script, the units of each
    layer, the regularizer and its ramp.
:func:`published_table`, :func:`published_seeds`
    The published table (one row per model and op) and the authors' per-seed summary of the same runs,
    shipped as CSV files under ``nalu_np/data`` and read on first use.
:func:`summarize`, :func:`compare`
    Our table from per-seed records, computed as the authors' export script computes theirs, and the cell by
    cell comparison with the published one.

Every setting names its source, a file of the authors' repository (:data:`MADSEN2020_REPOSITORY`).  Where the
paper and the code disagree the code is followed, and the entry says so.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterable, Mapping

from .stats import mean, median, wilson_interval

__all__ = [
    "MADSEN2020_REPOSITORY",
    "Regularizer",
    "ModelProtocol",
    "StudyProtocol",
    "MADSEN2020_PROTOCOL",
    "MADSEN2020_MODELS",
    "model_for_unit",
    "published_table",
    "published_seeds",
    "summarize",
    "compare",
]

#: the authors' repository, which every source below is a file of
MADSEN2020_REPOSITORY = "AndreasMadsen/stable-nalu"

_BATCH = "lfs_batch_jobs/function_task_static.sh"
_EXPERIMENT = "experiments/simple_function_static.py"
_NETWORK = "stable_nalu/network/simple_function_static.py"
_REGULARIZER = "stable_nalu/functional/regualizer.py"
_THRESHOLDS = "export/function_task_static_mse_expectation.r"
_EXPORT = "export/function_task_static.r"
_SUMMARY = "export/_compute_summary.r"
_ALL_TABLE = "paper/results/function_task_static_all.tex"
_SEEDS_TABLE = "paper/results/sft-last.csv"
_MODEL_TABLE = "paper/appendix/simple-function-task.tex"


@dataclass(frozen=True)
class Regularizer:
    """``lambda(t) = lambda_hat * clip((t - start) / (end - start), 0, 1)`` times the sparsity regularizer.

    Attributes
    ----------
    lambda_hat : float
        ``--regualizer``.
    start, end : int
        ``--regualizer-scaling-start``, ``--regualizer-scaling-end`` (steps).
    """

    lambda_hat: float
    start: int
    end: int


#: the experiment's defaults (``--regualizer 10 --regualizer-scaling-start 1000000 --regualizer-scaling-end
#: 2000000``), which every model but the NAU runs with
_DEFAULT_REGULARIZER = Regularizer(10.0, 1_000_000, 2_000_000)


@dataclass(frozen=True)
class ModelProtocol:
    """One model of a study, as its authors ran it.

    Attributes
    ----------
    name : str
        Record name (the key of the published tables).
    label : str
        The paper's label.
    flags : str
        The flags of the batch script besides ``--operation``, ``--seed``, ``--max-iterations`` and the
        output options.
    layers : tuple of str
        The authors' unit of each layer, as the network builds it.
    units : tuple of (str or None)
        The nalu-np unit of each layer; None where nalu-np has none yet.
    inits : tuple of str
        The authors' initialisation of each layer.
    unit_inits : tuple of (str or None)
        The nalu-np initialisation (:data:`nalu_np.units.UNITS`) that is the authors', per layer; None where
        nalu-np has none yet.
    nac_mul : {"none", "normal", "mnac"}
        ``--nac-mul``: "normal" runs the second layer in log space, ``exp(layer_2(log(|z_1| + eps)))``.
    regularizer : Regularizer or None
        The sparsity regularizer's strength and ramp; None where no layer has a sparsity regularizer (the
        flags' default strength then multiplies 0).
    notes : str
        What else the sources set for this model, and where the paper says otherwise.
    sources : tuple of str
        Files of :data:`MADSEN2020_REPOSITORY` the entry is taken from.
    """

    name: str
    label: str
    flags: str
    layers: tuple[str, str]
    units: tuple[str | None, str | None]
    inits: tuple[str, str]
    unit_inits: tuple[str | None, str | None] = (None, None)
    nac_mul: str = "none"
    regularizer: Regularizer | None = None
    notes: str = ""
    sources: tuple[str, ...] = (_BATCH, _EXPERIMENT, _NETWORK)

    @property
    def available(self) -> bool:
        """Whether nalu-np has every unit of the network."""
        return all(u is not None for u in self.units)

    @property
    def init_available(self) -> bool:
        """Whether nalu-np has the authors' initialisation of every layer."""
        return all(i is not None for i in self.unit_inits)


@dataclass(frozen=True)
class StudyProtocol:
    """The settings every model of a study shares.

    Attributes
    ----------
    name : str
    steps : int
        ``--max-iterations``; the loop runs steps 0 to ``steps`` inclusive (``range(max_iterations + 1)``).
    batch_size : int
    optimizer : str
    lr : float
    eval_every : int
        Steps between evaluations, step 0 included.
    eval_size : int
        Samples in each of the interpolation and extrapolation sets.
    test_seeds : tuple of int
        Seeds of the interpolation and extrapolation sets.
    input_size, hidden_size : int
    subset_ratio, overlap_ratio : float
    interpolation_range, extrapolation_range : tuple of float
        ``U[lo, hi]``.
    seeds : int
        Seeds per model and op, ``0 .. seeds - 1``.
    eps : float
        The network's ``eps`` of the log-space path.
    oob_mode : str
        ``--oob-mode``: "clip" projects the NAU's W onto [-1, 1] and the NMU's onto [0, 1] after each step.
    regularizer_shape, regularizer_scaling : str
        ``--regualizer-shape`` ("linear": ``min(|W|, |1 - |W||)``), ``--regualizer-scaling`` ("linear" ramp).
    regularizer : Regularizer
        The flags' defaults, which a model runs with unless its entry says otherwise.
    thresholds : dict
        Op -> extrapolation MSE below which a run is solved.
    threshold_epsilon : float
        The weight error the thresholds are simulated with.
    best_range : int
        The best evaluation is sought among the last ``best_range`` evaluations.
    sources : tuple of str
    """

    name: str
    steps: int
    batch_size: int
    optimizer: str
    lr: float
    eval_every: int
    eval_size: int
    test_seeds: tuple[int, int]
    input_size: int
    hidden_size: int
    subset_ratio: float
    overlap_ratio: float
    interpolation_range: tuple[float, float]
    extrapolation_range: tuple[float, float]
    seeds: int
    eps: float
    oob_mode: str
    regularizer_shape: str
    regularizer_scaling: str
    regularizer: Regularizer
    thresholds: Mapping[str, float] = field(default_factory=dict)
    threshold_epsilon: float = 1e-5
    best_range: int = 5000
    sources: tuple[str, ...] = ()


#: Madsen & Johansen's static simple function task: ``--max-iterations 5000000`` from the batch script, the
#: rest the argparse defaults of the experiment and the network's ``eps``; evaluation as the training loop
#: does it; the thresholds are the authors' simulation (``simulate.mse`` with epsilon 1e-5 and 1e6 samples of
#: U[2, 6]) at the precision of their per-seed table, which the paper prints rounded (1.4786e-5, 1.3844e-8,
#: 0.16001, 4.938e-12, 0.15947, 8.955e-9); the best evaluation among the last 5000 as ``best.model.step.fn``.
MADSEN2020_PROTOCOL = StudyProtocol(
    name="madsen2020-function-task-static",
    steps=5_000_000, batch_size=128, optimizer="adam", lr=1e-3, eval_every=1000, eval_size=10_000,
    test_seeds=(43953907, 8689336), input_size=100, hidden_size=2, subset_ratio=0.25, overlap_ratio=0.5,
    interpolation_range=(1.0, 2.0), extrapolation_range=(2.0, 6.0), seeds=100, eps=1e-7, oob_mode="clip",
    regularizer_shape="linear", regularizer_scaling="linear", regularizer=_DEFAULT_REGULARIZER,
    thresholds={"add": 1.47861742158438e-5, "sub": 1.38437045113029e-8, "mul": 0.160010658743333,
                "div": 4.93805490041429e-12, "squared": 0.159473806098301, "root": 8.95525993233274e-9},
    threshold_epsilon=1e-5, best_range=5000,
    sources=(_BATCH, _EXPERIMENT, _NETWORK, _THRESHOLDS, _SEEDS_TABLE, _EXPORT),
)

_NAC_INIT = ("W_hat, M_hat ~ U(-r, r), r by bisection such that Var(tanh(W_hat) sigma(M_hat)) = "
             "2 / max(I + O, 5) (stable_nalu/layer/nac.py, nac_w_optimal_r)")
_NAU_INIT = "W ~ U(-r, r), r = min(0.5, sqrt(6 / (I + O)))"
_NMU_INIT = "W ~ U(0.25, 0.75)"
_NALU_INIT = _NAC_INIT + "; G xavier-uniform, gain 1 (calculate_gain('sigmoid'))"
_LINEAR_INIT = "W xavier-uniform, gain 1; bias 0"
_RELU_INIT = "W kaiming-uniform (nonlinearity 'relu'); bias 0"

#: the models of the all-models table, by record name, in the table's order
MADSEN2020_MODELS: dict[str, ModelProtocol] = {m.name: m for m in (
    ModelProtocol(
        "NAC_mul_NMU", "NAC•,NMU",
        "--layer-type ReRegualizedLinearPosNAC --nac-mul normal --first-layer ReRegualizedLinearNAC",
        ("ReRegualizedLinearNAC", "ReRegualizedLinearPosNAC"), ("NAU", "ClippedNACMul"), (_NAU_INIT, _NMU_INIT),
        unit_inits=("madsen2020", "madsen2020"), nac_mul="normal",
        regularizer=_DEFAULT_REGULARIZER,
        notes="NAU, then a linear layer with the NMU's W (U(0.25, 0.75) init, clipped to [0, 1] after each "
              "step, R = min(|W|, |1 - W|)) in log space: nalu-np's ClippedNACMul with eps 1e-7.  The paper's "
              "model table gives NAC+ as layer 1; the batch script's --first-layer is the NAU "
              "(ReRegualizedLinearNAC), which the code runs.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/re_regualized_linear_pos_nac.py",
                 _MODEL_TABLE),
    ),
    ModelProtocol(
        "NAC_mul_sigma", "NAC•,σ", "--layer-type PosNAC --nac-mul normal --first-layer NAC",
        ("NAC", "PosNAC"), ("NAC", "SigmoidNACMul"), (_NAC_INIT, "W_hat xavier-normal"),
        unit_inits=("madsen2020", "madsen2020"), nac_mul="normal",
        notes="NAC, then W = sigma(W_hat) (xavier-normal W_hat, no bias) in log space: nalu-np's SigmoidNACMul "
              "with eps 1e-7; no regularizer.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/pos_nac.py"),
    ),
    ModelProtocol(
        "NAC_mul", "NAC•", "--layer-type NAC --nac-mul normal", ("NAC", "NAC"), ("NAC", "NACMul"),
        (_NAC_INIT, _NAC_INIT), unit_inits=("madsen2020", "madsen2020"), nac_mul="normal",
        notes="NAC, then a NAC in log space: nalu-np's NACMul with eps 1e-7.",
    ),
    ModelProtocol("NAC_add", "NAC+", "--layer-type NAC", ("NAC", "NAC"), ("NAC", "NAC"), (_NAC_INIT, _NAC_INIT),
                  unit_inits=("madsen2020", "madsen2020")),
    ModelProtocol(
        "Gated_NAU_NMU", "Gated NAU/NMU", "--layer-type ReRegualizedLinearNALU --nalu-two-nac --nalu-mul mnac",
        ("ReRegualizedLinearNALU", "ReRegualizedLinearNALU"), ("GatedNAUNMU", "GatedNAUNMU"),
        (_NAU_INIT + "; " + _NMU_INIT + "; G as the NALU",) * 2, unit_inits=("madsen2020", "madsen2020"),
        regularizer=_DEFAULT_REGULARIZER,
        notes="Both layers a NALU whose additive path is a NAU and whose multiplicative path an NMU, one "
              "sigmoid gate without bias (nalu-np's GatedNAUNMU); the regularizer is the sum of the sub-layers' "
              "NAU and NMU terms.  Not in the paper's model table.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/re_regualized_linear_nalu.py",
                 "stable_nalu/layer/_abstract_nalu.py"),
    ),
    ModelProtocol(
        "Linear", "Linear", "--layer-type linear", ("linear", "linear"), ("Linear", "Linear"), (_LINEAR_INIT,) * 2,
        unit_inits=("madsen2020", "madsen2020"),
        notes="Two linear layers with bias (BasicLayer, bias=True, xavier-uniform).",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/basic.py"),
    ),
    ModelProtocol(
        "NALU", "NALU", "--layer-type NALU", ("NALU", "NALU"), ("NALU", "NALU"), (_NALU_INIT,) * 2,
        unit_inits=("madsen2020", "madsen2020"),
        notes="Shared weights (no --nalu-two-nac), gate without bias, eps 1e-7.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/_abstract_nalu.py"),
    ),
    ModelProtocol(
        "NAU", "NAU",
        "--layer-type ReRegualizedLinearNAC --regualizer 0.01 --regualizer-scaling-start 5000 "
        "--regualizer-scaling-end 50000",
        ("ReRegualizedLinearNAC", "ReRegualizedLinearNAC"), ("NAU", "NAU"), (_NAU_INIT,) * 2,
        unit_inits=("madsen2020", "madsen2020"),
        regularizer=Regularizer(0.01, 5_000, 50_000),
        notes="W clipped to [-1, 1] after each step; R = min(|W|, |1 - |W||).",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, _REGULARIZER, "stable_nalu/layer/re_regualized_linear_nac.py"),
    ),
    ModelProtocol(
        "NMU", "NMU", "--layer-type ReRegualizedLinearNAC --nac-mul mnac",
        ("ReRegualizedLinearNAC", "ReRegualizedLinearMNAC"), ("NAU", "NMU"), (_NAU_INIT, _NMU_INIT),
        unit_inits=("madsen2020", "madsen2020"), nac_mul="mnac",
        regularizer=_DEFAULT_REGULARIZER,
        notes="--nac-mul mnac makes layer 2 the ReRegualizedLinearMNAC (the NMU; mnac-epsilon 0), W clipped "
              "to [0, 1] after each step, R = min(|W|, |1 - W|); one lambda for both layers.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, _REGULARIZER, "stable_nalu/layer/re_regualized_linear_mnac.py"),
    ),
    ModelProtocol(
        "ReLU", "ReLU", "--layer-type ReLU", ("ReLU", "linear"), ("ReLU", "Linear"), (_RELU_INIT, _LINEAR_INIT),
        unit_inits=("madsen2020", "madsen2020"),
        notes="ReLU with bias, then a linear layer with bias: the network makes layer 2 linear for every "
              "activation; the paper's model table says ReLU for both layers.",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/basic.py", _MODEL_TABLE),
    ),
    ModelProtocol(
        "ReLU6", "ReLU6", "--layer-type ReLU6", ("ReLU6", "linear"), ("ReLU6", "Linear"), (_RELU_INIT, _LINEAR_INIT),
        unit_inits=("madsen2020", "madsen2020"),
        notes="As ReLU, with ReLU6 (the paper's model table: ReLU6 for both layers).",
        sources=(_BATCH, _EXPERIMENT, _NETWORK, "stable_nalu/layer/basic.py", _MODEL_TABLE),
    ),
)}


def model_for_unit(unit: str, first_unit: str | None = None) -> ModelProtocol | None:
    """The available model of :data:`MADSEN2020_MODELS` with ``unit`` (nalu-np name) as its second layer and
    ``first_unit`` as its first (None: the model whose first layer is ``unit`` too where there is one, as for
    ``Linear``, else the only one), or None.

    Each nalu-np unit but ``Linear`` is the second layer of at most one available model; ``Linear`` is the
    second layer of the Linear, ReLU and ReLU6 models (none of which has a regularizer).
    """
    found = [m for m in MADSEN2020_MODELS.values() if m.available and m.units[1] == unit
             and (first_unit is None or m.units[0] == first_unit)]
    if first_unit is None and len(found) > 1:
        found = [m for m in found if m.units[0] == unit] or found
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------------------
# the published data
# ---------------------------------------------------------------------------------------------------------

_TABLE_FILE = "madsen2020_function_task_static_all.csv"
_SEEDS_FILE = "madsen2020_function_task_static_seeds.csv"


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("nalu_np").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _number(text: str) -> float | None:
    """A published number: None for an empty cell (the table's "---"), else a float (``nan`` kept)."""
    return None if text == "" else float(text)


def published_table() -> list[dict[str, Any]]:
    """The all-models table of Madsen & Johansen (2020), one row per model and op.

    Returns
    -------
    list of dict
        ``model`` (record name), ``op``, ``success_rate`` and its interval ``success_lower``,
        ``success_upper``; ``solved_at_median``, ``solved_at_mean`` with ``solved_at_lower``,
        ``solved_at_upper``; ``sparsity_error_mean`` with ``sparsity_error_lower``, ``sparsity_error_upper``.
        None where the table prints "---" (no success), NaN where it prints NaN.

    Notes
    -----
    Parsed from ``paper/results/function_task_static_all.tex`` of :data:`MADSEN2020_REPOSITORY` (written by
    ``export/function_task_static.r``), which prints each number to two significant digits (rates in whole
    percent) with its interval as offsets ``mean^{+plus}_{-minus}``; the CSV keeps them as printed
    (``..._plus``, ``..._minus``) and the bounds here are ``mean + plus`` and ``mean - minus``.
    """
    rows = []
    for r in _read_csv(_TABLE_FILE):
        row: dict[str, Any] = {"model": r["model"], "op": r["op"]}
        for col, out in (("success_rate", "success"), ("solved_at_mean", "solved_at"),
                         ("sparsity_error_mean", "sparsity_error")):
            value, plus, minus = (_number(r[col + s]) for s in ("", "_plus", "_minus"))
            row[col] = value
            row[out + "_lower"] = None if value is None or minus is None else value - minus
            row[out + "_upper"] = None if value is None or plus is None else value + plus
        row["solved_at_median"] = _number(r["solved_at_median"])
        rows.append(row)
    return rows


def published_seeds() -> list[dict[str, Any]]:
    """The authors' per-seed summary of the same runs: 100 seeds of every model of the table but Gated NAU/NMU.

    Returns
    -------
    list of dict
        ``model``, ``op``, ``seed``, ``success`` (bool), ``solved_at`` (first step with an extrapolation MSE
        below the threshold, None if never) and ``sparsity_error`` (at the best evaluation; None if not
        logged): the records :func:`summarize` takes.

    Notes
    -----
    From ``paper/results/sft-last.csv`` of :data:`MADSEN2020_REPOSITORY` (the ``dat.last`` frame of
    ``export/function_task_static.r``: columns ``solved``, ``extrapolation.step.solved``,
    ``sparse.error.max``), with the record and op names of :func:`published_table`.
    """
    return [{"model": r["model"], "op": r["op"], "seed": int(r["seed"]), "success": r["success"] == "1",
             "solved_at": None if r["solved_at"] == "" else int(r["solved_at"]),
             "sparsity_error": _number(r["sparsity_error"])}
            for r in _read_csv(_SEEDS_FILE)]


# ---------------------------------------------------------------------------------------------------------
# our table and the comparison
# ---------------------------------------------------------------------------------------------------------


def summarize(records: Iterable[Mapping[str, Any]], confidence: float = 0.95,
              keys: tuple[str, ...] = ("model", "op")) -> dict[tuple[str, ...], dict]:
    """The published table's numbers from per-seed records, as ``export/_compute_summary.r`` computes them.

    Parameters
    ----------
    records : iterable of mapping
        One per run: ``model``, ``op``, ``seed``, ``success`` (bool), ``solved_at`` (first step solved, or
        None) and ``sparsity_error`` (at the best evaluation, or None), e.g. from
        :func:`nalu_np.arithmetic.outcome`.
    confidence : float
        Coverage of the success rate's interval.
    keys : tuple of str
        The fields that name a cell (the single-module benchmark adds ``"range"``).

    Returns
    -------
    dict
        ``(model, op)`` (the values of ``keys``) -> ``n``, ``successes``, ``success_rate``, ``success_lower``,
        ``success_upper``, ``solved_at_median``, ``solved_at_mean``, ``sparsity_error_mean`` (None without successes).

    Notes
    -----
    The success rate is ``successes / n`` with its Wilson interval (:func:`nalu_np.stats.wilson_interval`);
    "solved at" and the sparsity error are taken over the successful runs only, the sparsity error's runs
    without a recorded value left out.  The means are sample means (see :func:`nalu_np.stats.mean` for how
    the published ones differ).  A seed given twice for one cell is a ValueError.
    """
    cells: dict[tuple[str, ...], dict[int, Mapping[str, Any]]] = {}
    for r in records:
        key = tuple(str(r[k]) for k in keys)
        runs = cells.setdefault(key, {})
        seed = int(r["seed"])
        if seed in runs:
            raise ValueError(f"seed {seed} of {' '.join(key)} is given twice")
        runs[seed] = r
    table = {}
    for key, runs in cells.items():
        wins = [r for r in runs.values() if r["success"]]
        solved = [float(r["solved_at"]) for r in wins if r["solved_at"] is not None]
        sparsity = [float(r["sparsity_error"]) for r in wins if r["sparsity_error"] is not None]
        lower, upper = wilson_interval(len(wins), len(runs), confidence)
        table[key] = {"n": len(runs), "successes": len(wins), "success_rate": len(wins) / len(runs),
                      "success_lower": lower, "success_upper": upper, "solved_at_median": median(solved),
                      "solved_at_mean": mean(solved), "sparsity_error_mean": mean(sparsity)}
    return table


#: half of the published rounding: rates are printed in whole percent
_RATE_ROUNDING = 0.005


def compare(records: Iterable[Mapping[str, Any]], published: list[dict[str, Any]] | None = None) -> list[dict]:
    """Our table beside the published one, cell by cell.

    Parameters
    ----------
    records : iterable of mapping
        Per-seed records as :func:`summarize` takes them.
    published : list of dict, optional
        Rows as :func:`published_table` gives them (the default).

    Returns
    -------
    list of dict
        One per published cell that ``records`` have runs for, in the published order: ``model``, ``op``,
        ``ours`` (the :func:`summarize` entry), ``theirs`` (the published row) and ``agree``: whether our
        success-rate interval overlaps the published one (its printed bounds widened by their rounding,
        half a percent).
    """
    ours = summarize(records)
    rows = published_table() if published is None else published
    out = []
    for row in rows:
        cell = ours.get((row["model"], row["op"]))
        if cell is None:
            continue
        agree = (cell["success_lower"] <= row["success_upper"] + _RATE_ROUNDING
                 and row["success_lower"] - _RATE_ROUNDING <= cell["success_upper"])
        out.append({"model": row["model"], "op": row["op"], "ours": cell, "theirs": row, "agree": bool(agree)})
    return out
