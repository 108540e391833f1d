"""Forward + backward of one layer on the CPU: every nalu_np backend present, PyTorch and JAX as optional peers.

For each unit (NALU with shared weights, NAC, NACMul, NAU), shape ``(batch, in, out)`` and dtype, one timed call is
``y, cache = forward(params, x); dx, grads = backward(params, cache, dy)`` with fixed ``x`` and ``dy`` (the
peers: the same math written with torch / jax.numpy operations, the backward pass by autograd / ``jax.vjp``
under ``jax.jit``, returning ``dx`` and every weight gradient too).  Reported: the first call (JIT compilation
included) apart, the median and min of the repeats after warm-up, and the ratios of the medians against the
NumPy reference and against each peer, all measured in this run.

Usage::

    python bench/layers.py                                  # the issue's shapes, float32 and float64
    python bench/layers.py --quick                          # small shapes, few repeats
    python bench/layers.py --json bench/out/layers.json --plot bench/out/layers.png
    python bench/layers.py --shapes 1048576,2,1 --dtypes float32 --units nalu
    python bench/layers.py --shapes 1048576,2,1 --dtypes float32 --units nalu --interleaved --no-peers

``--interleaved`` adds ``numba-after-numpy``: the numba call timed right after a numpy-backend call of the
same unit (each contender otherwise runs alone in its own process and never sees what another left running).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import (Worker, bar_plot, copy_bandwidth, fmt_ratio, fmt_time, gemm_rate, machine,  # noqa: E402
                     markdown_table, peer_available, serve, timed, transcendental_throughput, write_json)

import nalu_np as nn  # noqa: E402

SHAPES = [(1_048_576, 2, 1), (128, 100, 2), (65_536, 64, 64)]
QUICK_SHAPES = [(65_536, 2, 1), (128, 100, 2), (4096, 64, 64)]
UNITS = ("nalu", "nac", "nacmul", "nau")
DEFAULT_UNITS = ("nalu", "nac", "nacmul")
PARAM_NAMES = {"nalu": ("W_hat", "M_hat", "G"), "nac": ("W_hat", "M_hat"), "nacmul": ("W_hat", "M_hat"), "nau": ("W",)}
EPS = 1e-7
CPU_BACKENDS = ("numpy", "numba")


def make_data(unit: str, shape: tuple[int, int, int], dtype: str, seed: int = 0):
    B, I, O = shape
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, 0.5, (I, O)).astype(dtype) for k in PARAM_NAMES[unit]}
    x = rng.uniform(-2.0, 2.0, (B, I)).astype(dtype)
    dy = rng.normal(size=(B, O)).astype(dtype)
    return params, x, dy


def hyper(unit: str) -> dict[str, Any]:
    return {} if unit in ("nac", "nau") else {"eps": EPS}


def backend_call(name: str, unit: str, params, x, dy) -> Callable[[], Any]:
    be = nn.get_backend(name)
    fwd, bwd = be.kernel(unit + "_forward"), be.kernel(unit + "_backward")
    kw = hyper(unit)

    def run():
        y, cache = fwd(params, x, **kw)
        return bwd(params, cache, dy, **kw)

    return run


# ---------------------------------------------------------------------------------------------------------
# peers
# ---------------------------------------------------------------------------------------------------------


def torch_call(unit: str, params, x, dy) -> Callable[[], Any] | None:
    try:
        import torch
    except ImportError:
        return None
    tp = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    tx = torch.from_numpy(x.copy()).requires_grad_()
    tdy = torch.from_numpy(dy)

    def run():
        for p in list(tp.values()) + [tx]:
            p.grad = None
        W = tp["W"] if unit == "nau" else torch.tanh(tp["W_hat"]) * torch.sigmoid(tp["M_hat"])
        if unit in ("nac", "nau"):
            y = tx @ W
        else:
            m = torch.exp(torch.log(torch.abs(tx) + EPS) @ W)
            if unit == "nacmul":
                y = m
            else:
                g = torch.sigmoid(tx @ tp["G"])
                y = g * (tx @ W) + (1 - g) * m
        y.backward(tdy)
        return tx.grad, {k: p.grad for k, p in tp.items()}

    return run


def jax_call(unit: str, params, x, dy) -> Callable[[], Any] | None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    if x.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)

    def f(p, xx):
        W = p["W"] if unit == "nau" else jnp.tanh(p["W_hat"]) * jax.nn.sigmoid(p["M_hat"])
        if unit in ("nac", "nau"):
            return xx @ W
        m = jnp.exp(jnp.log(jnp.abs(xx) + EPS) @ W)
        if unit == "nacmul":
            return m
        g = jax.nn.sigmoid(xx @ p["G"])
        return g * (xx @ W) + (1 - g) * m

    @jax.jit
    def step(p, xx, d):
        _, vjp = jax.vjp(f, p, xx)
        gp, gx = vjp(d)
        return gx, gp

    jp = {k: jnp.asarray(v) for k, v in params.items()}
    jx, jdy = jnp.asarray(x), jnp.asarray(dy)
    return lambda: jax.block_until_ready(step(jp, jx, jdy))


PEERS = {"torch": torch_call, "jax": jax_call}


# ---------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------


def parse_shape(s: str) -> tuple[int, int, int]:
    b, i, o = (int(v) for v in s.split(","))
    return b, i, o


def make_call(contender: str, unit: str, params, x, dy) -> Callable[[], Any] | None:
    if contender in PEERS:
        return PEERS[contender](unit, params, x, dy)
    return backend_call(contender, unit, params, x, dy)


INTERLEAVED = "numba-after-numpy"


def interleaved(unit: str, params: dict, x: np.ndarray, dy: np.ndarray, repeats: int) -> dict[str, Any]:
    """The numba backend's call timed right after a numpy-backend call of the same unit and data, as a user
    who mixes backends (or calls BLAS in between) sees it: each sample is one numba call after one numpy call."""
    import statistics
    import time

    fn, before = backend_call("numba", unit, params, x, dy), backend_call("numpy", unit, params, x, dy)
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    samples = []
    for _ in range(max(repeats, 3)):
        before()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return {"first_s": first, "median_s": statistics.median(samples), "min_s": min(samples), "calls_per_sample": 1}


def handle(contender: str, req: dict[str, Any]) -> dict[str, Any]:
    """Time one (unit, shape, dtype) in this worker; the data are rebuilt from the seed, so every worker has
    the same."""
    if req.get("op") == "info":
        info = machine()
        if contender == "numba":
            info["transcendentals"] = {dt: transcendental_throughput(np.dtype(dt)) for dt in req["dtypes"]}
        elif contender == "numpy":
            info["copy_bandwidth_GBps"] = copy_bandwidth() / 1e9
            info["gemm_GFLOPs"] = {dt: gemm_rate(np.dtype(dt)) / 1e9 for dt in req["dtypes"]}
        return info
    params, x, dy = make_data(req["unit"], tuple(req["shape"]), req["dtype"])
    if contender == INTERLEAVED:
        return interleaved(req["unit"], params, x, dy, req["repeats"])
    fn = make_call(contender, req["unit"], params, x, dy)
    if fn is None:
        return {"error": f"{contender} is not installed"}
    return timed(fn, repeats=req["repeats"], warmup=2, min_time=req["min_time"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="*", type=parse_shape, help="batch,in,out ... (default: the issue's)")
    ap.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    ap.add_argument("--units", nargs="*", default=list(DEFAULT_UNITS), choices=UNITS)
    ap.add_argument("--backends", nargs="*", help="nalu_np backends (default: every CPU backend present)")
    ap.add_argument("--no-peers", action="store_true", help="skip PyTorch and JAX")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--min-time", type=float, default=0.02, help="least seconds per timed sample")
    ap.add_argument("--quick", action="store_true", help="small shapes, 3 repeats")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--plot", help="write a bar chart of the speed-ups here (needs matplotlib)")
    ap.add_argument("--threads", type=int, help="threads of every pool in every contender (default: theirs)")
    ap.add_argument("--interleaved", action="store_true",
                    help=f"also time the numba call right after a numpy-backend call ({INTERLEAVED})")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return serve(lambda req: handle(args.worker, req))
    shapes = args.shapes or (QUICK_SHAPES if args.quick else SHAPES)
    repeats = 3 if args.quick else args.repeats
    present = nn.available_backends()
    backends = args.backends or [b for b in CPU_BACKENDS if b in present]
    skipped = [b for b in present if b not in backends]
    if skipped:
        print(f"not timed here (GPU backends have bench/gpu.py): {', '.join(skipped)}", file=sys.stderr)
    peers = [] if args.no_peers else [p for p in PEERS if peer_available(p)]
    extra = [INTERLEAVED] if args.interleaved and "numba" in backends else []
    workers = {name: Worker(__file__, name, args.threads) for name in backends + extra + peers}
    try:
        infos = {name: w.ask({"op": "info", "dtypes": args.dtypes}) for name, w in workers.items()}
        records = []
        for unit in args.units:
            for shape in shapes:
                for dtype in args.dtypes:
                    for name, w in workers.items():
                        t = w.ask({"unit": unit, "shape": list(shape), "dtype": dtype, "repeats": repeats,
                                   "min_time": args.min_time})
                        if "error" in t:
                            print(f"{unit} {shape} {dtype} {name}: {t['error']}", file=sys.stderr)
                            continue
                        records.append({"unit": unit, "shape": list(shape), "dtype": dtype, "backend": name,
                                        "first_s": t["first_s"], "median_s": t["median_s"], "min_s": t["min_s"],
                                        "repeats": repeats, "calls_per_sample": t["calls_per_sample"]})
                        print(f"{unit} {shape} {dtype} {name}: median {fmt_time(t['median_s'])}, "
                              f"min {fmt_time(t['min_s'])}, first {fmt_time(t['first_s'])}", file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()
    report(args, shapes, backends, records, infos)
    return 0


# per unit: (matrix products of B x I x O in forward + backward, transcendentals per row of the forward pass
# as multiples of (in, out): exp/log count)
WORK = {"nalu": (9, (1, 2)), "nac": (3, (0, 0)), "nacmul": (3, (1, 1)), "nau": (3, (0, 0))}


def limits(unit: str, shape: tuple[int, int, int], dtype: str, infos: dict[str, dict]) -> dict[str, float]:
    """Lower bounds on the time of one forward + backward pass on this machine.

    * memory: the least bytes any implementation moves (read ``x`` and ``dy``, write ``y`` and ``dx``) over
      the measured copy bandwidth (read + write);
    * transcendentals: the ``log`` and ``exp`` the math needs (the forward pass's: ``I`` logs and, for the
      NALU, ``2 O`` exps (``m`` and the gate) per row) at the best measured throughput (NumPy's on one thread
      or the Numba kernels' on all threads);
    * flops: the matrix products (NALU: 9 of ``2 B I O`` flops) at NumPy's BLAS rate on square matrices.
    """
    B, I, O = shape
    item = np.dtype(dtype).itemsize
    out: dict[str, float] = {}
    bw = infos.get("numpy", {}).get("copy_bandwidth_GBps")
    if bw:
        out["memory_s"] = B * (2 * I + 2 * O) * item / (bw * 1e9)
    products, (per_in, per_out) = WORK[unit]
    tr = infos.get("numba", {}).get("transcendentals", {}).get(dtype)
    if tr and (per_in or per_out):
        t_exp = min(tr["numpy_exp_s"], tr.get("numba_exp_s", np.inf))
        t_log = min(tr["numpy_log_s"], tr.get("numba_log_s", np.inf))
        out["transcendentals_s"] = B * (per_in * I * t_log + per_out * O * t_exp)
    gf = infos.get("numpy", {}).get("gemm_GFLOPs", {}).get(dtype)
    if gf:
        out["flops_s"] = products * 2.0 * B * I * O / (gf * 1e9)
    return out


def report(args: Any, shapes: list, backends: list[str], records: list[dict], infos: dict[str, dict]) -> None:
    """Ratios of the medians within this run; markdown to stdout, JSON and plot to files."""

    def median_of(unit, shape, dtype, name):
        for r in records:
            if (r["unit"], tuple(r["shape"]), r["dtype"], r["backend"]) == (unit, tuple(shape), dtype, name):
                return r["median_s"]
        return None

    peers_seen = [p for p in PEERS if any(r["backend"] == p for r in records)]
    rows = []
    for r in records:
        key = (r["unit"], tuple(r["shape"]), r["dtype"])
        base = median_of(*key, "numpy")
        r["vs_numpy"] = None if base is None else base / r["median_s"]
        for p in peers_seen:
            pm = median_of(*key, p)
            r[f"vs_{p}"] = None if pm is None else pm / r["median_s"]
        rows.append([r["unit"], "x".join(map(str, r["shape"])), r["dtype"], r["backend"], fmt_time(r["first_s"]),
                     fmt_time(r["median_s"]), fmt_time(r["min_s"]), fmt_ratio(r["vs_numpy"])]
                    + [fmt_ratio(r[f"vs_{p}"]) for p in peers_seen])
    headers = ["unit", "batch x in x out", "dtype", "backend", "first call", "median", "min", "speed-up vs numpy"]
    headers += [f"speed-up vs {p}" for p in peers_seen]
    print(markdown_table(headers, rows))
    irows = []
    for r in records:
        alone = median_of(r["unit"], r["shape"], r["dtype"], "numba") if r["backend"] == INTERLEAVED else None
        if alone:
            r["vs_isolated"] = r["median_s"] / alone
            irows.append([r["unit"], "x".join(map(str, r["shape"])), r["dtype"], fmt_time(alone),
                          fmt_time(r["median_s"]), f"{r['vs_isolated']:.2f}x"])
    if irows:
        print("\nThe numba call right after a numpy-backend call against the numba call alone (target: at most 1.5x):\n")
        print(markdown_table(["unit", "batch x in x out", "dtype", "numba alone", INTERLEAVED, "ratio"], irows))
    lrows = []
    for unit in args.units:
        for shape in shapes:
            for dtype in args.dtypes:
                lim = limits(unit, tuple(shape), dtype, infos)
                if not lim:
                    continue
                bound = max(lim.values())
                best = min((r["median_s"] for r in records if (r["unit"], tuple(r["shape"]), r["dtype"])
                            == (unit, tuple(shape), dtype) and r["backend"] == "numba"), default=None)
                lrows.append([unit, "x".join(map(str, shape)), dtype] + [fmt_time(lim.get(k)) for k in
                             ("memory_s", "transcendentals_s", "flops_s")]
                             + [fmt_time(best), "-" if best is None else f"{best / bound:.1f}x"])
                for r in records:
                    if (r["unit"], tuple(r["shape"]), r["dtype"]) == (unit, tuple(shape), dtype):
                        r["limits"] = lim
    print("\nLower bounds (see limits() in bench/layers.py) and how far the numba backend's median is above the "
          "largest of them:\n")
    print(markdown_table(["unit", "batch x in x out", "dtype", "memory", "transcendentals", "flops (BLAS rate)",
                          "numba median", "median / bound"], lrows))
    base = infos.get("numpy", {})
    print(f"\nmachine: {base.get('cpu')}, {base.get('cpu_count')} cores, simd {base.get('simd')}, "
          f"copy bandwidth {base.get('copy_bandwidth_GBps', float('nan')):.1f} GB/s (read + write), "
          f"load average {base.get('load_avg')}")
    for dt, gf in base.get("gemm_GFLOPs", {}).items():
        print(f"{dt}: NumPy matrix product {gf:.1f} GFLOP/s")
    for dt, t in infos.get("numba", {}).get("transcendentals", {}).items():
        print(f"{dt}: numpy exp {t['numpy_exp_s'] * 1e9:.3f} ns/elem, log {t['numpy_log_s'] * 1e9:.3f} (1 thread); "
              f"numba vexp {t.get('numba_exp_s', float('nan')) * 1e9:.3f}, vlog "
              f"{t.get('numba_log_s', float('nan')) * 1e9:.3f} ns/elem ({t.get('numba_threads')} threads)")
    write_json(args.json, {"machine": infos, "records": records})
    groups = [f"{u} {'x'.join(map(str, s))} {d}" for u in args.units for s in shapes for d in args.dtypes]
    series: dict[str, list[float | None]] = {b: [] for b in backends + peers_seen if b != "numpy"}
    for u in args.units:
        for s in shapes:
            for d in args.dtypes:
                b0 = median_of(u, s, d, "numpy")
                for b in series:
                    m = median_of(u, s, d, b)
                    series[b].append(None if (m is None or b0 is None) else b0 / m)
    bar_plot(args.plot, groups, series, "speed-up over the NumPy reference (median)",
             "forward + backward of one layer, CPU")


if __name__ == "__main__":
    sys.exit(main())
