"""The task protocol: what :func:`nalu_np.train` asks of a task, and the seeding of a run.

:mod:`nalu_np.tasks` holds the registry and the seed experiments, :mod:`nalu_np.arithmetic` the published
benchmarks; both build on this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from ._checks import as_float_dtype
from .layers import make_unit, supports_presets

__all__ = ["Evaluation", "Task", "seed_rngs"]

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

    #: gradient clipping of the task's training recipe (``clip_value`` of :mod:`nalu_np.optim`), which
    #: :func:`nalu_np.train` applies unless told otherwise; None: none
    clip_value: float | None = None

    #: keyword arguments of the task's default optimizer (:attr:`optimizer`) beside ``clip_value``, e.g.
    #: Adam's ``overflow``; they apply when :func:`nalu_np.train` builds that optimizer itself
    optimizer_options: Mapping[str, Any] = MappingProxyType({})

    def start(self, model: Any, evaluations: list[Evaluation], rng: np.random.Generator) -> None:
        """Called by the Python engine before the first step of a run: ``evaluations`` is the run's list of
        evaluations, appended in place as they are made (the first, of the untrained model, is in it), and
        ``rng`` a generator for the recipe's draws.  The default does nothing; a recipe with state (the iNALU's
        reinitialisation) keeps its run's state from here."""

    def after_step(self, model: Any, step: int) -> None:
        """Called by the Python engine after the optimizer update of the 0-based ``step``, before that step's
        evaluation is made.  The default does nothing."""

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
