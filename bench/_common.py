"""Shared helpers of the CPU benchmarks (bench/layers.py, bench/train.py): timing, machine facts, limits, output.

Protocol (DESIGN section 8): every figure is the median and the min of repeated runs after warm-up; the first
call (JIT compilation included) is reported apart; ratios are taken between figures measured in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], Any], *, repeats: int, warmup: int = 2, min_time: float = 0.0) -> dict[str, Any]:
    """Time ``fn()``: the first call apart, then ``warmup`` untimed calls, then ``repeats`` timed calls.

    Each timed sample is the mean of ``n`` back-to-back calls, ``n`` chosen so that a sample lasts at least
    ``min_time`` seconds (for calls of microseconds, where a single call is below the clock's resolution).

    Returns
    -------
    dict
        ``first_s``, ``median_s``, ``min_s`` (seconds per call), ``samples``, ``calls_per_sample``.
    """
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    n = 1
    if min_time > 0:
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-9)
        n = max(1, int(min_time / one))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return {"first_s": first, "median_s": statistics.median(samples), "min_s": min(samples),
            "samples": samples, "calls_per_sample": n}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags"))
        info["simd"] = [f for f in ("avx2", "fma", "avx512f") if f in flags.split()]
    except (OSError, StopIteration):
        pass
    for mod in ("numba", "torch", "jax"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    try:
        import numba

        info["numba_threads"] = numba.get_num_threads()
    except ImportError:
        pass
    return info


def copy_bandwidth(nbytes: int = 256 << 20, repeats: int = 5) -> float:
    """Memory bandwidth in bytes/s of ``np.copyto`` on ``nbytes`` arrays, counting the read and the write."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    t = timed(lambda: np.copyto(b, a), repeats=repeats, warmup=1)
    return 2 * a.nbytes / t["min_s"]


def gemm_rate(dtype: Any = np.float32, n: int = 1024, repeats: int = 5) -> float:
    """Floating-point operations per second of NumPy's matrix product (BLAS, all its threads), ``n x n``."""
    a = np.random.default_rng(0).normal(size=(n, n)).astype(dtype)
    t = timed(lambda: a @ a, repeats=repeats, warmup=1)
    return 2.0 * n**3 / t["min_s"]


def transcendental_throughput(dtype: Any = np.float32, n: int = 1 << 14, repeats: int = 7) -> dict[str, float]:
    """Seconds per element of exp and log: NumPy's (one thread) and the Numba kernels' (all threads).

    The arrays fit in the L1/L2 caches, so memory traffic does not count.
    """
    x = np.random.default_rng(0).uniform(0.5, 2.0, n).astype(dtype)
    out = np.empty_like(x)
    res = {
        "numpy_exp_s": timed(lambda: np.exp(x, out=out), repeats=repeats, min_time=0.01)["min_s"] / n,
        "numpy_log_s": timed(lambda: np.log(x, out=out), repeats=repeats, min_time=0.01)["min_s"] / n,
    }
    try:
        from numba import njit, prange

        from nalu_np.kernels.numba._math import vexp, vlog
    except ImportError:
        return res
    import numba

    threads = numba.get_num_threads()
    xs = np.tile(x, (threads, 1))
    outs = np.empty_like(xs)

    @njit(parallel=True, error_model="numpy")
    def par_exp(a, o):
        for t in prange(a.shape[0]):
            for i in range(a.shape[1]):
                o[t, i] = vexp(a[t, i])

    @njit(parallel=True, error_model="numpy")
    def par_log(a, o):
        for t in prange(a.shape[0]):
            for i in range(a.shape[1]):
                o[t, i] = vlog(a[t, i])

    res["numba_exp_s"] = timed(lambda: par_exp(xs, outs), repeats=repeats, min_time=0.01)["min_s"] / xs.size
    res["numba_log_s"] = timed(lambda: par_log(xs, outs), repeats=repeats, min_time=0.01)["min_s"] / xs.size
    res["numba_threads"] = threads
    return res


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_time(seconds: float | None) -> str:
    """Milliseconds with three significant digits (``-`` for missing)."""
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g} ms" if ms >= 0.01 else f"{ms * 1e3:.3g} us"


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if not path:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    print(f"wrote {p}", file=sys.stderr)


def bar_plot(path: str | None, groups: list[str], series: dict[str, list[float | None]], ylabel: str,
             title: str) -> None:
    """A grouped bar chart (log scale) of ``series`` over ``groups``; needs matplotlib."""
    if not path:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install 'nalu-np[plot]'", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(groups)), 4.0))
    width = 0.8 / max(1, len(series))
    for k, (name, vals) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0.0 for v in vals], width, label=name)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=20, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------------
# one process per contender
# ---------------------------------------------------------------------------------------------------------


class Worker:
    """A contender (a backend or a peer framework) in its own process, driven over stdin/stdout JSON lines.

    Each framework keeps its own thread pools (Numba's OpenMP threads, OpenBLAS's, PyTorch's, XLA's); in one
    process, threads that spin-wait after their parallel region steal the two cores from the next framework's.
    One process each, timed one at a time in turn, measures each alone on the machine, and interleaving the
    contenders spreads any change of the machine's load over all of them.
    """

    def __init__(self, script: str, name: str, threads: int | None = None) -> None:
        self.name = name
        env = dict(os.environ)
        if threads is not None:  # every thread pool of the worker: OpenMP (Numba's, PyTorch's), BLAS, XLA
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
                env[var] = str(threads)
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_cpu_multi_thread_eigen={threads > 1}"
                                ).strip().replace("True", "true").replace("False", "false")
        self.proc = subprocess.Popen([sys.executable, script, "--worker", name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1, env=env)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the worker's answer (``{"error": ...}`` if it failed or died)."""
        try:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError) as err:
            return {"error": f"worker {self.name} died: {err}"}
        if not line:
            return {"error": f"worker {self.name} exited with status {self.proc.wait()}"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def serve(handler: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """The worker's loop: one JSON request per line on stdin, one JSON answer per line on stdout."""
    out = sys.stdout
    sys.stdout = sys.stderr  # anything else printed goes to stderr, never into the protocol
    for line in sys.stdin:
        try:
            answer = handler(json.loads(line))
        except Exception as err:  # reported to the driver, which records it and goes on
            answer = {"error": f"{type(err).__name__}: {err}"}
        out.write(json.dumps(answer, default=float) + "\n")
        out.flush()
    return 0


def peer_available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it into the driver)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None
