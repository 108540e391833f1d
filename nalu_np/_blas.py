"""The NumPy reference's matrix products on the calling thread when its weights are small.

A threaded BLAS keeps its worker threads busy after a product that it split between them: OpenBLAS's spin,
without yielding, for ``2**28`` time-stamp-counter ticks (about 0.1 s at 2.4 GHz; ``OPENBLAS_THREAD_TIMEOUT``
read when the library loads, ``blas_thread_server`` in OpenBLAS's ``driver/others/blas_server.c``), and limiting
its threads afterwards does not stop them.  A parallel Numba kernel called in that time shares the cores with
them: at ``(1048576, 2, 1)`` on two cores the numba backend's NALU forward + backward took 2 to 6 times longer
right after a numpy-backend call (``bench/layers.py --interleaved``).  The reference's products of a batch with
small weights (``x @ W`` with ``x`` (1048576, 2)) are memory-bound and measured faster on one thread than on two
here, so :func:`on_caller` runs them on the calling thread, and no worker is woken up.

The limit uses threadpoolctl (``pip install "nalu-np[blas]"``, imported on first use) and lasts for the call
only; like every BLAS thread setting it is process-wide while it lasts.  Without threadpoolctl the products run
as BLAS decides (the same values; only what runs next may be slower) and :func:`limited` says False.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["SMALL_WEIGHTS", "THREADED_WORK", "limited", "on_caller"]

#: a kernel whose every parameter has fewer elements than this runs its BLAS products on the calling thread ...
SMALL_WEIGHTS = 1024
#: ... when its batch rows times its largest parameter's elements exceed this: OpenBLAS runs smaller products
#: (``M N K <= 65536 * 4``, ``GEMM_MULTITHREAD_THRESHOLD``) on the caller anyway, and setting the limit costs
#: some 30 us a call, as much as a whole small call
THREADED_WORK = 1 << 18
_controller: list[Any] = []  # threadpoolctl's controller of the BLAS libraries, or None; found on first use


def _blas() -> Any:
    if not _controller:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # optional: the reference computes the same values without it
            _controller.append(None)
        else:
            _controller.append(ThreadpoolController().select(user_api="blas"))
    return _controller[0]


def limited() -> bool:
    """Whether :func:`on_caller` limits the BLAS threads (threadpoolctl is installed)."""
    return _blas() is not None


def _rows(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The batch size of a kernel call: the rows of its first 2-d array after ``params`` (``x`` or ``dy``)."""
    return next((int(a.shape[0]) for a in (*args[1:], *kwargs.values()) if getattr(a, "ndim", 0) == 2), 0)


def on_caller(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel(params, ...)`` with one BLAS thread while it runs when every array of ``params`` has fewer than
    :data:`SMALL_WEIGHTS` elements, the batch is large enough for BLAS to thread (:data:`THREADED_WORK`) and
    threadpoolctl is installed; else with BLAS's own threads."""

    @functools.wraps(kernel)
    def scoped(*args: Any, **kwargs: Any) -> Any:
        params = args[0] if args else kwargs["params"]
        sizes = [getattr(p, "size", 0) for p in params.values()]
        if (not sizes or max(sizes) >= SMALL_WEIGHTS or _rows(args, kwargs) * max(sizes) <= THREADED_WORK
                or not limited()):
            return kernel(*args, **kwargs)
        with _blas().limit(limits=1):
            return kernel(*args, **kwargs)

    return scoped
