"""Parameters and inputs are checked once, in one place, alike on every CPU backend (issue: nothing silently
wrong): wrong shapes, dtypes, missing keys, non-contiguous arrays and ndarray subclasses are refused by name."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import nalu_np as nn

BACKENDS = ["numpy"] + (["numba"] if importlib.util.find_spec("numba") else [])


def _message(fn) -> tuple[type, str]:
    with pytest.raises((TypeError, ValueError)) as info:
        fn()
    return info.type, str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(4, 2), (2, 2), (3, 1), (3,)])
def test_a_parameter_of_the_wrong_shape_is_named(backend, shape):
    layer = nn.NAU(3, 2)
    layer.params["W"] = np.full(shape, 0.5, dtype=np.float32)
    x = np.ones((5, 3), np.float32)
    kind, msg = _message(lambda: layer.forward(x, backend=backend))
    assert kind is ValueError and "'W'" in msg and str((3, 2)) in msg and str(shape) in msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_parameter_problem_fails_the_same_on_every_backend(backend):
    x = np.ones((5, 3), np.float32)
    cases = {
        "missing": lambda L: L.params.pop("G"),
        "unknown": lambda L: L.params.__setitem__("bias", np.zeros(2, np.float32)),
        "dtype": lambda L: L.params.__setitem__("G", L.params["G"].astype(np.float64)),
        "strided": lambda L: L.params.__setitem__("G", np.asfortranarray(np.ones((3, 2), np.float32))),
        "list": lambda L: L.params.__setitem__("G", [[0.0] * 2] * 3),
    }
    got = {}
    for name, spoil in cases.items():
        layer = nn.NALU(3, 2, rng=0)
        spoil(layer)
        got[name] = _message(lambda: layer.forward(x, backend=backend))
    assert got["missing"][0] is ValueError and "'G'" in got["missing"][1]
    assert got["unknown"][0] is ValueError and "'bias'" in got["unknown"][1]
    assert got["dtype"][0] is TypeError and "float64" in got["dtype"][1] and "'G'" in got["dtype"][1]
    assert got["strided"][0] is ValueError and "C-contiguous" in got["strided"][1]
    assert got["list"][0] is TypeError and "'G'" in got["list"][1]
    if backend != "numpy":  # the same messages as the reference backend
        ref = {}
        for name, spoil in cases.items():
            layer = nn.NALU(3, 2, rng=0)
            spoil(layer)
            ref[name] = _message(lambda: layer.forward(x, backend="numpy"))
        assert {k: (t, m.replace("'numpy'", "'numba'")) for k, (t, m) in ref.items()} == got


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # numpy.matrix
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [lambda a: np.ma.masked_array(a, mask=a > 1.5), np.asmatrix],
                         ids=["MaskedArray", "matrix"])
def test_ndarray_subclasses_are_refused(backend, make):
    x = make(np.array([[1.0, 2.0], [3.0, 1.0]], np.float32))
    for layer in (nn.NAU(2, 1, rng=0), nn.NMU(2, 1, rng=0)):
        kind, msg = _message(lambda: layer.forward(x, backend=backend))
        assert kind is TypeError and type(x).__name__ in msg and "subclass of numpy.ndarray" in msg


def test_dtype_hints_suggest_what_works():
    layer = nn.NAC(2, 1, dtype="float64")
    _, msg = _message(lambda: layer.forward(np.ones((2, 2), np.float16)))
    assert "layer.astype('float16')" not in msg and "x.astype('float64')" in msg
    _, msg = _message(lambda: layer.forward(np.ones((2, 2), ">f8")))
    assert "byte order" in msg and "'>f8'" in msg
    _, msg = _message(lambda: nn.NAC(2, 1).forward(np.ones((2, 2), np.float64)))
    assert "layer.astype('float64')" in msg


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_inputs_are_results_without_warnings_on_every_backend(backend, value):
    """IEEE results, no warning: the reference warned (invalid value in matmul) where the kernels are silent."""
    import warnings

    x = np.array([[value, 1.5], [2.0, 3.0]], np.float32)
    for name in sorted(nn.units.UNITS):
        layer = nn.layers.unit_class(name)(2, 2, rng=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y, cache = layer.forward(x, backend=backend)
            dx, _ = layer.backward(np.ones_like(y), cache)
        ref, _ = layer.forward(x, backend="numpy")
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
        assert np.all(np.isfinite(y[1])), name  # the finite row stays finite
