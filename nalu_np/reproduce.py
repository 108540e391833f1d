"""``nalu-np reproduce STUDY``: a published study's grid on its authors' protocol, resumable from a record.

::

    nalu-np reproduce madsen2020 --seeds 10 --record bench/results/madsen2020.csv --out runs/madsen2020

runs every (model, op, seed) of Madsen & Johansen's all-models table (:data:`nalu_np.studies.MADSEN2020_MODELS`,
the models nalu-np has the units of) that the record does not hold yet, through :func:`nalu_np.sweep.run_sweep`
(one process per core, one JSON file per run in ``--out``), appends one CSV row per finished run to the record
as it finishes, and prints our table beside the published one, cell by cell.  The record is what a repository
keeps: a later session on a fresh machine resumes from it, so the study accumulates (the JSON files are the
working copy and may be thrown away).

Record columns (:data:`RECORD_COLUMNS`): ``model`` (the study's record name), ``op`` (``add sub mul div squared
root``), ``seed``, ``steps``, ``success``, ``solved_at``, ``sparsity_error`` (at the best evaluation),
``best_step``, ``interpolation_mse``, ``extrapolation_mse`` (at the best evaluation), ``engine``, ``wall_time``.
A run counts for a cell only at the study's full budget (``--steps`` other than the protocol's writes rows of
that budget, shown and compared apart).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from typing import Any, Iterable, Sequence

import numpy as np

from . import studies
from .executors import open_executor
from ._options import add_backend_and_steps, add_seeds, add_workers, seed_range
from .summary import pyplot
from .sweep import Config, run_sweep

__all__ = ["RECORD_COLUMNS", "STUDIES", "grid", "config_of", "read_record", "append_row", "comparison_table",
           "add_arguments", "run_from_args"]

RECORD_COLUMNS = ("model", "op", "seed", "steps", "success", "solved_at", "sparsity_error", "best_step",
                  "interpolation_mse", "extrapolation_mse", "engine", "wall_time")
OPS = ("add", "sub", "mul", "div", "squared", "root")
STUDIES = {"madsen2020": "Madsen & Johansen (ICLR 2020), the static simple function task, all models "
                         "(paper/results/function_task_static_all.tex of AndreasMadsen/stable-nalu)"}


def grid(models: Iterable[str] | None = None, ops: Iterable[str] | None = None) -> list[tuple[Any, str]]:
    """The (model protocol, op) cells to run: the named models (default: every one nalu-np has the units of)
    and ops (default: all six), in the published order."""
    table = studies.MADSEN2020_MODELS
    names = [m for m in table if table[m].available] if models is None else list(models)
    for name in names:
        if name not in table:
            raise ValueError(f"unknown model {name!r}; the study's models: {', '.join(table)}")
        if not table[name].available:
            missing = [a for a, u in zip(table[name].layers, table[name].units) if u is None]
            raise ValueError(f"model {name!r} needs units nalu-np does not have yet ({', '.join(missing)})")
    chosen = list(OPS) if ops is None else list(ops)
    for op in chosen:
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; one of {', '.join(OPS)}")
    return [(table[name], op) for name in names for op in chosen]


def config_of(model: Any, op: str, steps: int) -> Config:
    """The sweep configuration of one cell: ``simple-<op>`` with the model's two units and ``steps``."""
    first, second = model.units
    return Config(f"simple-{op}", second, {"first_unit": first, "steps": int(steps)}).canonical()


def read_record(path: str) -> list[dict[str, Any]]:
    """The rows of the record ``path`` (none if it does not exist), typed; a malformed row is a ValueError
    naming the file and the line."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or list(reader.fieldnames) != list(RECORD_COLUMNS):
            raise ValueError(f"{path}: the header must be {','.join(RECORD_COLUMNS)}, got {reader.fieldnames}")
        for row in reader:
            try:
                rows.append(_typed(row))
            except (TypeError, ValueError) as err:
                raise ValueError(f"{path}, line {reader.line_num}: {err}") from None
    return rows


def _number(text: str) -> float | None:
    return None if text in ("", "None") else float(text)


def _typed(row: dict[str, str]) -> dict[str, Any]:
    if row["success"] not in ("True", "False"):
        raise ValueError(f"success must be True or False, got {row['success']!r}")
    solved, best = _number(row["solved_at"]), _number(row["best_step"])
    return {"model": row["model"], "op": row["op"], "seed": int(row["seed"]), "steps": int(row["steps"]),
            "success": row["success"] == "True", "solved_at": None if solved is None else int(solved),
            "sparsity_error": _number(row["sparsity_error"]), "best_step": None if best is None else int(best),
            "interpolation_mse": _number(row["interpolation_mse"]),
            "extrapolation_mse": _number(row["extrapolation_mse"]), "engine": row["engine"],
            "wall_time": _number(row["wall_time"])}


def append_row(path: str, row: dict[str, Any]) -> None:
    """Append one run to the record (the header first if the file is new), flushed to disk at once."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RECORD_COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow({k: _cell(row.get(k)) for k in RECORD_COLUMNS})
        f.flush()
        os.fsync(f.fileno())


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return "" if v is None else v


def _row(model: str, op: str, record: dict[str, Any]) -> dict[str, Any]:
    def num(key: str) -> float | None:
        v = record.get(key)
        return None if v is None else float(v)

    return {"model": model, "op": op, "seed": record["seed"], "steps": record["steps"],
            "success": bool(record["success"]), "solved_at": record.get("solved_at"),
            "sparsity_error": num("sparsity_error"), "best_step": record.get("best_step"),
            "interpolation_mse": num("interpolation_mse"), "extrapolation_mse": num("extrapolation_mse"),
            "engine": record.get("engine"), "wall_time": num("wall_time")}


def comparison_table(rows: Sequence[dict[str, Any]], steps: int) -> str:
    """Our cells (the record's runs at ``steps``) beside the published ones, as a markdown table."""
    ours = [r for r in rows if r["steps"] == steps]
    head = ("| model | op | seeds | ours: success [95% CI] | paper: success [interval] | agree | ours: median "
            "solved at | ours: mean sparsity error |\n|---|---|---:|---|---|---|---:|---:|\n")
    lines = []
    for cell in studies.compare(ours):
        o, t = cell["ours"], cell["theirs"]
        solved = "—" if o["solved_at_median"] is None else f"{o['solved_at_median']:,.0f}"
        sparsity = "—" if o["sparsity_error_mean"] is None else f"{o['sparsity_error_mean']:.2e}"
        lines.append(f"| {cell['model']} | {cell['op']} | {o['n']} | {o['success_rate']:.0%} "
                     f"[{o['success_lower']:.0%}, {o['success_upper']:.0%}] | {t['success_rate']:.0%} "
                     f"[{t['success_lower']:.0%}, {t['success_upper']:.0%}] | {'yes' if cell['agree'] else 'NO'} "
                     f"| {solved} | {sparsity} |")
    return head + "\n".join(lines) + "\n"


def plot_comparison(rows: Sequence[dict[str, Any]], steps: int, path: str) -> str:
    """Success rates with their 95% intervals, ours (the record's runs at ``steps``) against the paper's, one
    panel per op with the models side by side, written to ``path`` (PNG); needs matplotlib.

    Returns
    -------
    str
        A line saying where the figure went, or why there is none.
    """
    plt = pyplot()
    if plt is None:
        return "no figure: matplotlib is not installed (pip install matplotlib)"
    cells = studies.compare([r for r in rows if r["steps"] == steps])
    if not cells:
        return "no figure: the record has no runs of these cells"
    ops = [op for op in OPS if any(c["op"] == op for c in cells)]
    fig, axes = plt.subplots(1, len(ops), figsize=(3.2 * len(ops), 3.6), sharey=True, squeeze=False)
    for ax, op in zip(axes[0], ops):
        mine = [c for c in cells if c["op"] == op]
        for shift, side, color in ((-0.17, "ours", "tab:blue"), (0.17, "theirs", "tab:orange")):
            rate = np.array([c[side]["success_rate"] for c in mine])
            err = np.array([[c[side]["success_rate"] - c[side]["success_lower"] for c in mine],
                            [c[side]["success_upper"] - c[side]["success_rate"] for c in mine]])
            ax.errorbar(np.arange(len(mine)) + shift, rate, yerr=err, fmt="o", color=color, capsize=3,
                        label={"ours": "nalu-np", "theirs": "paper"}[side])
        ax.set_xticks(range(len(mine)), [c["model"] + ("" if c["agree"] else " (!)") for c in mine],
                      rotation=60, fontsize=8)
        ax.set_title(op)
        ax.set_xlim(-0.6, len(mine) - 0.4)
        ax.set_ylim(-0.05, 1.05)
    axes[0][0].set_ylabel("success rate (95% interval)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"Madsen & Johansen (2020), {steps:,} steps: nalu-np against the paper ((!): no overlap)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"figure written to {path}"


# ---------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``nalu-np reproduce``."""
    parser.add_argument("study", choices=sorted(STUDIES), help="; ".join(f"{k}: {v}" for k, v in STUDIES.items()))
    add_seeds(parser)
    add_backend_and_steps(parser, f"the study's, {studies.MADSEN2020_PROTOCOL.steps:,}")
    parser.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                        help="record names of the study's models (default: every model nalu-np has the units of: "
                             + ", ".join(m for m, p in studies.MADSEN2020_MODELS.items() if p.available) + ")")
    parser.add_argument("--ops", nargs="+", default=None, choices=OPS, help="ops (default: all six)")
    parser.add_argument("--record", default=os.path.join("bench", "results", "madsen2020.csv"), metavar="CSV",
                        help="the results record: one row per finished run, appended as runs finish; runs "
                             "already in it are not run again (default: bench/results/madsen2020.csv)")
    parser.add_argument("--out", default=os.path.join("runs", "madsen2020"), metavar="DIR",
                        help="working directory of the runs' JSON files (default: runs/madsen2020)")
    add_workers(parser)
    parser.add_argument("--summary", action="store_true", help="only print the table of the record")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="write a figure of the success rates with their intervals, ours against the paper's")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``nalu-np reproduce`` with parsed arguments; returns the exit status."""
    steps = studies.MADSEN2020_PROTOCOL.steps if args.steps is None else args.steps
    cells = grid(args.models, args.ops)
    rows = read_record(args.record)
    status = 0
    if not args.summary:
        done = {(r["model"], r["op"], r["seed"]) for r in rows if r["steps"] == steps}
        by_config = {config_of(model, op, steps): (model.name, op) for model, op in cells}

        def skip(config: Config, seed: int) -> bool:
            return (*by_config[config], seed) in done

        def on_record(config: Config, record: dict[str, Any]) -> None:
            row = _row(*by_config[config], record)
            append_row(args.record, row)
            rows.append(row)

        try:
            with open_executor(args.executor) as executor:
                run_sweep(list(by_config), seed_range(args), args.out, executor=executor, max_workers=args.workers,
                          backend=args.backend, progress=not args.quiet, skip=skip, on_record=on_record,
                          seeds_per_call=args.seeds_per_call)
        except RuntimeError as err:
            print(f"nalu-np reproduce: {err}", file=sys.stderr)
            status = 1
    wanted = {(m.name, op) for m, op in cells}
    shown = [r for r in rows if (r["model"], r["op"]) in wanted]
    print(comparison_table(shown, steps), end="")
    other = sorted({r["steps"] for r in shown} - {steps})
    if other:
        print(f"(the record also has runs of {', '.join(f'{s:,}' for s in other)} steps, not compared here)")
    if args.plot:
        print(plot_comparison(shown, steps, args.plot))
    return status
