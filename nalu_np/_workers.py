"""Worker processes that never outlive the sweep that started them.

A sweep's coordinator owns its process pool.  Three things make sure no worker survives it:

* each worker's initializer (:func:`watch_parent`) asks the kernel for ``SIGKILL`` when its parent dies
  (Linux ``prctl(PR_SET_PDEATHSIG)``) and, on every platform, starts a thread that ends the worker at once
  when its parent process is gone (the parent id changes) -- so a ``kill -9`` of the coordinator, or the OOM
  killer, takes the workers with it instead of leaving them to finish their runs and block on a dead pipe;
* :func:`terminate_on_sigterm` turns ``SIGTERM`` (what schedulers send) into ``KeyboardInterrupt``, so it
  ends a sweep as Ctrl-C does;
* on an interrupt the coordinator :func:`stop` s its workers instead of waiting for the runs in flight
  (they are not written, and run again when the sweep resumes).

The workers are started with ``spawn`` (:data:`CONTEXT`), not ``fork``: a process that has run a parallel Numba
kernel has thread pools that a forked child cannot use (its worker dies at its first parallel kernel), and the
compiled kernels come from Numba's on-disk cache, so a fresh interpreter starts in about a second.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
from typing import Iterator

__all__ = ["CONTEXT", "watch_parent", "start_worker", "terminate_on_sigterm", "stop", "POLL_SECONDS"]

CONTEXT = multiprocessing.get_context("spawn")  # how the sweep starts its workers (see the module docstring)
POLL_SECONDS = 0.2  # how often a worker looks for its parent
_PR_SET_PDEATHSIG = 1


def watch_parent(parent: int) -> None:
    """Initializer of a worker process: end this process when process ``parent`` is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the thread below still does the job
            pass
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)

    def watch() -> None:
        stop_event = threading.Event()
        while not stop_event.wait(POLL_SECONDS):
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="nalu-np-parent-watch", daemon=True).start()


def start_worker(parent: int, threads: int) -> None:
    """Initializer of a sweep's worker: :func:`watch_parent`, and at most ``threads`` Numba threads (the
    pool's workers share the cores instead of each starting a thread per core)."""
    watch_parent(parent)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    else:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Inside the block, ``SIGTERM`` raises ``KeyboardInterrupt`` in the main thread (elsewhere: no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop(executor: cf.ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the pool's worker processes now."""
    processes = list(getattr(executor, "_processes", {}).values())  # the pool's own bookkeeping
    executor.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.kill()
    for p in processes:
        p.join(timeout=5)
