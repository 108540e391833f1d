"""Optimizers that update a dict of parameter arrays in place: :class:`SGD`, :class:`Adam`, :class:`RMSProp`.

::

    opt = nalu_np.optim.Adam(layer.params, lr=1e-3, clip_norm=1.0)
    y, cache = layer.forward(x)
    dx, grads = layer.backward(dy, cache)
    opt.step(grads)                     # layer.params' arrays are updated in place

The update rules are PyTorch's (``torch.optim.SGD``, ``Adam``, ``RMSprop`` with their default options), written
once for any array module: the arithmetic runs in the module of each parameter array (NumPy, CuPy, ...) and in
the parameter's dtype, with every state array (momentum, moments) on the same device as its parameter.

A step, in order:

1. ``clip_value``: every gradient element is clipped to ``[-clip_value, clip_value]``;
2. ``clip_norm``: if the global L2 norm of all gradients together exceeds ``clip_norm``, all gradients are
   scaled by ``clip_norm / norm`` (TensorFlow's ``clip_by_global_norm``);
3. the update rule of the optimizer;
4. ``projections``: for each named parameter, its projection (e.g. ``reference.clip_projection(-1, 1)`` for
   the NAU) is applied to the updated array.  A projection may change the array in place (and return
   ``None`` or the array) or return a new array, which is copied into the parameter.

The caller's gradient arrays are never modified.  Optimizer state (:meth:`Optimizer.state_dict`) is made of
host NumPy arrays and plain numbers, so it can be written to a checkpoint (:mod:`nalu_np.checkpoint`);
projections are code, not state, and are not part of it.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from .backends import array_module, to_numpy

__all__ = ["Optimizer", "SGD", "Adam", "RMSProp", "OPTIMIZERS", "ADAM_OVERFLOW", "array_module", "create"]

Array = Any
Projection = Callable[[Array], Any]


def _positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be finite and {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


def _fraction(value: Any, name: str) -> float:
    v = _positive(value, name, allow_zero=True)
    if v >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v


class Optimizer:
    """Base class: parameter bookkeeping, clipping, projections and state; subclasses give :meth:`_update`.

    Parameters
    ----------
    params : dict of str to array
        The arrays to train (e.g. ``layer.params``); they are updated in place.
    lr : float
        Learning rate, > 0.
    clip_norm : float, optional
        Largest global L2 norm of the gradients (all parameters together).
    clip_value : float, optional
        Largest absolute value of a gradient element.
    projections : dict of str to callable, optional
        Applied to the named parameters after each step (see the module docstring).
    """

    #: per-parameter state arrays, in the order they are stored ("momentum", "exp_avg", ...)
    slots: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Mapping[str, Array], lr: float, *, clip_norm: float | None = None,
                 clip_value: float | None = None, projections: Mapping[str, Projection] | None = None) -> None:
        if not isinstance(params, Mapping) or not params:
            raise ValueError("params must be a non-empty dict of name -> array (e.g. layer.params)")
        self.params: dict[str, Array] = dict(params)
        self._xp = {k: array_module(v) for k, v in self.params.items()}
        for k, v in self.params.items():
            if np.dtype(v.dtype).kind != "f":
                raise TypeError(f"parameter {k!r} has dtype {v.dtype}; optimizers update float arrays only")
        self.lr = _positive(lr, "lr")
        self.clip_norm = None if clip_norm is None else _positive(clip_norm, "clip_norm")
        self.clip_value = None if clip_value is None else _positive(clip_value, "clip_value")
        self.projections: dict[str, Projection] = dict(projections or {})
        for k, fn in self.projections.items():
            if k not in self.params:
                raise KeyError(f"projection for unknown parameter {k!r}; parameters: {', '.join(self.params)}")
            if not callable(fn):
                raise TypeError(f"projection for {k!r} must be callable, got {type(fn).__name__}")
        self.t = 0  # number of steps taken
        self.state: dict[str, dict[str, Array]] = {
            slot: {k: self._xp[k].zeros_like(v) for k, v in self.params.items()} for slot in self.slots
        }

    # -- hyper-parameters (what state_dict stores besides the arrays) -------------------------------------
    def hyper(self) -> dict[str, Any]:
        """The optimizer's settings as plain numbers (JSON-serialisable)."""
        return {"lr": self.lr, "clip_norm": self.clip_norm, "clip_value": self.clip_value}

    # -- the step --------------------------------------------------------------------------------------------
    def step(self, grads: Mapping[str, Array]) -> None:
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : dict of str to array
            One gradient per parameter, same keys, shapes, dtypes and array types (e.g. from
            ``layer.backward``).  Not modified.
        """
        self._check_grads(grads)
        grads = self._clipped(grads)
        self.t += 1
        for k, p in self.params.items():
            self._update(k, p, grads[k], self._xp[k])
        for k, project in self.projections.items():
            p = self.params[k]
            out = project(p)
            if out is not None and out is not p:
                p[...] = out

    def _update(self, name: str, p: Array, g: Array, xp: ModuleType) -> None:
        raise NotImplementedError

    def _check_grads(self, grads: Mapping[str, Array]) -> None:
        if not isinstance(grads, Mapping):
            raise TypeError(f"grads must be a dict of name -> array, got {type(grads).__name__}")
        missing = [k for k in self.params if k not in grads]
        extra = [k for k in grads if k not in self.params]
        if missing or extra:
            raise KeyError(f"grads do not match the parameters: missing {missing}, unknown {extra}")
        for k, p in self.params.items():
            g = grads[k]
            if type(g) is not type(p) or tuple(g.shape) != tuple(p.shape) or g.dtype != p.dtype:
                raise ValueError(
                    f"gradient {k!r} has shape {tuple(g.shape)}, dtype {g.dtype} ({type(g).__name__}), but the "
                    f"parameter has shape {tuple(p.shape)}, dtype {p.dtype} ({type(p).__name__})"
                )

    def _clipped(self, grads: Mapping[str, Array]) -> dict[str, Array]:
        out = {k: grads[k] for k in self.params}
        if self.clip_value is not None:
            c = self.clip_value
            out = {k: self._xp[k].clip(g, -c, c) for k, g in out.items()}
        if self.clip_norm is not None:
            norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in out.values()))
            if norm > self.clip_norm:  # False for NaN: non-finite gradients are passed on, not hidden
                scale = self.clip_norm / norm
                out = {k: g * g.dtype.type(scale) for k, g in out.items()}
        return out

    # -- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state: type, settings, step count and slot arrays (host NumPy copies).

        Returns
        -------
        dict
            ``{"type": "Adam", "hyper": {...}, "t": int, "slots": {slot: {param: ndarray}}}``.
        """
        return {
            "type": type(self).__name__,
            "hyper": self.hyper(),
            "t": self.t,
            "slots": {s: {k: np.array(to_numpy(v)) for k, v in arrs.items()} for s, arrs in self.state.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` of an optimizer of the same type over the same parameters.

        The settings and step count are restored; the slot arrays are copied into this optimizer's arrays
        (on their device).

        Raises
        ------
        ValueError
            Another optimizer type, other parameters or slot shapes.
        """
        kind = state.get("type")
        if kind != type(self).__name__:
            raise ValueError(f"optimizer state is for {kind!r}, not {type(self).__name__!r}")
        slots = state.get("slots", {})
        if set(slots) != set(self.slots):
            raise ValueError(f"optimizer state has slots {sorted(slots)}, expected {sorted(self.slots)}")
        for s in self.slots:
            if set(slots[s]) != set(self.params):
                raise ValueError(
                    f"optimizer state is for parameters {sorted(slots[s])}, not {sorted(self.params)}"
                )
            for k, a in slots[s].items():
                if tuple(np.shape(a)) != tuple(self.params[k].shape):
                    raise ValueError(
                        f"optimizer state {s}/{k} has shape {tuple(np.shape(a))}, the parameter "
                        f"{tuple(self.params[k].shape)}"
                    )
        # the saved settings, validated by the constructor, replace this optimizer's
        fresh = type(self)(self.params, projections=self.projections, **state.get("hyper", {}))
        self.__dict__.update({k: v for k, v in vars(fresh).items() if k != "state"})
        for s in self.slots:
            for k, a in slots[s].items():
                self.state[s][k][...] = self._xp[k].asarray(np.asarray(a, dtype=self.params[k].dtype))
        self.t = int(state.get("t", 0))

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.hyper().items() if v is not None)
        return f"{type(self).__name__}({len(self.params)} parameters, {settings}, t={self.t})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (heavy-ball) momentum.

    Parameters
    ----------
    params, lr, clip_norm, clip_value, projections
        See :class:`Optimizer`.
    momentum : float
        In ``[0, 1)``; 0 is plain gradient descent.

    Notes
    -----
    PyTorch's ``torch.optim.SGD`` (no dampening, no Nesterov)::

        b = momentum * b + g        (b = g at the first step)
        p = p - lr * b
    """

    slots = ("momentum",)

    def __init__(self, params: Mapping[str, Array], lr: float = 1e-2, *, momentum: float = 0.0,
                 **kwargs: Any) -> None:
        self.momentum = _fraction(momentum, "momentum")
        super().__init__(params, lr, **kwargs)

    def hyper(self) -> dict[str, Any]:
        return {**super().hyper(), "momentum": self.momentum}

    def _update(self, name: str, p: Array, g: Array, xp: ModuleType) -> None:
        dt = p.dtype.type
        if self.momentum:
            b = self.state["momentum"][name]
            if self.t == 1:
                b[...] = g
            else:
                xp.multiply(b, dt(self.momentum), out=b)
                xp.add(b, g, out=b)
            g = b
        xp.subtract(p, dt(self.lr) * g, out=p)


#: Adam's ``overflow`` settings (see :class:`Adam`)
ADAM_OVERFLOW = ("clip", "propagate")

#: itemsize -> ``sqrt(max / 2)`` of float32 / float64, the largest gradient Adam's moments take (see Adam's Notes)
_ADAM_LIMIT = {4: np.float32(math.sqrt(float(np.finfo(np.float32).max) / 2)),
               8: np.float64(math.sqrt(float(np.finfo(np.float64).max) / 2))}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as in PyTorch.

    Parameters
    ----------
    params, lr, clip_norm, clip_value, projections
        See :class:`Optimizer`.
    betas : (float, float)
        Decay rates of the first and second moment, each in ``[0, 1)``.
    eps : float
        Added to the square root of the bias-corrected second moment.
    overflow : {"clip", "propagate"}
        What a gradient does whose square overflows the dtype (``|g| > 1.3e19`` in float32): ``"clip"`` (the
        default) clips it first, ``"propagate"`` lets IEEE arithmetic run as in PyTorch (see Notes).

    Notes
    -----
    PyTorch's ``torch.optim.Adam`` (``amsgrad=False``, no weight decay), at step ``t = 1, 2, ...``::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p = p - lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)

    ``eps`` is outside the square root.  TensorFlow 1's ``AdamOptimizer`` (used by the seed articles) adds its
    ``epsilon`` to ``sqrt(v)`` before the bias correction instead, which is this rule with
    ``eps * sqrt(1 - beta2**t)``; the two differ only while ``sqrt(v_hat)`` is comparable to ``eps``.

    With ``overflow="clip"``, a finite gradient so large that ``g**2`` would overflow the dtype (``|g| > 1.3e19``
    in float32) enters the moments clipped to ``sqrt(max / 2)``, the largest magnitude whose moments stay finite
    (``max`` the dtype's largest value): with ``v = inf`` every later step of that component would be
    ``m / inf = 0``, the parameter frozen for good.  Clipped, the step is about ``lr`` against the gradient, as
    Adam's step is for any large gradient, and no warning is raised.  A NaN gradient makes the parameter NaN;
    an infinite one is clipped like any other (the loss that made it is not finite, and :func:`nalu_np.train`
    reports the run as diverged).

    With ``overflow="propagate"`` the gradient enters unclipped and the step is PyTorch's operation for
    operation, ``v = beta2 * v + ((1 - beta2) * g) * g`` (its ``addcmul``) and
    ``p = p - (lr / (1 - beta1**t)) * (m / (sqrt(v) / sqrt(1 - beta2**t) + eps))``, so that the same components
    overflow (the two rules differ by rounding otherwise): one with
    ``|g| > sqrt(max / (1 - beta2))`` (``5.8e20`` in float32 with the default ``beta2``) gets ``v = inf`` and
    never moves again; an infinite gradient makes its parameter NaN (``inf / inf``).  That is what
    ``torch.optim.Adam`` does in float32, the dtype of the authors' runs that nalu-np's studies reproduce
    (:attr:`nalu_np.taskbase.Task.optimizer_options`).
    """

    slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Mapping[str, Array], lr: float = 1e-3, *,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, overflow: str = "clip",
                 **kwargs: Any) -> None:
        if overflow not in ADAM_OVERFLOW:
            raise ValueError(f"unknown overflow {overflow!r}; one of {', '.join(ADAM_OVERFLOW)}")
        self.overflow = overflow
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair of numbers, got {betas!r}") from None
        self.betas = (_fraction(b1, "betas[0]"), _fraction(b2, "betas[1]"))
        self.eps = _positive(eps, "eps")
        super().__init__(params, lr, **kwargs)

    def hyper(self) -> dict[str, Any]:
        return {**super().hyper(), "betas": list(self.betas), "eps": self.eps, "overflow": self.overflow}

    def _scratch_like(self, name: str, g: Array) -> Array:
        """A scratch array like ``g`` for the clipped gradient (kept between steps; not state)."""
        buf = self.__dict__.setdefault("_scratch", {}).get(name)
        if buf is None or buf.shape != g.shape or buf.dtype != g.dtype or type(buf) is not type(g):
            buf = self._scratch[name] = g.copy()
        return buf

    def _update(self, name: str, p: Array, g: Array, xp: ModuleType) -> None:
        dt = p.dtype.type
        b1, b2 = self.betas
        m, v = self.state["exp_avg"][name], self.state["exp_avg_sq"][name]
        bc1 = 1.0 - b1**self.t
        bc2 = 1.0 - b2**self.t
        scratch = self._scratch_like(name, g)
        if self.overflow == "propagate":
            with np.errstate(over="ignore", invalid="ignore"):  # quietly, as the clip mode
                self._propagating_update(p, g, m, v, scratch, bc1, bc2, xp)
            return
        lim = _ADAM_LIMIT[p.dtype.itemsize]  # the largest |g| whose moments stay finite (see Notes)
        g = xp.minimum(xp.maximum(g, -lim), lim, out=scratch)
        xp.multiply(m, dt(b1), out=m)
        m += dt(1.0 - b1) * g
        xp.multiply(v, dt(b2), out=v)
        t = g * g
        t *= dt(1.0 - b2)
        v += t
        xp.divide(v, dt(bc2), out=t)  # t = sqrt(v / bc2) + eps, then g = lr * (m / bc1) / t (in place)
        xp.sqrt(t, out=t)
        t += dt(self.eps)
        xp.divide(m, dt(bc1), out=g)
        g *= dt(self.lr)
        g /= t  # finite over positive, or NaN from a NaN gradient (quietly: NaN raises no warning)
        p -= g

    def _propagating_update(self, p: Array, g: Array, m: Array, v: Array, scratch: Array, bc1: float,
                            bc2: float, xp: ModuleType) -> None:
        """``overflow="propagate"``: PyTorch's ``torch.optim.Adam`` operation for operation,
        ``v = b2 v + ((1 - b2) g) g`` and ``p = p - (lr / bc1) (m / (sqrt(v) / sqrt(bc2) + eps))``, so that
        it overflows where PyTorch's does."""
        dt = p.dtype.type
        b1, b2 = self.betas
        m *= dt(b1)
        m += dt(1.0 - b1) * g
        v *= dt(b2)
        t = dt(1.0 - b2) * g
        t *= g
        v += t
        xp.sqrt(v, out=t)
        t /= dt(math.sqrt(bc2))
        t += dt(self.eps)
        xp.divide(m, t, out=scratch)
        scratch *= dt(self.lr / bc1)
        p -= scratch


class RMSProp(Optimizer):
    """RMSProp (Hinton 2012), as in PyTorch.

    Parameters
    ----------
    params, lr, clip_norm, clip_value, projections
        See :class:`Optimizer`.
    alpha : float
        Decay rate of the mean square, in ``[0, 1)``.
    eps : float
        Added to the root mean square.

    Notes
    -----
    PyTorch's ``torch.optim.RMSprop`` (not centered, no momentum)::

        v = alpha * v + (1 - alpha) * g**2
        p = p - lr * g / (sqrt(v) + eps)

    ``eps`` is outside the square root (TensorFlow's ``RMSPropOptimizer`` puts it inside and uses
    ``decay=0.9``).
    """

    slots = ("square_avg",)

    def __init__(self, params: Mapping[str, Array], lr: float = 1e-2, *, alpha: float = 0.99,
                 eps: float = 1e-8, **kwargs: Any) -> None:
        self.alpha = _fraction(alpha, "alpha")
        self.eps = _positive(eps, "eps")
        super().__init__(params, lr, **kwargs)

    def hyper(self) -> dict[str, Any]:
        return {**super().hyper(), "alpha": self.alpha, "eps": self.eps}

    def _update(self, name: str, p: Array, g: Array, xp: ModuleType) -> None:
        dt = p.dtype.type
        v = self.state["square_avg"][name]
        xp.multiply(v, dt(self.alpha), out=v)
        v += dt(1.0 - self.alpha) * (g * g)
        denom = xp.sqrt(v)
        denom += dt(self.eps)
        xp.subtract(p, dt(self.lr) * g / denom, out=p)


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "rmsprop": RMSProp}


def create(name: str, params: Mapping[str, Array], lr: float | None = None, **kwargs: Any) -> Optimizer:
    """The optimizer called ``name`` (``"sgd"``, ``"adam"``, ``"rmsprop"``; any case) over ``params``.

    ``lr=None`` takes the optimizer's default learning rate; other keyword arguments go to its constructor.
    """
    try:
        cls = OPTIMIZERS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; known optimizers: {', '.join(OPTIMIZERS)}") from None
    if lr is not None:
        kwargs["lr"] = lr
    return cls(params, **kwargs)
