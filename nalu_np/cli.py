"""The ``nalu-np`` command (also ``python -m nalu_np``).

``nalu-np demo`` runs the two seed experiments and prints what the articles print; ``nalu-np train`` runs a
task over several seeds and prints a table with the success rate.  Bad arguments and library errors (an
unknown or unavailable backend, a missing kernel, an unwritable directory) give one line on stderr and exit
status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Any, Sequence

import numpy as np

from . import __version__
from ._options import add_backend_and_steps, add_seeds, nonneg_int, positive_float, seed_range, unit_name
from .backends import BackendUnavailableError, get_backend, to_numpy
from .init import PRESETS

PROG = "nalu-np"
SEED_TASKS = ["add", "mul"]  # the tasks of ``nalu-np train``: the seed experiments (nalu_np.tasks.SeedTask)

_DESCRIPTION = """\
Neural arithmetic units (NAC, NALU) trained with hand-derived gradients, no autograd framework.

commands:
  demo    reproduce the two seed experiments: a NAC learns x1 + x2 and a NALU learns x1 * x2
          (about 15 seconds on one CPU core with the numpy backend)
  train   run a seed experiment over many seeds and report how many succeed
  sweep   the published benchmarks (Madsen & Johansen's simple function task, Mistry et al.'s
          single-module task) over many seeds, in parallel processes, resumable
  reproduce  a published study's grid on its authors' protocol (madsen2020), resumable from a CSV record

examples:
  nalu-np demo
  nalu-np demo --out plots/
  nalu-np train --task mul --seeds 20
  nalu-np train --task add --unit NAC --preset seed-003 --seeds 5 --out runs/add
  nalu-np train --task mul --seeds 3 --steps 2000      # a quick look
  nalu-np sweep simple-mul:NMU simple-mul:NALU --seeds 20 --steps 50000 --out runs/sft

Run 'nalu-np COMMAND --help' for the options of a command.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``nalu-np: error: ...`` and exit status 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _UserError(Exception):
    """An error the user can fix; printed as one line."""


def _task_help(task: Any) -> str:
    preset = f", preset {task.preset}" if task.preset else ""
    return (f"  {task.name:<6}{task.description}{preset}\n"
            + textwrap.fill(f"success: {task.criterion()}", width=100, initial_indent=" " * 8,
                            subsequent_indent=" " * 8))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nalu-np``."""
    from . import sweep as _sweep
    from .optim import OPTIMIZERS
    from .tasks import SeedTask

    parser = _Parser(prog=PROG, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    common = _Parser(add_help=False)
    add_backend_and_steps(common, "the experiment's, 22000")
    common.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="precision of the model and data (default: float32, as in the articles)")

    demo = sub.add_parser(
        "demo", parents=[common],
        help="reproduce the seed experiments (NAC addition, NALU multiplication)",
        description="Train a NAC on x1 + x2 and a NALU on x1 * x2 with the seed articles' data and settings "
                    "(Adam, lr 0.05, 22000 full-batch steps, MSE), print the MSE before and after training, "
                    "the first ten actual and predicted test values and the learned weights, and save the "
                    "loss curves (log scale) as a PNG when matplotlib is installed. Exit status 1 if an "
                    "experiment misses the articles' accuracy.",
    )
    demo.add_argument("--seed", type=nonneg_int, default=0, help="random seed of both runs (default: 0)")
    demo.add_argument("--out", default=".", metavar="DIR",
                      help="directory for nalu-np-demo.png (default: the current directory)")

    train = sub.add_parser(
        "train", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run an experiment over several seeds and report the success rate",
        description="Train one fresh model per seed and print, for each seed, the test errors and whether\n"
                    "the run succeeded (the task's criterion), then the success rate.\n\n"
                    "tasks:\n" + "\n".join(_task_help(SeedTask(op)) for op in SEED_TASKS)
                    + "\n\nFor the published benchmarks (simple-mul, single-add, ...) use 'nalu-np sweep'.",
    )
    train.add_argument("--task", required=True, choices=SEED_TASKS, help="the experiment")
    train.add_argument("--unit", type=unit_name, default=None,
                       help="unit to train: NAC, NACMul, NALU, ... (default: the task's, NAC for add, NALU for mul)")
    train.add_argument("--preset", choices=[*PRESETS, "none"], default=None,
                       help="initialisation preset of NAC, NACMul, NALU (default: the task's, listed above; "
                            "'none' for the unit's own defaults)")
    add_seeds(train)
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=None,
                       help="optimizer (default: the task's, adam)")
    train.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: the task's)")
    train.add_argument("--out", default=None, metavar="DIR",
                       help="write results.json and loss_curves.png (if matplotlib is installed) to DIR")

    sweep = sub.add_parser(
        "sweep", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_sweep._EPILOG,
        help="the published benchmarks over many seeds, in parallel, resumable",
        description="Run the published arithmetic benchmarks (nalu_np.arithmetic) for several units over many "
                    "seeds in parallel\nprocesses, one result file per seed (an interrupted sweep resumes), and "
                    "print the success rates\nwith Wilson intervals as the papers do.",
    )
    _sweep.add_arguments(sweep)

    from . import reproduce as _reproduce

    reproduce = sub.add_parser(
        "reproduce", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="a published study's whole grid on its authors' protocol, resumable from a results record",
        description=_reproduce.__doc__.split("\n\n", 1)[1].split("Record columns")[0].strip(),
    )
    _reproduce.add_arguments(reproduce)
    return parser


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------


def _backend(name: str | None) -> Any:
    try:
        return get_backend(name)
    except (ValueError, BackendUnavailableError) as err:
        raise _UserError(str(err)) from None


def _model_on(model: Any, be: Any) -> Any:
    return model if all(isinstance(p, be.array_type) for p in model.params.values()) else model.to(be)


def _learned_weights(model: Any) -> dict[str, np.ndarray]:
    """The effective weights of a unit: ``tanh(W_hat) * sigmoid(M_hat)`` for each NAC path, else the params."""
    from .reference import nac_weight

    params = {k: np.asarray(to_numpy(v)) for k, v in model.params.items()}
    out = {}
    for k, v in params.items():
        if k.startswith("W_hat") and k.replace("W_hat", "M_hat") in params:
            out["W" + k[len("W_hat"):]] = nac_weight(v, params[k.replace("W_hat", "M_hat")])[0]
        elif not k.startswith("M_hat"):
            out[k] = v
    return out


def _fmt(values: np.ndarray) -> str:
    """Values in positional notation, each with the shortest digits that identify it in its dtype."""
    return "[" + " ".join(np.format_float_positional(v, trim=".") for v in values) + "]"


def _ensure_dir(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise _UserError(f"cannot create the output directory {path!r}: {err.strerror}") from None
    return path


def _plot(path: str, panels: list[tuple[str, list[tuple[str, np.ndarray, str]]]]) -> str:
    """Loss curves on a log scale, one panel per (title, [(label, loss, color), ...]); returns a message."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed: no plot written (pip install 'nalu-np[plot]')"
    fig = Figure(figsize=(5.5 * len(panels), 4), layout="constrained")
    for i, (title, curves) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for label, loss, color in curves:
            finite = np.where(np.isfinite(loss) & (loss > 0), loss, np.nan)
            ax.plot(np.arange(1, len(loss) + 1), finite, color=color, lw=1, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("training MSE (log scale)")
        ax.set_title(title)
        if len(curves) <= 10:
            ax.legend(fontsize="small")
        ax.grid(True, which="major", alpha=0.3)
    try:
        fig.savefig(path, dpi=110)
    except OSError as err:
        raise _UserError(f"cannot write {path!r}: {err.strerror}") from None
    return f"loss curves written to {path}"


# ---------------------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------------------


def _demo_one(op: str, args: argparse.Namespace, be: Any) -> tuple[bool, Any]:
    from .tasks import get_task, seed_rngs
    from .training import train

    task = get_task(op, dtype=args.dtype)
    init_rng, _ = seed_rngs(args.seed)
    model = _model_on(task.build_model(init_rng), be)
    x_test, y_test = task.eval_sets()["interpolation"]
    title = {"add": "NAC learns addition", "mul": "NALU learns multiplication"}[op]
    sign = "+" if op == "add" else "*"
    print(f"=== {title}: y = x1 {sign} x2 ===")
    init = {"add": "W_hat, M_hat ~ U(-2, 2) as in article 003's NAC code",
            "mul": "W_hat, M_hat, G ~ truncated N(0, 0.02^2), tied weights, eps 1e-7 as in article 003's NALU"}[op]
    print(f"model: {model!r}, seed {args.seed}, backend {be.name}")
    print(f"init:  preset {task.preset}: {init}")
    print(f"train: 2000 pairs x1 = 0, 5, ..., 9995; x2 = 5, 10, ..., 10000 (full batch), "
          f"Adam lr {task.lr:g}, {args.steps or task.steps} steps, MSE")
    print("test:  125 pairs x1 = 1000, 1008, ..., 1992; x2 = 1000, 1004, ..., 1496")
    print()
    result = train(model, task, steps=args.steps, seed=args.seed, backend=be)
    word = task.word
    pred = np.asarray(to_numpy(model(be.asarray(x_test), backend=be)))[:10, 0]
    print(f"Pre training MSE:  {result.initial['interpolation_mse']:.6g}")
    print(f"Post training MSE: {result.final['interpolation_mse']:.6g}")
    print(f"Actual {word}:    {_fmt(np.asarray(y_test[:10, 0], dtype=task.dtype))}")
    print(f"Predicted {word}: {_fmt(pred)}")
    print()
    with np.printoptions(precision=7, suppress=True):
        for name, w in _learned_weights(model).items():
            print(f"learned {name} ({' x '.join(map(str, w.shape))}):  {w.ravel()}")
    print()
    m = result.final
    if task.atol is not None:
        achieved = f"max |predicted - actual| over the 125 test {word}s: {m['interpolation_max_abs_err']:.3g}"
        target = f"the articles: within {task.atol:g}"
    else:
        achieved = f"max relative error over the 125 test {word}s: {m['interpolation_max_rel_err']:.3g}"
        target = f"the articles: within {task.rtol:.1%}"
    ok = result.success
    print(f"{achieved} ({target}); extrapolation to x1, x2 in [20000, 30000): max relative error "
          f"{m['extrapolation_max_rel_err']:.3g}")
    verdict = "REPRODUCED" if ok else "NOT REPRODUCED"
    if result.diverged:
        verdict += f" (the loss diverged at step {result.steps_done})"
    print(f"{verdict}  [{result.steps_done} steps in {result.wall_time:.1f}s]")
    print()
    return ok, result


def _cmd_demo(args: argparse.Namespace) -> int:
    be = _backend(args.backend)
    out = _ensure_dir(args.out)  # before training: an unusable directory fails at once
    outcomes = [_demo_one(op, args, be) for op in ("add", "mul")]
    panels = [("NAC, y = x1 + x2", "tab:blue"), ("NALU, y = x1 * x2", "tab:orange")]
    print(_plot(os.path.join(out, "nalu-np-demo.png"),
                [(title, [("training loss", r.loss, color)]) for (title, color), (_, r) in zip(panels, outcomes)]))
    return 0 if all(ok for ok, _ in outcomes) else 1


# ---------------------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------------------


def _short(metric: str) -> str:
    return metric.replace("interpolation", "test").replace("extrapolation", "extrap").replace("_", " ")


def _cmd_train(args: argparse.Namespace) -> int:
    from .tasks import get_task, seed_rngs, supports_presets
    from .training import train

    be = _backend(args.backend)
    task = get_task(args.task, dtype=args.dtype)
    unit = args.unit or task.unit
    if args.preset == "none":
        preset = None
    elif args.preset is not None:
        if not supports_presets(unit):
            raise _UserError(f"unit {unit} has no init presets; leave --preset out")
        preset = args.preset
    else:
        preset = task.preset if supports_presets(unit) else None
    steps = args.steps or task.steps
    lr = args.lr or task.lr
    optimizer = args.optimizer or task.optimizer
    out = _ensure_dir(args.out) if args.out else None

    print(f"task {task.name}: {task.description}")
    print(f"unit {unit}, preset {preset or 'none'}, {task.dtype.name}, backend {be.name}, {optimizer} lr {lr:g}, "
          f"{steps} steps, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}")
    print(f"success: {task.criterion()}")
    print()
    cols = [_short(m) for m in task.summary_metrics]
    widths = [max(11, len(c)) for c in cols]
    header = "seed  " + "  ".join(f"{c:>{w}}" for c, w in zip(cols, widths)) + "   steps    time  result"
    print(header)
    print("-" * len(header))
    results = []
    for seed in seed_range(args):
        init_rng, _ = seed_rngs(seed)
        model = _model_on(task.build_model(init_rng, unit=unit, preset=preset), be)
        r = train(model, task, steps=steps, optimizer=optimizer, lr=lr, seed=seed, backend=be)
        results.append(r)
        values = "  ".join(f"{r.final[m]:>{w}.3e}" for m, w in zip(task.summary_metrics, widths))
        verdict = "success" if r.success else ("diverged" if r.diverged else "fail")
        print(f"{seed:>4}  {values}  {r.steps_done:>6}  {r.wall_time:>5.1f}s  {verdict}", flush=True)
    n_ok = sum(r.success for r in results)
    print("-" * len(header))
    print(f"success rate: {n_ok}/{len(results)} ({n_ok / len(results):.0%})")

    if out is not None:
        summary = {
            "task": task.name, "description": task.description, "criterion": task.criterion(), "unit": unit,
            "preset": preset, "dtype": task.dtype.name, "backend": be.name, "optimizer": optimizer, "lr": lr,
            "steps": steps, "seeds": [r.seed for r in results], "successes": n_ok,
            "success_rate": n_ok / len(results), "runs": [r.to_dict() for r in results],
        }
        path = os.path.join(out, "results.json")
        try:
            with open(path, "w") as f:
                json.dump(summary, f, indent=1)
        except OSError as err:
            raise _UserError(f"cannot write {path!r}: {err.strerror}") from None
        print(f"results written to {path}")
        curves = [(f"seed {r.seed}", r.loss, "tab:green" if r.success else "tab:red") for r in results]
        print(_plot(os.path.join(out, "loss_curves.png"),
                    [(f"{task.name} with {unit}: {n_ok}/{len(results)} succeed (green)", curves)]))
    return 0


# ---------------------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nalu-np`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command in ("sweep", "reproduce"):
            from . import _workers, reproduce, sweep

            with _workers.terminate_on_sigterm():
                return {"sweep": sweep, "reproduce": reproduce}[args.command].run_from_args(args)
        return {"demo": _cmd_demo, "train": _cmd_train}[args.command](args)
    except _UserError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
    except BrokenPipeError:  # the reader went away (e.g. `nalu-np demo | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, ImportError, NotImplementedError, OSError) as err:
        print(f"{PROG}: error: {type(err).__name__}: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 2
