"""The training loop: ``nalu_np.train(model, task, ...)``.

::

    import nalu_np as nn
    task = nn.tasks.get_task("mul")
    init_rng, _ = nn.tasks.seed_rngs(0)
    model = task.build_model(init_rng)                 # NALU, preset seed-003
    result = nn.train(model, task, seed=0)             # 22000 full-batch Adam steps, lr 0.05
    result.success, result.final["interpolation_max_rel_err"], result.loss[-1]

:func:`train` is the one way to train; it has two engines, and the :class:`TrainResult` says which one ran
on which backend:

``"python"``
    Step by step in Python on any backend: a batch (the task's fixed data, or a fresh sample), forward, MSE
    (plus the task's penalty), backward, optimizer step.  Any model, task and optimizer.
``"compiled"``
    ``eval_every`` steps per call of the Numba training kernel (:mod:`nalu_np.compiled`): networks that
    :func:`nalu_np.compiled.supports` accepts (a unit or 1 to 3 layers), on the simple function task (every
    op) and the single-module task (every op and range, the L1 schedule of the NPUs' recipe and the iNALU's
    recipe included: its saturation regularizer switched in the kernel, its reinitialisations between calls,
    one seed per call), with Adam and the units' projections, on the CPU.  The batches are drawn inside the kernel
    (``draws="kernel"``,
    xoshiro256** seeded from the seed's data generator: the same distribution as the Python engine, other
    numbers) or from the Python engine's generator (``draws="numpy"``: the Python engine's run, to rounding).
    Asked for where it does not apply, it fails before any work, saying what it supports.
``"auto"`` (default)
    Compiled where it applies, else Python.

Either way the run's steps count from 0: the task's schedules (the regularizer's ramp, the L1 term, the iNALU's
recipe) and the evaluations' steps follow them, also when the optimizer has taken steps before (one restored from a
checkpoint; its own count goes on, and with it Adam's bias correction). The model is evaluated on the task's test
sets before the first step, every ``eval_every`` steps and after the last one (with the task's ``model_metrics``,
e.g. the sparsity error, where it has them). A run whose loss becomes infinite or NaN stops at the next progress
check (``log_every``; the compiled engine: the end of its call) and is marked ``diverged``.

Reproducible: the same model, task, seed, engine and backend give the same result bit for bit on CPU (the
batches come from a generator seeded by ``seed``, and nothing else is random).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence, TextIO

import numpy as np

from ._checks import positive_int
from .backends import Backend, get_backend, to_numpy
from .losses import mse
from .optim import Optimizer, create
from .tasks import Evaluation, Task, get_task, seed_rngs

__all__ = ["ENGINES", "TrainResult", "train", "train_many", "compiled_unsupported"]

ENGINES = ("auto", "python", "compiled")
DRAWS = ("kernel", "numpy")


@dataclass
class TrainResult:
    """What a training run gives back.

    Attributes
    ----------
    task : str
        The task's name.
    seed : int
    backend : str
        The backend that ran the kernels (``"numba"`` for the compiled engine).
    engine : str
        ``"python"`` or ``"compiled"``: the engine that ran.
    config : dict
        ``model.config()`` (unit and hyper-parameters).
    optimizer : dict
        ``{"type": ..., "hyper": {...}}`` of the optimizer.
    steps : int
        Steps asked for.
    loss : ndarray, shape (steps_done,), float64
        Training loss at every step, before that step's update.
    evaluations : list of Evaluation
        Test-set metrics, in step order (the first is the untrained model).
    success : bool
        The task's verdict (:meth:`Task.success`); False for a diverged run.
    diverged : bool
        The loss became infinite or NaN; training stopped early.
    wall_time : float
        Seconds spent in the loop (evaluations included).
    model : object
        The trained model (the same object as the one passed in).
    """

    task: str
    seed: int
    backend: str
    engine: str
    config: dict[str, Any]
    optimizer: dict[str, Any]
    steps: int
    loss: np.ndarray
    evaluations: list[Evaluation]
    success: bool
    diverged: bool
    wall_time: float
    model: Any = field(repr=False, default=None)

    @property
    def steps_done(self) -> int:
        """Optimizer steps taken (fewer than :attr:`steps` when the run diverged)."""
        return len(self.loss)

    @property
    def initial(self) -> dict[str, float]:
        """Metrics of the untrained model."""
        return self.evaluations[0].metrics

    @property
    def final(self) -> dict[str, float]:
        """Metrics after the last step."""
        return self.evaluations[-1].metrics

    def to_dict(self, max_loss_points: int = 1000) -> dict[str, Any]:
        """A JSON-serialisable summary; the loss curve is kept at no more than ``max_loss_points`` steps.

        Non-finite numbers are written as strings ("inf", "nan") so that the JSON stays standard.
        """
        stride = max(1, math.ceil(len(self.loss) / max_loss_points))
        steps = list(range(0, len(self.loss), stride))
        return {
            "task": self.task,
            "seed": self.seed,
            "backend": self.backend,
            "engine": self.engine,
            "config": self.config,
            "optimizer": self.optimizer,
            "steps": self.steps,
            "steps_done": self.steps_done,
            "success": self.success,
            "diverged": self.diverged,
            "wall_time": self.wall_time,
            "evaluations": [{"step": e.step, **{k: _json_float(v) for k, v in e.metrics.items()}}
                            for e in self.evaluations],
            "loss_curve": {"step": steps, "loss": [_json_float(self.loss[i]) for i in steps]},
            "params": {k: np.asarray(to_numpy(v), dtype=np.float64).tolist()
                       for k, v in (self.model.params.items() if self.model is not None else ())},
        }


def _json_float(v: Any) -> float | str:
    v = float(v)
    return v if math.isfinite(v) else str(v)


class _Progress:
    """Plain-text progress on a stream: one rewritten line on a terminal, a line per report otherwise."""

    def __init__(self, label: str, steps: int, stream: TextIO) -> None:
        self.label, self.steps, self.stream = label, steps, stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()

    def report(self, step: int, loss: float) -> None:
        elapsed = time.perf_counter() - self.t0
        rate = step / elapsed if elapsed > 0 else float("inf")
        eta = (self.steps - step) / rate if rate > 0 else float("inf")
        line = (f"{self.label} step {step:>{len(str(self.steps))}}/{self.steps}  loss {loss:.4g}  "
                f"{rate:,.0f} steps/s  eta {eta:.0f}s")
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self, message: str) -> None:
        self.stream.write(("\r" + message + "\033[K\n") if self.tty else message + "\n")
        self.stream.flush()


def _check_on_backend(model: Any, be: Backend) -> None:
    for k, v in model.params.items():
        if not isinstance(v, be.array_type):
            raise TypeError(
                f"parameter {k!r} is a {type(v).__module__}.{type(v).__name__}, not an array of backend "
                f"{be.name!r}; move the model first: model = model.to({be.name!r})"
            )


def _make_optimizer(model: Any, optimizer: str | Optimizer | None, lr: float | None, task: Task,
                    options: dict[str, Any]) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        if lr is not None or options:
            raise ValueError("lr, clip_norm, clip_value and projections belong to the optimizer object you passed")
        params = model.params
        if set(optimizer.params) != set(params) or any(optimizer.params[k] is not params[k] for k in params):
            raise ValueError("the optimizer was built on other arrays than this model's params")
        return optimizer
    projections = options.pop("projections", None)
    if projections is None and callable(getattr(model, "projections", None)):
        projections = model.projections()  # units whose weights live in a box (NAU, NMU)
    if optimizer is None:  # the task's recipe: its optimizer with its settings
        options = {**task.optimizer_options, **options}
    return create(task.optimizer if optimizer is None else optimizer, model.params,
                  lr=task.lr if lr is None else lr, projections=projections, **options)


def _evaluation(model: Any, task: Task, predictions: dict[str, tuple[Any, np.ndarray]], step: int) -> Evaluation:
    """The task's metrics of each test set (``predictions``: name -> (a function that predicts the set, its
    targets)) and, with the interpolation set, the task's ``model_metrics(model)`` where it has them."""
    metrics: dict[str, float] = {}
    for name, (predict, t) in predictions.items():
        metrics.update(task.metrics(name, np.asarray(to_numpy(predict()), dtype=np.float64), t))
    if callable(getattr(task, "model_metrics", None)):
        metrics.update(task.model_metrics(model))
    return Evaluation(step, metrics)


def compiled_unsupported(model: Any, task: Task, backend: str | Backend | None = None,
                         optimizer: Any = None) -> str | None:
    """Why the compiled engine cannot train ``model`` on ``task``, or None when it can.

    It trains what :func:`nalu_np.compiled.supports` accepts (a unit or a Sequential of 1 to 3 layers of NAU,
    NMU, NALU (shared or separate weights), NAC, NACMul, Linear, ReLU, ReLU6, ClippedNACMul, SigmoidNACMul,
    GatedNAUNMU, NPU and RealNPU, whose sizes chain) mapping the task's inputs to one output, on the simple
    function task (any of its six ops) and the single-module task (any of its four ops and nine ranges), with
    the sparsity regularizer and the task's L1 schedule (``task.l1``, the NPUs' recipe) as the penalties, with
    Adam, SGD or RMSProp (with or without gradient clipping, the units' own projections), on the CPU (backend
    numpy or numba), with numba installed; with the iNALU's recipe (``task.recipe``: clipping, saturation
    regularizer, reinitialisation of stalled runs, :func:`_train_recipe`) too.  What needs the Python engine: a
    mirrored training range.
    """
    from .arithmetic import SimpleFunctionTask, SingleModuleTask
    from .optim import OPTIMIZERS

    if not isinstance(task, (SimpleFunctionTask, SingleModuleTask)):
        return (f"the compiled engine trains the simple function task (simple-add ... simple-root) and the "
                f"single-module task (single-add ... single-div), not {task.name!r}")
    if getattr(task, "recipe", None) is not None and not callable(getattr(model, "reinitialise", None)):
        return "the iNALU's recipe re-initialises the model: it needs a reinitialise(rng) method"
    if task.interpolation_range.mirror:
        return ("the compiled engine draws training inputs from U[lo, hi), not from a mirrored range: Python "
                "engine")
    if get_backend(backend).name not in ("numpy", "numba"):
        return "the compiled engine runs on the CPU (backend numpy or numba)"
    from . import compiled

    name = task.optimizer if optimizer is None else optimizer
    cls = type(name) if isinstance(name, Optimizer) else OPTIMIZERS.get(str(name).lower())
    if cls not in OPTIMIZERS.values() or cls.__name__ not in compiled.OPTIMIZER_KINDS:
        # exactly these classes: the compiled step mirrors their update rules
        label = name if isinstance(name, str) else getattr(name, "__name__", type(name).__name__)
        return f"the compiled engine steps with {', '.join(compiled.OPTIMIZER_KINDS)}, not {label!r}"

    why = compiled.supports(model)
    if why is None and (model.in_features != task.in_features or model.out_features != 1):
        why = (f"the task maps {task.in_features} inputs to one target; the model maps {model.in_features} -> "
               f"{model.out_features}")
    return why


def _train_python(model: Any, task: Task, opt: Optimizer, be: Backend, steps: int, seed: int,
                  eval_every: int | None, log_every: int, bar: "_Progress | None"
                  ) -> tuple[np.ndarray, list[Evaluation], bool]:
    """The Python engine: the loss of every step, the evaluations, and whether the run diverged."""
    init_rng, data_rng = seed_rngs(seed)
    fixed = task.train_data()
    if fixed is not None:
        fixed = (be.asarray(fixed[0]), be.asarray(fixed[1]))
    predictions = {}
    for name, (x, t) in task.eval_sets().items():
        xb = be.asarray(x)
        predictions[name] = ((lambda xb=xb: model.forward(xb, backend=be)[0]), np.asarray(t, dtype=np.float64))

    history = be.xp.empty(steps, dtype=np.float64)
    evaluations = [_evaluation(model, task, predictions, 0)]
    task.start(model, evaluations, init_rng)
    diverged = False
    done = 0
    for step in range(1, steps + 1):
        if fixed is not None:
            x, t = fixed
        else:
            xs, ts = task.sample(data_rng, task.batch_size)
            x, t = be.asarray(xs), be.asarray(ts)
        y, cache = model.forward(x, backend=be)
        loss, dy = mse(y, t)
        _, grads = model.backward(dy, cache)
        extra = task.penalty(model, step - 1)
        if extra is not None:
            value, pgrads = extra
            loss = loss + value
            grads = {k: g + pgrads[k] if k in pgrads else g for k, g in grads.items()}
        history[step - 1] = loss
        opt.step(grads)
        task.after_step(model, step - 1)
        done = step
        if step % log_every == 0 or step == steps:
            current = float(history[step - 1])
            if not math.isfinite(current):
                diverged = True
                break
            if bar is not None:
                bar.report(step, current)
        if eval_every is not None and step % eval_every == 0 and step != steps:
            evaluations.append(_evaluation(model, task, predictions, step))
    evaluations.append(_evaluation(model, task, predictions, done))
    return np.asarray(to_numpy(history[:done]), dtype=np.float64), evaluations, diverged


#: held while a seed of the recipe's driver starts its run (:func:`_train_recipe`)
_START = threading.Lock()

#: steps per compiled call when the batches are drawn in the kernel (a multiple of ``eval_every`` is used):
#: bounds the losses kept per call, (seeds, CALL_STEPS) float64
CALL_STEPS = 1 << 16


def _train_compiled(models: list[Any], tasks: list[Any], opts: list[Optimizer], steps: int, seeds: list[int],
                    eval_every: int | None, draws: str, bar: "_Progress | None"
                    ) -> list[tuple[np.ndarray, list[Evaluation], bool]]:
    """The compiled engine: the seeds of one configuration trained together by
    :func:`nalu_np.compiled.train_seeds`, the test sets evaluated inside the calls, with the same regularizer
    and L1 schedules, projections, evaluations and divergence rule as the Python engine; per seed (loss of every step,
    evaluations, diverged)."""
    from . import compiled

    task = tasks[0]
    if getattr(task, "recipe", None) is not None:  # one seed per call, the seeds on threads
        def one(q: int) -> tuple[np.ndarray, list[Evaluation], bool]:
            return _train_recipe(models[q], tasks[q], opts[q], steps, seeds[q], eval_every, draws,
                                 bar if q == 0 else None)

        with ThreadPoolExecutor(max_workers=max(1, min(len(models), compiled._threads()))) as pool:
            return list(pool.map(one, range(len(models))))
    specs = [_spec(t) for t in tasks]
    base, regularizer, l1 = _penalties(task, opts, steps)
    data_rngs = [seed_rngs(seed)[1] for seed in seeds]
    states = (np.stack([compiled.rng_state(int(r.integers(2**63))) for r in data_rngs]) if draws == "kernel"
              else None)
    sets = [t.eval_sets() for t in tasks]
    names = list(sets[0])
    eval_sets = [(sets[0][name][0], np.stack([np.asarray(s[name][1], np.float64).ravel() for s in sets]))
                 for name in names]
    if any(not np.array_equal(s[name][0], sets[0][name][0]) for s in sets[1:] for name in names):
        raise ValueError("the seeds' tasks must share their test inputs")
    every = eval_every or steps
    call = every * max(1, CALL_STEPS // every) if draws == "kernel" else every
    S = len(models)
    losses: list[list[np.ndarray]] = [[] for _ in range(S)]
    evaluations: list[list[Evaluation]] = [[] for _ in range(S)]
    active, done = list(range(S)), 0
    while active and done < steps:
        k = min(call, steps - done)
        pick = np.array(active)
        u = None if states is not None else np.stack(
            [compiled.draw_uniforms(data_rngs[q], k, task.batch_size, task.in_features, task.dtype) for q in active])
        sub = None if states is None else states[pick]
        run = compiled.train_seeds([models[q] for q in active], [opts[q] for q in active], [specs[q] for q in active],
                                   u, steps=None if u is not None else k, states=sub, batch_size=task.batch_size,
                                   regularizer=regularizer, l1=l1, eval_sets=[(x, t[pick]) for x, t in eval_sets],
                                   eval_every=every,
                                   first_eval=done == 0)
        if states is not None:
            states[pick] = sub
        for row, q in enumerate(active):
            losses[q].append(run.losses[row, :run.done[row]])
            evaluations[q].extend(_evaluations(run, row, names, base))
        done += k
        active = [q for row, q in enumerate(active) if not run.diverged[row]]
        if bar is not None:
            bar.report(done, float(losses[0][-1][-1]) if len(losses[0][-1]) else math.nan)
    out = []
    for q in range(S):
        loss = np.concatenate(losses[q]) if losses[q] else np.empty(0)
        out.append((loss, evaluations[q], not np.all(np.isfinite(loss))))
    return out


def _spec(task: Any) -> Any:
    """The compiled engine's :class:`nalu_np.compiled.SimpleFunction` of a simple function or single-module task."""
    from . import compiled
    from .arithmetic import SingleModuleTask

    r = task.interpolation_range  # x = lo + (hi - lo) u, as Range.sample (never mirrored: compiled_unsupported)
    if isinstance(task, SingleModuleTask):  # t = x[0] op x[1]
        return compiled.SimpleFunction.single_module(task.op, r.lo, r.hi)
    return compiled.SimpleFunction(op=task.op, offset=task.offset, in_features=task.in_features, lo=r.lo, hi=r.hi,
                                   subset=task.subset_size, overlap_start=task.subset_size - task.overlap)


def _penalties(task: Any, opts: list[Optimizer], steps: int) -> tuple[int, Any, Any]:
    """The optimizers' common step count at the start of the run (``base``; ValueError where they differ), and
    the task's sparsity regularizer ``(lambda_hat, start, end)`` and L1 pieces as the compiled engine takes them
    (None where it has none), moved by ``base``: the compiled step keys its schedules on the optimizer's steps,
    the run (as the Python engine) on its own, from 0."""
    base = opts[0].t
    if any(o.t != base for o in opts):
        raise ValueError(f"the seeds' optimizers must start from one step count, got {sorted({o.t for o in opts})}")
    regularizer = (task.lambda_hat, task.reg_start + base, task.reg_end + base) if task.lambda_hat > 0 else None
    schedule = getattr(task, "l1", None)  # the L1 term's strength at every step of the run
    if schedule is None:
        return base, regularizer, None
    starts, betas = schedule.pieces(steps)
    return base, regularizer, (starts + base, betas)


def _evaluations(run: Any, row: int, names: list[str], base: int) -> list[Evaluation]:
    """The evaluations of seed ``row`` of a compiled call (:class:`nalu_np.compiled.SeedsRun`), at the steps of
    the run (the optimizer's steps less ``base``, its count when the run started)."""
    out = []
    for at, values in zip(run.steps[row], run.evaluations[row, :run.nevals[row]]):
        metrics = {f"{name}_mse": float(v) for name, v in zip(names, values)}
        out.append(Evaluation(int(at) - base, {**metrics, "sparsity_error": float(values[-1])}))
    return out


def _train_recipe(model: Any, task: Any, opt: Optimizer, steps: int, seed: int, eval_every: int | None,
                  draws: str, bar: "_Progress | None") -> tuple[np.ndarray, list[Evaluation], bool]:
    """The compiled engine on a task with the iNALU's recipe (``task.recipe``): one seed, the Python engine's
    run (:func:`_train_python` with the task's hooks) in compiled calls between the evaluations and the
    reinitialisations.

    The recipe's store holds the last evaluated interpolation MSE after every step, constant between two
    evaluations, so it is kept as pieces, and at each evaluation :meth:`nalu_np.primer.InaluRecipe.first_stall`
    finds the first step of the next interval after which the run is re-initialised: the call runs up to it,
    ``model.reinitialise`` draws afresh from the generator of :meth:`nalu_np.taskbase.Task.start` (the
    optimizer's state kept, as :class:`nalu_np.primer.InaluRun`), and the next call goes on.  Each call has the
    saturation regularizer on from step ``after + 1`` when the last evaluated MSE is below ``below``, else off.
    The run's :class:`~nalu_np.primer.InaluRun` (``task.recipe_run``) gets the ``reinits`` and the stored
    ``losses``.  A run whose loss stops being finite stops at the end of its call.
    """
    from . import compiled

    recipe = task.recipe
    init_rng, data_rng = seed_rngs(seed)
    state = compiled.rng_state(int(data_rng.integers(2**63)))[None] if draws == "kernel" else None
    spec = _spec(task)
    base, regularizer, l1 = _penalties(task, [opt], steps)
    sets = task.eval_sets()
    names = list(sets)
    eval_sets = [(sets[name][0], np.asarray(sets[name][1], np.float64).reshape(1, -1)) for name in names]
    B, I = task.batch_size, task.in_features

    def call(k: int, saturation: Any, evaluate: bool) -> Any:  # k steps, then an evaluation if asked
        u = None if state is not None else compiled.draw_uniforms(data_rng, k, B, I, task.dtype)[None]
        return compiled.train_seeds([model], [opt], [spec], u, steps=None if u is not None else k, states=state,
                                    batch_size=B, regularizer=regularizer, l1=l1, saturation=saturation,
                                    eval_sets=eval_sets, eval_every=max(k, 1) if evaluate else 0,
                                    first_eval=evaluate and k == 0)

    evaluations = _evaluations(call(0, None, True), 0, names, base)
    with _START:  # one task object may serve several seeds (train_many), each on its own thread
        task.start(model, evaluations, init_rng)
        run = task.recipe_run
    every = eval_every or steps
    values: list[float] = []
    counts: list[int] = []  # the store: counts[j] copies of values[j]
    losses: list[np.ndarray] = []
    t, diverged = 0, False  # t: steps done
    while t < steps and not diverged:
        end = min((t // every + 1) * every, steps)  # the next evaluation
        last = run.last_interpolation()
        stall = recipe.first_stall(t, end - t, values, counts, last)
        stop = end if stall is None else stall + 1
        saturation = (recipe.weight, recipe.omega, base + recipe.after + 1) if last < recipe.below else None
        out = call(stop - t, saturation, stop == end and stall is None)
        losses.append(out.losses[0, :out.done[0]])
        evaluations.extend(_evaluations(out, 0, names, base))
        values.append(last)
        counts.append(stop - t)
        t = stop
        diverged = bool(out.diverged[0])
        if stall is not None:
            model.reinitialise(run.rng)
            values, counts = [], []
            run.reinits += 1
            if stop == end or diverged:
                evaluations.extend(_evaluations(call(0, None, True), 0, names, base))
        elif diverged and stop != end:
            evaluations.extend(_evaluations(call(0, None, True), 0, names, base))
        if bar is not None:
            bar.report(t, float(losses[-1][-1]) if len(losses[-1]) else math.nan)
    run.losses = np.repeat(values, counts).tolist()
    loss = np.concatenate(losses) if losses else np.empty(0)
    return loss, evaluations, diverged


def train(model: Any, task: Task | str, *, steps: int | None = None, optimizer: str | Optimizer | None = None,
          lr: float | None = None, seed: int = 0, engine: str = "auto", backend: str | Backend | None = None,
          draws: str = "kernel", clip_norm: float | None = None, clip_value: float | None = None,
          projections: dict | None = None, eval_every: int | None = None, log_every: int | None = None,
          progress: bool | None = None, stream: TextIO | None = None) -> TrainResult:
    """Train ``model`` on ``task``: the one entry point (see the module docstring for the engines).

    Parameters
    ----------
    model : layer or Sequential
        Anything with ``params``, ``forward``, ``backward`` and ``config``; its parameters must be arrays of
        the backend (``model.to(backend)`` moves them).  Trained in place.
    task : Task or str
        A task object or a registered name (:func:`nalu_np.tasks.get_task`).
    steps : int, optional
        Optimizer steps; default ``task.steps``.
    optimizer : str or Optimizer, optional
        A name for :func:`nalu_np.optim.create` (default ``task.optimizer``) or an optimizer built on
        ``model.params`` (then ``lr`` and the clipping/projection options must be left out).
    lr : float, optional
        Default ``task.lr``.
    seed : int
        Seeds the generator of the batches of sampling tasks (:func:`nalu_np.tasks.seed_rngs`).
    engine : {"auto", "python", "compiled"}
        ``"compiled"`` raises ValueError before any work where it does not apply
        (:func:`compiled_unsupported` says why); ``"auto"`` then trains with ``"python"``.
    backend : str or Backend, optional
        Default: the active backend.
    draws : {"kernel", "numpy"}
        Compiled engine only: batches drawn inside the kernel, or from the Python engine's generator.
    clip_norm, clip_value, projections
        Passed to the optimizer (see :mod:`nalu_np.optim`); ``clip_value`` defaults to ``task.clip_value`` (the
        task's recipe, e.g. the iNALU's 0.1 in the single-module benchmark), the projections to
        ``model.projections()`` when the model has that method.  The compiled engine clips as the Python one
        and takes no other projections than the units' own.
    eval_every : int, optional
        Default ``task.eval_every``; ``None`` evaluates before and after training only.
    log_every : int, optional
        Steps between progress reports and divergence checks; default ``steps // 20``.
    progress : bool, optional
        Report progress on ``stream``; default: when ``stream`` is a terminal.
    stream : file, optional
        Default ``sys.stderr``.

    Returns
    -------
    TrainResult
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
    if draws not in DRAWS:
        raise ValueError(f"unknown draws {draws!r}; one of {', '.join(DRAWS)}")
    task = get_task(task)
    be = get_backend(backend)
    _check_on_backend(model, be)
    steps = positive_int(task.steps if steps is None else steps, "steps")
    eval_every = task.eval_every if eval_every is None else positive_int(eval_every, "eval_every")
    log_every = max(1, steps // 20) if log_every is None else positive_int(log_every, "log_every")
    if clip_value is None and not isinstance(optimizer, Optimizer):
        clip_value = task.clip_value
    options = {k: v for k, v in (("clip_norm", clip_norm), ("clip_value", clip_value),
                                 ("projections", projections)) if v is not None}
    why_not = None
    if engine != "python":
        why_not = compiled_unsupported(model, task, be, optimizer) or (
            "the compiled engine takes no other projections than the units' own" if projections is not None else None)
        if engine == "compiled" and why_not is not None:
            raise ValueError(why_not)
    used = "python" if engine == "python" or why_not is not None else "compiled"
    opt = _make_optimizer(model, optimizer, lr, task, options)
    stream = sys.stderr if stream is None else stream
    show = bool(getattr(stream, "isatty", lambda: False)()) if progress is None else bool(progress)
    bar = _Progress(f"[{task.name} seed {seed}]", steps, stream) if show else None

    t0 = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported, not warned about
        if used == "compiled":
            loss, evaluations, diverged = _train_compiled([model], [task], [opt], steps, [seed], eval_every,
                                                          draws, bar)[0]
        else:
            loss, evaluations, diverged = _train_python(model, task, opt, be, steps, seed, eval_every, log_every,
                                                        bar)
    wall = time.perf_counter() - t0
    result = _result(model, task, seed, used, be, opt, steps, loss, evaluations, diverged, wall)
    if bar is not None:
        done = len(loss)
        bar.close(f"{bar.label} {'diverged at step ' + str(done) if diverged else f'{done} steps'} "
                  f"in {wall:.1f}s, final loss {loss[-1]:.4g}")
    return result


def _result(model: Any, task: Task, seed: int, engine: str, be: Backend, opt: Optimizer, steps: int,
            loss: np.ndarray, evaluations: list[Evaluation], diverged: bool, wall: float) -> TrainResult:
    return TrainResult(
        task=task.name, seed=int(seed), backend="numba" if engine == "compiled" else be.name, engine=engine,
        config=model.config(), optimizer={"type": type(opt).__name__, "hyper": opt.hyper()}, steps=steps,
        loss=loss, evaluations=evaluations, success=(not diverged) and bool(task.success(evaluations)),
        diverged=diverged, wall_time=wall, model=model,
    )


def train_many(models: Sequence[Any], tasks: Sequence[Task | str], seeds: Sequence[int], *,
               steps: int | None = None, eval_every: int | None = None, draws: str = "kernel") -> list[TrainResult]:
    """Train the seeds of one configuration together with the compiled engine: ``S`` runs per compiled call,
    spread over the cores, each evaluated inside the call.

    Seed ``seeds[q]`` trains ``models[q]`` on ``tasks[q]`` exactly as ``train(models[q], tasks[q],
    seed=seeds[q], engine="compiled")`` would, bit for bit, whichever other seeds train beside it.

    Parameters
    ----------
    models : sequence of models
        One per seed, of one structure and dtype, each accepted by :func:`compiled_unsupported`; trained in
        place.
    tasks : sequence of Task or str
        One per seed: one simple function task that may differ in the seed-dependent subset offset only, or
        one single-module task.
    seeds : sequence of int
        The runs' seeds (their batches, as :func:`train`).
    steps, eval_every, draws
        As :func:`train` (the defaults are the first task's).

    Returns
    -------
    list of TrainResult
        One per seed, in order; ``wall_time`` is the call's wall time shared equally among the seeds.
    """
    if draws not in DRAWS:
        raise ValueError(f"unknown draws {draws!r}; one of {', '.join(DRAWS)}")
    tasks = [get_task(t) for t in tasks]
    if not (len(models) == len(tasks) == len(seeds)) or not models:
        raise ValueError(f"need one task and one seed per model, got {len(models)} models, {len(tasks)} tasks, "
                         f"{len(seeds)} seeds")
    be = get_backend("numpy")
    for model, task in zip(models, tasks):
        why = compiled_unsupported(model, task, be)
        if why is not None:
            raise ValueError(why)
    steps = positive_int(tasks[0].steps if steps is None else steps, "steps")
    eval_every = tasks[0].eval_every if eval_every is None else positive_int(eval_every, "eval_every")
    opts = [_make_optimizer(model, None, None, task, {} if task.clip_value is None else {"clip_value": task.clip_value})
            for model, task in zip(models, tasks)]  # the task's clipping, as train()
    t0 = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):
        runs = _train_compiled(list(models), tasks, opts, steps, [int(s) for s in seeds], eval_every, draws, None)
    wall = (time.perf_counter() - t0) / len(models)
    return [_result(model, task, seed, "compiled", be, opt, steps, *run, wall)
            for model, task, seed, opt, run in zip(models, tasks, seeds, opts, runs)]
