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

::

    nalu-np reproduce primer2022 --seeds 25 --record bench/results/primer2022.csv --out runs/primer2022

runs the single-module benchmark of Mistry, Farrahi & Hare's Primer (:data:`nalu_np.primer.PRIMER2022_MODELS`,
the models nalu-np runs to the flag, on their ops and the nine interpolation ranges) the same way; its record has
a ``range`` column (the interpolation range, e.g. ``U[1,2]``) after ``op`` (:data:`PRIMER_COLUMNS`).  The
table and the figure (success rate per range, one panel per op) set our cells beside the only results the
authors' repository has, their later reruns of the NAU (+) and NMU (×) cells
(:func:`nalu_np.primer.authors_reruns`).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from typing import Any, Iterable, Sequence

import numpy as np

from . import primer, studies
from .arithmetic import SINGLE_MODULE_OPS, SINGLE_MODULE_RANGES
from .executors import open_executor
from ._options import add_backend_and_steps, add_seeds, add_workers, seed_range
from .stats import wilson_interval
from .summary import pyplot, save_figure
from .sweep import Config, run_sweep

__all__ = ["RECORD_COLUMNS", "PRIMER_COLUMNS", "STUDIES", "grid", "config_of", "primer_grid", "primer_config_of",
           "range_label", "read_record", "append_row", "comparison_table", "primer_table", "add_arguments",
           "run_from_args"]

RECORD_COLUMNS = ("model", "op", "seed", "steps", "success", "solved_at", "sparsity_error", "best_step",
                  "interpolation_mse", "extrapolation_mse", "engine", "wall_time")
#: the record of the single-module benchmark: the interpolation range after the op
PRIMER_COLUMNS = RECORD_COLUMNS[:2] + ("range",) + RECORD_COLUMNS[2:]
OPS = ("add", "sub", "mul", "div", "squared", "root")
STUDIES = {"madsen2020": "Madsen & Johansen (ICLR 2020), the static simple function task, all models "
                         "(paper/results/function_task_static_all.tex of AndreasMadsen/stable-nalu)",
           "primer2022": "Mistry, Farrahi & Hare (JMLR 2022), the Primer's single-module benchmark "
                         "(lfs_batch_jobs/single_layer_task/benchmarking/single_layer_benchmark.sh of "
                         "bmistry4/nalm-benchmark)"}


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


def range_label(index: int) -> str:
    """The record's name of the single-module benchmark's interpolation range ``index``, e.g. ``"U[1,2]"``."""
    return str(SINGLE_MODULE_RANGES[index][0])


def _range_index(text: str) -> int:
    labels = [range_label(i) for i in range(len(SINGLE_MODULE_RANGES))]
    if text.isdigit() and int(text) < len(labels):
        return int(text)
    if text.replace(" ", "") in labels:
        return labels.index(text.replace(" ", ""))
    raise ValueError(f"unknown interpolation range {text!r}; give an index 0..{len(labels) - 1} or one of "
                     f"{', '.join(labels)}")


def primer_grid(models: Iterable[str] | None = None, ops: Iterable[str] | None = None,
                ranges: Iterable[str] | None = None) -> list[tuple[Any, str, int]]:
    """The (model protocol, op, range index) cells of the single-module benchmark to run: the named models
    (default: every one nalu-np has the unit of) on those of the ops (default: all four) that the batch script
    runs them on, and the ranges (indices or labels; default all nine), in the batch script's order."""
    table = primer.PRIMER2022_MODELS
    names = [m for m in table if table[m].available] if models is None else list(models)
    for name in names:
        if name not in table:
            raise ValueError(f"unknown model {name!r}; the benchmark's models: {', '.join(table)}")
        if not table[name].available:
            raise ValueError(f"model {name!r} needs a unit nalu-np does not have yet (the authors' "
                             f"{table[name].layer} with {table[name].flags.split(' ', 2)[-1]})")
    chosen = list(SINGLE_MODULE_OPS) if ops is None else list(ops)
    for op in chosen:
        if op not in SINGLE_MODULE_OPS:
            raise ValueError(f"unknown op {op!r} of the single-module benchmark; one of {', '.join(SINGLE_MODULE_OPS)}")
    indices = list(range(len(SINGLE_MODULE_RANGES))) if ranges is None else [_range_index(str(r)) for r in ranges]
    return [(table[name], op, i) for name in names for op in chosen if op in table[name].ops for i in indices]


def primer_config_of(model: Any, op: str, index: int, steps: int) -> Config:
    """The sweep configuration of one cell: ``single-<op>`` with the model's unit, the range and ``steps``."""
    return Config(f"single-{op}", model.unit, {"range": int(index), "steps": int(steps)}).canonical()


def read_record(path: str, columns: Sequence[str] = RECORD_COLUMNS) -> list[dict[str, Any]]:
    """The rows of the record ``path`` (none if it does not exist), typed; a malformed row is a ValueError
    naming the file and the line."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or list(reader.fieldnames) != list(columns):
            raise ValueError(f"{path}: the header must be {','.join(columns)}, got {reader.fieldnames}")
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
    extra = {"range": row["range"]} if "range" in row else {}
    return {"model": row["model"], "op": row["op"], **extra, "seed": int(row["seed"]), "steps": int(row["steps"]),
            "success": row["success"] == "True", "solved_at": None if solved is None else int(solved),
            "sparsity_error": _number(row["sparsity_error"]), "best_step": None if best is None else int(best),
            "interpolation_mse": _number(row["interpolation_mse"]),
            "extrapolation_mse": _number(row["extrapolation_mse"]), "engine": row["engine"],
            "wall_time": _number(row["wall_time"])}


def append_row(path: str, row: dict[str, Any], columns: Sequence[str] = RECORD_COLUMNS) -> None:
    """Append one run to the record (the header first if the file is new), flushed to disk at once."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow({k: _cell(row.get(k)) for k in columns})
        f.flush()
        os.fsync(f.fileno())


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return "" if v is None else v


def _row(model: str, op: str, record: dict[str, Any], **cell: Any) -> dict[str, Any]:
    """The record row of a finished run of the cell ``model``, ``op`` (and ``cell``: the benchmark's range)."""
    def num(key: str) -> float | None:
        v = record.get(key)
        return None if v is None else float(v)

    return {"model": model, "op": op, **cell, "seed": record["seed"], "steps": record["steps"],
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


def _pyplot_for(cells: Any) -> tuple[Any, str]:
    """``matplotlib.pyplot`` and "", or None and why there is no figure of ``cells``."""
    plt = pyplot()
    if plt is None:
        return None, "no figure: matplotlib is not installed (pip install matplotlib)"
    if not cells:
        return None, "no figure: the record has no runs of these cells"
    return plt, ""


def plot_comparison(rows: Sequence[dict[str, Any]], steps: int, path: str) -> str:
    """Success rates with their 95% intervals, ours (the record's runs at ``steps``) against the paper's, one
    panel per op with the models side by side, written to ``path`` (PNG); needs matplotlib.

    Returns
    -------
    str
        A line saying where the figure went, or why there is none.
    """
    cells = studies.compare([r for r in rows if r["steps"] == steps])
    plt, why = _pyplot_for(cells)
    if why:
        return why
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
    save_figure(fig, path)
    return f"figure written to {path}"


def primer_table(rows: Sequence[dict[str, Any]], steps: int) -> str:
    """Our cells of the single-module benchmark (the record's runs at ``steps``) as a markdown table, in the
    batch script's order of models and ranges: success with its 95% Wilson interval, beside the authors'
    reruns where there are some (agree: the intervals overlap), median solved-at and mean sparsity error over
    the successes (``export/_compute_summary.r``'s rate and interval; its solved-at and
    sparsity means are fits, ours sample statistics)."""
    cells = studies.summarize([r for r in rows if r["steps"] == steps], keys=("model", "op", "range"))
    order = {name: i for i, name in enumerate(primer.PRIMER2022_MODELS)}
    labels = [range_label(i) for i in range(len(SINGLE_MODULE_RANGES))]
    keyed = sorted(cells, key=lambda k: (list(SINGLE_MODULE_OPS).index(k[1]) if k[1] in SINGLE_MODULE_OPS else 9,
                                         order.get(k[0], 99), labels.index(k[2]) if k[2] in labels else 99))
    reruns = _reruns() if steps == primer.PRIMER2022_PROTOCOL.steps else {}  # theirs: the full budget
    head = ("| model | op | interpolation range | seeds | success [95% CI] | authors' rerun [95% CI] | agree | "
            "median solved at | mean sparsity error |\n|---|---|---|---:|---|---|---|---:|---:|\n")
    lines = []
    for key in keyed:
        c = cells[key]
        solved = "—" if c["solved_at_median"] is None else f"{c['solved_at_median']:,.0f}"
        sparsity = "—" if c["sparsity_error_mean"] is None else f"{c['sparsity_error_mean']:.2e}"
        theirs, agree = "—", "—"
        if key in reruns:
            rate, lo, hi = reruns[key]
            theirs = f"{rate:.0%} [{lo:.0%}, {hi:.0%}]"
            agree = "yes" if c["success_lower"] <= hi and lo <= c["success_upper"] else "NO"
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {c['n']} | {c['success_rate']:.0%} "
                     f"[{c['success_lower']:.0%}, {c['success_upper']:.0%}] | {theirs} | {agree} | {solved} | "
                     f"{sparsity} |")
    return head + "\n".join(lines) + "\n"


def _reruns() -> dict[tuple[str, str, str], tuple[float, float, float]]:
    """(model, op, range) -> the success rate of the authors' reruns (:func:`nalu_np.primer.authors_reruns`)
    and its 95% Wilson interval."""
    return {(r["model"], r["op"], r["range"]): (r["successes"] / r["seeds"],
                                                *wilson_interval(r["successes"], r["seeds"]))
            for r in primer.authors_reruns()}


def plot_primer(rows: Sequence[dict[str, Any]], steps: int, path: str) -> str:
    """The Primer's figure: the success rate per interpolation range with its 95% interval, one panel per op,
    the models side by side (the record's runs at ``steps``), written to ``path`` (PNG); needs matplotlib.

    Returns
    -------
    str
        A line saying where the figure went, or why there is none.
    """
    cells = studies.summarize([r for r in rows if r["steps"] == steps], keys=("model", "op", "range"))
    plt, why = _pyplot_for(cells)
    if why:
        return why
    labels = [range_label(i) for i in range(len(SINGLE_MODULE_RANGES))]
    ops = [op for op in SINGLE_MODULE_OPS if any(k[1] == op for k in cells)]
    models = [m for m in primer.PRIMER2022_MODELS if any(k[0] == m for k in cells)]
    reruns = _reruns() if steps == primer.PRIMER2022_PROTOCOL.steps else {}  # theirs: the full budget
    fig, axes = plt.subplots(1, len(ops), figsize=(4.2 * len(ops), 3.8), sharey=True, squeeze=False)
    for ax, op in zip(axes[0], ops):
        present = [m for m in models if any(k[:2] == (m, op) for k in cells)]
        for j, model in enumerate(present):
            shift = (j - (len(present) - 1) / 2) * 0.8 / max(len(present), 1)
            xs, rate, err = [], [], [[], []]
            for i, label in enumerate(labels):
                c = cells.get((model, op, label))
                if c is not None:
                    xs.append(i + shift)
                    rate.append(c["success_rate"])
                    err[0].append(c["success_rate"] - c["success_lower"])
                    err[1].append(c["success_upper"] - c["success_rate"])
            ax.errorbar(xs, rate, yerr=err, fmt="o", capsize=2, markersize=4, label=model)
            theirs = [(i + shift, reruns[(model, op, label)][0]) for i, label in enumerate(labels)
                      if (model, op, label) in reruns]
            if theirs:
                ax.plot(*zip(*theirs), "x", color="black", markersize=5, label=f"{model}: authors' rerun")
        ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7)
        ax.set_title(op)
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("extrapolation success rate (95% interval)")
    fig.suptitle(f"Mistry et al. (2022), single-module benchmark, {steps:,} steps: nalu-np, per interpolation range",
                 fontsize=9)
    save_figure(fig, path)
    return f"figure written to {path}"


# ---------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``nalu-np reproduce``."""
    parser.add_argument("study", choices=sorted(STUDIES), help="; ".join(f"{k}: {v}" for k, v in STUDIES.items()))
    add_seeds(parser)
    add_backend_and_steps(parser, f"the study's: madsen2020 {studies.MADSEN2020_PROTOCOL.steps:,}, primer2022 "
                                  f"{primer.PRIMER2022_PROTOCOL.steps:,}")
    parser.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                        help="record names of the study's models (default: every model nalu-np runs on its "
                             "authors' protocol; madsen2020: "
                             + ", ".join(m for m, p in studies.MADSEN2020_MODELS.items() if p.available)
                             + "; primer2022: "
                             + ", ".join(m for m, p in primer.PRIMER2022_MODELS.items() if p.available) + ")")
    parser.add_argument("--ops", nargs="+", default=None, choices=OPS,
                        help="ops (default: all of the study's: six for madsen2020, add sub mul div for primer2022)")
    parser.add_argument("--ranges", nargs="+", default=None, metavar="RANGE",
                        help="primer2022 only: interpolation ranges, by index 0..8 or label such as U[1,2] "
                             "(default: all nine)")
    parser.add_argument("--record", default=None, metavar="CSV",
                        help="the results record: one row per finished run, appended as runs finish; runs "
                             "already in it are not run again (default: bench/results/STUDY.csv)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="working directory of the runs' JSON files (default: runs/STUDY)")
    add_workers(parser)
    parser.add_argument("--summary", action="store_true", help="only print the table of the record")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="write a figure of the success rates with their intervals (madsen2020: ours against "
                             "the paper's; primer2022: per interpolation range)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def _cells(args: argparse.Namespace, steps: int) -> tuple[dict[Config, dict[str, Any]], Sequence[str]]:
    """The study's cells as sweep configurations -> the fields that name them in the record, and its columns."""
    if args.study == "primer2022":
        return ({primer_config_of(m, op, i, steps): {"model": m.name, "op": op, "range": range_label(i)}
                 for m, op, i in primer_grid(args.models, args.ops, args.ranges)}, PRIMER_COLUMNS)
    if args.ranges is not None:
        raise ValueError("--ranges belongs to primer2022 (the single-module benchmark's interpolation ranges)")
    return ({config_of(m, op, steps): {"model": m.name, "op": op} for m, op in grid(args.models, args.ops)},
            RECORD_COLUMNS)


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``nalu-np reproduce`` with parsed arguments; returns the exit status."""
    protocol = primer.PRIMER2022_PROTOCOL if args.study == "primer2022" else studies.MADSEN2020_PROTOCOL
    steps = protocol.steps if args.steps is None else args.steps
    record = args.record or os.path.join("bench", "results", f"{args.study}.csv")
    out = args.out or os.path.join("runs", args.study)
    try:
        by_config, columns = _cells(args, steps)
    except ValueError as err:
        print(f"nalu-np reproduce: {err}", file=sys.stderr)
        return 2
    names = [c for c in columns if c in ("model", "op", "range")]
    rows = read_record(record, columns)
    status = 0
    if not args.summary:
        done = {(*(r[k] for k in names), r["seed"]) for r in rows if r["steps"] == steps}

        def skip(config: Config, seed: int) -> bool:
            return (*by_config[config].values(), seed) in done

        def on_record(config: Config, result: dict[str, Any]) -> None:
            cell = by_config[config]
            row = _row(cell["model"], cell["op"], result, **{k: v for k, v in cell.items() if k == "range"})
            append_row(record, row, columns)
            rows.append(row)

        try:
            with open_executor(args.executor) as executor:
                run_sweep(list(by_config), seed_range(args), out, executor=executor, max_workers=args.workers,
                          backend=args.backend, progress=not args.quiet, skip=skip, on_record=on_record,
                          seeds_per_call=args.seeds_per_call)
        except RuntimeError as err:
            print(f"nalu-np reproduce: {err}", file=sys.stderr)
            status = 1
    wanted = {tuple(cell.values()) for cell in by_config.values()}
    shown = [r for r in rows if tuple(r[k] for k in names) in wanted]
    table, figure = (primer_table, plot_primer) if args.study == "primer2022" else (comparison_table, plot_comparison)
    print(table(shown, steps), end="")
    other = sorted({r["steps"] for r in shown} - {steps})
    if other:
        print(f"(the record also has runs of {', '.join(f'{s:,}' for s in other)} steps, not compared here)")
    if args.plot:
        print(figure(shown, steps, args.plot))
    return status
