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

import functools
from typing import Any, Callable

import numpy as np

from . import arithmetic
from .layers import make_unit, supports_presets
from .taskbase import Evaluation, Task, seed_rngs
from .units import unit_names

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
    "add": functools.partial(SeedTask, "add"),  # partials: their options (dtype) can be inspected
    "mul": functools.partial(SeedTask, "mul"),
    **arithmetic.FACTORIES,
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
    try:
        factory = TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
    return factory(**options)

