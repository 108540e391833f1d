"""NAU, NMU, iNALU, NPU and RealNPU of the GPU backends (``cupy``, ``numba-cuda``) on a real device, against the
NumPy reference.  All tests are marked ``gpu``: they run only with ``--gpu`` and skip cleanly when a backend
cannot run here.  The same kernels are checked without a GPU by ``tests/test_gpu_units_sim.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nalu_np as nn
from nalu_np.optim import Adam

from test_gpu import BACKENDS, _backend, _to_device
from cudasim_units_common import UNITS, check_unit, make_unit_case, run_unit

pytestmark = pytest.mark.gpu


def _moderate(params: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
    """Weights times ``scale`` (gates kept), so that sums and products over many inputs stay moderate."""
    return {k: v if k == "g" else (v * scale).astype(v.dtype) for k, v in params.items()}


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=6)
@given(batch=st.integers(1, 5000), n_in=st.integers(1, 5), n_out=st.integers(1, 3),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**32 - 1))
def test_units_match_reference(backend, unit, dtype, batch, n_in, n_out, seed):
    be = _backend(backend)
    params, x, dy = make_unit_case(np.random.default_rng(seed), unit, batch, n_in, n_out, dtype)
    check_unit(be.module, unit, params, x, dy, _to_device(be))


@pytest.mark.parametrize("shape", [(4099, 64, 64), (1000, 100, 2), (100_003, 2, 1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_units_large_shapes(backend, unit, dtype, shape):
    be = _backend(backend)
    params, x, dy = make_unit_case(np.random.default_rng(0), unit, *shape, dtype)
    check_unit(be.module, unit, _moderate(params, 0.1), x, dy, _to_device(be))


@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_units_reproducible(backend, unit):
    be = _backend(backend)
    params, x, dy = make_unit_case(np.random.default_rng(1), unit, 1 << 15, 16, 8, "float32")
    params = _moderate(params, 0.2)
    first = run_unit(be.module, unit, params, x, dy, _to_device(be))
    for _ in range(2):
        again = run_unit(be.module, unit, params, x, dy, _to_device(be))
        for a, b in zip(first[:2], again[:2]):
            np.testing.assert_array_equal(a, b)
        for key in first[2]:
            np.testing.assert_array_equal(first[2][key], again[2][key])


@pytest.mark.parametrize("dtype, scale", [("float32", 1e30), ("float64", 1e200)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_nmu_overflow_and_zero_factors(backend, dtype, scale):
    be = _backend(backend)
    params, x, dy = make_unit_case(np.random.default_rng(2), "nmu", 300, 3, 2, dtype)
    params["W"][:] = 1.0
    x[::2] *= scale  # products overflow to inf
    x[1, 0] = 0.0  # a factor exactly 0
    y = run_unit(be.module, "nmu", params, x, dy, _to_device(be))[0]
    assert np.isinf(y).any()
    check_unit(be.module, "nmu", params, x, dy, _to_device(be))


@pytest.mark.parametrize("layer_cls", [nn.NAU, nn.NMU, nn.NPU])
@pytest.mark.parametrize("backend", BACKENDS)
def test_training_steps_with_projection(backend, layer_cls):
    """Adam with the units' projections on GPU parameters gives the trajectory of the NumPy backend."""
    be = _backend(backend)
    if be.xp is not pytest.importorskip("cupy"):
        pytest.skip("optimizers need CuPy arrays")
    rng = np.random.default_rng(5)
    x = rng.uniform(1.0, 3.0, (2048, 2))
    t = x[:, :1] * x[:, 1:]
    host = layer_cls(2, 1, rng=6, dtype="float64")
    dev = host.to(backend)
    for layer, xs, ts, name in ((host, x, t, "numpy"), (dev, be.asarray(x), be.asarray(t), backend)):
        opt = Adam(layer.params, lr=0.05, projections=layer.projections())
        for _ in range(20):
            y, cache = layer.forward(xs, backend=name)
            _, grads = layer.backward(2.0 * (y - ts) / y.size, cache)
            opt.step(grads)
    for key in host.params:
        np.testing.assert_allclose(nn.backends.to_numpy(dev.params[key]), host.params[key], rtol=1e-6, atol=1e-9)
