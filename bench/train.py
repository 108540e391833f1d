"""Training steps per second of the stable-NALU style model: NAU(100 -> 2) then NMU(2 -> 1).

Madsen & Johansen's simple function task: ``x_i ~ U(1, 2)``, ``a = sum(x[o:o+25])``, ``b = sum(x[o+13:o+38])``,
target ``a * b`` (``--op``), a fresh batch of 128 every step, MSE, Adam (lr 1e-3), weights clipped to their
ranges after every step.  Contenders, each in its own process, timed in turn:

* ``numpy-loop``: a Python loop over the layers with the NumPy reference kernels and ``nalu_np.optim.Adam``;
* ``numba-loop``: the same loop on the ``numba`` backend;
* ``numba-compiled``: ``nalu_np.compiled.train``: K steps per compiled call, batches drawn with
  NumPy's Generator in chunks of ``--chunk`` steps (the drawing is timed too);
* ``numba-compiled-rng``: ``nalu_np.compiled.train_steps(..., steps=K, state=...)``: the batches
  drawn inside the compiled loop (xoshiro256**), as ``nalu-np sweep`` trains;
* ``torch``: the model written with torch operations, autograd, ``torch.optim.Adam`` and ``torch.rand``
  batches (PyTorch eager, as stable-nalu itself is written), if PyTorch is installed.

Each timed sample runs a fixed number of steps (per contender, about ``--sample-time`` seconds); reported are
the first sample (JIT compilation included) apart, and the median and max of steps per second over the repeats.

Usage::

    python bench/train.py
    python bench/train.py --quick --json bench/out/train.json --plot bench/out/train.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import (Worker, bar_plot, fmt_ratio, machine, markdown_table, peer_available, serve,  # noqa: E402
                     timed, write_json)

import nalu_np as nn  # noqa: E402

IN, HIDDEN, BATCH, LR, OFFSET = 100, 2, 128, 1e-3, 17
CONTENDERS = ("numpy-loop", "numba-loop", "numba-compiled", "numba-compiled-rng", "torch")


def make_model(dtype: str, seed: int = 0) -> tuple[Any, Any]:
    model = nn.Sequential([nn.NAU(IN, HIDDEN, rng=seed, dtype=dtype), nn.NMU(HIDDEN, 1, rng=seed + 1, dtype=dtype)])
    return model, nn.optim.Adam(model.params, lr=LR, projections=model.projections())


def loop_trainer(backend: str, dtype: str, op: str) -> Callable[[int], None]:
    from nalu_np.compiled import SimpleFunction
    from nalu_np.losses import mse

    task = SimpleFunction(op=op, offset=OFFSET, in_features=IN)
    model, opt = make_model(dtype)
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype).type

    def run(steps: int) -> None:
        for _ in range(steps):
            x = task.inputs(rng.random((BATCH, IN), dtype=dt))
            y, cache = model.forward(x, backend=backend)
            _, dy = mse(y, task.targets(x))
            _, grads = model.backward(dy, cache)
            opt.step(grads)

    return run


def compiled_trainer(dtype: str, op: str, chunk: int) -> Callable[[int], None]:
    from nalu_np import compiled as nt

    task = nt.SimpleFunction(op=op, offset=OFFSET, in_features=IN)
    model, opt = make_model(dtype)
    rng = np.random.default_rng(0)
    return lambda steps: nt.train(model, opt, task, steps, rng, batch_size=BATCH, chunk=chunk)


def compiled_rng_trainer(dtype: str, op: str) -> Callable[[int], None]:
    from nalu_np import compiled as nt

    task = nt.SimpleFunction(op=op, offset=OFFSET, in_features=IN)
    model, opt = make_model(dtype)
    state = nt.rng_state(0)
    return lambda steps: nt.train_steps(model, opt, task, steps=steps, state=state, batch_size=BATCH)


def torch_trainer(dtype: str, op: str) -> Callable[[int], None]:
    import torch

    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    torch.manual_seed(0)
    r = min(0.5, (6.0 / (IN + HIDDEN)) ** 0.5)
    W1 = torch.empty(IN, HIDDEN, dtype=tdt).uniform_(-r, r).requires_grad_()
    W2 = torch.empty(HIDDEN, 1, dtype=tdt).uniform_(0.25, 0.75).requires_grad_()
    opt = torch.optim.Adam([W1, W2], lr=LR)
    o = OFFSET
    combine = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}[op]

    def run(steps: int) -> None:
        for _ in range(steps):
            x = torch.rand(BATCH, IN, dtype=tdt) + 1.0
            t = combine(x[:, o:o + 25].sum(1, keepdim=True), x[:, o + 13:o + 38].sum(1, keepdim=True))
            h = x @ W1
            w = W2.t()
            y = (w * h + 1.0 - w).prod(dim=1, keepdim=True)
            loss = ((y - t) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                W1.clamp_(-1.0, 1.0)
                W2.clamp_(0.0, 1.0)

    return run


def handle(contender: str, req: dict[str, Any]) -> dict[str, Any]:
    if req.get("op") == "info":
        return machine()
    dtype, op = req["dtype"], req["task_op"]
    if contender == "numpy-loop":
        run = loop_trainer("numpy", dtype, op)
    elif contender == "numba-loop":
        run = loop_trainer("numba", dtype, op)
    elif contender == "numba-compiled":
        run = compiled_trainer(dtype, op, req["chunk"])
    elif contender == "numba-compiled-rng":
        run = compiled_rng_trainer(dtype, op)
    else:
        run = torch_trainer(dtype, op)
    t0 = time.perf_counter()
    run(10)
    first = time.perf_counter() - t0  # compilation included
    t0 = time.perf_counter()
    run(20)
    per_step = (time.perf_counter() - t0) / 20
    steps = max(20, int(req["sample_time"] / per_step))
    t = timed(lambda: run(steps), repeats=req["repeats"], warmup=0)
    return {"first_s": first, "steps": steps, "median_sps": steps / t["median_s"], "max_sps": steps / t["min_s"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    ap.add_argument("--op", default="mul", choices=["add", "sub", "mul", "div"])
    ap.add_argument("--contenders", nargs="*", default=list(CONTENDERS), choices=CONTENDERS)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sample-time", type=float, default=0.5, help="seconds of training per timed sample")
    ap.add_argument("--chunk", type=int, default=256, help="steps per compiled call (numba-compiled)")
    ap.add_argument("--quick", action="store_true", help="3 repeats of 0.2 s")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--plot", help="write a bar chart here (needs matplotlib)")
    ap.add_argument("--threads", type=int, help="threads of every pool in every contender (default: theirs)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return serve(lambda req: handle(args.worker, req))
    repeats, sample_time = (3, 0.2) if args.quick else (args.repeats, args.sample_time)
    contenders = [c for c in args.contenders
                  if not (c.startswith("numba") and not peer_available("numba"))
                  and not (c == "torch" and not peer_available("torch"))]
    workers = {c: Worker(__file__, c, args.threads) for c in contenders}
    records = []
    try:
        info = next(iter(workers.values())).ask({"op": "info"}) if workers else machine()
        for dtype in args.dtypes:
            for name, w in workers.items():
                r = w.ask({"dtype": dtype, "task_op": args.op, "chunk": args.chunk, "repeats": repeats,
                           "sample_time": sample_time})
                if "error" in r:
                    print(f"{name} {dtype}: {r['error']}", file=sys.stderr)
                    continue
                records.append({"contender": name, "dtype": dtype, "op": args.op, **r})
                print(f"{name} {dtype}: {r['median_sps']:.0f} steps/s (median), first {r['first_s']:.2f} s",
                      file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()

    def sps(name: str, dtype: str) -> float | None:
        return next((r["median_sps"] for r in records if r["contender"] == name and r["dtype"] == dtype), None)

    rows = []
    for r in records:
        base, peer = sps("numpy-loop", r["dtype"]), sps("torch", r["dtype"])
        r["vs_numpy_loop"] = None if base is None else r["median_sps"] / base
        r["vs_torch"] = None if peer is None else r["median_sps"] / peer
        rows.append([r["contender"], r["dtype"], f"{r['first_s']:.2f} s", f"{r['median_sps']:,.0f}",
                     f"{r['max_sps']:,.0f}", fmt_ratio(r["vs_numpy_loop"]), fmt_ratio(r["vs_torch"])])
    print(markdown_table(["contender", "dtype", "first 10 steps (JIT incl.)", "steps/s (median)", "steps/s (max)",
                          "vs numpy loop", "vs torch eager"], rows))
    print(f"\nmachine: {info.get('cpu')}, {info.get('cpu_count')} cores, load average {info.get('load_avg')}; "
          f"task {args.op}, batch {BATCH}, NAU({IN}->{HIDDEN}) NMU({HIDDEN}->1), Adam lr {LR}")
    write_json(args.json, {"machine": info, "records": records})
    bar_plot(args.plot, args.dtypes, {c: [sps(c, d) for d in args.dtypes] for c in contenders},
             "training steps per second (median)", "stable-NALU style model, batch 128")
    return 0


if __name__ == "__main__":
    sys.exit(main())
