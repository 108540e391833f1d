"""Tasks: what a unit is trained on, how it is tested, and when a run counts as a success.

A task is an object with the interface of :class:`Task`.  :func:`nalu_np.train` needs nothing else, so a new
experiment is a new :class:`Task` subclass (registered with :func:`register`), never a change of the loop:

- training data, either fixed (``train_data()`` returns ``(x, t)``, used as one full batch every step) or
  drawn fresh each step (``train_data()`` returns ``None`` and ``sample(rng, batch_size)`` is called);
- test sets (``eval_sets()``: at least ``"interpolation"`` and ``"extrapolation"``), evaluated before
  training, every ``eval_every`` steps and after the last step; ``metrics`` turns predictions into numbers;
- an optional loss term on the parameters (``penalty``, e.g. a sparsity regularizer with a schedule);
- the model to train (``build_model``) and the training defaults (``steps``, ``optimizer``, ``lr``);
- ``success(evaluations)``: the verdict from every evaluation of the run, so a criterion such as "the
  extrapolation error at the step of the best interpolation error is below a threshold" needs no change
  of the loop.

Built in (DESIGN section 7): ``"add"`` (:class:`SeedTask` with ``x1 + x2``, a NAC) and ``"mul"``
(``x1 * x2``, a NALU), the experiments of the seed articles.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import init as _init
from ._checks import as_float_dtype

__all__ = [
    "Evaluation",
    "Task",
    "SeedTask",
    "TASKS",
    "get_task",
    "register",
    "make_unit",
    "unit_names",
    "supports_presets",
    "seed_rngs",
]

Array = Any


@dataclass(frozen=True)
class Evaluation:
    """The metrics of one evaluation of the model during training.

    Attributes
    ----------
    step : int
        Optimizer steps taken before the evaluation (0: the untrained model).
    metrics : dict of str to float
        E.g. ``{"interpolation_mse": ..., "extrapolation_mse": ...}`` (see :meth:`Task.metrics`).
    """

    step: int
    metrics: dict[str, float] = field(default_factory=dict)


def seed_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators from one seed: one for the model's initial weights, one for the data."""
    init_ss, data_ss = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_ss), np.random.default_rng(data_ss)


# ---------------------------------------------------------------------------------------------------------
# units by name
# ---------------------------------------------------------------------------------------------------------


def _unit_classes() -> dict[str, type]:
    from . import layers

    return {
        name.lower(): obj
        for name, obj in vars(layers).items()
        if isinstance(obj, type) and issubclass(obj, layers.Layer) and obj is not layers.Layer
        and not name.startswith("_") and hasattr(obj, "kernel")
    }


def unit_names() -> list[str]:
    """Names of the units :func:`make_unit` can build (class names of :mod:`nalu_np.layers`)."""
    return sorted(cls.__name__ for cls in _unit_classes().values())


def supports_presets(unit: str) -> bool:
    """Whether ``unit`` can be built from an init preset (``"seed-003"``, ``"seed-000"``)."""
    cls = _unit_class(unit)
    return hasattr(cls, "preset") or "init" in inspect.signature(cls).parameters


def _unit_class(unit: str) -> type:
    classes = _unit_classes()
    try:
        return classes[str(unit).lower()]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}; known units: {', '.join(unit_names())}") from None


def make_unit(unit: str, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
              preset: str | None = None) -> Any:
    """Build a unit by class name (any case), optionally with every setting of an init preset.

    Parameters
    ----------
    unit : str
        ``"NAC"``, ``"NACMul"``, ``"NALU"``, ... (see :func:`unit_names`).
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    preset : str, optional
        ``"seed-003"`` or ``"seed-000"`` (:mod:`nalu_np.init`): the initial distribution, and for units with
        a log path its ``eps``, and for NALU the weight sharing.  ``None``: the unit's defaults.
    """
    cls = _unit_class(unit)
    if preset is None:
        return cls(in_features, out_features, rng=rng, dtype=dtype)
    if hasattr(cls, "preset"):
        return cls.preset(preset, in_features, out_features, rng=rng, dtype=dtype)
    accepted = inspect.signature(cls).parameters
    if "init" not in accepted:
        raise ValueError(f"unit {cls.__name__} has no init presets; leave the preset out")
    kwargs: dict[str, Any] = {"init": preset}
    if "eps" in accepted:
        kwargs["eps"] = _init.preset(preset).eps
    return cls(in_features, out_features, rng=rng, dtype=dtype, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# the protocol
# ---------------------------------------------------------------------------------------------------------


class Task:
    """Base class of the tasks: defaults and the hooks :func:`nalu_np.train` calls.

    Attributes
    ----------
    name : str
        Registry name.
    description : str
        One line for listings.
    in_features, out_features : int
        Shape of the model's input and output.
    unit, preset : str, str or None
        Default unit and init preset of :meth:`build_model`.
    steps : int
        Default number of optimizer steps.
    optimizer : str
        Default optimizer name (:func:`nalu_np.optim.create`).
    lr : float
        Default learning rate.
    batch_size : int or None
        Batch size of :meth:`sample`; ``None`` for full-batch tasks (:meth:`train_data` returns the data).
    eval_every : int or None
        Evaluate every this many steps; ``None``: before and after training only.
    summary_metrics : tuple of str
        Keys of :meth:`metrics` that a report shows per run (``nalu-np train``'s table).
    dtype : numpy.dtype
        dtype of the model and of the training data.
    """

    name: str = ""
    description: str = ""
    in_features: int = 1
    out_features: int = 1
    unit: str = "NALU"
    preset: str | None = None
    steps: int = 1000
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int | None = None
    eval_every: int | None = None
    summary_metrics: tuple[str, ...] = ("interpolation_mse", "extrapolation_mse")

    def __init__(self, *, dtype: Any = "float32") -> None:
        self.dtype = as_float_dtype(dtype)

    # -- data --------------------------------------------------------------------------------------------
    def train_data(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The fixed training set ``(x (N, I), t (N, O))`` in :attr:`dtype`, or ``None`` to :meth:`sample`."""
        return None

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """A fresh training batch ``(x (batch_size, I), t (batch_size, O))`` in :attr:`dtype`."""
        raise NotImplementedError(f"task {self.name!r} has neither train_data() nor sample()")

    def eval_sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Test sets by name, at least ``"interpolation"`` and ``"extrapolation"``.

        Inputs are in :attr:`dtype`; targets may be float64 (the exact truth), as :meth:`metrics` compares
        on the host in float64.
        """
        raise NotImplementedError

    def metrics(self, name: str, y: np.ndarray, t: np.ndarray) -> dict[str, float]:
        """Numbers that describe the predictions ``y`` on the test set ``name`` (host float64 arrays).

        The default is the mean squared error, ``{"<name>_mse": ...}``.
        """
        return {f"{name}_mse": float(np.mean((y - t) ** 2))}

    def penalty(self, model: Any, step: int) -> tuple[float, dict[str, Array]] | None:
        """An extra loss term on the parameters at ``step`` and its gradient (same keys as ``model.params``,
        arrays of the parameters' type), or ``None`` (the default: no extra term)."""
        return None

    # -- model and verdict -------------------------------------------------------------------------------
    def build_model(self, rng: Any = None, *, unit: str | None = None, preset: str | None = None) -> Any:
        """The model to train: ``unit`` (default :attr:`unit`) with ``preset`` (default :attr:`preset` when the
        unit has presets), of shape (:attr:`in_features`, :attr:`out_features`) and :attr:`dtype`."""
        unit = self.unit if unit is None else unit
        if preset is None and self.preset is not None and supports_presets(unit):
            preset = self.preset
        return make_unit(unit, self.in_features, self.out_features, rng=rng, dtype=self.dtype, preset=preset)

    def success(self, evaluations: list[Evaluation]) -> bool:
        """Whether the run with these evaluations (in step order) solved the task."""
        raise NotImplementedError

    def criterion(self) -> str:
        """The success criterion in words, for reports."""
        return ""

    def __repr__(self) -> str:
        return f"<task {self.name!r}: {self.description}>"


# ---------------------------------------------------------------------------------------------------------
# the seed experiments
# ---------------------------------------------------------------------------------------------------------


class SeedTask(Task):
    """The seed articles' experiment: learn ``x1 + x2`` (NAC) or ``x1 * x2`` (NALU) from 2000 pairs.

    Training set (full batch): ``x1 = arange(0, 10000, 5)``, ``x2 = arange(5, 10005, 5)``.
    ``"interpolation"``: the articles' test set ``x1 = arange(1000, 2000, 8)``, ``x2 = arange(1000, 1500, 4)``
    (125 pairs, inside the training range).  ``"extrapolation"``: the same pattern moved outside it,
    ``x1 = arange(20000, 30000, 80)``, ``x2 = arange(20000, 25000, 40)``.  Adam, lr 0.05, 22000 steps, MSE.

    Success: on the articles' test set every prediction within 0.5 of the sum (``add``) or within 0.1 %
    of the product (``mul``), and on the extrapolation set every prediction within 0.1 % of the truth.

    Parameters
    ----------
    op : {"add", "mul"}
    dtype : {"float32", "float64"}
        float32 as in the articles.
    """

    steps = 22000
    optimizer = "adam"
    lr = 0.05
    in_features = 2
    out_features = 1
    eval_every = 1000
    summary_metrics = ("interpolation_mse", "interpolation_max_abs_err", "interpolation_max_rel_err",
                       "extrapolation_max_rel_err")
    #: largest relative error on the extrapolation set for a success
    extrapolation_rtol = 1e-3

    _OPS: dict[str, dict[str, Any]] = {
        # the addition experiment of article 003 draws W_hat, M_hat from U(-2, 2): preset seed-000's NAC
        "add": {"fn": np.add, "unit": "NAC", "preset": "seed-000", "word": "sum", "atol": 0.5, "rtol": None},
        # its multiplication experiment: tied weights, truncated N(0, 0.02**2), eps 1e-7: preset seed-003
        "mul": {"fn": np.multiply, "unit": "NALU", "preset": "seed-003", "word": "product", "atol": None,
                "rtol": 1e-3},
    }

    def __init__(self, op: str, *, dtype: Any = "float32") -> None:
        super().__init__(dtype=dtype)
        if op not in self._OPS:
            raise ValueError(f"unknown seed operation {op!r}; known: {', '.join(self._OPS)}")
        spec = self._OPS[op]
        self.op = op
        self.name = op
        self.fn: Callable[[np.ndarray, np.ndarray], np.ndarray] = spec["fn"]
        self.unit = spec["unit"]
        self.preset = spec["preset"]
        self.word = spec["word"]
        self.atol: float | None = spec["atol"]
        self.rtol: float | None = spec["rtol"]
        sign = "+" if op == "add" else "*"
        self.description = f"y = x1 {sign} x2 on the seed articles' data ({self.unit}, Adam lr 0.05, 22000 steps)"

    def _pairs(self, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs (N, 2) in the task's dtype and the exact truth (N, 1) in float64."""
        return np.column_stack((x1, x2)).astype(self.dtype), self.fn(x1, x2)[:, None]

    def train_data(self) -> tuple[np.ndarray, np.ndarray]:
        x, t = self._pairs(np.arange(0.0, 10000.0, 5.0), np.arange(5.0, 10005.0, 5.0))
        return x, t.astype(self.dtype)

    def eval_sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {
            "interpolation": self._pairs(np.arange(1000.0, 2000.0, 8.0), np.arange(1000.0, 1500.0, 4.0)),
            "extrapolation": self._pairs(np.arange(20000.0, 30000.0, 80.0), np.arange(20000.0, 25000.0, 40.0)),
        }

    def metrics(self, name: str, y: np.ndarray, t: np.ndarray) -> dict[str, float]:
        err = np.abs(y - t)
        with np.errstate(invalid="ignore"):  # inf - inf in a diverged run: NaN, reported as such
            return {
                f"{name}_mse": float(np.mean(err**2)),
                f"{name}_max_abs_err": float(np.max(err)),
                f"{name}_max_rel_err": float(np.max(err / np.abs(t))),
            }

    def success(self, evaluations: list[Evaluation]) -> bool:
        if not evaluations:
            return False
        m = evaluations[-1].metrics
        ok_test = (m["interpolation_max_abs_err"] <= self.atol if self.atol is not None
                   else m["interpolation_max_rel_err"] <= self.rtol)
        return bool(ok_test and m["extrapolation_max_rel_err"] <= self.extrapolation_rtol)

    def criterion(self) -> str:
        test = (f"|error| <= {self.atol:g}" if self.atol is not None else f"relative error <= {self.rtol:.1%}")
        return (f"every test {self.word} with {test} and every extrapolated {self.word} with relative error "
                f"<= {self.extrapolation_rtol:.1%}, after the last step")


# ---------------------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------------------

TaskFactory = Callable[..., Task]

TASKS: dict[str, TaskFactory] = {
    "add": lambda **kw: SeedTask("add", **kw),
    "mul": lambda **kw: SeedTask("mul", **kw),
}


def register(name: str, factory: TaskFactory) -> None:
    """Make ``get_task(name, **options)`` return ``factory(**options)``; ValueError if the name is taken."""
    if name in TASKS:
        raise ValueError(f"a task called {name!r} is already registered")
    TASKS[name] = factory


def get_task(name: str | Task, **options: Any) -> Task:
    """The task called ``name`` (options such as ``dtype`` go to its factory); a Task is returned as is."""
    if isinstance(name, Task):
        return name
    if isinstance(name, str) and name not in TASKS:
        from . import arithmetic  # noqa: F401  (registers the published benchmarks on first use)
    try:
        factory = TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
    return factory(**options)

