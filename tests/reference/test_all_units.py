"""Every unit of the table: gradients against finite differences (fixed cases and hypothesis), float32 against
float64, shapes and dtypes, the backward pass leaves its inputs alone, non-finite inputs, reproducible
initialisation, bad input and hyper-parameters, the config, and the projections onto the table's bounds.

The cases are those of ``support.reference``: ``SEED_CASES`` (NAC, NACMul, NALU under the seed articles'
presets), ``CASES`` (those and every later unit), ``ALL_UNITS`` (the table's classes).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, target

import nalu_np as nn
from nalu_np import units
from nalu_np.testing import check_gradients
from nalu_np.testing import strategies as nst
from support.reference import ALL_UNITS, CASES, LATER_UNITS, SEED_CASES, make, param_shapes, signed

#: the units with hyper-parameters (eps, omega), and those whose weight matrix W the table bounds
HYPER_UNITS = [cls for cls in ALL_UNITS if units.spec(cls.__name__).hyper]
BOUNDED_W_UNITS = [cls for cls in ALL_UNITS if "W" in units.spec(cls.__name__).bounds]


# -- gradients against finite differences ------------------------------------------------------------------


@pytest.mark.parametrize("unit", list(SEED_CASES))
@given(case=nst.layer_inputs(max_batch=5, max_in=4, max_out=3))
def test_gradients_match_finite_differences(unit, case):
    batch, i, o, x, seed = case
    layer = SEED_CASES[unit](i, o, seed, "float64")
    report = check_gradients(layer, x, rng=seed)
    assert report.ok, str(report)
    assert not report.inconclusive  # inputs are off the kink


@pytest.mark.parametrize("unit", LATER_UNITS)
@settings(max_examples=15)
@given(case=nst.layer_inputs(max_batch=5, max_in=4, max_out=3))
def test_gradients_hypothesis(unit, case):
    _, i, o, x, seed = case
    report = check_gradients(make(unit, i, o, seed), x, rng=seed)
    target(report.worst_ratio)
    assert report.ok, str(report)


@pytest.mark.parametrize("unit", ALL_UNITS)
@pytest.mark.parametrize("seed", range(3))
def test_gradients_fixed_cases(unit, seed):
    rng = np.random.default_rng(seed)
    layer = make(unit, 4, 3, seed)
    report = check_gradients(layer, signed(rng, (5, 4)), rng=seed)
    assert report.ok, str(report)


# -- float32 against float64 -------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", list(SEED_CASES))
@given(case=nst.layer_inputs(max_batch=7, max_in=6, max_out=4))
def test_float32_matches_float64_hypothesis(unit, case):
    batch, i, o, x, seed = case
    l64 = SEED_CASES[unit](i, o, seed, "float64")
    l32 = l64.astype("float32")
    y64, c64 = l64.forward(x)
    y32, c32 = l32.forward(x.astype(np.float32))
    dy = np.random.default_rng(seed).normal(size=y64.shape)
    dx64, g64 = l64.backward(dy, c64)
    dx32, g32 = l32.backward(dy.astype(np.float32), c32)
    assert y32.dtype == dx32.dtype == np.float32 and all(g.dtype == np.float32 for g in g32.values())
    # float32 error is relative to the size of the terms that enter each result: log(|x| + eps) near |x| = 1
    # loses all relative precision in float32 (an absolute error of ~1e-7), so a gradient that is small
    # because l is small is compared against the scale of dy, y and x, not its own size
    scale = np.linalg.norm(dy) * (np.linalg.norm(y64) + np.linalg.norm(x) + 1.0)
    for a32, a64 in [(y32, y64), (dx32, dx64)] + [(g32[k], g64[k]) for k in g64]:
        assert a32.shape == a64.shape
        np.testing.assert_allclose(a32, a64, rtol=0, atol=2e-5 * np.linalg.norm(a64) + 1e-6 * scale)


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_float32_matches_float64_fixed_case(unit):
    rng = np.random.default_rng(3)
    l64 = make(unit, 5, 3, seed=0)
    l32 = l64.astype("float32")
    x = signed(rng, (4, 5))
    dy = rng.normal(size=(4, 3))
    y64, c64 = l64.forward(x)
    y32, c32 = l32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32 and y32.shape == (4, 3)
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    dx64, g64 = l64.backward(dy, c64)
    dx32, g32 = l32.backward(dy.astype(np.float32), c32)
    assert dx32.dtype == np.float32 and dx32.shape == (4, 5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-3, atol=1e-4)
    assert list(g32) == list(l32.params)
    for k, g in g32.items():
        assert g.dtype == np.float32 and g.shape == l32.params[k].shape
        np.testing.assert_allclose(g, g64[k], rtol=1e-3, atol=1e-4, err_msg=k)


# -- shapes, dtypes, the cache, IEEE -----------------------------------------------------------------------


@pytest.mark.parametrize("unit", list(CASES))
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 3, 2), (5, 1, 1), (2, 1, 4)])
def test_shapes_and_dtypes(unit, shape):
    batch, i, o = shape
    for dt in ("float32", "float64"):
        layer = CASES[unit](i, o, 0, dt)
        x = np.random.default_rng(1).uniform(0.5, 2, size=(batch, i)).astype(dt)
        y, cache = layer.forward(x)
        assert y.shape == (batch, o) and y.dtype == np.dtype(dt)
        dx, grads = layer.backward(np.ones_like(y), cache)
        assert dx.shape == x.shape and dx.dtype == np.dtype(dt)
        assert set(grads) == set(layer.params)
        for k, g in grads.items():
            assert g.shape == layer.params[k].shape and g.dtype == np.dtype(dt)
        assert {k: p.shape for k, p in layer.params.items()} == param_shapes(layer, i, o)


@pytest.mark.parametrize("unit", list(CASES))
def test_backward_does_not_mutate_and_reuses_cache(unit):
    layer = CASES[unit](3, 2, 0, "float64")
    x = np.random.default_rng(0).normal(size=(4, 3))
    x0, p0 = x.copy(), {k: v.copy() for k, v in layer.params.items()}
    y, cache = layer.forward(x)
    dy = np.ones_like(y)
    a = layer.backward(dy, cache)
    b = layer.backward(dy, cache)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(x, x0)
    for k in p0:
        np.testing.assert_array_equal(layer.params[k], p0[k])


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_non_finite_inputs_propagate(unit):
    layer = unit(2, 2, rng=0, dtype="float64")
    x = np.array([[np.nan, 1.0], [1.0, 2.0]])
    y, cache = layer.forward(x)
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()
    dx, grads = layer.backward(np.ones_like(y), cache)
    assert np.isfinite(dx[1]).all()
    assert all(np.isnan(g).any() for k, g in grads.items() if k != "b")  # x.T @ dy carries the NaN into them
    assert np.isfinite(grads.get("b", 0.0)).all()  # a bias's gradient, the sum of dy, does not see x


# -- initialisation, bad input, hyper-parameters, config ---------------------------------------------------


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_init_is_reproducible(unit):
    a, b = unit(3, 2, rng=7).params, unit(3, 2, rng=7).params
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_bad_input(unit):
    layer = unit(3, 2, rng=0)
    with pytest.raises(ValueError, match="shape"):
        layer.forward(np.ones((4, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype"):
        layer.forward(np.ones((4, 3), dtype=np.float64))
    with pytest.raises(TypeError, match="dtype"):
        layer.forward(np.ones((4, 3), dtype=np.int64))
    _, cache = layer.forward(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones((4, 3), dtype=np.float32), cache)
    with pytest.raises(TypeError):
        unit(3, 2, dtype="float16")
    with pytest.raises(ValueError):
        unit(0, 2)


@pytest.mark.parametrize("unit", HYPER_UNITS)
@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_bad_hyper_parameters(unit, bad):
    for name in units.spec(unit.__name__).hyper:  # eps, omega: positive
        with pytest.raises(ValueError, match=name):
            unit(3, 2, **{name: bad})


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_config_names_the_unit_and_its_hyper_parameters(unit):
    layer = unit(3, 2, rng=0)
    cfg = layer.config()
    assert cfg["unit"] == unit.__name__ and cfg["in_features"] == 3 and cfg["out_features"] == 2
    assert {k: cfg[k] for k in layer.hyper()} == layer.hyper()
    assert nn.Sequential([unit(3, 2, rng=0), nn.NAU(2, 1, rng=0)])(np.ones((2, 3), np.float32)).shape == (2, 1)


# -- projections onto the table's bounds -------------------------------------------------------------------


@pytest.mark.parametrize("unit", BOUNDED_W_UNITS)
def test_layer_projection_hooks(unit):
    lo, hi = units.spec(unit.__name__).bounds["W"]
    layer = unit(3, 2, rng=0)
    W = layer.params["W"]
    W[...] = [[-3.0, 3.0], [0.1, 0.9], [2.0, -2.0]]
    (name, project), = layer.projections().items()
    assert name == "W"
    layer.params[name][...] = project(layer.params[name])
    assert layer.params["W"] is W  # in place, the optimizer's array
    np.testing.assert_array_equal(W, np.clip([[-3.0, 3.0], [0.1, 0.9], [2.0, -2.0]], lo, hi).astype(np.float32))
    W[0, 0] = 5.0
    layer.project()
    assert W[0, 0] == hi
