"""The papers' summary of a sweep's runs: one row per configuration (success rate with its Wilson interval,
median "solved at" step, mean sparsity error), as a markdown table and a bar chart
(:mod:`nalu_np.sweep` re-exports these names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["Row", "summarize", "markdown_table", "plot", "pyplot"]


@dataclass(frozen=True)
class Row:
    """Summary of one configuration's runs (the columns of the papers' tables)."""

    task: str
    op: str
    unit: str
    steps: int
    seeds: int
    successes: int
    ci_low: float
    ci_high: float
    median_solved_at: float | None
    mean_sparsity_error: float | None

    @property
    def rate(self) -> float:
        return self.successes / self.seeds if self.seeds else float("nan")


def summarize(results: Mapping[Any, Sequence[Mapping[str, Any]]]) -> list[Row]:
    """One :class:`Row` per configuration: success rate with its 95 % Wilson interval, and over the solved
    runs (as the papers) the median "solved at" step and the mean sparsity error.  ``results`` maps each
    configuration (a :class:`nalu_np.sweep.Config`) to its records."""
    from .arithmetic import wilson_interval

    rows = []
    for config, records in results.items():
        if not records:
            continue
        solved = [r for r in records if r.get("success")]
        lo, hi = wilson_interval(len(solved), len(records))
        solved_at = [r["solved_at"] for r in solved if r.get("solved_at") is not None]
        sparsity = [float(r["sparsity_error"]) for r in solved if r.get("sparsity_error") is not None]
        first = records[0]
        rows.append(Row(
            task=first.get("task", config.task), op=first.get("op", config.task),
            unit=first.get("unit", config.unit or "default"), steps=int(first.get("steps", 0)),
            seeds=len(records), successes=len(solved), ci_low=lo, ci_high=hi,
            median_solved_at=float(np.median(solved_at)) if solved_at else None,
            mean_sparsity_error=float(np.mean(sparsity)) if sparsity else None,
        ))
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table."""
    head = ("| task | op | unit | steps | seeds | success | 95% Wilson CI | median solved at | sparsity error |\n"
            "|---|---|---|---:|---:|---:|---|---:|---:|\n")
    lines = []
    for r in rows:
        solved_at = "—" if r.median_solved_at is None else f"{r.median_solved_at:,.0f}"
        sparsity = "—" if r.mean_sparsity_error is None else f"{r.mean_sparsity_error:.2e}"
        lines.append(f"| {r.task} | {r.op} | {r.unit} | {r.steps:,} | {r.seeds} | {r.successes}/{r.seeds} "
                     f"({r.rate:.0%}) | [{r.ci_low:.0%}, {r.ci_high:.0%}] | {solved_at} | {sparsity} |")
    return head + "\n".join(lines) + "\n"


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend, or None where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig: Any, path: str) -> None:
    """Lay out ``fig``, write it to ``path`` (PNG, 120 dpi) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(rows: Sequence[Row], path: str) -> str:
    """Success rates with their Wilson intervals as a bar chart in ``path`` (PNG); needs matplotlib.

    Returns
    -------
    str
        A line saying where the plot went, or why there is none.
    """
    plt = pyplot()
    if plt is None:
        return "no plot: matplotlib is not installed (pip install matplotlib)"
    labels = [f"{r.unit}\n{r.op} ({r.steps:.0e} steps)" for r in rows]
    rates = np.array([r.rate for r in rows])
    err = np.array([[r.rate - r.ci_low for r in rows], [r.ci_high - r.rate for r in rows]])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(rows)), 3.5))
    ax.bar(range(len(rows)), rates, yerr=err, capsize=4, color="tab:blue")
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson CI)")
    save_figure(fig, path)
    return f"plot written to {path}"
