"""Multi-seed sweeps: many (task, unit, seed) runs in parallel, resumable, summarised as the papers do.

::

    from nalu_np.sweep import Config, run_sweep, markdown_table
    configs = [Config("simple-mul", "NMU", {"steps": 50_000}), Config("simple-mul", "NALU", {"steps": 50_000})]
    rows = run_sweep(configs, range(20), "runs/sft")       # local processes, one per core
    print(markdown_table(rows))

Each run trains with :func:`nalu_np.train`, the compiled engine where it applies (``engine="auto"``, the
default) or the one asked for; every record says which engine and backend ran it.

Runs go through any :class:`concurrent.futures.Executor`: only ``submit()`` and the futures it returns are
used, so ``distributed.Client(...).get_executor()`` (Dask) or a ``ThreadPoolExecutor`` work unchanged.  The
default is a local ``ProcessPoolExecutor`` with ``os.cpu_count()`` workers.

On disk (``out_dir``)::

    <config key>/config.json        the task, unit and task options of the configuration
    <config key>/seed-000007.json   one finished run: verdict, metrics at every evaluation, final weights

Each seed file is written by the coordinating process as soon as its run finishes, atomically (a temporary
file in the same directory, then ``os.replace``), so an interrupted sweep loses only the runs in flight, and
a seed whose file exists is never run again: running the same sweep again finishes what is missing.  The
config key is the task name, the unit and a hash of the task options, so other options never mix into the
same results.  A run that raises is reported and written nowhere (it runs again next time).
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures as cf
import contextlib
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TextIO

from . import _workers
from ._files import write_atomic
from ._checks import positive_int
from .executors import open_executor
from ._options import add_backend_and_steps, add_seeds, add_workers, seed_range
from .summary import Row, markdown_table, plot, summarize
from .training import ENGINES, compiled_unsupported, train_many

__all__ = ["ENGINES", "Config", "Row", "SweepLockedError", "run_seed", "run_seeds", "run_sweep", "load_results", "summarize", "markdown_table", "plot",
           "add_arguments", "run_from_args", "main"]


# ---------------------------------------------------------------------------------------------------------
# configurations and single runs
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One row of a sweep: a registered task, the unit to train and the task's options.

    Attributes
    ----------
    task : str
        A name of :data:`nalu_np.tasks.TASKS` (e.g. ``"simple-mul"``; importing :mod:`nalu_np.arithmetic`
        registers the papers' tasks).
    unit : str, optional
        The unit, passed to the task factory as ``unit=`` (None: the task's default).
    options : dict
        Further keyword arguments of the task factory (``steps``, ``eval_every``, ``range``, ...).  JSON
        values only.  The seed is passed as ``seed=`` to factories that take one.
    """

    task: str
    unit: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def factory_options(self) -> dict[str, Any]:
        """The keyword arguments of the task factory, the seed aside."""
        return {**({"unit": self.unit} if self.unit is not None else {}), **dict(self.options)}

    @property
    def key(self) -> str:
        """Directory name: ``<task>_<unit>_<hash of the options>``."""
        blob = json.dumps(self.factory_options(), sort_keys=True)
        digest = hashlib.sha1(blob.encode()).hexdigest()[:8]
        return f"{self.task}_{self.unit or 'default'}_{digest}"

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "unit": self.unit, "options": dict(self.options)}

    def canonical(self) -> "Config":
        """The same configuration as the task spells it: the unit's name from the unit table, and the task's
        default unit made explicit, so ``simple-add``, ``simple-add:nau`` and ``simple-add:NAU`` are one
        configuration (one directory, one resume).  A task whose factory takes no unit (the seed experiments) keeps
        none."""
        accepted = _factory_options(self.task)
        if self.unit is None and accepted is not None and "unit" not in accepted:
            return Config(self.task, None, dict(self.options))
        unit = getattr(_build_task(self, 0), "unit", self.unit)
        return Config(self.task, unit if isinstance(unit, str) else self.unit, dict(self.options))

    def __hash__(self) -> int:  # the options are a dict: hash by the key that names them
        return hash(self.key)


def _factory_options(task: str) -> list[str] | None:
    """The keyword arguments the factory of ``task`` takes (None: any, or not inspectable)."""
    import inspect

    from .tasks import TASKS

    factory = TASKS.get(task)
    if factory is None:
        return None
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "op"]


def _build_task(config: Config, seed: int) -> Any:
    from .tasks import get_task

    options = config.factory_options()
    accepted = _factory_options(config.task)
    if accepted is not None:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(f"task {config.task!r} has no option {', '.join(map(repr, unknown))}; its options: "
                             f"{', '.join(k for k in accepted if k != 'seed')}")
        if "seed" in accepted:
            options["seed"] = seed
    return get_task(config.task, **options)


def _fresh_run(config: Config, seed: int) -> tuple[Any, Any]:
    """The task of ``config`` for ``seed`` and its untrained model (initial weights from the first generator
    of :func:`nalu_np.tasks.seed_rngs`)."""
    from .tasks import seed_rngs

    task = _build_task(config, seed)
    return task, task.build_model(seed_rngs(seed)[0])


def run_seed(config: Config | Mapping[str, Any], seed: int, backend: str | None = None,
             engine: str = "auto") -> dict[str, Any]:
    """Train one fresh model of ``config`` with ``seed`` and return its record (a JSON-serialisable dict).

    The model's initial weights come from the first generator of :func:`nalu_np.tasks.seed_rngs` and the
    batches from the second, so a seed gives the same run in any process.

    Parameters
    ----------
    config : Config
    seed : int
    backend : str, optional
        Backend of :func:`nalu_np.train` (default: the active one).
    engine : {"auto", "python", "compiled"}
        The engine of :func:`nalu_np.train`.  The compiled engine draws its batches inside the kernel: the
        same distribution as the Python engine but other numbers, so a seed's run differs between the
        engines; it is tens of times faster.

    Returns
    -------
    dict
        ``config``, ``seed``, ``engine``, ``backend``, ``task``, ``op``, ``unit``, ``model`` (the network in
        words), ``threshold``, ``steps``, the task's verdict (``success``, ``best_step``, ``interpolation_mse``,
        ``extrapolation_mse``, ``sparsity_error``, ``solved_at`` for tasks with ``outcome()``), and ``run``:
        :meth:`nalu_np.training.TrainResult.to_dict`.
    """
    from .training import train

    config = _as_config(config)
    task, model = _fresh_run(config, seed)
    if backend not in (None, "numpy", "numba"):
        model = model.to(backend)  # a device backend: the compiled engine does not apply there
    result = train(model, task, seed=seed, engine=engine, backend=backend, progress=False)
    return _record(config, task, model, result)


def run_seeds(config: Config | Mapping[str, Any], seeds: Sequence[int], backend: str | None = None,
              engine: str = "auto") -> list[dict[str, Any]]:
    """The records of :func:`run_seed` for each of ``seeds``, the same ones, trained together in compiled
    calls (:func:`nalu_np.training.train_many`) where the compiled engine applies and ``engine`` allows it,
    else one after the other."""
    config = _as_config(config)
    runs = [_fresh_run(config, s) for s in seeds]
    batch = len(runs) > 1 and engine != "python" and backend in (None, "numpy", "numba") and all(
        compiled_unsupported(model, task, backend) is None for task, model in runs)
    if not batch:
        return [run_seed(config, s, backend, engine) for s in seeds]
    results = train_many([m for _, m in runs], [t for t, _ in runs], list(seeds))
    return [_record(config, task, model, result) for (task, model), result in zip(runs, results)]


def _as_config(config: Config | Mapping[str, Any]) -> Config:
    return config if isinstance(config, Config) else Config(config["task"], config.get("unit"),
                                                           config.get("options", {}))


def _record(config: Config, task: Any, model: Any, result: Any) -> dict[str, Any]:
    """The record of one finished run (see :func:`run_seed`)."""
    verdict = task.outcome(result.evaluations) if callable(getattr(task, "outcome", None)) else {}
    verdict["success"] = bool(result.success)  # False for a diverged run whatever the evaluations say
    units = [type(layer).__name__ for layer in getattr(model, "layers", [model])]
    return {
        "config": config.to_dict(),
        "seed": int(result.seed),
        "engine": result.engine,
        "backend": result.backend,
        "task": task.name,
        "op": getattr(task, "symbol", task.name),
        "unit": getattr(task, "unit", units[-1]),
        "model": " -> ".join(units),
        "threshold": getattr(task, "threshold", None),
        "steps": result.steps,
        "diverged": result.diverged,
        "wall_time": result.wall_time,
        **{k: _json_value(v) for k, v in verdict.items()},
        "run": result.to_dict(),
    }


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


# ---------------------------------------------------------------------------------------------------------
# results on disk
# ---------------------------------------------------------------------------------------------------------


def _seed_path(out_dir: str, config: Config, seed: int) -> str:
    return os.path.join(out_dir, config.key, f"seed-{seed:06d}.json")


def _write_atomic(path: str, data: Any) -> None:
    """Write JSON to ``path`` so that readers see the old file or the whole new one, never a part.

    See :func:`nalu_np._files.write_atomic`: the file gets mode ``0o666 & ~umask``, a symbolic link is written
    through, and temporary files of killed writers are removed.
    """
    encoded = json.dumps(data).encode()
    write_atomic(path, lambda f: f.write(encoded))


def _prepare(out_dir: str, config: Config) -> None:
    directory = os.path.join(out_dir, config.key)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "config.json")
    if not os.path.exists(path):
        _write_atomic(path, config.to_dict())


class SweepLockedError(OSError):
    """Another sweep holds the lock of the results directory."""


#: keys every trusted per-seed record has
RECORD_KEYS = ("config", "seed", "engine", "success", "steps", "run")


def _read_record(path: str, config: Config, seed: int, stream: TextIO | None = None) -> dict[str, Any] | None:
    """The record in ``path`` if it is one of ``config`` with ``seed``; else None, and a file that is there but
    is not such a record (truncated, not JSON, another seed's or configuration's) is set aside as
    ``<name>.bad-<n>`` with a warning naming it, so that the seed runs again."""
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        problem = f"unreadable ({type(err).__name__}: {err})"
    else:
        if not isinstance(record, dict) or any(k not in record for k in RECORD_KEYS):
            problem = "not a result record (keys missing)"
        elif record["seed"] != seed:
            problem = f"the record of seed {record['seed']!r}, not of seed {seed}"
        elif record["config"] != config.to_dict():
            problem = f"a record of another configuration ({record['config']!r})"
        else:
            return record
    n = 0
    while os.path.exists(f"{path}.bad-{n}"):
        n += 1
    os.replace(path, f"{path}.bad-{n}")
    print(f"nalu-np sweep: warning: {path} is {problem}; set aside as {path}.bad-{n}, the seed runs again",
          file=sys.stderr if stream is None else stream)
    return None


def _read_config(directory: str) -> Config | None:
    try:
        with open(os.path.join(directory, "config.json")) as f:
            c = json.load(f)
        return Config(c["task"], c.get("unit"), c.get("options", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def load_results(out_dir: str) -> dict[Config, list[dict[str, Any]]]:
    """Every finished run under ``out_dir``, by configuration, in seed order (files that are not a run of their
    directory's configuration and seed are set aside, see :func:`_read_record`)."""
    results: dict[Config, list[dict[str, Any]]] = {}
    if not os.path.isdir(out_dir):
        return results
    for key in sorted(os.listdir(out_dir)):
        directory = os.path.join(out_dir, key)
        config = _read_config(directory)
        if config is None:
            continue
        records = []
        for name in sorted(os.listdir(directory)):
            stem = name[len("seed-"):-len(".json")]
            if name.startswith("seed-") and name.endswith(".json") and stem.isdigit():
                record = _read_record(os.path.join(directory, name), config, int(stem))
                if record is not None:
                    records.append(record)
        results[config] = sorted(records, key=lambda r: r["seed"])
    return results


@contextlib.contextmanager
def _exclusive(out_dir: str) -> Iterator[None]:
    """Hold the lock of ``out_dir`` (``out_dir/.lock``, ``flock``): one sweep writes into a directory at a time.
    The lock goes with the process that holds it, also when it is killed."""
    import fcntl

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, ".lock"), "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise SweepLockedError(f"another sweep ({holder}) is writing into {out_dir}; wait for it, or use "
                                   "another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------------------------


class _Progress:
    """One status line on stderr: rewritten in place on a terminal, a line per finished run otherwise."""

    def __init__(self, total: int, skipped: int, stream: TextIO | None, enabled: bool) -> None:
        self.total, self.skipped = total, skipped
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = self.ok = self.failed = 0
        self.t0 = time.perf_counter()

    def update(self, running: int, last: str = "") -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        line = (f"[sweep] [{bar}] {self.done}/{self.total} runs ({self.ok} solved, {self.failed} errors, "
                f"{running} queued or running, {self.skipped} done before)  {elapsed:.0f}s elapsed"
                + (f", eta {eta:.0f}s" if self.done else "") + (f"  {last}" if last else ""))
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


#: the most seeds of a configuration that one job of a sweep trains together (its records are written when the
#: job ends, so a bigger batch loses more work to an interruption)
MAX_SEEDS_PER_CALL = 16


def _batches(todo: list[tuple[Config, int]], workers: int, seeds_per_call: int | None
             ) -> list[tuple[Config, list[int]]]:
    """``todo`` as (configuration, seeds) jobs: each configuration's seeds in batches of ``seeds_per_call``
    (default: as many as keep every worker busy, at most :data:`MAX_SEEDS_PER_CALL`)."""
    by_config: dict[Config, list[int]] = {}
    for config, seed in todo:
        by_config.setdefault(config, []).append(seed)
    jobs = []
    for config, seeds in by_config.items():
        size = seeds_per_call or min(MAX_SEEDS_PER_CALL, -(-len(seeds) // workers))
        jobs += [(config, seeds[i:i + size]) for i in range(0, len(seeds), size)]
    return jobs


def _run_all(todo: list[tuple[Config, int]], out_dir: str, executor: cf.Executor | None, max_workers: int | None,
             backend: str | None, engine: str, bar: _Progress,
             on_record: Callable[[Config, dict[str, Any]], None] | None, seeds_per_call: int | None = None
             ) -> list[str]:
    """Run ``todo`` through ``executor`` (default: a process pool of our own), the seeds of a configuration in
    batches (:func:`run_seeds`), writing each record as it comes (and handing it to ``on_record``); the
    failures, one line each."""
    errors: list[str] = []
    own = executor is None
    workers = max_workers or os.cpu_count() or 1
    if own:
        executor = cf.ProcessPoolExecutor(max_workers=workers, mp_context=_workers.CONTEXT,
                                          initializer=_workers.start_worker,
                                          initargs=(os.getpid(), max(1, (os.cpu_count() or 1) // workers)))
    interrupted = True
    futures: dict[cf.Future, tuple[Config, list[int]]] = {}
    try:
        if not own and seeds_per_call is None:
            seeds_per_call = 1  # someone else's executor: one job per run, as many as it can take
        futures = {(executor.submit(run_seed, c, seeds[0], backend, engine) if len(seeds) == 1 else
                    executor.submit(run_seeds, c, seeds, backend, engine)): (c, seeds)
                   for c, seeds in _batches(todo, workers, seeds_per_call)}
        pending = set(futures)
        bar.update(len(pending))
        while pending:
            finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                config, seeds = futures[fut]
                try:
                    records = fut.result() if len(seeds) > 1 else [fut.result()]
                except Exception as err:  # noqa: BLE001 - a failing run is reported, the others go on
                    bar.done += len(seeds)
                    bar.failed += len(seeds)
                    errors += [f"{config.key} seed {seed}: {type(err).__name__}: {err}" for seed in seeds]
                    bar.update(len(pending), f"seeds {seeds} of {config.key} raised {type(err).__name__}")
                    continue
                for record in records:
                    bar.done += 1
                    _write_atomic(_seed_path(out_dir, config, record["seed"]), record)
                    if on_record is not None:
                        on_record(config, record)
                    bar.ok += bool(record.get("success"))
                bar.update(len(pending))
        interrupted = False
    finally:
        bar.close()
        if own and interrupted:  # Ctrl-C, SIGTERM or an error of the coordinator: the runs in flight are lost
            _workers.stop(executor)
        elif own:
            executor.shutdown(wait=True)
        else:
            for fut in futures:
                fut.cancel()
    return errors


def run_sweep(configs: Config | Sequence[Config], seeds: Iterable[int], out_dir: str, *,
              executor: cf.Executor | None = None, max_workers: int | None = None, backend: str | None = None,
              engine: str = "auto", progress: bool = True, stream: TextIO | None = None,
              skip: Callable[[Config, int], bool] | None = None,
              on_record: Callable[[Config, dict[str, Any]], None] | None = None,
              seeds_per_call: int | None = None) -> list[Row]:
    """Run every (configuration, seed) not yet on disk, then summarise all runs of the configurations.

    Parameters
    ----------
    configs : Config or list of Config
    seeds : iterable of int
    out_dir : str
        Results directory (created); see the module docstring for its layout.
    executor : concurrent.futures.Executor, optional
        Where runs execute; only ``submit()`` and futures are used.  Default: a ``ProcessPoolExecutor`` with
        ``max_workers`` (default ``os.cpu_count()``) workers, shut down at the end.
    backend : str, optional
        Compute backend of the runs (default: the workers' active backend).
    engine : {"auto", "python", "compiled"}
        How runs train (:func:`run_seed`); each record says which engine ran it.
    progress : bool
        Report progress on ``stream`` (default ``sys.stderr``).
    skip : callable, optional
        ``skip(config, seed)``: True for a run that is done elsewhere (e.g. in a results record of the
        repository) and must not run, whether or not ``out_dir`` has it.
    on_record : callable, optional
        ``on_record(config, record)``, called in this process as each run's record is written.
    seeds_per_call : int, optional
        Seeds of a configuration per job, trained together by the compiled engine where it applies
        (:func:`run_seeds`; a job of one seed is :func:`run_seed`).  Default: with the sweep's own pool, enough
        jobs for every worker, at most :data:`MAX_SEEDS_PER_CALL` seeds each; with ``executor``, one seed per
        job.  A job's records are written when it ends, so an interruption loses the job.

    Returns
    -------
    list of Row
        :func:`summarize` of every finished run of ``configs`` (also those of earlier invocations).

    Raises
    ------
    RuntimeError
        Some runs raised; the others are written and summarised first, and the message names the failures.
    """
    configs = [c.canonical() for c in ([configs] if isinstance(configs, Config) else list(configs))]
    seeds = sorted({int(s) for s in seeds})
    if not configs or not seeds:
        raise ValueError("a sweep needs at least one configuration and one seed")
    if any(s < 0 for s in seeds):
        raise ValueError("seeds must be >= 0")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
    for config in configs:  # fail early on unknown tasks, units or options, and on an engine that cannot run
        task, model = _fresh_run(config, seeds[0])
        why_not = compiled_unsupported(model, task, backend) if engine == "compiled" else None
        if why_not is not None:
            raise ValueError(f"{config.task}:{config.unit}: {why_not}")
    with _exclusive(out_dir):
        for config in configs:
            _prepare(out_dir, config)
        todo = [(c, s) for c in configs for s in seeds if not (skip is not None and skip(c, s))
                and _read_record(_seed_path(out_dir, c, s), c, s, stream) is None]
        bar = _Progress(len(todo), len(configs) * len(seeds) - len(todo), stream, progress)
        errors = _run_all(todo, out_dir, executor, max_workers, backend, engine, bar, on_record,
                          None if seeds_per_call is None else positive_int(seeds_per_call, "seeds_per_call"))
    rows = _stored_rows(out_dir, configs, seeds)
    if errors:
        raise RuntimeError(f"{len(errors)} run(s) failed:\n" + "\n".join(errors))
    return rows


# ---------------------------------------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------------------------------------


def _stored_rows(out_dir: str, configs: Sequence[Config], seeds: Iterable[int]) -> list[Row]:
    """:func:`summarize` of the runs on disk of ``configs`` with the given seeds."""
    wanted = set(seeds)
    stored = load_results(out_dir)
    return summarize({c: [r for r in stored.get(c, []) if r["seed"] in wanted] for c in configs})


# ---------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------

_EPILOG = """\
runs are TASK[:UNIT], e.g. simple-mul:NMU simple-add:NAU simple-sub:NAU simple-mul:NALU
tasks: simple-{add,sub,mul,div,squared,root} (Madsen & Johansen 2020), single-{add,sub,mul,div} (Mistry et al.)

examples:
  nalu-np sweep simple-mul:NMU simple-mul:NALU --seeds 20 --steps 50000 --out runs/sft
  nalu-np sweep single-mul:NMU --set range=U[-2,2] --seeds 10 --out runs/single
  nalu-np sweep simple-mul:NMU --seeds 20 --out runs/sft --summary      # table of what is on disk
"""


def _run_spec(text: str) -> tuple[str, str | None]:
    task, _, unit = text.partition(":")
    return task, (unit or None)


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a plain string such as U[1,2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``nalu-np sweep`` to ``parser`` (for the CLI's subcommand)."""
    parser.add_argument("runs", nargs="+", metavar="TASK[:UNIT]", type=_run_spec,
                        help="configurations to run, e.g. simple-mul:NMU")
    add_seeds(parser)
    add_backend_and_steps(parser, "the task's")
    parser.add_argument("--set", dest="options", action="append", type=_option, default=[], metavar="KEY=VALUE",
                        help="a task option, e.g. eval_every=500 or range=U[-2,2] (repeatable)")
    parser.add_argument("--out", required=True, metavar="DIR", help="results directory (resumable)")
    add_workers(parser)
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="python: nalu_np.train step by step; compiled: the Numba training kernel (a unit or "
                             "1 to 3 layers of NAU, NMU, NALU, G-NALU, NAC, NACMul, the baselines, the study's variants, "
                             "NPU, RealNPU and iNALU on the simple-* and single-* tasks, the NPUs' L1 and the iNALU's "
                             "recipe included, batches drawn in the kernel); "
                             "auto (default): compiled where it applies")
    parser.add_argument("--plot", default=None, metavar="PNG", help="save a bar chart of the success rates")
    parser.add_argument("--summary", action="store_true", help="only print the table of the runs on disk")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``nalu-np sweep`` with parsed arguments; returns the exit status."""
    options = dict(args.options)
    if args.steps is not None:
        options["steps"] = args.steps
    if args.backend is not None:
        from .backends import get_backend

        get_backend(args.backend)  # an unknown or unavailable backend fails here, not in every run
    configs = [Config(task, unit, options).canonical() for task, unit in args.runs]
    seeds = seed_range(args)
    status = 0
    if args.summary:
        if not os.path.isdir(args.out):
            raise ValueError(f"--summary: there is no results directory {args.out!r}")
        rows = _stored_rows(args.out, configs, seeds)
        if not rows:
            there = sorted(c.key for c in load_results(args.out))
            print(f"nalu-np sweep: no finished run of {', '.join(c.key for c in configs)} with these seeds in "
                  f"{args.out}; configurations there: {', '.join(there) or 'none'}", file=sys.stderr)
            return 1
    else:
        try:
            with open_executor(args.executor) as executor:
                rows = run_sweep(configs, seeds, args.out, executor=executor, max_workers=args.workers,
                                 backend=args.backend, engine=args.engine, progress=not args.quiet,
                                 seeds_per_call=args.seeds_per_call)
        except RuntimeError as err:
            print(f"nalu-np sweep: {err}", file=sys.stderr)
            rows = _stored_rows(args.out, configs, seeds)
            status = 1
    print(markdown_table(rows), end="")
    if args.plot:
        print(plot(rows, args.plot))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``nalu-np sweep`` as a standalone program (``python -m nalu_np.sweep``)."""
    parser = argparse.ArgumentParser(prog="nalu-np sweep", description="Multi-seed sweeps of the arithmetic "
                                     "benchmarks, resumable, with a summary table.", epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        with _workers.terminate_on_sigterm():
            return run_from_args(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"nalu-np sweep: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nalu-np sweep: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
