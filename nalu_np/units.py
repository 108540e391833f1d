"""The unit table: one entry per unit says everything that is not its math.

For each unit: its layer class, the prefix of its kernels (``<kernel>_forward``, ``<kernel>_backward`` in every
backend), the module of its family in each backend package (``kernels/<backend>/<family>.py``), its parameters
and their shapes, its gate, the hyper-parameters its kernels take, its published initialisations (the first is
the default), the regularizer it trains with and the box its parameters are projected onto.  Layers,
checkpoints, tasks, the compiled engine and the tests read this table; nobody re-derives parameter names.

=============  =============  ======  ==========================================  ========  ==============================
unit           kernel         family  parameters (I inputs, O outputs)            gate      initialisations
=============  =============  ======  ==========================================  ========  ==============================
NAC            nac            nac     W_hat, M_hat (I, O)                         --        seed-003, seed-000, madsen2020
NACMul         nacmul         nac     W_hat, M_hat (I, O)                         --        seed-003, seed-000, madsen2020
NALU           nalu           nalu    W_hat, M_hat, G (I, O) | separate weights   G (I, O)  seed-003, seed-000, madsen2020
NAU            nau            nau     W (I, O) in [-1, 1]                         --        madsen2020
NMU            nmu            nmu     W (I, O) in [0, 1]                          --        madsen2020
INALU          inalu          inalu   W_hat_add, M_hat_add, W_hat_mul, M_hat_mul  g (O,)    schloer2020, -experiments
NPU            npu            npu     W_r, W_i (I, O), g (I,) in [0, 1]           g (I,)    heim2020
RealNPU        realnpu        npu     W_r (I, O), g (I,) in [0, 1]                g (I,)    heim2020
Linear         dense          dense   W (I, O), b (O,)                            --        madsen2020
ReLU           relu           dense   W (I, O), b (O,)                            --        madsen2020
ReLU6          relu6          dense   W (I, O), b (O,)                            --        madsen2020
SigmoidNACMul  sigmoidnacmul  nac     W_hat (I, O)                                --        madsen2020
ClippedNACMul  clippednacmul  nac     W (I, O) in [0, 1]                          --        madsen2020
GatedNAUNMU    gatednaunmu    gated   W_add [-1, 1], W_mul [0, 1], G (I, O)       G (I, O)  madsen2020
=============  =============  ======  ==========================================  ========  ==============================

The NALU with ``shared_weights=False`` (seed 000) has ``W_hat_add, M_hat_add, W_hat_mul, M_hat_mul, G``.
SigmoidNACMul, ClippedNACMul and GatedNAUNMU are Madsen & Johansen's variants of their units in the all-models
table (reference kernels in :mod:`nalu_np.variants`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from . import init as _init
from . import reference as _ref

__all__ = ["Init", "UnitSpec", "UNITS", "spec", "unit_names", "param_shapes", "nac_pairs", "effective_weights"]

Draw = Callable[[np.random.Generator, int, int, np.dtype, bool], dict[str, np.ndarray]]
Regularizer = Callable[[Mapping[str, Any]], tuple[Any, dict[str, Any]]]


@dataclass(frozen=True)
class Init:
    """A published initialisation of a unit.

    Attributes
    ----------
    draw : callable
        ``draw(rng, I, O, dtype, shared_weights) -> params``.
    settings : dict
        The unit's hyper-parameters that the publication sets with it (``eps``, ``shared_weights``);
        :meth:`nalu_np.layers.Layer.preset` passes them to the constructor.
    source : str
        Where it is published.
    """

    draw: Draw
    settings: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class UnitSpec:
    """One row of the unit table (see the module docstring).

    Attributes
    ----------
    kernel : str
        Prefix of the kernels of every backend.
    family : str
        Module of the unit in each backend package and in ``tests/kernels``.
    params : dict
        Parameter name -> shape code: ``"IO"`` (in, out), ``"I"`` (in,), ``"O"`` (out,).
    separate_params : dict or None
        The parameters with ``shared_weights=False`` (NALU only).
    nac_scale : float
        ``c`` of the NAC weight ``W = tanh(c W_hat) sigma(c M_hat)`` (and of the gate ``sigma(c x @ G)``): 1,
        or ``ln(phi)`` for the golden-ratio base of the G-NALU.
    gate : str or None
        The name of the gate parameter.
    hyper : tuple of str
        Keyword arguments of the kernels besides ``params`` and the arrays.
    inits : dict
        Name -> :class:`Init`; the first is the default.
    regularizer : callable or None
        ``regularizer(params) -> (R, {name: dR/dparam})`` for the regularized parameters only.
    bounds : dict
        Parameter name -> ``(lo, hi)``, the box of the projection after each optimizer step.
    source : str
    """

    kernel: str
    family: str
    params: Mapping[str, str]
    hyper: tuple[str, ...] = ()
    gate: str | None = None
    inits: Mapping[str, Init] = field(default_factory=dict)
    regularizer: Regularizer | None = None
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    separate_params: Mapping[str, str] | None = None
    nac_scale: float = 1.0
    source: str = ""

    @property
    def default_init(self) -> str:
        return next(iter(self.inits))

    def param_names(self, shared_weights: bool = True) -> tuple[str, ...]:
        """The parameter names, in the order the layer holds them."""
        chosen = self.params if shared_weights or self.separate_params is None else self.separate_params
        return tuple(chosen)

    def init(self, name: str | None) -> Init:
        """The initialisation ``name`` (None: the default); ValueError naming the known ones otherwise."""
        if name is None:
            name = self.default_init
        try:
            return self.inits[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown init preset {name!r}; known presets: {', '.join(self.inits)}") from None


# ---------------------------------------------------------------------------------------------------------
# initialisations (as the papers' code draws them; the draws' order is part of reproducibility)
# ---------------------------------------------------------------------------------------------------------


def _seed_init(name: str, *, eps: bool, nalu: bool) -> Init:
    p = _init.preset(name)

    def draw(rng: np.random.Generator, i: int, o: int, dtype: np.dtype, shared: bool) -> dict[str, np.ndarray]:
        if nalu:
            return _init.nalu_params(rng, i, o, name, dtype, shared)
        return _init.nac_params(rng, i, o, name, dtype)

    settings: dict[str, Any] = {"eps": p.eps} if eps else {}
    if nalu:
        settings["shared_weights"] = p.shared_weights
    source = {"seed-003": "seed article 003 (truncated normal, shared NALU weights)",
              "seed-000": "seed article 000 (U(-2, 2), separate NALU weights)"}[name]
    return Init(draw, settings, source)


def _seed_inits(*, eps: bool, nalu: bool = False) -> dict[str, Init]:
    return {name: _seed_init(name, eps=eps, nalu=nalu) for name in _init.PRESETS}


def _madsen_nac_draw(gate: bool) -> Draw:
    """Madsen & Johansen's NAC (stable_nalu/layer/nac.py): ``W_hat``, then ``M_hat``, ``~ U(-r, r)`` with
    ``r = nac_w_optimal_r(I, O)``; with ``gate`` (their NALU, stable_nalu/layer/_abstract_nalu.py) then ``G``
    xavier-uniform with gain 1 (``calculate_gain('sigmoid')``), ``U(-g, g)``, ``g = sqrt(6 / (I + O))``.
    Shared NALU weights only, as the authors' NALU without ``--nalu-two-nac``."""

    def draw(rng: np.random.Generator, i: int, o: int, dtype: np.dtype, shared: bool) -> dict[str, np.ndarray]:
        if not shared:
            raise ValueError("the madsen2020 initialisation is for shared NALU weights (shared_weights=True)")
        r = _init.nac_w_optimal_r(i, o)
        params = {name: rng.uniform(-r, r, size=(i, o)).astype(dtype) for name in ("W_hat", "M_hat")}
        if gate:
            g = float(np.sqrt(6.0 / (i + o)))
            params["G"] = rng.uniform(-g, g, size=(i, o)).astype(dtype)
        return params

    return draw


_MADSEN_NAC_SOURCE = ("Madsen & Johansen 2020, Neural Arithmetic Units (ICLR): W_hat, M_hat ~ U(-r, r), "
                      "Var(tanh(W_hat) sigma(M_hat)) = 2 / max(I + O, 5)")


def _madsen_nac_init(*, eps: bool, gate: bool = False) -> dict[str, Init]:
    settings: dict[str, Any] = {"eps": 1e-7} if eps else {}
    if gate:
        settings["shared_weights"] = True
    source = _MADSEN_NAC_SOURCE + ("; G xavier-uniform, gain 1" if gate else "")
    return {"madsen2020": Init(_madsen_nac_draw(gate), settings, source)}


def _nau_draw(rng: np.random.Generator, i: int, o: int, dtype: np.dtype, shared: bool) -> dict[str, np.ndarray]:
    r = min(0.5, float(np.sqrt(6.0 / (i + o))))
    return {"W": rng.uniform(-r, r, size=(i, o)).astype(dtype)}


def _nmu_draw(rng: np.random.Generator, i: int, o: int, dtype: np.dtype, shared: bool) -> dict[str, np.ndarray]:
    return {"W": rng.uniform(0.25, 0.75, size=(i, o)).astype(dtype)}


def _sigmoid_nacmul_draw(rng: np.random.Generator, i: int, o: int, dtype: np.dtype, shared: bool
                         ) -> dict[str, np.ndarray]:
    """The authors' ``PosNAC`` (stable_nalu/layer/pos_nac.py): ``W_hat`` xavier-normal with gain 1,
    ``N(0, 2 / (I + O))``."""
    return {"W_hat": rng.normal(0.0, float(np.sqrt(2.0 / (i + o))), size=(i, o)).astype(dtype)}


def _gated_nau_nmu_draw(rng: np.random.Generator, i: int, o: int, dtype: np.dtype, shared: bool
                        ) -> dict[str, np.ndarray]:
    """The authors' ``ReRegualizedLinearNALU`` with two sub-layers (stable_nalu/layer/_abstract_nalu.py,
    ``reset_parameters``): ``W_add`` as the NAU's, then ``W_mul`` as the NMU's, then ``G`` xavier-uniform with
    gain 1 (``calculate_gain('sigmoid')``), ``U(-g, g)``, ``g = sqrt(6 / (I + O))``."""
    g = float(np.sqrt(6.0 / (i + o)))
    return {"W_add": _nau_draw(rng, i, o, dtype, shared)["W"], "W_mul": _nmu_draw(rng, i, o, dtype, shared)["W"],
            "G": rng.uniform(-g, g, size=(i, o)).astype(dtype)}


def _inalu_draw(w_mean: float, m_mean: float, std: float) -> Draw:
    """The iNALU's normal draws: ``W_hat ~ N(w_mean, std**2)``, ``M_hat ~ N(m_mean, std**2)`` for the add then
    the mul path, then ``g ~ N(0, std**2)``."""

    def draw(rng: np.random.Generator, i: int, o: int, dtype: np.dtype, shared: bool) -> dict[str, np.ndarray]:
        params = {}
        for path in ("add", "mul"):
            params[f"W_hat_{path}"] = rng.normal(w_mean, std, size=(i, o)).astype(dtype)
            params[f"M_hat_{path}"] = rng.normal(m_mean, std, size=(i, o)).astype(dtype)
        params["g"] = rng.normal(0.0, std, size=o).astype(dtype)
        return params

    return draw


def _npu_draw(imaginary: bool) -> Draw:
    def draw(rng: np.random.Generator, i: int, o: int, dtype: np.dtype, shared: bool) -> dict[str, np.ndarray]:
        r = float(np.sqrt(6.0 / (i + o)))
        params = {"W_r": rng.uniform(-r, r, size=(i, o)).astype(dtype)}
        if imaginary:
            params["W_i"] = np.zeros((i, o), dtype=dtype)
        params["g"] = np.full(i, 0.5, dtype=dtype)
        return params

    return draw


def _dense_draw(gain_fan: str) -> Draw:
    """The authors' baselines (stable_nalu/layer/basic.py): ``W`` xavier-uniform with gain 1,
    ``U(+-sqrt(6 / (I + O)))`` (``"fan_sum"``), or kaiming-uniform for ReLU, ``U(+-sqrt(6 / I))``
    (``"fan_in"``); the bias 0."""

    def draw(rng: np.random.Generator, i: int, o: int, dtype: np.dtype, shared: bool) -> dict[str, np.ndarray]:
        r = float(np.sqrt(6.0 / (i + o) if gain_fan == "fan_sum" else 6.0 / i))
        return {"W": rng.uniform(-r, r, size=(i, o)).astype(dtype), "b": np.zeros(o, dtype=dtype)}

    return draw


# ---------------------------------------------------------------------------------------------------------
# regularizers
# ---------------------------------------------------------------------------------------------------------


def _nau_regularizer(params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    R, dW = _ref.nau_regularizer(params["W"])
    return R, {"W": dW}


def _nmu_regularizer(params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    R, dW = _ref.nmu_regularizer(params["W"])
    return R, {"W": dW}


def _gated_regularizer(params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The sum of the sub-layers' regularizers, as the authors' module tree sums them: the NAU's of ``W_add``
    plus the NMU's of ``W_mul``."""
    R_add, dW_add = _ref.nau_regularizer(params["W_add"])
    R_mul, dW_mul = _ref.nmu_regularizer(params["W_mul"])
    return R_add + R_mul, {"W_add": dW_add, "W_mul": dW_mul}


def _l1_regularizer(names: tuple[str, ...]) -> Regularizer:
    def regularizer(params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        parts = {k: _ref.l1_regularizer(params[k]) for k in names}
        return sum(R for R, _ in parts.values()), {k: dR for k, (_, dR) in parts.items()}

    return regularizer


# ---------------------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------------------

_M_J = "Madsen & Johansen 2020, Neural Arithmetic Units (ICLR)"
_BASIC = _M_J + ", the baselines of stable_nalu/layer/basic.py"
_HEIM = "Heim, Pevny & Smidl 2020, Neural Power Units (NeurIPS)"
_POS_NAC = _M_J + ", the log-space NAC with positive weights of the all-models table"

UNITS: dict[str, UnitSpec] = {
    "NAC": UnitSpec(
        kernel="nac", family="nac", params={"W_hat": "IO", "M_hat": "IO"},
        inits={**_seed_inits(eps=False), **_madsen_nac_init(eps=False)}, source="Trask et al. 2018, Neural Arithmetic Logic Units",
    ),
    "NACMul": UnitSpec(
        kernel="nacmul", family="nac", params={"W_hat": "IO", "M_hat": "IO"}, hyper=("eps",),
        inits={**_seed_inits(eps=True), **_madsen_nac_init(eps=True)}, source="Trask et al. 2018 (the NALU's log-space path)",
    ),
    "NALU": UnitSpec(
        kernel="nalu", family="nalu", params={"W_hat": "IO", "M_hat": "IO", "G": "IO"}, hyper=("eps",), gate="G",
        separate_params={"W_hat_add": "IO", "M_hat_add": "IO", "W_hat_mul": "IO", "M_hat_mul": "IO", "G": "IO"},
        inits={**_seed_inits(eps=True, nalu=True), **_madsen_nac_init(eps=True, gate=True)},
        source="Trask et al. 2018, Neural Arithmetic Logic Units",
    ),
    "GNALU": UnitSpec(
        kernel="gnalu", family="gnalu", params={"W_hat": "IO", "M_hat": "IO", "G": "IO"}, hyper=("eps",), gate="G",
        inits={"madsen2020": Init(_madsen_nac_draw(True), {"eps": 1e-7},
                                 _MADSEN_NAC_SOURCE + "; G xavier-uniform, gain 1 (the NALU's, which the Primer's "
                                 "G-NALU draws)")},
        nac_scale=_ref.LN_PHI,
        source="the golden-ratio NALU of Mistry, Farrahi & Hare 2022, A Primer for Neural Arithmetic Logic "
               "Modules (bmistry4/nalm-benchmark, stable_nalu/functional/golden_ratio_base.py)",
    ),
    "NAU": UnitSpec(
        kernel="nau", family="nau", params={"W": "IO"},
        inits={"madsen2020": Init(_nau_draw, source=_M_J + ": U(-r, r), r = min(0.5, sqrt(6 / (I + O)))")},
        regularizer=_nau_regularizer, bounds={"W": (-1.0, 1.0)}, source=_M_J,
    ),
    "NMU": UnitSpec(
        kernel="nmu", family="nmu", params={"W": "IO"},
        inits={"madsen2020": Init(_nmu_draw, source=_M_J + ": U(0.25, 0.75)")},
        regularizer=_nmu_regularizer, bounds={"W": (0.0, 1.0)}, source=_M_J,
    ),
    "INALU": UnitSpec(
        kernel="inalu", family="inalu",
        params={"W_hat_add": "IO", "M_hat_add": "IO", "W_hat_mul": "IO", "M_hat_mul": "IO", "g": "O"},
        hyper=("eps", "omega"), gate="g",
        inits={"schloer2020": Init(_inalu_draw(0.88, 0.5, 0.2),
                                   source="Schloer, Ring & Hotho 2020 (daschloer/inalu), the module's defaults, "
                                          "which the Primer's iNALU draws: W_hat ~ N(0.88, 0.2^2), "
                                          "M_hat ~ N(0.5, 0.2^2), g ~ N(0, 0.2^2)"),
               "schloer2020-experiments": Init(_inalu_draw(1.0, -1.0, 0.1),
                                               source="the experiment scripts of daschloer/inalu (_arith.py, "
                                                      "_func.py): W_hat ~ N(1, 0.1^2), M_hat ~ N(-1, 0.1^2), "
                                                      "g ~ N(0, 0.1^2)")},
        source="Schloer, Ring & Hotho 2020, iNALU",
    ),
    "NPU": UnitSpec(
        kernel="npu", family="npu", params={"W_r": "IO", "W_i": "IO", "g": "I"}, hyper=("eps",), gate="g",
        inits={"heim2020": Init(_npu_draw(True), source=_HEIM + ": Glorot-uniform W_r, W_i = 0, g = 1/2")},
        regularizer=_l1_regularizer(("W_r", "W_i")), bounds={"g": (0.0, 1.0)}, source=_HEIM,
    ),
    "RealNPU": UnitSpec(
        kernel="realnpu", family="npu", params={"W_r": "IO", "g": "I"}, hyper=("eps",), gate="g",
        inits={"heim2020": Init(_npu_draw(False), source=_HEIM + ": Glorot-uniform W_r, g = 1/2")},
        regularizer=_l1_regularizer(("W_r",)), bounds={"g": (0.0, 1.0)}, source=_HEIM,
    ),
    "Linear": UnitSpec(
        kernel="dense", family="dense", params={"W": "IO", "b": "O"},
        inits={"madsen2020": Init(_dense_draw("fan_sum"), source=_BASIC + ": W xavier-uniform (gain 1), b = 0")},
        source=_BASIC,
    ),
    "ReLU": UnitSpec(
        kernel="relu", family="dense", params={"W": "IO", "b": "O"},
        inits={"madsen2020": Init(_dense_draw("fan_in"), source=_BASIC + ": W kaiming-uniform ('relu'), b = 0")},
        source=_BASIC,
    ),
    "ReLU6": UnitSpec(
        kernel="relu6", family="dense", params={"W": "IO", "b": "O"},
        inits={"madsen2020": Init(_dense_draw("fan_in"), source=_BASIC + ": W kaiming-uniform ('relu'), b = 0")},
        source=_BASIC,
    ),
    "SigmoidNACMul": UnitSpec(
        kernel="sigmoidnacmul", family="nac", params={"W_hat": "IO"}, hyper=("eps",),
        inits={"madsen2020": Init(_sigmoid_nacmul_draw, {"eps": 1e-7},
                                  _POS_NAC + ": W_hat xavier-normal, N(0, 2 / (I + O))")},
        source=_POS_NAC + " (PosNAC, --nac-mul normal)",
    ),
    "ClippedNACMul": UnitSpec(
        kernel="clippednacmul", family="nac", params={"W": "IO"}, hyper=("eps",),
        inits={"madsen2020": Init(_nmu_draw, {"eps": 1e-7}, _POS_NAC + ": U(0.25, 0.75), the NMU's")},
        regularizer=_nmu_regularizer, bounds={"W": (0.0, 1.0)},
        source=_POS_NAC + " (ReRegualizedLinearPosNAC, --nac-mul normal)",
    ),
    "GatedNAUNMU": UnitSpec(
        kernel="gatednaunmu", family="gated", params={"W_add": "IO", "W_mul": "IO", "G": "IO"}, gate="G",
        inits={"madsen2020": Init(_gated_nau_nmu_draw, source=_M_J + ": W_add as the NAU's, W_mul as the NMU's, "
                                  "G xavier-uniform (gain 1)")},
        regularizer=_gated_regularizer, bounds={"W_add": (-1.0, 1.0), "W_mul": (0.0, 1.0)},
        source=_M_J + " (ReRegualizedLinearNALU, --nalu-two-nac --nalu-mul mnac)",
    ),
}


def unit_names() -> list[str]:
    """The units of the table, by class name."""
    return sorted(UNITS)


def canonical_name(unit: str) -> str:
    """The table's name of ``unit`` (any case: ``"nmu"`` -> ``"NMU"``); ValueError naming the known ones."""
    for name in UNITS:
        if name.lower() == str(unit).lower():
            return name
    raise ValueError(f"unknown unit {unit!r}; known units: {', '.join(unit_names())}")


def spec(unit: str) -> UnitSpec:
    """The table entry of ``unit`` (class name, any case)."""
    return UNITS[canonical_name(unit)]


def param_shapes(unit: str, in_features: int, out_features: int, shared_weights: bool = True
                 ) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of the parameters of ``unit`` with ``in_features`` inputs and ``out_features`` outputs."""
    s = spec(unit)
    codes = s.params if shared_weights or s.separate_params is None else s.separate_params
    sizes = {"I": in_features, "O": out_features}
    return {name: tuple(sizes[c] for c in code) for name, code in codes.items()}


def nac_pairs(names: Any) -> list[tuple[str, str]]:
    """The ``(W_hat<suffix>, M_hat<suffix>)`` pairs among parameter ``names``: the NAC reparameterisation
    ``W = tanh(W_hat) * sigma(M_hat)`` of NAC, NACMul, NALU and INALU."""
    names = set(names)
    return sorted((w, "M_hat" + w[len("W_hat"):]) for w in names
                  if w.startswith("W_hat") and "M_hat" + w[len("W_hat"):] in names)


def effective_weights(params: Mapping[str, np.ndarray], nac_scale: float = 1.0) -> dict[str, np.ndarray]:
    """The weight matrices of one unit as its forward pass uses them (float64), gates left out.

    ``W`` (NAU, NMU, ClippedNACMul), ``W_add``, ``W_mul`` (GatedNAUNMU), ``W_r``, ``W_i`` (NPU, RealNPU) as
    they are; ``tanh(c W_hat) * sigmoid(c M_hat)`` for each pair of :func:`nac_pairs`, under the name of its
    ``W_hat``, with ``c`` the unit's ``nac_scale`` (1; the G-NALU's ``ln(phi)``); ``sigmoid(W_hat)`` for a
    ``W_hat`` without an ``M_hat`` (SigmoidNACMul).
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    out = {k: v for k, v in p.items() if k in ("W", "W_add", "W_mul", "W_r", "W_i")}
    for w, m in nac_pairs(p):
        out[w] = np.tanh(nac_scale * p[w]) * _ref.sigmoid(nac_scale * p[m])
    if "W_hat" in p and "M_hat" not in p:
        out["W_hat"] = _ref.sigmoid(p["W_hat"])
    return out
