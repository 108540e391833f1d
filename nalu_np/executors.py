"""Where a sweep's runs execute (``--executor`` of ``nalu-np sweep`` and ``nalu-np reproduce``).

===================  ========================================================================================
``local``            the sweep's own pool of local processes (the default; :func:`nalu_np.sweep.run_sweep`)
``dask:ADDRESS``     a Dask scheduler (``tcp://host:8786``): ``distributed.Client(ADDRESS).get_executor(
                     pure=False)``, one task per job (every run is new work, never a cached result)
``submitit:FOLDER``  submitit's ``AutoExecutor(FOLDER)``: Slurm jobs on a cluster that has Slurm, its local
                     executor (one subprocess per job) elsewhere; logs and pickles in ``FOLDER``
``ray:ADDRESS``      a Ray cluster (``ray:auto``, ``ray:ray://host:10001``) or, with ``ray:local``, a Ray instance
                     started on this machine: one remote task per job, its ``ObjectRef.future()``
===================  ========================================================================================

The coordinator stays where the command runs: it writes each run's record as its job finishes, so an
interrupted sweep resumes from what is on disk whatever executed the runs.  With another executor than the
local pool each job is one seed unless ``--seeds-per-call`` says more.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import threading
from typing import Any, Callable, Iterator

__all__ = ["KINDS", "executor_spec", "open_executor", "SubmititExecutor", "RayExecutor"]

KINDS = ("local", "dask:ADDRESS", "submitit:FOLDER", "ray:ADDRESS")


def executor_spec(text: str) -> str:
    """An argparse type: ``local``, ``dask:ADDRESS``, ``submitit:FOLDER`` or ``ray:ADDRESS``."""
    kind, sep, where = text.partition(":")
    if text == "local" or (sep and where and kind in ("dask", "submitit", "ray")):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(KINDS)}, got {text!r}")


def _need(module: str, pip: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModuleNotFoundError(f"this executor needs {pip}: pip install {pip}, or pip install "
                                  "'nalu-np[cluster]'") from None


@contextlib.contextmanager
def open_executor(spec: str) -> Iterator[cf.Executor | None]:
    """The executor of ``spec`` for the duration of the block (None for ``local``: the sweep's own pool)."""
    kind, _, where = spec.partition(":")
    if spec == "local":
        yield None
    elif kind == "dask":
        distributed = _need("distributed", "distributed")
        with distributed.Client(where) as client:
            yield client.get_executor(pure=False)
    elif kind == "submitit":
        submitit = _need("submitit", "submitit")
        with SubmititExecutor(submitit.AutoExecutor(folder=where)) as executor:
            yield executor
    elif kind == "ray":
        ray = _need("ray", "ray")
        ray.init(address=None if where == "local" else where, include_dashboard=False, log_to_driver=False)
        try:
            with RayExecutor(ray) as executor:
                yield executor
        finally:
            ray.shutdown()
    else:
        raise ValueError(f"unknown executor {spec!r}; one of {', '.join(KINDS)}")


class SubmititExecutor(cf.Executor):
    """submitit's executor as a :class:`concurrent.futures.Executor`: ``submit`` returns a Future that a
    watcher thread completes when the job ends (submitit's jobs are not futures).

    Parameters
    ----------
    executor : submitit.AutoExecutor or similar
        Anything whose ``submit(fn, *args)`` returns a job with ``done()`` and ``result()``.
    poll : float
        Seconds between looks at the unfinished jobs.
    """

    def __init__(self, executor: Any, poll: float = 0.5) -> None:
        self._executor, self._poll = executor, poll
        self._jobs: list[tuple[Any, cf.Future]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="nalu-np-submitit-watch", daemon=True)
        self._watcher.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        if self._stop.is_set():
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        job = self._executor.submit(fn, *args, **kwargs)
        with self._lock:
            self._jobs.append((job, future))
        return future

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            with self._lock:
                finished = [(j, f) for j, f in self._jobs if j.done()]
                self._jobs = [(j, f) for j, f in self._jobs if not j.done()]
            for job, future in finished:
                try:
                    future.set_result(job.result())
                except Exception as err:  # noqa: BLE001 - the job's failure is the future's
                    future.set_exception(err)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for the unfinished jobs (``wait``), or cancel them (``cancel_futures``), then stop watching."""
        if cancel_futures:
            with self._lock:
                jobs, self._jobs = self._jobs, []
            for job, future in jobs:
                job.cancel(check=False)
                future.set_exception(cf.CancelledError(f"job {job.job_id} cancelled"))
        while wait:
            with self._lock:
                if not self._jobs:
                    break
            self._stop.wait(self._poll)
        self._stop.set()
        self._watcher.join(timeout=5)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """On an error or an interrupt the unfinished jobs are cancelled instead of waited for."""
        self.shutdown(wait=exc_type is None, cancel_futures=exc_type is not None)


class RayExecutor(cf.Executor):
    """Ray as a :class:`concurrent.futures.Executor`: ``submit(fn, *args)`` runs ``fn`` as a remote task and
    returns its ``ObjectRef.future()``.

    Parameters
    ----------
    ray : module
        The ``ray`` module, initialised (``ray.init``).
    """

    def __init__(self, ray: Any) -> None:
        self._ray = ray
        self._remote: dict[Callable[..., Any], Any] = {}
        self._refs: list[Any] = []
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(fn)
        ref = remote.remote(*args, **kwargs)
        self._refs.append(ref)
        return ref.future()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for the submitted tasks (``wait``), or cancel them (``cancel_futures``)."""
        self._closed = True
        if cancel_futures:
            for ref in self._refs:
                self._ray.cancel(ref, force=True)
        elif wait and self._refs:
            self._ray.wait(self._refs, num_returns=len(self._refs))
        self._refs = []

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """On an error or an interrupt the unfinished tasks are cancelled instead of waited for."""
        self.shutdown(wait=exc_type is None, cancel_futures=exc_type is not None)
