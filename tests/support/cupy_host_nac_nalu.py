"""NAC, NACMul and NALU of the ``cupy`` backend without a GPU: its CUDA kernels compiled for the host
(``tests/support/fakecupy``).

Run by ``tests/gpu/test_nac_nalu.py::test_cupy_backend_under_host_emulation`` in a subprocess
(:mod:`support.gpu_subprocess`) whose ``PYTHONPATH`` starts with ``tests/support/fakecupy``, so that
``import cupy`` gives the stand-in: arrays in host memory, NumPy for cuBLAS, and the kernels of
``nalu_np/kernels/cupy/*.cu`` built with ``g++`` and run with one ``std::thread`` per CUDA thread (barriers and
warp shuffles real).  Checks the backend's Python side and the CUDA C++ arithmetic against the NumPy
reference; the real device runs are in ``tests/gpu/test_nac_nalu.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import cupy

if not cupy.__version__.endswith("host-emulation"):
    pytest.skip("needs tests/support/fakecupy first on PYTHONPATH", allow_module_level=True)

import nalu_np as nn  # noqa: E402
from nalu_np.kernels import cuda_common as cc  # noqa: E402
from nalu_np.kernels import cupy as k  # noqa: E402
from nalu_np.kernels.cupy._common import block  # noqa: E402
from nalu_np.tasks import get_task, seed_rngs  # noqa: E402

from support.gpu_cases import MODES, check_against_reference, make_case, run  # noqa: E402


def test_settings():
    assert block() == 64 and cc.config.max_blocks == 3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", list(MODES))
@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture])  # kernel_path: a constant
@given(batch=st.integers(1, 300), n_in=st.integers(1, 4), n_out=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_matches_reference(kernel_path, mode, dtype, batch, n_in, n_out, seed):
    # up to 300 rows: more than 3 blocks of 64 threads, so grid-stride loops go round and partials add up
    params, x, dy = make_case(np.random.default_rng(seed), mode, batch, n_in, n_out, dtype, zero_fraction=0.1)
    check_against_reference(k, mode, params, x, dy, cupy.asarray)


@pytest.mark.parametrize("mode", list(MODES))
def test_overflow_and_zeros(kernel_path, mode):
    for dtype, scale in (("float32", 1e30), ("float64", 1e200)):
        params, x, dy = make_case(np.random.default_rng(1), mode, 70, 2, 2, dtype, x_scale=scale)
        for key in params:
            if key != "G":
                params[key][:] = 5.0
        x[3] = 0.0
        check_against_reference(k, mode, params, x, np.abs(dy), cupy.asarray)


@pytest.mark.parametrize("mode", ["nalu-shared", "nalu-separate"])
def test_weight_gradients_reproducible(kernel_path, mode):
    params, x, dy = make_case(np.random.default_rng(2), mode, 257, 2, 3, "float32")
    first = run(k, mode, params, x, dy, cupy.asarray)[2]
    for _ in range(2):
        again = run(k, mode, params, x, dy, cupy.asarray)[2]
        for key in first:
            np.testing.assert_array_equal(first[key], again[key])


def test_noncontiguous_inputs(kernel_path):
    params, x, dy = make_case(np.random.default_rng(3), "nalu-shared", 40, 3, 2, "float64")
    want = run(k, "nalu-shared", params, x, dy, cupy.asarray)
    xd = cupy.asarray(np.asfortranarray(x))
    p = {key: cupy.asarray(np.asfortranarray(v)) for key, v in params.items()}
    y, cache = k.nalu_forward(p, xd)
    dx, grads = k.nalu_backward(p, cache, cupy.asarray(dy)[:, :])
    np.testing.assert_allclose(y.get(), want[0], rtol=1e-12)
    np.testing.assert_allclose(dx.get(), want[1], rtol=1e-12)


def test_host_arrays_refused_and_layer_round_trip():
    params, x, dy = make_case(np.random.default_rng(4), "nalu-shared", 5, 2, 1, "float32")
    with pytest.raises(TypeError, match="GPU array"):
        k.nalu_forward({key: cupy.asarray(v) for key, v in params.items()}, x)
    layer = nn.NALU(2, 1, rng=5, dtype="float32")
    dev = layer.to("cupy")
    y, cache = dev.forward(cupy.asarray(x), backend="cupy")
    dx, grads = dev.backward(cupy.asarray(dy), cache)
    y0, cache0 = layer.forward(x)
    np.testing.assert_allclose(y.get(), y0, rtol=1e-5)
    assert set(grads) == set(layer.params)


def test_train_api_on_cupy(kernel_path):
    """``nalu_np.train`` with the cupy backend: parameters updated in place on the device, same run as NumPy."""
    task = get_task("mul", dtype="float64")
    runs = {}
    for backend in ("numpy", "cupy"):
        model = task.build_model(seed_rngs(0)[0])
        if backend == "cupy":
            model = model.to("cupy")
            params_before = dict(model.params)
        runs[backend] = nn.train(model, task, steps=40, seed=0, backend=backend)
    host, dev = runs["numpy"], runs["cupy"]
    assert all(dev.model.params[key] is params_before[key] for key in params_before)  # updated in place
    np.testing.assert_allclose(dev.loss, host.loss, rtol=1e-8)
    for key in host.model.params:
        np.testing.assert_allclose(dev.model.params[key].get(), host.model.params[key], rtol=1e-8, atol=1e-12)
