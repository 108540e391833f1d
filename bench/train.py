"""Training steps per second of the stable-NALU style model: NAU(100 -> 2) then NMU(2 -> 1), and of other networks
of the library's units (``--net``, the compiled contenders).

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

Seeds per call (``--seeds S ...``, seed-steps/s: S independent runs of the same step):

* ``numba-seeds``: :func:`nalu_np.compiled.train_seeds`, S seeds per compiled call over Numba's threads, the
  batches drawn in the kernel;
* ``jax``: the same step in JAX (``jax.grad``, Adam and the clipping written out, ``jax.random.uniform``
  batches), ``jax.jit`` of ``lax.scan`` over the steps of a call, ``jax.vmap`` over the seeds, if JAX is
  installed;
* ``torch-vmap``: the step with ``torch.func.grad`` and ``torch.func.vmap`` over the seeds (one step per
  Python iteration), if PyTorch is installed;
* ``draw-bound``: only the drawing of each step's ``128 x 100`` uniforms by the kernel's generator, on one
  thread: the limit it sets, ``cores x`` its rate, against which the fraction of the limit is reported.

Each timed sample runs a fixed number of steps (per contender, about ``--sample-time`` seconds); reported are
the first sample (JIT compilation included) apart, and the median and max of steps per second over the repeats.

Usage::

    python bench/train.py
    python bench/train.py --quick --json bench/out/train.json --plot bench/out/train.png
    python bench/train.py --quick --contenders numba-seeds --seeds 16 --net NAC-NACMul NALUsep-NALUsep NPU-NMU
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
SEED_CONTENDERS = ("numba-seeds", "jax", "torch-vmap", "draw-bound")
NET_CONTENDERS = ("numba-compiled-rng", "numba-seeds")  # the contenders that train any --net
CALL = 1000  # steps per call of the seed-batched contenders


#: examples of ``--net``: any chain of the library's unit names (``nalu_np.units.UNITS``) joined by ``-``, the
#: first layer 100 -> 2, the last 2 -> 1, in between 2 -> 2; ``NALUsep`` is the NALU with separate weights.  Only
#: the compiled contenders build networks other than ``NAU-NMU``.
NETS = ("NAU-NMU", "NAU-NAU", "NALU-NALU", "NALUsep-NALUsep", "Linear-Linear", "ReLU-Linear", "ReLU6-Linear")
#: the names of ``--net`` that are a unit with settings
VARIANTS = {"NALUsep": ("NALU", {"shared_weights": False})}


def net_layers(net: str) -> list[tuple[type, dict[str, Any]]]:
    """The layer classes and settings of ``net`` (``"NAU-NMU"``, ...); ValueError for an unknown unit."""
    names = net.split("-")
    if len(names) < 2:
        raise ValueError(f"--net takes two or more units joined by '-', got {net!r}")
    found = [VARIANTS.get(name, (name, {})) for name in names]
    return [(nn.layers.unit_class(unit), kw) for unit, kw in found]


def make_model(dtype: str, seed: int = 0, net: str = "NAU-NMU") -> tuple[Any, Any]:
    layers = net_layers(net)
    sizes = [IN] + [HIDDEN] * (len(layers) - 1) + [1]
    model = nn.Sequential([cls(sizes[k], sizes[k + 1], rng=seed + k, dtype=dtype, **kw)
                           for k, (cls, kw) in enumerate(layers)])
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


def compiled_rng_trainer(dtype: str, op: str, net: str) -> Callable[[int], None]:
    from nalu_np import compiled as nt

    task = nt.SimpleFunction(op=op, offset=OFFSET, in_features=IN)
    model, opt = make_model(dtype, net=net)
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


def seeds_trainer(dtype: str, op: str, S: int, net: str) -> Callable[[int], None]:
    from nalu_np import compiled as nt

    pairs = [make_model(dtype, seed=2 * q, net=net) for q in range(S)]
    tasks = [nt.SimpleFunction(op=op, offset=OFFSET, in_features=IN)] * S
    states = np.stack([nt.rng_state(q) for q in range(S)])
    models, opts = [m for m, _ in pairs], [o for _, o in pairs]
    return lambda steps: nt.train_seeds(models, opts, tasks, steps=steps, states=states, batch_size=BATCH)


def draw_bound(dtype: str) -> Callable[[int], None]:
    import numba

    from nalu_np.kernels.numba import rng

    @numba.njit(nogil=True)
    def draws(state: np.ndarray, lo: Any, span: Any, out: np.ndarray, steps: int) -> None:
        for _ in range(steps):
            rng.fill_uniform(state, lo, span, out)

    state, out = rng.rng_state(0), np.empty(BATCH * IN, dtype)
    dt = out.dtype.type
    return lambda steps: draws(state, dt(1.0), dt(1.0), out, steps)


def _combine(xp: Any, op: str) -> Callable[[Any, Any], Any]:
    return {"add": xp.add, "sub": xp.subtract, "mul": xp.multiply, "div": xp.divide}[op]


def jax_trainer(dtype: str, op: str, S: int) -> Callable[[int], None]:
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    import jax.numpy as jnp

    jdt = jnp.dtype(dtype)
    o, combine = OFFSET, _combine(jnp, op)
    r = min(0.5, (6.0 / (IN + HIDDEN)) ** 0.5)

    def loss(params: Any, x: Any, t: Any) -> Any:
        W1, W2 = params
        h = x @ W1
        w = W2.T
        y = jnp.prod(w * h + 1.0 - w, axis=1, keepdims=True)
        return jnp.mean((y - t) ** 2)

    def step(carry: Any, _: Any) -> tuple[Any, None]:
        params, m, v, t, key = carry
        key, sub = jax.random.split(key)
        x = jax.random.uniform(sub, (BATCH, IN), jdt) + 1.0
        target = combine(x[:, o:o + 25].sum(1, keepdims=True), x[:, o + 13:o + 38].sum(1, keepdims=True))
        g = jax.grad(loss)(params, x, target)
        t = t + 1
        m = [0.9 * a + 0.1 * b for a, b in zip(m, g)]
        v = [0.999 * a + 0.001 * b * b for a, b in zip(v, g)]
        params = [p - LR * (a / (1 - 0.9 ** t)) / (jnp.sqrt(b / (1 - 0.999 ** t)) + 1e-8)
                  for p, a, b in zip(params, m, v)]
        params = [jnp.clip(params[0], -1.0, 1.0), jnp.clip(params[1], 0.0, 1.0)]
        return (params, m, v, t, key), None

    def run_calls(carry: Any) -> Any:
        return jax.lax.scan(step, carry, None, length=CALL)[0]

    batched = jax.jit(jax.vmap(run_calls))
    keys = jax.random.split(jax.random.PRNGKey(0), S)
    W1 = jax.random.uniform(keys[0], (S, IN, HIDDEN), jdt, -r, r)
    W2 = jax.random.uniform(keys[1], (S, HIDDEN, 1), jdt, 0.25, 0.75)
    zeros = [jnp.zeros_like(W1), jnp.zeros_like(W2)]
    state = [([W1, W2], zeros, zeros, jnp.zeros(S, jdt), keys)]

    def run(steps: int) -> None:
        for _ in range(steps // CALL):
            state[0] = batched(state[0])
        jax.block_until_ready(state[0])

    return run


def torch_vmap_trainer(dtype: str, op: str, S: int) -> Callable[[int], None]:
    import torch
    from torch.func import grad, vmap

    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    torch.manual_seed(0)
    r = min(0.5, (6.0 / (IN + HIDDEN)) ** 0.5)
    W1 = torch.empty(S, IN, HIDDEN, dtype=tdt).uniform_(-r, r)
    W2 = torch.empty(S, HIDDEN, 1, dtype=tdt).uniform_(0.25, 0.75)
    m = [torch.zeros_like(W1), torch.zeros_like(W2)]
    v = [torch.zeros_like(W1), torch.zeros_like(W2)]
    o, combine = OFFSET, _combine(torch, op)

    def loss(W1: Any, W2: Any, x: Any) -> Any:
        t = combine(x[:, o:o + 25].sum(1, keepdim=True), x[:, o + 13:o + 38].sum(1, keepdim=True))
        w = W2.t()
        y = (w * (x @ W1) + 1.0 - w).prod(dim=1, keepdim=True)
        return ((y - t) ** 2).mean()

    grads = vmap(grad(loss, argnums=(0, 1)))
    count = [0]

    def run(steps: int) -> None:
        with torch.no_grad():
            for _ in range(steps):
                x = torch.rand(S, BATCH, IN, dtype=tdt) + 1.0
                g = grads(W1, W2, x)
                count[0] += 1
                t = count[0]
                for p, a, b, gg in zip((W1, W2), m, v, g):
                    a.mul_(0.9).add_(gg, alpha=0.1)
                    b.mul_(0.999).addcmul_(gg, gg, value=0.001)
                    p.sub_(LR * (a / (1 - 0.9 ** t)) / ((b / (1 - 0.999 ** t)).sqrt() + 1e-8))
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
        run = compiled_rng_trainer(dtype, op, req.get("net", "NAU-NMU"))
    elif contender == "torch":
        run = torch_trainer(dtype, op)
    elif contender == "numba-seeds":
        run = seeds_trainer(dtype, op, req["seeds"], req.get("net", "NAU-NMU"))
    elif contender == "jax":
        run = jax_trainer(dtype, op, req["seeds"])
    elif contender == "torch-vmap":
        run = torch_vmap_trainer(dtype, op, req["seeds"])
    else:
        run = draw_bound(dtype)
    unit = CALL if contender in ("jax", "draw-bound") else 10  # steps per call of a contender that scans
    t0 = time.perf_counter()
    run(unit)
    first = time.perf_counter() - t0  # compilation included
    t0 = time.perf_counter()
    run(2 * unit)
    per_step = (time.perf_counter() - t0) / (2 * unit)
    steps = max(2 * unit, int(req["sample_time"] / per_step) // unit * unit)
    t = timed(lambda: run(steps), repeats=req["repeats"], warmup=0)
    S = req.get("seeds", 1)
    return {"first_s": first, "steps": steps, "seeds": S, "median_sps": S * steps / t["median_s"],
            "max_sps": S * steps / t["min_s"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    ap.add_argument("--op", default="mul", choices=["add", "sub", "mul", "div"])
    ap.add_argument("--contenders", nargs="*", default=list(CONTENDERS + SEED_CONTENDERS),
                    choices=CONTENDERS + SEED_CONTENDERS)
    ap.add_argument("--net", nargs="+", default=["NAU-NMU"], metavar="NET",
                    help="the networks of numba-compiled-rng and numba-seeds, units joined by '-' (e.g. "
                         f"{', '.join(NETS)}); the other contenders train NAU-NMU only")
    ap.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 16, 256],
                    help="seeds per call of the seed-batched contenders")
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
    for net in args.net:
        try:
            net_layers(net)
        except (ValueError, KeyError) as err:
            ap.error(str(err))
    contenders = [c for c in args.contenders
                  if not (c.startswith("numba") and not peer_available("numba"))
                  and not (c == "torch" and not peer_available("torch"))
                  and not (c == "torch-vmap" and not peer_available("torch"))
                  and not (c == "jax" and not peer_available("jax"))]
    workers = {c: Worker(__file__, c, args.threads) for c in contenders}
    records = []
    try:
        info = next(iter(workers.values())).ask({"op": "info"}) if workers else machine()
        for dtype in args.dtypes:
            for net in args.net:
                for name, w in workers.items():
                    if net != "NAU-NMU" and name not in NET_CONTENDERS:
                        continue
                    if net != args.net[0] and name == "draw-bound":
                        continue
                    for S in (args.seeds if name in SEED_CONTENDERS[:3] else [1]):
                        r = w.ask({"dtype": dtype, "task_op": args.op, "chunk": args.chunk, "repeats": repeats,
                                   "sample_time": sample_time, "seeds": S, "net": net})
                        if "error" in r:
                            print(f"{name} {net} {dtype} S={S}: {r['error']}", file=sys.stderr)
                            continue
                        records.append({"contender": name, "dtype": dtype, "op": args.op, "net": net, **r})
                        print(f"{name} {net} {dtype} S={S}: {r['median_sps']:.0f} seed-steps/s (median), first "
                              f"{r['first_s']:.2f} s", file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()

    def sps(name: str, dtype: str, S: int = 1, net: str = "NAU-NMU") -> float | None:
        return next((r["median_sps"] for r in records if r["contender"] == name and r["dtype"] == dtype
                     and r["seeds"] == S and (r["net"] == net or name == "draw-bound")), None)

    def best(name: str, dtype: str) -> float | None:
        found = [r["median_sps"] for r in records if r["contender"] == name and r["dtype"] == dtype]
        return max(found) if found else None

    rows = []
    for r in records:
        same = r["net"] == "NAU-NMU"  # the peers train this network only
        base, peer, jax_best = sps("numpy-loop", r["dtype"]), sps("torch", r["dtype"]), best("jax", r["dtype"])
        bound = sps("draw-bound", r["dtype"])  # timed once, with the first network
        limit = None if bound is None else bound * (info.get("cpu_count") or 1)
        r["vs_numpy_loop"] = None if base is None or not same else r["median_sps"] / base
        r["vs_torch"] = None if peer is None or not same else r["median_sps"] / peer
        r["vs_jax_best"] = None if jax_best is None or not same else r["median_sps"] / jax_best
        r["of_limit"] = None if limit is None or r["contender"] == "draw-bound" else r["median_sps"] / limit
        rows.append([r["contender"], r["net"], r["dtype"], str(r["seeds"]), f"{r['first_s']:.2f} s",
                     f"{r['median_sps']:,.0f}", f"{r['max_sps']:,.0f}", fmt_ratio(r["vs_numpy_loop"]),
                     fmt_ratio(r["vs_torch"]), fmt_ratio(r["vs_jax_best"]),
                     "" if r["of_limit"] is None else f"{100 * r['of_limit']:.0f}%"])
    print(markdown_table(["contender", "net", "dtype", "seeds", "first call (JIT incl.)", "seed-steps/s (median)",
                          "seed-steps/s (max)", "vs numpy loop", "vs torch eager", "vs JAX's best",
                          "of the draw limit"], rows))
    print("\nthe draw limit: cores x the rate at which one thread draws a step's 128 x 100 uniforms (draw-bound)")
    print(f"\nmachine: {info.get('cpu')}, {info.get('cpu_count')} cores, load average {info.get('load_avg')}; "
          f"task {args.op}, batch {BATCH}, {', '.join(args.net)} ({IN}->{HIDDEN}->1), Adam lr {LR}")
    write_json(args.json, {"machine": info, "records": records})
    series = {f"{c} {r_net} S={S}": [sps(c, d, S, r_net) for d in args.dtypes]
              for c in contenders for r_net in args.net for S in (args.seeds if c in SEED_CONTENDERS[:3] else [1])
              if r_net == "NAU-NMU" or c in NET_CONTENDERS}
    bar_plot(args.plot, args.dtypes, series, "training seed-steps per second (median)", "batch 128")
    return 0


if __name__ == "__main__":
    sys.exit(main())
