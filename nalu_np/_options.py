"""Command-line options that mean the same in every ``nalu-np`` subcommand: one type, one validation, one
default each (``--backend``, ``--steps``, ``--seeds``, ``--first-seed``, ``--workers``, ``--unit``)."""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable

from .backends import backend_names

__all__ = ["int_at_least", "positive_int", "nonneg_int", "positive_float", "unit_name", "backend_name", "add_workers",
           "add_backend_and_steps", "add_seeds", "seed_range", "DEFAULT_SEEDS"]

#: the number of seeds ``nalu-np train`` and ``nalu-np sweep`` run unless told otherwise
DEFAULT_SEEDS = 20


def int_at_least(lo: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``lo``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = lo - 1
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


positive_int = int_at_least(1, "a positive integer")
nonneg_int = int_at_least(0, "an integer >= 0")


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def unit_name(text: str) -> str:
    """An argparse type: a unit of :data:`nalu_np.units.UNITS`, any case, as the table spells it."""
    from .units import canonical_name

    try:
        return canonical_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def backend_name(text: str) -> str:
    """An argparse type: the name of a known backend (whether it can run here is checked when it is used)."""
    if text not in backend_names():
        raise argparse.ArgumentTypeError(f"unknown backend {text!r}; choose from {', '.join(backend_names())}")
    return text


def add_backend_and_steps(parser: argparse.ArgumentParser, steps_default: str) -> None:
    """``--backend`` and ``--steps``; ``steps_default`` says in words what the default budget is."""
    parser.add_argument("--backend", type=backend_name, default=None, metavar="NAME",
                        help=f"compute backend: {', '.join(backend_names())} (default: $NALU_NP_BACKEND or numpy)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"optimizer steps per run (default: {steps_default})")


def add_seeds(parser: argparse.ArgumentParser) -> None:
    """``--seeds`` (how many) and ``--first-seed``."""
    parser.add_argument("--seeds", type=positive_int, default=DEFAULT_SEEDS,
                        help=f"number of seeds (default: {DEFAULT_SEEDS})")
    parser.add_argument("--first-seed", type=nonneg_int, default=0, help="first seed (default: 0)")


def add_workers(parser: argparse.ArgumentParser) -> None:
    """``--workers``, ``--seeds-per-call`` and ``--executor`` of the commands that run sweeps."""
    from .executors import KINDS, executor_spec

    parser.add_argument("--workers", type=positive_int, default=None,
                        help="worker processes (default: os.cpu_count())")
    parser.add_argument("--seeds-per-call", type=positive_int, default=None, metavar="S",
                        help="seeds of a configuration that one worker trains together in compiled calls "
                             "(default: enough jobs for every worker, at most 16 seeds each; 1 with --executor)")
    parser.add_argument("--executor", type=executor_spec, default="local", metavar="|".join(KINDS),
                        help="where the runs execute: local processes (default), a Dask scheduler, or submitit "
                             "(Slurm jobs where Slurm is, local subprocesses elsewhere); see nalu_np.executors")


def seed_range(args: Any) -> range:
    """The seeds of parsed ``--seeds`` and ``--first-seed``."""
    return range(args.first_seed, args.first_seed + args.seeds)
