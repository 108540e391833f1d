"""Layers: thin classes that hold parameters and call the active backend's pure function pair.

Every layer has the protocol of DESIGN section 3::

    layer.params                                  # dict[str, array], weights of shape (in, out)
    y, cache = layer.forward(x, backend=None)     # x: (batch, in) -> y: (batch, out)
    dx, grads = layer.backward(dy, cache)         # grads has the keys of layer.params

The cache returned by ``forward`` remembers the backend that computed it; ``backward`` uses the same one.
Nothing derived from the parameters is stored on the layer, so optimizers may update ``params`` in place.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np

from . import init as _init
from . import reference as _ref
from . import units as _units
from ._checks import as_float_dtype, check_array, check_params, positive_int
from .backends import Backend, array_module, get_backend, to_numpy
from .sequential import Cache, Sequential  # re-exported: the layers' protocol

__all__ = [
    "Cache", "Layer", "NAC", "NACMul", "NALU", "Sequential", "ProjectedLayer", "NAU", "NMU", "INALU", "NPU", "RealNPU",
    "Linear", "ReLU", "ReLU6", "SigmoidNACMul", "ClippedNACMul", "GatedNAUNMU", "GNALU", "unit_class", "make_unit",
    "supports_presets",
]

Array = Any  # numpy.ndarray, or a device array of a GPU backend

_CLASSES: dict[str, type] = {}  # unit table name -> layer class, filled as the classes are defined


class Layer:
    """Base class of the units: parameter storage, validation and dispatch to the backend kernels.

    Subclasses set ``unit``, their key in :data:`nalu_np.units.UNITS`; the table gives them ``kernel`` (the
    prefix of the backend functions), ``bounds``, the parameters' names and shapes, the hyper-parameters the
    kernels take, the initialisations and the regularizer.
    """

    unit: ClassVar[str]
    kernel: ClassVar[str]
    bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    _hyper_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "unit" in cls.__dict__:
            spec = _units.UNITS[cls.unit]
            cls.kernel = spec.kernel
            cls.bounds = dict(spec.bounds)
            cls._hyper_names = spec.hyper
            _CLASSES[cls.unit] = cls

    def __init__(self, in_features: int, out_features: int, *, dtype: Any = "float32") -> None:
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.dtype = as_float_dtype(dtype)
        self.params: dict[str, Array] = {}

    @property
    def spec(self) -> _units.UnitSpec:
        """This unit's row of :data:`nalu_np.units.UNITS`."""
        return _units.UNITS[self.unit]

    @property
    def shared_weights(self) -> bool:
        """Whether the additive and multiplicative paths share their weights (NALU); True for other units."""
        return True

    def _initialise(self, rng: Any, init: str | None) -> None:
        """``params`` drawn from the unit's initialisation ``init`` (None: the table's default)."""
        self.init = self.spec.default_init if init is None else init
        self._shapes = _units.param_shapes(self.unit, self.in_features, self.out_features, self.shared_weights)
        draw = self.spec.init(init).draw
        self.params = draw(_init.make_rng(rng), self.in_features, self.out_features, self.dtype,
                           self.shared_weights)

    def reinitialise(self, rng: Any) -> None:
        """Draw fresh parameters from the layer's initialisation (:attr:`init`) into its arrays, in place (an
        optimizer built on ``params`` keeps its references and its state), as the iNALU recipe re-initialises a
        stalled run."""
        draw = self.spec.init(self.init).draw
        fresh = draw(_init.make_rng(rng), self.in_features, self.out_features, self.dtype, self.shared_weights)
        xp = array_module(next(iter(self.params.values())))
        for k, v in fresh.items():
            self.params[k][...] = xp.asarray(v)

    @classmethod
    def preset(cls, name: str, in_features: int, out_features: int, *, rng: Any = None,
               dtype: Any = "float32") -> "Layer":
        """The unit with a published initialisation and every setting that goes with it (e.g. a NALU's ``eps``
        and weight sharing for ``"seed-000"``); the names are the keys of ``spec.inits``."""
        settings = _units.UNITS[cls.unit].init(name).settings
        return cls(in_features, out_features, rng=rng, dtype=dtype, init=name, **settings)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{name: shape}`` that ``params`` must have (from the unit table, fixed when the layer is built)."""
        return self._shapes

    # -- hyper-parameters passed to the kernels (eps, ...) and the constructor arguments -------------------
    def hyper(self) -> dict[str, Any]:
        """Keyword arguments of this unit's kernels besides ``params`` and the arrays (the table's ``hyper``)."""
        return {k: getattr(self, k) for k in self._hyper_names} if self._hyper_names else {}

    def config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (JSON-serialisable)."""
        return {
            "unit": type(self).__name__,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "dtype": self.dtype.name,
            **self.hyper(),
        }

    # -- the protocol ------------------------------------------------------------------------------------
    def forward(self, x: Array, backend: str | Backend | None = None) -> tuple[Array, Cache]:
        """Forward pass.

        Parameters
        ----------
        x : array, shape (batch, in_features)
            Of the backend's array type and the layer's dtype.
        backend : str or Backend, optional
            Overrides the active backend for this call.

        Returns
        -------
        y : array, shape (batch, out_features)
        cache : Cache
            Pass it to :meth:`backward`.
        """
        be = get_backend(backend)
        check_array(x, name="x", backend=be, shape=(None, self.in_features), dtype=self.dtype)
        check_params(self.params, self.param_shapes(), backend=be, dtype=self.dtype)
        y, data = be.kernel(self.kernel + "_forward")(self._kernel_params(), x, **self.hyper())
        return y, Cache(self, be, data, int(x.shape[0]))

    def backward(self, dy: Array, cache: Cache) -> tuple[Array, dict[str, Array]]:
        """Backward pass.

        Parameters
        ----------
        dy : array, shape (batch, out_features)
            Gradient of the loss with respect to ``y``.
        cache : Cache
            From this layer's :meth:`forward`.

        Returns
        -------
        dx : array, shape (batch, in_features)
        grads : dict
            Gradient of the loss for every entry of ``params``, same keys and shapes.

        Notes
        -----
        The layer takes ``(dy, cache)``, in the order ``forward`` returns ``(y, cache)``; the backend kernels
        are pure functions and take ``(params, cache, dy)``, the parameters first as in their forward
        ``(params, x)``.
        """
        if not isinstance(cache, Cache) or cache.owner is not self:
            raise ValueError("cache does not come from this layer's forward()")
        be = cache.backend
        check_array(dy, name="dy", backend=be, shape=(cache.batch, self.out_features), dtype=self.dtype)
        dx, grads = be.kernel(self.kernel + "_backward")(self._kernel_params(), cache.data, dy, **self.hyper())
        return dx, self._param_grads(grads)

    def _kernel_params(self) -> dict[str, Array]:
        """The parameters as the kernels see them: ``params`` (the NPU with ``clamp_gate`` clips its gate)."""
        return self.params

    def _param_grads(self, grads: dict[str, Array]) -> dict[str, Array]:
        """The kernels' gradients as gradients of ``params`` (the chain rule of :meth:`_kernel_params`)."""
        return grads

    def __call__(self, x: Array, backend: str | Backend | None = None) -> Array:
        """``forward(x)[0]``: the output alone, for inference."""
        return self.forward(x, backend)[0]

    # -- projections and the regularizer (units whose table row has them) ---------------------------------
    def projections(self) -> dict[str, Any]:
        """The projections an optimizer applies after each step: ``{name: project}`` with
        ``params[name][...] = project(params[name])`` (see :func:`nalu_np.reference.clip_projection`); empty
        for units without bounds."""
        return {k: _ref.clip_projection(lo, hi) for k, (lo, hi) in self.bounds.items()}

    def project(self) -> None:
        """Apply :meth:`projections` to ``params`` in place."""
        for k, project in self.projections().items():
            self.params[k][...] = project(self.params[k])

    def regularizer(self) -> tuple[Any, dict[str, Array]]:
        """The unit's regularizer ``R`` and its gradient ``{name: dR/dparam}`` for the regularized parameters
        only (the table's; ``(0.0, {})`` for a unit without one); the loss adds ``lambda(t) * R`` (see
        :func:`nalu_np.reference.linear_schedule`)."""
        reg = self.spec.regularizer
        return (0.0, {}) if reg is None else reg(self.params)

    # -- copies ------------------------------------------------------------------------------------------
    def astype(self, dtype: Any) -> "Layer":
        """A copy of the layer with parameters cast to ``dtype`` (float32 or float64)."""
        dt = as_float_dtype(dtype)
        new = copy.copy(self)
        new.dtype = dt
        new.params = {k: v.astype(dt, copy=True) for k, v in self.params.items()}
        return new

    def to(self, backend: str | Backend) -> "Layer":
        """A copy of the layer with its parameters as arrays of ``backend`` (an explicit device move)."""
        be = get_backend(backend)
        new = copy.copy(self)
        new.params = {k: be.asarray(np.array(to_numpy(v), dtype=self.dtype)) for k, v in self.params.items()}
        return new

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.hyper().items())
        return f"{type(self).__name__}({self.in_features}, {self.out_features}, dtype={self.dtype.name!r}{extra})"


class NAC(Layer):
    """Neural accumulator: a linear layer whose weights are pushed towards -1, 0 and 1.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    init : {"seed-003", "seed-000", "madsen2020"}
        Initialisation (see :mod:`nalu_np.init`; ``"madsen2020"``: ``U(-r, r)`` with
        :func:`nalu_np.init.nac_w_optimal_r`).

    Notes
    -----
    ``W = tanh(W_hat) * sigma(M_hat)``, ``y = x @ W``.  Parameters ``W_hat``, ``M_hat`` of shape (I, O).
    """

    unit = "NAC"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self._initialise(rng, init)


class NACMul(Layer):
    """Log-space (multiplicative) neural accumulator.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    eps : float
        ``log(|x| + eps)`` keeps the log finite at 0.
    init : {"seed-003", "seed-000", "madsen2020"}

    Notes
    -----
    ``y = exp(log(|x| + eps) @ W)`` with ``W = tanh(W_hat) * sigma(M_hat)``.
    """

    unit = "NACMul"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 eps: float = 1e-7, init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self.eps = _init.positive_float(eps, "eps")
        self._initialise(rng, init)


class NALU(Layer):
    """Neural arithmetic logic unit: a learned gate between an additive and a multiplicative NAC.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    eps : float
    shared_weights : bool
        True (the paper, seed 003): one ``W_hat``, ``M_hat`` for both paths.  False (seed 000):
        ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul``.
    init : {"seed-003", "seed-000", "madsen2020"}
        ``"madsen2020"`` (Madsen & Johansen's NALU, shared weights only): the NAC's ``U(-r, r)``, then ``G``
        xavier-uniform.

    Notes
    -----
    ``a = x @ W_a``, ``m = exp(log(|x| + eps) @ W_m)``, ``g = sigma(x @ G)``, ``y = g * a + (1 - g) * m``.
    Use :meth:`preset` for the published set-ups with all their settings.
    """

    unit = "NALU"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 eps: float = 1e-7, shared_weights: bool = True, init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self.eps = _init.positive_float(eps, "eps")
        self._shared = bool(shared_weights)
        self._initialise(rng, init)

    @property
    def shared_weights(self) -> bool:
        return self._shared

    def config(self) -> dict[str, Any]:
        return {**super().config(), "shared_weights": self.shared_weights}


class ProjectedLayer(Layer):
    """A unit whose parameters are kept in a box by a projection after each optimizer step (the table's
    ``bounds``): NAU, NMU, NPU, RealNPU, ClippedNACMul, GatedNAUNMU."""


class NAU(ProjectedLayer):
    """Neural addition unit (Madsen & Johansen 2020): a linear layer with weights in ``[-1, 1]``.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    init : {"madsen2020"}

    Notes
    -----
    ``y = x @ W``, ``W`` of shape (I, O) drawn from ``U(-r, r)``, ``r = min(0.5, sqrt(6 / (I + O)))``, and
    clipped to ``[-1, 1]`` by the projection after each optimizer step.  Regularizer
    ``R = mean(min(|W|, 1 - |W|))``.
    """

    unit = "NAU"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self._initialise(rng, init)


class NMU(ProjectedLayer):
    """Neural multiplication unit (Madsen & Johansen 2020): gated products of the inputs.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    init : {"madsen2020"}

    Notes
    -----
    ``y[b, o] = prod_i (W[i, o] * x[b, i] + 1 - W[i, o])``, ``W`` of shape (I, O) drawn from
    ``U(0.25, 0.75)`` and clipped to ``[0, 1]`` by the projection after each optimizer step.  Regularizer
    ``R = mean(min(W, 1 - W))``.
    """

    unit = "NMU"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self._initialise(rng, init)


class INALU(Layer):
    """Improved NALU (Schlör, Ring & Hotho 2020): separate weights, an input-independent gate per output,
    a clipped log path and a sign term that lets it multiply negative numbers.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    eps : float
        ``log(max(|x|, eps))``.
    omega : float
        The log-space sum is clipped at ``omega``, so ``m <= exp(omega)``.
    init : {"schloer2020", "schloer2020-experiments"}
        The authors' module defaults ``W_hat ~ N(0.88, 0.2**2)``, ``M_hat ~ N(0.5, 0.2**2)``, ``g ~ N(0, 0.2**2)``
        (the default; also what the Primer's iNALU draws), or what their experiment scripts set,
        ``W_hat ~ N(1, 0.1**2)``, ``M_hat ~ N(-1, 0.1**2)``, ``g ~ N(0, 0.1**2)`` (daschloer/inalu).

    Notes
    -----
    ``y = sigma(g) * (x @ W_a) + (1 - sigma(g)) * exp(min(log(max(|x|, eps)) @ W_m, omega)) * s`` with the
    sign term ``s_o = prod_i (sign(x_i) |W_m,io| + 1 - |W_m,io|)``; see :func:`nalu_np.reference.inalu_forward`.
    Parameters ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul`` (I, O) and ``g`` (O,).
    """

    unit = "INALU"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 eps: float = 1e-7, omega: float = 20.0, init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self.eps = _init.positive_float(eps, "eps")
        self.omega = _init.positive_float(omega, "omega")
        self._initialise(rng, init)


class NPU(ProjectedLayer):
    """Neural power unit (Heim, Pevný & Šmídl 2020): learned real powers of the inputs, signs included.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    eps : float, optional
        ``r = g * (|x| + eps) + 1 - g``; default the machine epsilon of ``dtype``, as the authors' code has it
        (``eps(T)`` in NeuralArithmetic.jl, src/npu.jl): 1.19e-7 in float32, 2.2e-16 in float64.
    clamp_gate : bool
        False (the default): ``g`` is projected onto ``[0, 1]`` after each optimizer step.  True: as the
        Primer's PyTorch NPU (bmistry4/nalm-benchmark, stable_nalu/layer/npu.py), the forward pass uses
        ``clip(g, 0, 1)``, the gradient of ``g`` is 0 where ``g`` is outside ``[0, 1]`` (passed on at the bounds,
        as ``torch.clamp`` did), and ``g`` is never projected.
    init : {"heim2020"}

    Notes
    -----
    ``y = exp(log(r) @ W_r - k @ W_i) * cos(log(r) @ W_i + k @ W_r)``, ``k = pi * g * [x < 0]``; see
    :func:`nalu_np.reference.npu_forward`.  Parameters ``W_r``, ``W_i`` (I, O) and the relevance gate ``g``
    (I,).  Initialisation as in the paper's code: ``W_r`` Glorot-uniform ``U(-sqrt(6 / (I + O)),
    sqrt(6 / (I + O)))``, ``W_i = 0``, ``g = 1/2``.  Regularizer: the L1 penalty ``mean(|W_r|) + mean(|W_i|)``.
    """

    unit = "NPU"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 eps: float | None = None, clamp_gate: bool = False, init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self.eps = float(np.finfo(self.dtype).eps) if eps is None else _init.positive_float(eps, "eps")
        if not isinstance(clamp_gate, (bool, np.bool_)):
            raise TypeError(f"clamp_gate must be True or False, got {clamp_gate!r}")
        self.clamp_gate = bool(clamp_gate)
        self._initialise(rng, init)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "clamp_gate": self.clamp_gate}

    def projections(self) -> dict[str, Any]:
        """``g`` onto ``[0, 1]``; nothing with ``clamp_gate`` (the forward pass clips it)."""
        return {} if self.clamp_gate else super().projections()

    def _kernel_params(self) -> dict[str, Array]:
        if not self.clamp_gate:
            return self.params
        g = self.params["g"]
        return {**self.params, "g": array_module(g).clip(g, 0, 1)}

    def _param_grads(self, grads: dict[str, Array]) -> dict[str, Array]:
        if not self.clamp_gate:
            return grads
        g = self.params["g"]
        return {**grads, "g": grads["g"] * ((g >= 0) & (g <= 1))}


class RealNPU(NPU):
    """The NPU without imaginary weights (``W_i = 0``): ``y = exp(log(r) @ W_r) * cos(k @ W_r)``.

    Parameters and initialisation as :class:`NPU` without ``W_i``: ``W_r`` (I, O), ``g`` (I,).
    """

    unit = "RealNPU"


class Linear(Layer):
    """The study's linear baseline: ``y = x @ W + b``.

    Parameters
    ----------
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    init : {"madsen2020"}

    Notes
    -----
    ``W`` (I, O) xavier-uniform with gain 1, ``U(-r, r)``, ``r = sqrt(6 / (I + O))``; ``b`` (O,) zero (the
    authors' ``stable_nalu/layer/basic.py``).
    """

    unit = "Linear"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self._initialise(rng, init)


class ReLU(Linear):
    """The study's ReLU baseline: ``y = max(x @ W + b, 0)``; ``W`` kaiming-uniform, ``U(-r, r)``,
    ``r = sqrt(6 / I)``, ``b`` zero (parameters as :class:`Linear`)."""

    unit = "ReLU"


class ReLU6(Linear):
    """The study's ReLU6 baseline: ``y = min(max(x @ W + b, 0), 6)``; initialised as :class:`ReLU`."""

    unit = "ReLU6"


class SigmoidNACMul(Layer):
    """Log-space NAC with sigmoid weights, the authors' ``PosNAC`` run by ``--nac-mul normal`` (Madsen & Johansen
    2020, the NAC•,σ model): ``W = sigma(W_hat)``, ``y = exp(log(|x| + eps) @ W)``.

    Parameters as :class:`NACMul`; ``init`` ``"madsen2020"``: ``W_hat`` (I, O) xavier-normal,
    ``N(0, 2 / (I + O))``.  No regularizer, no bounds.
    """

    unit = "SigmoidNACMul"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 eps: float = 1e-7, init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self.eps = _init.positive_float(eps, "eps")
        self._initialise(rng, init)


class ClippedNACMul(ProjectedLayer):
    """Log-space NAC with the NMU's weights, the authors' ``ReRegualizedLinearPosNAC`` run by ``--nac-mul
    normal`` (Madsen & Johansen 2020, the NAC•,NMU model): ``y = exp(log(|x| + eps) @ W)``.

    Parameters as :class:`NACMul`; ``init`` ``"madsen2020"``: ``W`` (I, O) ``~ U(0.25, 0.75)``, the NMU's.
    ``W`` is clipped to ``[0, 1]`` after each optimizer step; regularizer the NMU's, ``mean(min(|W|, |1 - W|))``.
    """

    unit = "ClippedNACMul"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 eps: float = 1e-7, init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self.eps = _init.positive_float(eps, "eps")
        self._initialise(rng, init)


class GatedNAUNMU(ProjectedLayer):
    """A sigmoid gate between a NAU and an NMU, the authors' ``ReRegualizedLinearNALU`` with ``--nalu-two-nac
    --nalu-mul mnac`` (Madsen & Johansen 2020, the Gated NAU/NMU model).

    Parameters as :class:`NAU`; ``init`` ``"madsen2020"``: ``W_add`` as the NAU's, then ``W_mul`` as the NMU's,
    then ``G`` xavier-uniform (gain 1), ``U(-g, g)``, ``g = sqrt(6 / (I + O))``.

    Notes
    -----
    ``a = x @ W_add``, ``m[b, o] = prod_i (W_mul[i, o] x[b, i] + 1 - W_mul[i, o])``, ``g = sigma(x @ G)``,
    ``y = g * a + (1 - g) * m``; ``W_add``, ``W_mul``, ``G`` (I, O), ``W_add`` clipped to ``[-1, 1]`` and
    ``W_mul`` to ``[0, 1]`` after each optimizer step.  Regularizer: the NAU's of ``W_add`` plus the NMU's of
    ``W_mul``.
    """

    unit = "GatedNAUNMU"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self._initialise(rng, init)


class GNALU(Layer):
    """The NALU in the golden-ratio base (G-NALU: Rana et al. 2019, IEEE document 8995315 as the Primer's README
    cites it; run as the Primer's ``--nalu-gate golden-ratio --nalu-mul golden-ratio --nac-weight golden-ratio``),
    shared weights.

    Parameters as :class:`NALU` (``init`` ``"madsen2020"``, the default, or the seed articles' presets).

    Notes
    -----
    ``W = tanh_phi(W_hat) sigma_phi(M_hat)``, ``g = sigma_phi(x @ G)``, ``a = x @ W``,
    ``m = exp(log(|x| + eps) @ W)``, ``y = g * a + (1 - g) * m``, with ``tanh_phi(z) = tanh(ln(phi) z)`` and
    ``sigma_phi(z) = sigma(ln(phi) z)`` (:func:`nalu_np.reference.gnalu_forward`).
    """

    unit = "GNALU"

    def __init__(self, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
                 eps: float = 1e-7, init: str | None = None) -> None:
        super().__init__(in_features, out_features, dtype=dtype)
        self.eps = _init.positive_float(eps, "eps")
        self._initialise(rng, init)


def unit_class(unit: str) -> type:
    """The layer class of ``unit`` (its name in the unit table, any case); ValueError naming the known ones."""
    return _CLASSES[_units.canonical_name(unit)]


def supports_presets(unit: str) -> bool:
    """Whether ``unit`` has the seed articles' initialisations (``"seed-003"``, ``"seed-000"``)."""
    return set(_init.PRESETS) <= set(_units.spec(unit).inits)


def make_unit(unit: str, in_features: int, out_features: int, *, rng: Any = None, dtype: Any = "float32",
              preset: str | None = None) -> Layer:
    """Build a unit by name (any case), optionally with a published initialisation and its settings.

    Parameters
    ----------
    unit : str
        ``"NAC"``, ``"NACMul"``, ``"NALU"``, ... (:func:`nalu_np.units.unit_names`).
    in_features, out_features : int
    rng : numpy.random.Generator or int, optional
    dtype : {"float32", "float64"}
    preset : str, optional
        A key of the unit's ``spec.inits`` (e.g. ``"seed-003"``, ``"seed-000"`` for NAC, NACMul and NALU):
        the initial distribution and the settings published with it (:meth:`Layer.preset`).  ``None``: the
        unit's defaults.
    """
    cls = unit_class(unit)
    if preset is None:
        return cls(in_features, out_features, rng=rng, dtype=dtype)
    return cls.preset(preset, in_features, out_features, rng=rng, dtype=dtype)
