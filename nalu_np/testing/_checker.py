"""Finite-difference gradient checking of anything with the layer protocol (DESIGN section 6).

How it decides, for one tensor ``theta`` (a parameter or the input ``x``) and a scalar loss
``L_u = sum(u * y)`` per random signed upstream gradient ``u``:

* The analytic vector-Jacobian product ``g_u = dL_u/dtheta`` comes from ``backward(u, cache)``.
* Elements are checked one by one (tensors of up to ``elementwise_limit`` elements) or in groups along a random
  signed direction ``v``; a group that fails, or shows a kink, is split in two and each half re-checked, down to
  single elements, so a wrong entry is always named by its index.
* Along ``v`` (``v_k = s_k * max(1, |theta_k|)``, ``s_k = +-1``) the loss is evaluated at ``theta + j*h*v`` for
  ``j = -2, -1, 0, 1, 2`` with ``h = eps**(1/3)`` (float64 ``eps``).  The step actually taken
  (``(theta + h v) - theta``, exact in floating point) is what the analytic value is projected on, so the
  rounding of the step does not count as an error.
* A step relative to ``|theta|``: for ``0 < |theta| < 1`` the step ``h`` can be as large as ``theta`` itself
  (``|theta| ~ 1e-5``), where a function such as ``log(|theta| + eps)`` changes on the scale ``|theta|``; its
  truncation error is then large, and so is the tolerance, which hid errors of 0.1-1%.  Wherever the
  truncation estimate exceeds the rounding bound (only then can a smaller step be more accurate), a single
  element with ``0 < |theta| < 1`` is re-checked with the relative step ``h * |theta|`` and the verdict with the
  smaller tolerance per unit of ``theta`` is kept (both are error estimates, each at its own step); a group
  with such an element is split in two and re-checked, as a failing group is.  ``theta = 0`` keeps the step
  ``h``.
* The error ``e_j`` of the central difference at step ``j*h`` is measured against the analytic value for both
  step sizes.  For a smooth function ``e_2 - e_1`` is three times the truncation error of ``e_1`` (Richardson),
  and it does not contain a constant bug in the analytic gradient, which cancels.  The tolerance is
  ``safety * (|e_2 - e_1| / 3 + roundoff)``, where ``roundoff`` bounds the rounding error of the loss
  evaluations and of the analytic projection.  No tolerance is scaled by the size of the gradient.
* A kink: the one-sided slopes ``F = (L_+1 - L_0)/h`` and ``B = (L_0 - L_-1)/h`` differ by more than the
  tolerance and their difference does not shrink like ``h`` (it would for a smooth function) when the step is
  doubled.  A single element at a kink is ``inconclusive`` when the analytic value lies between ``B`` and
  ``F`` (within the tolerance) and ``fail`` otherwise.
* The upstream gradients are weighted per output column (the last axis of ``y``): entry ``(b, o)`` is a random
  sign times ``U(0.5, 1.5)`` times ``c_max / c_o``, with ``c_o`` the size of column ``o`` (``max_b |y[b, o]|``,
  or its first-order terms where those are larger: see ``_upstream_weights``) and ``c_max`` the largest.
  Every column then adds terms of the same size to ``L_u``, so the rounding of an output near ``1e6`` does not
  swamp the derivative of an output near ``1e-9`` (the tolerance is set by ``sum |u * y|``); unweighted, a
  wrong sign on the small output passed.  An output that is small only because its terms cancel is not
  amplified (its rounding error is that of its terms).  Outputs of very different sizes within one column
  (across the batch) are not separated: check such rows in their own call.

Before any finite difference, structural checks: ``backward`` leaves ``dy`` unchanged (it is always given a
copy, so a backward that writes into ``dy`` is named once and does not corrupt the other checks), it returns a
gradient of the tensor's shape for ``x`` and every parameter (a tensor without one is named, with both shapes,
and not checked further), it is linear in ``dy``, zero ``dy`` gives zero gradients, ``forward`` does not
mutate its inputs, and a repeated ``backward`` is bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..backends import array_module, get_backend, to_numpy
from ..init import make_rng

__all__ = ["GradientReport", "Record", "StructuralCheck", "check_gradients", "FunctionPair"]

EPS64 = float(np.finfo(np.float64).eps)
STEP = EPS64 ** (1.0 / 3.0)


@dataclass(frozen=True)
class Record:
    """The verdict on one element (``size == 1``) or one group of elements of a tensor.

    Attributes
    ----------
    name : str
        Parameter name, or ``"x"`` for the input.
    index : tuple of int
        Index of the element (of the group's first element when ``size > 1``).
    size : int
        Number of elements checked together.
    value : float
        The element's value (NaN for a group).
    analytic, numeric : float
        Directional derivative along the checked direction from ``backward`` and from central differences.
    left, right : float
        One-sided difference quotients ``B`` and ``F``.
    error_estimate : float
        The tolerance the difference was held to (``safety`` times the estimated numerical error).
    ratio : float
        ``|analytic - numeric| / error_estimate``; below 1 passes.  At a kink, the distance of the analytic
        value outside ``[min(B, F), max(B, F)]`` over the tolerance.
    verdict : {"pass", "fail", "inconclusive"}
    upstream : int
        Which random upstream gradient gave the worst ratio.
    step : float
        The largest step taken in one element (``|h v_k|``), which the derivatives above are per unit of.
    truncation, roundoff : float
        The two parts of the estimated numerical error (``error_estimate = safety * (truncation + roundoff)``):
        the Richardson estimate of the truncation error and the bound on rounding.
    """

    name: str
    index: tuple[int, ...]
    size: int
    value: float
    analytic: float
    numeric: float
    left: float
    right: float
    error_estimate: float
    ratio: float
    verdict: str
    upstream: int
    step: float
    truncation: float
    roundoff: float

    def __str__(self) -> str:
        where = f"{self.name}{list(self.index)}" + (f" (+{self.size - 1} more)" if self.size > 1 else "")
        return (
            f"{self.verdict:12s} {where:28s} value={self.value:+.6g} analytic={self.analytic:+.10g} "
            f"numeric={self.numeric:+.10g} left={self.left:+.6g} right={self.right:+.6g} "
            f"tol={self.error_estimate:.3g} ratio={self.ratio:.3g}"
        )


@dataclass(frozen=True)
class StructuralCheck:
    """A check that needs no finite differences (dy and inputs not mutated, gradient shapes, linearity,
    zero in -> zero out, determinism)."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class GradientReport:
    """Result of :func:`check_gradients`.

    ``ok`` is True when no element failed and every structural check passed; ``inconclusive`` elements (at a
    kink, analytic value between the one-sided slopes) do not make it False.
    """

    failures: list[Record] = field(default_factory=list)
    inconclusive: list[Record] = field(default_factory=list)
    worst: list[Record] = field(default_factory=list)
    structural: list[StructuralCheck] = field(default_factory=list)
    n_checked: dict[str, int] = field(default_factory=dict)
    n_evaluations: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and all(c.ok for c in self.structural)

    @property
    def worst_ratio(self) -> float:
        """Largest error-over-tolerance ratio seen (a target for hypothesis); below 1 when everything passes."""
        ratios = [r.ratio for r in self.worst + self.failures]
        return max(ratios, default=0.0)

    def __str__(self) -> str:
        lines = [
            f"gradient check: {'OK' if self.ok else 'FAILED'}; {len(self.failures)} failed, "
            f"{len(self.inconclusive)} inconclusive at kinks; worst ratio {self.worst_ratio:.3g}; "
            f"{self.n_evaluations} forward evaluations; checked "
            + ", ".join(f"{k}: {v}" for k, v in self.n_checked.items())
        ]
        lines += [f"  structural {'ok ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.structural]
        for title, recs in (("failures", self.failures), ("inconclusive", self.inconclusive),
                            ("worst", self.worst)):
            if recs:
                lines.append(f"  {title}:")
                lines += [f"    {r}" for r in recs[:10]]
                if len(recs) > 10:
                    lines.append(f"    ... {len(recs) - 10} more")
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise AssertionError with the report when ``ok`` is False."""
        if not self.ok:
            raise AssertionError(str(self))


class FunctionPair:
    """Adapts a pure function pair to the layer protocol.

    ``forward(params, x) -> (y, cache)`` and ``backward(params, cache, dy) -> (dx, grads)``; extra keyword
    arguments (``eps=...``) are passed to both.
    """

    def __init__(self, forward: Callable[..., Any], backward: Callable[..., Any], params: dict[str, Any],
                 **hyper: Any) -> None:
        self.params = params
        self._f, self._b, self._hyper = forward, backward, hyper

    def forward(self, x: Any, backend: Any = None) -> tuple[Any, Any]:
        return self._f(self.params, x, **self._hyper)

    def backward(self, dy: Any, cache: Any) -> tuple[Any, dict[str, Any]]:
        return self._b(self.params, cache, dy, **self._hyper)


# ---------------------------------------------------------------------------------------------------------


class _Problem:
    """The layer, the input and the upstream gradients, with loss evaluation at perturbed points."""

    def __init__(self, layer: Any, x: Any, backend: Any, upstream: list[Any], xp: Any) -> None:
        self.layer, self.x, self.backend, self.upstream, self.xp = layer, x, backend, upstream, xp
        self.evaluations = 0
        self.base = np.zeros((0, 2))  # losses at the unperturbed point, set once the upstream is drawn
        self.backward_calls = 0
        self.dy_changed: list[int] = []  # per backward call that wrote into its dy: how many entries changed

    def forward(self, x: Any) -> tuple[Any, Any]:
        self.evaluations += 1
        if self.backend is None:
            return self.layer.forward(x)
        return self.layer.forward(x, backend=self.backend)

    def backward(self, dy: Any, cache: Any) -> dict[str, Any]:
        """``layer.backward`` on a copy of ``dy``, as ``{"x": dx, **grads}``; a write into the copy is counted."""
        given = dy.copy()
        dx, grads = self.layer.backward(given, cache)
        self.backward_calls += 1
        changed = int(np.sum(~_same_entries(given, dy)))
        if changed:
            self.dy_changed.append(changed)
        return {"x": dx, **grads}

    def losses(self, x: Any) -> np.ndarray:
        """``[sum(u * y) for u in upstream]`` and the rounding scale ``sum(|u| * |y|)`` per ``u``."""
        y = self.forward(x)[0]
        return np.array([[float(self.xp.sum(u * y)), float(self.xp.sum(self.xp.abs(u * y)))]
                         for u in self.upstream])

    def tensor(self, name: str) -> Any:
        return self.x if name == "x" else self.layer.params[name]

    def losses_at(self, name: str, idx: tuple[Any, ...], values: Any) -> np.ndarray:
        """Losses with ``tensor(name)[idx] = values``, the tensor restored afterwards."""
        if name == "x":
            xp_ = self.x.copy()
            xp_[idx] = values
            return self.losses(xp_)
        arr = self.layer.params[name]
        saved = arr[idx].copy()
        arr[idx] = values
        try:
            return self.losses(self.x)
        finally:
            arr[idx] = saved


def _flat_index(shape: tuple[int, ...], flat: np.ndarray) -> tuple[np.ndarray, ...]:
    return np.unravel_index(flat, shape)


def _same_entries(a: Any, b: Any) -> np.ndarray:
    """Elementwise: equal, or both NaN."""
    a, b = to_numpy(a), to_numpy(b)
    return (a == b) | (np.isnan(a) & np.isnan(b))


def _upstream_weights(problem: _Problem, y: np.ndarray, cache: Any) -> np.ndarray:
    """Per output column ``o`` (last axis of ``y``): ``c_max / c_o``, shape ``y.shape[-1:]``.

    ``c_o`` is the size of column ``o``: the largest ``|y[..., o]|``, or, where that is under half of the
    largest column's, the larger of it and the column's first-order terms ``sum |dy_o/dtheta| * |theta|`` over
    ``x`` and the parameters (one ``backward`` with ``dy`` = 1 on the column).  So an output that is small
    because its terms cancel (``a - b`` with ``a ~ b``; its rounding error is that of ``a``) is not amplified,
    and one that is small because its terms are is.  A column of zeros with no first-order terms keeps weight 1.
    """
    cols = np.abs(y.reshape(-1, y.shape[-1]) if y.ndim else y.reshape(1, 1))
    size = cols.max(axis=0, initial=0.0)
    for o in np.flatnonzero(size < 0.5 * size.max(initial=0.0)):
        on_column = np.zeros(y.shape)
        on_column[..., o] = 1.0
        out = problem.backward(problem.xp.asarray(on_column), cache)
        tensors = [(problem.tensor(k), g) for k, g in out.items() if k == "x" or k in problem.layer.params]
        terms = sum(float(np.sum(np.abs(to_numpy(g)) * np.abs(to_numpy(t)))) for t, g in tensors
                    if np.shape(g) == np.shape(t))
        size[o] = np.fmax(size[o], terms)
    weights = np.where(size > 0, size.max(initial=0.0) / np.where(size > 0, size, 1.0), 1.0)
    return weights.reshape(y.shape[-1:])


class _TensorChecker:
    """Checks one tensor by groups with bisection (see the module docstring)."""

    def __init__(self, problem: _Problem, name: str, grads: list[np.ndarray], rng: np.random.Generator,
                 safety: float, roundoff_factor: float) -> None:
        self.p, self.name, self.rng = problem, name, rng
        self.safety, self.roundoff_factor = safety, roundoff_factor
        self.theta = to_numpy(problem.tensor(name)).astype(np.float64)
        self.grads = [g.reshape(-1) for g in grads]  # per upstream, host float64, flat
        self.records: list[Record] = []

    def run(self, group_size: int) -> None:
        n = self.theta.size
        signs = self.rng.choice(np.array([-1.0, 1.0]), size=n)
        order = self.rng.permutation(n) if group_size > 1 else np.arange(n)
        for start in range(0, n, group_size):
            self._check(order[start:start + group_size], signs)

    def _check(self, members: np.ndarray, signs: np.ndarray) -> None:
        recs = self._evaluate(members, signs, relative=False)
        magnitude = np.abs(self.theta.reshape(-1)[members])
        # a smaller step can only help where truncation, not rounding, limits the check
        refine = bool(np.any((magnitude > 0) & (magnitude < 1))) and any(
            r.verdict != "pass" or r.truncation > r.roundoff for r in recs)
        if members.size == 1:
            if refine:
                recs = [min(pair, key=lambda r: r.error_estimate / r.step)
                        for pair in zip(recs, self._evaluate(members, signs, relative=True))]
            self.records.append(max(recs, key=_rank))
            return
        rec = max(recs, key=_rank)
        if rec.verdict == "pass" and not refine:
            self.records.append(rec)
            return
        n_before = len(self.records)
        half = members.size // 2
        self._check(members[:half], signs)
        self._check(members[half:], signs)
        if not any(r.verdict != "pass" for r in self.records[n_before:]) and rec.verdict == "fail":
            self.records.append(rec)  # the group fails but neither half does: report the group, honestly

    def _evaluate(self, members: np.ndarray, signs: np.ndarray, relative: bool) -> list[Record]:
        """One record per upstream, along ``v_k = s_k |theta_k|`` (``relative``) or ``s_k max(1, |theta_k|)``."""
        flat_theta = self.theta.reshape(-1)
        theta = flat_theta[members]
        v = signs[members] * (np.abs(theta) if relative else np.maximum(1.0, np.abs(theta)))
        idx = _flat_index(self.theta.shape, members)
        xp = self.p.xp
        loss = {}
        steps = {}
        for j in (-2, -1, 1, 2):
            moved = theta + j * STEP * v
            steps[j] = moved - theta  # the step actually taken
            loss[j] = self.p.losses_at(self.name, idx, xp.asarray(moved))
        loss[0] = self.p.base
        return [self._verdict(members, theta, g[members], steps, {j: l[u] for j, l in loss.items()}, u)
                for u, g in enumerate(self.grads)]

    def _verdict(self, members: np.ndarray, theta: np.ndarray, g: np.ndarray, steps: dict[int, np.ndarray],
                 loss: dict[int, np.ndarray], upstream: int) -> Record:
        L = {j: l[0] for j, l in loss.items()}
        scale = max(l[1] for l in loss.values())  # sum |u * y|: how large the rounding of a loss can be
        # directional quantities in "loss per unit step h" so that both step sizes compare
        ana = {j: float(np.dot(g, steps[j])) for j in (-2, -1, 1, 2)}
        ana_scale = float(np.dot(np.abs(g), np.abs(steps[1]))) / STEP
        num1 = (L[1] - L[-1]) / (2 * STEP)
        num2 = (L[2] - L[-2]) / (4 * STEP)
        a1 = (ana[1] - ana[-1]) / (2 * STEP)
        a2 = (ana[2] - ana[-2]) / (4 * STEP)
        e1, e2 = num1 - a1, num2 - a2
        roundoff = self.roundoff_factor * EPS64 * (scale / STEP + ana_scale)
        truncation = abs(e2 - e1) / 3.0
        tol = self.safety * (truncation + roundoff)
        right = (L[1] - L[0]) / STEP
        left = (L[0] - L[-1]) / STEP
        right2 = (L[2] - L[0]) / (2 * STEP)
        left2 = (L[0] - L[-2]) / (2 * STEP)
        # a kink: the one-sided slopes differ by more than the tolerance, and the gap does not shrink with the
        # step as a smooth function's does (smooth: gap(2h) ~ 2 gap(h); kink: gap(2h) ~ gap(h))
        gap1, gap2 = right - left, right2 - left2
        kink = abs(gap1) > tol and abs(gap2 - gap1) < abs(gap2 - 2 * gap1)
        value = float(theta[0]) if members.size == 1 else float("nan")
        index = tuple(int(i) for i in np.unravel_index(int(members[0]), self.theta.shape))
        errors = (float(np.max(np.abs(steps[1]))), truncation, roundoff)
        if kink:
            # analytic slope per unit step, for comparison with the one-sided slopes
            a_right = ana[1] / STEP
            a_left = -ana[-1] / STEP
            lo, hi = min(left, right), max(left, right)
            a = 0.5 * (a_right + a_left)
            outside = max(lo - a, a - hi, 0.0)
            ratio = outside / tol if tol > 0 else (np.inf if outside > 0 else 0.0)
            verdict = "inconclusive" if ratio <= 1.0 else "fail"
            return Record(self.name, index, int(members.size), value, a, num1, left, right, tol, float(ratio),
                          verdict, upstream, *errors)
        err = abs(e1)
        if not np.isfinite(err) or not np.isfinite(tol):
            ratio, verdict = float("inf"), "fail"
        else:
            ratio = err / tol if tol > 0 else (0.0 if err == 0 else float("inf"))
            verdict = "pass" if ratio <= 1.0 else "fail"
        return Record(self.name, index, int(members.size), value, a1, num1, left, right, tol, float(ratio),
                      verdict, upstream, *errors)


def _rank(rec: Record) -> tuple[int, float]:
    return ({"pass": 0, "inconclusive": 1, "fail": 2}[rec.verdict], rec.ratio)


def _malformed(problem: _Problem, analytic: list[dict[str, Any]]) -> dict[str, str]:
    """What is wrong with the gradient ``backward`` returns for each tensor: missing, or of another shape."""
    expected = {"x": np.shape(problem.x), **{k: np.shape(v) for k, v in problem.layer.params.items()}}
    bad: dict[str, str] = {}
    for out in analytic:
        for name, shape in expected.items():
            if out.get(name) is None:
                bad.setdefault(name, "missing")
            elif np.shape(out[name]) != shape:
                bad.setdefault(name, f"gradient of shape {np.shape(out[name])} for a tensor of shape {shape}")
        for name in out.keys() - expected.keys():
            bad.setdefault(name, "not a parameter")
    return bad


def _structural(problem: _Problem, cache: Any, analytic: list[dict[str, Any]], bad: dict[str, str],
                x0: Any, params0: dict[str, Any]) -> list[StructuralCheck]:
    layer, xp = problem.layer, problem.xp
    u0, u1 = problem.upstream[0], problem.upstream[1 % len(problem.upstream)]
    good = [k for k in analytic[0] if k not in bad]
    a0, a1 = analytic[0], analytic[1 % len(analytic)]

    def same(a: Any, b: Any) -> bool:
        return bool(np.array_equal(to_numpy(a), to_numpy(b), equal_nan=True))

    again = problem.backward(u0, cache)
    repeat = StructuralCheck("repeated backward identical", all(same(again[k], a0[k]) for k in good),
                             "backward(dy, cache) twice gives bit-identical results")

    combo = problem.backward(2.0 * u0 - 3.0 * u1, cache)
    worst = 0.0
    for k in good:
        got, g0, g1 = (to_numpy(a).astype(np.float64) for a in (combo[k], a0[k], a1[k]))
        bound = np.linalg.norm(2 * np.abs(g0) + 3 * np.abs(g1))
        diff = np.linalg.norm(got - (2 * g0 - 3 * g1))
        worst = max(worst, diff / bound if bound > 0 else (0.0 if diff == 0 else np.inf))
    linear = StructuralCheck("linear in the upstream gradient", bool(worst <= 1e-10),
                             f"backward(2u - 3v) vs 2 backward(u) - 3 backward(v): relative {worst:.2e}")

    zero = problem.backward(xp.zeros_like(u0), cache)
    nonzero = [k for k in good if np.any(to_numpy(zero[k]) != 0)]
    zeros = StructuralCheck("zero upstream gives zero gradients", not nonzero,
                            "nonzero: " + ", ".join(nonzero) if nonzero else "all exactly zero")

    mutated = [k for k, a in [("x", problem.x)] + list(layer.params.items())
               if not same(a, x0 if k == "x" else params0[k])]
    inputs = StructuralCheck("inputs not mutated", not mutated,
                             "changed: " + ", ".join(mutated) if mutated else "x and params unchanged")

    # after every backward call of the checks above, so that all of them count
    changed = problem.dy_changed
    dy = StructuralCheck(
        "backward leaves dy unchanged", not changed,
        f"backward mutates dy in place: {len(changed)} of {problem.backward_calls} calls changed up to "
        f"{max(changed)} of {np.size(u0)} entries (the checks were given copies)" if changed
        else f"{problem.backward_calls} calls, dy bit-identical after each")
    shapes = StructuralCheck(
        "gradients match the tensors", not bad,
        "; ".join(f"{k}: {why}" for k, why in bad.items()) + " (not checked by finite differences)" if bad
        else "a gradient of the tensor's shape for x and every parameter")
    return [dy, shapes, repeat, linear, zeros, inputs]


def check_gradients(
    layer: Any,
    x: Any,
    *,
    params: dict[str, Any] | None = None,
    rng: Any = None,
    n_upstream: int = 3,
    names: Sequence[str] | None = None,
    elementwise_limit: int = 1024,
    groups: int = 256,
    safety: float = 10.0,
    roundoff_factor: float = 32.0,
    backend: Any = None,
    keep_worst: int = 10,
) -> GradientReport:
    """Check the hand-written gradients of ``layer`` at ``x`` against float64 finite differences.

    Parameters
    ----------
    layer : object with the layer protocol, or a ``(forward, backward)`` pair of pure functions
        Protocol: ``params`` (dict of arrays), ``forward(x, backend=None) -> (y, cache)``,
        ``backward(dy, cache) -> (dx, grads)``.  A pair takes ``params=``.  Parameters and ``x`` must be
        float64 (``layer.astype("float64")`` gives a float64 copy of a nalu_np layer).
    x : array, shape (batch, in_features), float64
    params : dict, optional
        The parameters of a function pair.
    rng : numpy.random.Generator or int, optional
        Draws the upstream gradients, the directions and the grouping.
    n_upstream : int
        Number of random signed upstream gradients ``u`` (entries ``+-U(0.5, 1.5)``, weighted per output column
        by the inverse of its size, see the module docstring); every element is checked against each.
    names : sequence of str, optional
        Which tensors to check: parameter names and/or ``"x"`` (default: all).
    elementwise_limit : int
        Tensors with at most this many elements are checked element by element; larger ones start in
        ``groups`` groups, and any group that does not pass is bisected down to single elements.
    safety : float
        Tolerance = ``safety`` times the estimated numerical error.
    roundoff_factor : float
        Multiplies ``eps * sum(|u * y|) / h``, the bound on the rounding error of the loss differences.
    backend : str, optional
        Passed to ``layer.forward``.
    keep_worst : int
        How many of the worst passing records to keep in the report.

    Returns
    -------
    GradientReport
        ``.ok``, ``.failures``, ``.inconclusive``, ``.worst``, ``.worst_ratio``, ``.structural``.  A backward
        that writes into ``dy``, or returns a gradient of the wrong shape or none for a tensor, is one failed
        structural check (the tensor is then not checked by finite differences), not an exception.

    Notes
    -----
    See the module docstring of :mod:`nalu_np.testing._checker` for the method.  The parameters are
    perturbed in place during the check and restored bit for bit afterwards.
    """
    if isinstance(layer, tuple):
        if len(layer) != 2 or params is None:
            raise TypeError("a function pair is checked as check_gradients((forward, backward), x, params=...)")
        layer = FunctionPair(layer[0], layer[1], params)
    elif params is not None:
        raise TypeError("params= is only for a (forward, backward) function pair; a layer brings its own")
    for attr in ("params", "forward", "backward"):
        if not hasattr(layer, attr):
            raise TypeError(f"{type(layer).__name__} lacks {attr!r}: it does not have the layer protocol")
    rng = make_rng(rng)
    xp = get_backend(backend).xp if backend is not None else array_module(x)
    for name, a in [("x", x)] + list(layer.params.items()):
        if getattr(a, "dtype", None) != np.float64:
            raise TypeError(
                f"{name} has dtype {getattr(a, 'dtype', type(a).__name__)}; finite differences are taken in float64 "
                "only: check a float64 copy (layer.astype('float64'), x.astype(np.float64))"
            )
    all_names = ["x", *layer.params]
    names = all_names if names is None else list(names)
    unknown = [n for n in names if n not in all_names]
    if unknown:
        raise ValueError(f"unknown tensor name(s) {unknown}; this layer has {all_names}")

    x0 = x.copy()
    params0 = {k: v.copy() for k, v in layer.params.items()}
    problem = _Problem(layer, x, backend, [], xp)
    y, cache = problem.forward(x)
    if not np.all(np.isfinite(to_numpy(y))):
        raise ValueError("forward(x) is not finite everywhere; gradients can only be checked where the loss is finite")
    weights = _upstream_weights(problem, to_numpy(y), cache)
    problem.upstream = [
        xp.asarray(rng.choice(np.array([-1.0, 1.0]), size=y.shape) * rng.uniform(0.5, 1.5, size=y.shape) * weights)
        for _ in range(max(1, int(n_upstream)))
    ]
    problem.base = problem.losses(x)
    analytic = [problem.backward(u, cache) for u in problem.upstream]
    bad = _malformed(problem, analytic)
    report = GradientReport(structural=_structural(problem, cache, analytic, bad, x0, params0))

    passes: list[Record] = []
    try:
        for name in (n for n in names if n not in bad):
            grads = [to_numpy(out[name]).astype(np.float64) for out in analytic]
            checker = _TensorChecker(problem, name, grads, rng, safety, roundoff_factor)
            n = checker.theta.size
            checker.run(1 if n <= elementwise_limit else -(-n // groups))
            report.n_checked[name] = n
            for rec in checker.records:
                {"pass": passes, "fail": report.failures, "inconclusive": report.inconclusive}[rec.verdict].append(rec)
    finally:
        for k, v in params0.items():
            layer.params[k][...] = v
    report.failures.sort(key=lambda r: -r.ratio)
    report.worst = sorted(passes, key=lambda r: -r.ratio)[:keep_worst]
    report.n_evaluations = problem.evaluations
    return report
