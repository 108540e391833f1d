"""The two engines of ``nalu_np.train`` on one task: seed-steps/s of ``engine="compiled"`` against
``engine="python"`` (NumPy backend), measured in the same process, one after the other.

Each engine trains a fresh model of the task's protocol for ``--steps`` steps, evaluations included (the task's
``eval_every``), after a warm-up run of ``--warmup`` steps (JIT compilation); the best of ``--repeats`` runs
counts.

Usage::

    python bench/engines.py --task single-mul --unit NMU --steps 20000
    python bench/engines.py --task simple-mul --unit NMU --steps 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import nalu_np as nn
from nalu_np.tasks import get_task, seed_rngs


def best_rate(task_name: str, unit: str, engine: str, steps: int, warmup: int, repeats: int) -> float:
    """Seed-steps/s of the best of ``repeats`` runs of ``steps`` steps with ``engine``."""
    task = get_task(task_name, unit=unit, steps=steps)

    def once(n: int) -> float:
        model = task.build_model(seed_rngs(0)[0])
        t0 = time.perf_counter()
        nn.train(model, task, steps=n, seed=0, engine=engine, backend="numpy", progress=False)
        return time.perf_counter() - t0

    once(warmup)
    return steps / min(once(steps) for _ in range(repeats))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="single-mul")
    ap.add_argument("--unit", default="NMU")
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)
    rates = {e: best_rate(a.task, a.unit, e, a.steps, a.warmup, a.repeats) for e in ("compiled", "python")}
    print(f"{a.task}:{a.unit}, {a.steps:,} steps: compiled {rates['compiled']:,.0f} steps/s, python "
          f"{rates['python']:,.0f} steps/s, ratio {rates['compiled'] / rates['python']:.0f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"task": a.task, "unit": a.unit, "steps": a.steps, **rates}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
