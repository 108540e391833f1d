"""The unit table (nalu_np.units) against the layers, the backends and the reference it describes."""

from __future__ import annotations

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import layers, reference as ref, units

UNITS = sorted(units.UNITS)


@pytest.mark.parametrize("name", UNITS)
def test_every_unit_has_a_class_with_the_tables_parameters(name):
    spec = units.spec(name)
    cls = layers.unit_class(name.lower())
    assert cls.__name__ == name and cls.kernel == spec.kernel and cls.bounds == dict(spec.bounds)
    for shared in ((True, False) if spec.separate_params else (True,)):
        kwargs = {"shared_weights": shared} if name == "NALU" else {}
        layer = cls(3, 2, rng=0, **kwargs)
        shapes = units.param_shapes(name, 3, 2, shared)
        assert list(layer.params) == list(spec.param_names(shared)) == list(shapes)
        assert {k: v.shape for k, v in layer.params.items()} == shapes
        assert set(layer.hyper()) == set(spec.hyper)


@pytest.mark.parametrize("name", UNITS)
def test_every_published_initialisation_is_a_preset(name):
    cls = layers.unit_class(name)
    spec = units.spec(name)
    assert spec.inits and spec.default_init == next(iter(spec.inits))
    for init in spec.inits:
        a = cls.preset(init, 4, 3, rng=7, dtype="float64")
        b = nn.tasks.make_unit(name, 4, 3, rng=7, dtype="float64", preset=init)
        assert a.init == init and list(a.params) == list(b.params)
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
        for key, value in spec.inits[init].settings.items():
            assert getattr(a, key) == value
    with pytest.raises(ValueError, match="unknown init preset 'xavier'"):
        cls.preset("xavier", 2, 1)


def test_default_initialisations_are_the_papers():
    nau = nn.NAU(100, 2, rng=0, dtype="float64")
    assert np.abs(nau.params["W"]).max() <= min(0.5, np.sqrt(6 / 102))
    nmu = nn.NMU(2, 1, rng=0, dtype="float64")
    assert 0.25 <= nmu.params["W"].min() and nmu.params["W"].max() <= 0.75
    npu = nn.NPU(3, 2, rng=0)
    assert np.all(npu.params["W_i"] == 0) and np.all(npu.params["g"] == 0.5)
    inalu = nn.INALU(50, 40, rng=0, dtype="float64")
    assert abs(inalu.params["W_hat_add"].mean() - 0.88) < 0.02 and abs(inalu.params["M_hat_mul"].mean() - 0.5) < 0.02


@pytest.mark.parametrize("fans", [(100, 2), (2, 1), (1, 1), (10, 10), (1000, 3), (3, 4)])
def test_madsen_nac_radius_solves_the_variance_equation(fans):
    r = nn.init.nac_w_optimal_r(*fans)
    fan = max(sum(fans), 5)
    assert 0 < r < 10 and abs(fan * nn.init.nac_w_variance(r) - 2) < 1e-10
    # the variance formula is that of tanh(U(-r, r)) * sigmoid(U(-r, r))
    rng = np.random.default_rng(0)
    w = np.tanh(rng.uniform(-r, r, 400_000)) * ref.sigmoid(rng.uniform(-r, r, 400_000))
    assert abs(w.var() - nn.init.nac_w_variance(r)) < 0.01 * nn.init.nac_w_variance(r)
    scipy_optimize = pytest.importorskip("scipy.optimize")  # the authors' call (scipy is in the test extra)
    assert r == scipy_optimize.bisect(lambda x: fan * nn.init.nac_w_variance(x) - 2, 0, 10)


@pytest.mark.parametrize("name", ["NAC", "NACMul", "NALU"])
def test_madsen_nac_initialisation(name):
    layer = layers.unit_class(name).preset("madsen2020", 100, 2, rng=3, dtype="float64")
    r = nn.init.nac_w_optimal_r(100, 2)
    for k in ("W_hat", "M_hat"):
        w = layer.params[k]
        assert w.shape == (100, 2) and np.abs(w).max() <= r and np.abs(w).max() > 0.9 * r
    if name == "NALU":
        g = np.sqrt(6 / 102)
        assert np.abs(layer.params["G"]).max() <= g and layer.shared_weights and layer.eps == 1e-7
        with pytest.raises(ValueError, match="shared NALU weights"):
            nn.NALU(3, 2, shared_weights=False, init="madsen2020")


@pytest.mark.parametrize("name", UNITS)
def test_the_reference_has_the_kernels_of_every_unit(name):
    spec = units.spec(name)
    for suffix in ("_forward", "_backward"):
        assert callable(getattr(ref, spec.kernel + suffix))


@pytest.mark.parametrize("name", ["NAU", "NMU", "NPU", "RealNPU", "ClippedNACMul"])
def test_regularizer_of_the_table(name):
    layer = layers.unit_class(name)(4, 3, rng=1, dtype="float64")
    R, grads = layer.regularizer()
    direct = {"NAU": lambda p: ref.nau_regularizer(p["W"]), "NMU": lambda p: ref.nmu_regularizer(p["W"]),
              "ClippedNACMul": lambda p: ref.nmu_regularizer(p["W"])}
    if name in direct:
        R0, dW = direct[name](layer.params)
        assert R == R0 and list(grads) == ["W"]
        np.testing.assert_array_equal(grads["W"], dW)
    else:
        weights = [k for k in layer.params if k.startswith("W_")]
        assert sorted(grads) == sorted(weights)
        assert R == pytest.approx(sum(np.abs(layer.params[k]).mean() for k in weights))
    assert nn.NAC(2, 1).regularizer() == (0.0, {})


def test_canonical_names_and_effective_weights():
    assert units.canonical_name("realnpu") == "RealNPU"
    with pytest.raises(ValueError, match="known units"):
        units.canonical_name("transformer")
    nac = nn.NAC(3, 2, rng=0, dtype="float64")
    w = units.effective_weights(nac.params)
    np.testing.assert_allclose(w["W_hat"], np.tanh(nac.params["W_hat"]) * ref.sigmoid(nac.params["M_hat"]))
    assert units.nac_pairs(nn.INALU(2, 1).params) == [("W_hat_add", "M_hat_add"), ("W_hat_mul", "M_hat_mul")]
    sig = nn.SigmoidNACMul(3, 2, rng=0, dtype="float64")  # a W_hat without its M_hat: W = sigma(W_hat)
    assert units.nac_pairs(sig.params) == []
    np.testing.assert_array_equal(units.effective_weights(sig.params)["W_hat"], ref.sigmoid(sig.params["W_hat"]))
    gated = nn.GatedNAUNMU(3, 2, rng=0, dtype="float64")
    w = units.effective_weights(gated.params)
    assert sorted(w) == ["W_add", "W_mul"]  # the gate left out
    np.testing.assert_array_equal(w["W_mul"], gated.params["W_mul"])


def test_the_inalu_initialisations():
    module = nn.INALU(60, 50, rng=0, dtype="float64").params
    scripts = nn.INALU.preset("schloer2020-experiments", 60, 50, rng=0, dtype="float64").params
    for params, (w, m, std) in ((module, (0.88, 0.5, 0.2)), (scripts, (1.0, -1.0, 0.1))):
        for path in ("add", "mul"):
            assert abs(params[f"W_hat_{path}"].mean() - w) < 0.02 and abs(params[f"M_hat_{path}"].mean() - m) < 0.02
            assert abs(params[f"W_hat_{path}"].std() - std) < 0.01
        assert params["g"].shape == (50,) and abs(params["g"].std() - std) < 0.1 * std + 0.02


def test_reinitialise_draws_in_place():
    model = nn.Sequential([nn.NAU(5, 2, rng=0, dtype="float64"), nn.NMU(2, 1, rng=1, dtype="float64")])
    arrays = dict(model.params)
    before = {k: v.copy() for k, v in arrays.items()}
    model.reinitialise(np.random.default_rng(9))
    after = model.params
    assert all(after[k] is arrays[k] for k in arrays)  # the same arrays: an optimizer keeps its references
    assert all(not np.array_equal(after[k], before[k]) for k in arrays)
    rng = np.random.default_rng(9)
    fresh = [nn.NAU(5, 2, rng=rng, dtype="float64"), nn.NMU(2, 1, rng=rng, dtype="float64")]
    np.testing.assert_array_equal(after["0.W"], fresh[0].params["W"])  # first layer first, from one generator
    np.testing.assert_array_equal(after["1.W"], fresh[1].params["W"])
