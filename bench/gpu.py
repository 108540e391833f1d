"""CPU-vs-GPU benchmark of the NALU forward + backward pass (shared weights, the seed-003 unit).

Times, on the same shapes and data: the NumPy reference, the Numba CPU backend (if installed), the ``cupy`` and
``numba-cuda`` backends, and PyTorch CUDA eager (a NALU written with torch operations, backward by autograd;
optional).  For every backend, shape and dtype it reports

* the first call (JIT compilation included) apart from the rest;
* median and min of ``--repeats`` timed calls after ``--warmup`` calls: CUDA events on the GPU, wall clock on
  the CPU;
* achieved bandwidth on the *minimal* bytes of forward + backward: ``x`` and ``dy`` read once, ``y`` and ``dx``
  written once, the weights read once and their gradients written once; and its fraction of the measured
  device-to-device copy bandwidth (a ``copy`` kernel over the same number of bytes, counting read + write);
* host-to-device transfer of the inputs and device-to-host transfer of the results, timed apart (never
  part of the kernel times);
* ratios against NumPy and against PyTorch CUDA eager measured in this run.

It writes a JSON file, a markdown table (stdout and ``--markdown``) and a plot, and checks the targets of the
GPU issue.  It refuses to run under Numba's CUDA simulator (exit status 2): simulated timings mean nothing.

Usage (the whole GPU check, tests included, is ``bash bench/gpu_check.sh``)::

    python bench/gpu.py --json bench/results/gpu.json --plot bench/results/gpu.png
    python bench/gpu.py --quick          # small shapes, few repeats: checks that everything runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
    print("bench/gpu.py: refusing to time under NUMBA_ENABLE_CUDASIM (Numba's CUDA simulator runs kernels as "
          "Python on the CPU; its timings mean nothing). Unset the variable and run on a GPU.", file=sys.stderr)
    sys.exit(2)

import numpy as np  # noqa: E402

import nalu_np as nn  # noqa: E402

DEFAULT_SHAPES = [(16_777_216, 2, 1), (1_048_576, 64, 64), (1_048_576, 2, 1), (65_536, 64, 64)]
QUICK_SHAPES = [(65_536, 2, 1), (8192, 64, 64)]
EPS = 1e-7
PARAMS = ("W_hat", "M_hat", "G")
CPU_BACKENDS = ("numpy", "numba")
GPU_BACKENDS = ("cupy", "numba-cuda")


# ---------------------------------------------------------------------------------------------------------
# data and bytes
# ---------------------------------------------------------------------------------------------------------


def make_data(shape: tuple[int, int, int], dtype: str, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """Host params (scaled so that exp stays finite), ``x`` with magnitudes in [0.5, 2] and random signs, ``dy``."""
    batch, n_in, n_out = shape
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(n_in)
    params = {k: (rng.normal(0.0, scale, (n_in, n_out))).astype(dtype) for k in PARAMS}
    x = (rng.uniform(0.5, 2.0, (batch, n_in)) * rng.choice(np.array([-1.0, 1.0]), (batch, n_in))).astype(dtype)
    dy = rng.normal(0.0, 1.0, (batch, n_out)).astype(dtype)
    return params, x, dy


def minimal_bytes(shape: tuple[int, int, int], dtype: str) -> int:
    """Bytes a fused forward + backward must move: x, dy read; y, dx written; weights read, gradients written."""
    batch, n_in, n_out = shape
    return np.dtype(dtype).itemsize * (2 * batch * n_in + 2 * batch * n_out + 2 * len(PARAMS) * n_in * n_out)


# ---------------------------------------------------------------------------------------------------------
# GPU plumbing: events, synchronisation, copies (CuPy if present, else Numba, else PyTorch)
# ---------------------------------------------------------------------------------------------------------


class Gpu:
    """Events and synchronisation on the legacy default stream, which all the libraries here launch on."""

    def __init__(self) -> None:
        self.lib = None
        for lib in ("cupy", "numba", "torch"):
            try:
                if lib == "cupy":
                    import cupy

                    cupy.cuda.runtime.getDeviceCount()
                    self.cupy = cupy
                elif lib == "numba":
                    from numba import cuda

                    if not cuda.is_available():
                        continue
                    self.cuda = cuda
                else:
                    import torch

                    if not torch.cuda.is_available():
                        continue
                    self.torch = torch
            except Exception:  # noqa: BLE001 - a library that is missing or sees no device is skipped
                continue
            self.lib = lib
            break

    @property
    def available(self) -> bool:
        return self.lib is not None

    def name(self) -> str:
        if self.lib == "cupy":
            props = self.cupy.cuda.runtime.getDeviceProperties(self.cupy.cuda.Device().id)
            return props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        if self.lib == "numba":
            return self.cuda.get_current_device().name.decode()
        return self.torch.cuda.get_device_name()

    def sync(self) -> None:
        if self.lib == "cupy":
            self.cupy.cuda.runtime.deviceSynchronize()
        elif self.lib == "numba":
            self.cuda.synchronize()
        else:
            self.torch.cuda.synchronize()

    def time(self, fn: Callable[[], Any]) -> float:
        """Seconds between CUDA events recorded before and after ``fn()`` on the default stream."""
        if self.lib == "cupy":
            start, end = self.cupy.cuda.Event(), self.cupy.cuda.Event()
            start.record()
            fn()
            end.record()
            end.synchronize()
            return self.cupy.cuda.get_elapsed_time(start, end) / 1e3
        if self.lib == "numba":
            start, end = self.cuda.event(), self.cuda.event()
            start.record()
            fn()
            end.record()
            end.synchronize()
            return self.cuda.event_elapsed_time(start, end) / 1e3
        start, end = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def copy_bandwidth(self, nbytes: int, repeats: int) -> float:
        """Device-to-device copy bandwidth in bytes/s (bytes read + bytes written), median of ``repeats``."""
        n = max(1, nbytes // 2 // 4)
        if self.lib == "cupy":
            src, dst = self.cupy.ones(n, np.float32), self.cupy.empty(n, np.float32)
            copy = lambda: dst.__setitem__(Ellipsis, src)  # noqa: E731
        elif self.lib == "torch":
            src = self.torch.ones(n, dtype=self.torch.float32, device="cuda")
            dst = self.torch.empty_like(src)
            copy = lambda: dst.copy_(src)  # noqa: E731
        else:
            src, dst = self.cuda.to_device(np.ones(n, np.float32)), self.cuda.device_array(n, np.float32)
            copy = lambda: dst.copy_to_device(src)  # noqa: E731
        copy()
        self.sync()
        times = [self.time(copy) for _ in range(repeats)]
        return 2 * 4 * n / statistics.median(times)


# ---------------------------------------------------------------------------------------------------------
# the contenders: each gives (to_device, step, to_host) for one shape and dtype
# ---------------------------------------------------------------------------------------------------------


def nalu_backend_case(name: str) -> Callable[..., Any] | None:
    """A builder for backend ``name`` of nalu_np, or None (with a note) if it cannot run here."""
    try:
        be = nn.get_backend(name)
    except (nn.BackendUnavailableError, ImportError) as err:
        print(f"  skip {name}: {err}", file=sys.stderr)
        return None
    move = getattr(be.module, "asarray", be.xp.asarray)

    def build(params: dict, x: np.ndarray, dy: np.ndarray) -> tuple[Callable, Callable, Callable, Callable]:
        dev: dict[str, Any] = {}

        def to_device() -> None:
            dev["p"] = {k: move(v) for k, v in params.items()}
            dev["x"], dev["dy"] = move(x), move(dy)

        def step() -> Any:
            y, cache = be.nalu_forward(dev["p"], dev["x"], eps=EPS)
            dx, grads = be.nalu_backward(dev["p"], cache, dev["dy"], eps=EPS)
            dev["out"] = (y, dx, grads)
            return dev["out"]

        def forward() -> Any:
            return be.nalu_forward(dev["p"], dev["x"], eps=EPS)

        def to_host() -> tuple:
            y, dx, grads = dev["out"]
            return (nn.backends.to_numpy(y), nn.backends.to_numpy(dx),
                    {k: nn.backends.to_numpy(v) for k, v in grads.items()})

        return to_device, step, forward, to_host

    return build


def torch_case() -> Callable[..., Any] | None:
    """PyTorch CUDA eager: the NALU in torch operations, backward by autograd (TF32 off, as in the others)."""
    try:
        import torch
    except ImportError:
        print("  skip torch: not installed", file=sys.stderr)
        return None
    if not torch.cuda.is_available():
        print("  skip torch: no CUDA device", file=sys.stderr)
        return None
    torch.backends.cuda.matmul.allow_tf32 = False

    def nalu(x: Any, W_hat: Any, M_hat: Any, G: Any) -> Any:
        W = torch.tanh(W_hat) * torch.sigmoid(M_hat)
        g = torch.sigmoid(x @ G)
        m = torch.exp(torch.log(torch.abs(x) + EPS) @ W)
        return g * (x @ W) + (1 - g) * m

    def build(params: dict, x: np.ndarray, dy: np.ndarray) -> tuple[Callable, Callable, Callable, Callable]:
        dev: dict[str, Any] = {}

        def to_device() -> None:
            dev["p"] = [torch.tensor(params[k], device="cuda", requires_grad=True) for k in PARAMS]
            dev["x"] = torch.tensor(x, device="cuda", requires_grad=True)
            dev["dy"] = torch.tensor(dy, device="cuda")

        def step() -> Any:
            y = nalu(dev["x"], *dev["p"])
            grads = torch.autograd.grad(y, [dev["x"], *dev["p"]], grad_outputs=dev["dy"])
            dev["out"] = (y.detach(), grads[0], dict(zip(PARAMS, grads[1:])))
            return dev["out"]

        def forward() -> Any:
            with torch.no_grad():
                return nalu(dev["x"], *dev["p"])

        def to_host() -> tuple:
            y, dx, grads = dev["out"]
            return y.cpu().numpy(), dx.cpu().numpy(), {k: v.cpu().numpy() for k, v in grads.items()}

        return to_device, step, forward, to_host

    return build


# ---------------------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------------------


def measure(builder: Callable, on_gpu: bool, gpu: Gpu, params: dict, x: np.ndarray, dy: np.ndarray,
            warmup: int, repeats: int) -> tuple[dict[str, Any], tuple]:
    """Time one contender on one case (every time in seconds); also return its results on the host."""
    to_device, step, forward, to_host = builder(params, x, dy)
    wall = time.perf_counter
    sync = gpu.sync if on_gpu else (lambda: None)

    def timed(fn: Callable[[], Any]) -> float:
        if on_gpu:
            return gpu.time(fn)
        t0 = wall()
        fn()
        return wall() - t0

    t0 = wall()
    to_device()
    sync()
    h2d = wall() - t0
    t0 = wall()
    step()  # first call: JIT compilation, kernel loading, cuBLAS handles, memory pools
    sync()
    first = wall() - t0
    for _ in range(warmup):
        step()
    sync()
    times = [timed(step) for _ in range(repeats)]
    fwd = [timed(forward) for _ in range(max(1, repeats // 2))]
    t0 = wall()
    outputs = to_host()
    d2h = wall() - t0
    return {"first_call_s": first, "median_s": statistics.median(times), "min_s": min(times),
            "forward_median_s": statistics.median(fwd), "h2d_s": h2d, "d2h_s": d2h, "repeats": repeats}, outputs


def max_error(got: tuple, want: tuple) -> float:
    """Largest deviation from the reference over y, dx and every gradient, relative to each array's largest
    magnitude: a benchmark of wrong results is caught, not reported."""
    pairs = [(got[0], want[0]), (got[1], want[1]), *((got[2][k], want[2][k]) for k in want[2])]
    return max(float(np.max(np.abs(np.asarray(g, np.float64) - w)) / max(float(np.max(np.abs(w))), 1e-300))
               for g, w in pairs)


def run(args: argparse.Namespace) -> dict[str, Any]:
    gpu = Gpu()
    shapes = QUICK_SHAPES if args.quick else [tuple(s) for s in args.shapes]
    contenders: dict[str, tuple[Callable, bool]] = {}
    for name in CPU_BACKENDS:
        if name in args.skip:
            continue
        b = nalu_backend_case(name)
        if b is not None:
            contenders[name] = (b, False)
    for name in GPU_BACKENDS:
        if name in args.skip:
            continue
        b = nalu_backend_case(name) if gpu.available else None
        if b is not None:
            contenders[name] = (b, True)
    if "torch" not in args.skip:
        b = torch_case()
        if b is not None:
            contenders["torch-cuda"] = (b, True)
    if not gpu.available:
        print("bench/gpu.py: no CUDA device: timing the CPU backends only", file=sys.stderr)

    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpu_count": os.cpu_count(), "gpu": gpu.name() if gpu.available else None,
                    "timer": gpu.lib},
        "protocol": {"warmup": args.warmup, "repeats": args.repeats, "cpu_repeats": args.cpu_repeats,
                     "unit": "NALU, shared weights", "eps": EPS},
        "copy_bandwidth_Bps": {},
        "records": [],
    }
    for shape in shapes:
        for dtype in args.dtypes:
            nbytes = minimal_bytes(shape, dtype)
            copy_bw = gpu.copy_bandwidth(nbytes, max(5, args.repeats)) if gpu.available else None
            results["copy_bandwidth_Bps"][f"{shape}-{dtype}"] = copy_bw
            params, x, dy = make_data(shape, dtype)
            reference = None
            print(f"{shape} {dtype}: minimal bytes {nbytes / 1e6:.1f} MB"
                  + (f", copy bandwidth {copy_bw / 1e9:.0f} GB/s" if copy_bw else ""), file=sys.stderr)
            for name, (builder, on_gpu) in contenders.items():
                repeats = args.repeats if on_gpu else args.cpu_repeats
                warmup = args.warmup if on_gpu else 0  # on the CPU the first call warms up enough
                try:
                    rec, outputs = measure(builder, on_gpu, gpu, params, x, dy, warmup, repeats)
                except Exception as err:  # noqa: BLE001 - e.g. out of memory: recorded, the run goes on
                    print(f"  {name}: failed: {type(err).__name__}: {err}", file=sys.stderr)
                    rec, outputs = {"error": f"{type(err).__name__}: {err}"}, None
                if name == "numpy":
                    reference = outputs
                elif reference is not None and outputs is not None:
                    rec["max_rel_error_vs_numpy"] = max_error(outputs, reference)
                del outputs
                rec.update(backend=name, device="gpu" if on_gpu else "cpu", shape=list(shape), dtype=dtype,
                           minimal_bytes=nbytes)
                if "median_s" in rec:
                    rec["GBps"] = nbytes / rec["median_s"] / 1e9
                    rec["copy_fraction"] = (nbytes / rec["median_s"]) / copy_bw if on_gpu and copy_bw else None
                    print(f"  {name:11s} median {rec['median_s'] * 1e3:10.3f} ms  min {rec['min_s'] * 1e3:10.3f} ms"
                          f"  first {rec['first_call_s']:.2f} s  {rec['GBps']:8.1f} GB/s", file=sys.stderr)
                results["records"].append(rec)
    add_ratios(results["records"])
    results["targets"] = check_targets(results["records"])
    return results


def add_ratios(records: list[dict[str, Any]]) -> None:
    """``vs_numpy`` and ``vs_torch``: how many times faster than NumPy / PyTorch CUDA eager, same case."""
    by_case: dict[tuple, dict[str, float]] = {}
    for r in records:
        if "median_s" in r:
            by_case.setdefault((tuple(r["shape"]), r["dtype"]), {})[r["backend"]] = r["median_s"]
    for r in records:
        if "median_s" not in r:
            continue
        case = by_case[(tuple(r["shape"]), r["dtype"])]
        r["vs_numpy"] = case["numpy"] / r["median_s"] if "numpy" in case else None
        r["vs_torch"] = case["torch-cuda"] / r["median_s"] if "torch-cuda" in case else None


def check_targets(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, per nalu_np GPU backend, from this run's records."""
    def rec(backend: str, shape: tuple, dtype: str) -> dict[str, Any] | None:
        for r in records:
            if r["backend"] == backend and tuple(r["shape"]) == shape and r["dtype"] == dtype and "median_s" in r:
                return r
        return None

    out = []
    for backend in GPU_BACKENDS:
        small = rec(backend, (16_777_216, 2, 1), "float32")
        big = rec(backend, (1_048_576, 64, 64), "float32")
        checks = [
            ("(16777216, 2, 1) float32: >= 50% of copy bandwidth", small, "copy_fraction", 0.5),
            ("(16777216, 2, 1) float32: >= 5x PyTorch CUDA eager", small, "vs_torch", 5.0),
            ("(1048576, 64, 64) float32: no slower than PyTorch CUDA eager", big, "vs_torch", 1.0),
        ]
        for what, r, key, need in checks:
            value = None if r is None else r.get(key)
            out.append({"backend": backend, "target": what, "value": value,
                        "met": None if value is None else bool(value >= need)})
    return out


# ---------------------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    def gpu_only(r: dict[str, Any], key: str) -> float | None:  # transfers in ms, GPU contenders only
        return r[key] * 1e3 if r["device"] == "gpu" else None

    lines = [f"GPU: {results['machine']['gpu']}; CPU threads: {results['machine']['cpu_count']}; "
             f"NALU forward + backward, median / min of {results['protocol']['repeats']} (GPU) or "
             f"{results['protocol']['cpu_repeats']} (CPU) runs after warm-up; transfers not included.", "",
             "| shape | dtype | backend | median ms | min ms | first call s | GB/s (minimal bytes) "
             "| of copy BW | × NumPy | × PyTorch | H→D ms | D→H ms | max rel. error vs NumPy |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["records"]:
        if "median_s" not in r:
            lines.append(f"| {tuple(r['shape'])} | {r['dtype']} | {r['backend']} | failed: {r['error']} "
                         "| | | | | | | | | |")
            continue
        frac = r.get("copy_fraction")
        lines.append(
            f"| {tuple(r['shape'])} | {r['dtype']} | {r['backend']} | {r['median_s'] * 1e3:.3f} | "
            f"{r['min_s'] * 1e3:.3f} | {r['first_call_s']:.2f} | {r['GBps']:.1f} | "
            f"{'–' if frac is None else f'{frac:.0%}'} | {f(r.get('vs_numpy'), '.1f')} | "
            f"{f(r.get('vs_torch'), '.2f')} | {f(gpu_only(r, 'h2d_s'), '.1f')} | {f(gpu_only(r, 'd2h_s'), '.1f')} | "
            f"{f(r.get('max_rel_error_vs_numpy'), '.1e')} |")
    lines += ["", "| backend | target | value | met |", "|---|---|---:|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['backend']} | {t['target']} | {f(t['value'], '.2f')} | "
                     f"{'–' if t['met'] is None else ('yes' if t['met'] else 'NO')} |")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench/gpu.py: matplotlib is not installed, no plot (pip install 'nalu-np[plot]')", file=sys.stderr)
        return
    records = [r for r in results["records"] if "median_s" in r]
    cases = sorted({(tuple(r["shape"]), r["dtype"]) for r in records}, key=lambda c: (c[1], c[0]))
    backends = list(dict.fromkeys(r["backend"] for r in records))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(cases)), 4.5))
    width = 0.8 / max(1, len(backends))
    for b_i, backend in enumerate(backends):
        xs, ys = [], []
        for c_i, (shape, dtype) in enumerate(cases):
            for r in records:
                if r["backend"] == backend and tuple(r["shape"]) == shape and r["dtype"] == dtype:
                    xs.append(c_i + (b_i - (len(backends) - 1) / 2) * width)
                    ys.append(r["median_s"] * 1e3)
        ax.bar(xs, ys, width, label=backend)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([f"{s[0]}×{s[1]}×{s[2]}\n{d}" for s, d in cases], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("NALU forward + backward, median ms (log)")
    ax.set_title(f"nalu-np backends on {results['machine']['gpu'] or 'CPU only'}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        b, i, o = (int(v) for v in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shape is B,I,O (e.g. 16777216,2,1), got {text!r}") from None
    return b, i, o


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", type=parse_shape, nargs="+", default=DEFAULT_SHAPES, metavar="B,I,O")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=30, help="timed runs per GPU case (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs after the first call (GPU)")
    p.add_argument("--cpu-repeats", type=int, default=2, help="timed runs per CPU case (default 2)")
    p.add_argument("--skip", nargs="*", default=[], choices=[*CPU_BACKENDS, *GPU_BACKENDS, "torch"],
                   help="contenders to leave out")
    p.add_argument("--quick", action="store_true", help="small shapes and few repeats: a smoke run")
    p.add_argument("--json", type=Path, default=Path("bench/results/gpu.json"))
    p.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    p.add_argument("--plot", type=Path, default=Path("bench/results/gpu.png"))
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup, args.cpu_repeats = 3, 1, 1
    results = run(args)
    table = markdown(results)
    print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")
    plot(results, args.plot)
    print(f"wrote {args.json} and {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
