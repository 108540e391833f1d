"""NAC, NACMul and NALU of the numba-cuda backend under Numba's CUDA simulator, against the NumPy reference.

Run by ``tests/gpu/test_nac_nalu.py`` in a subprocess (:mod:`support.gpu_subprocess`) with
``NUMBA_ENABLE_CUDASIM=1`` and small launch settings (``NALU_NP_CUDA_BLOCK=4``, ``NALU_NP_CUDA_TILE=2``,
``NALU_NP_CUDA_MAX_BLOCKS=3``, ``NALU_NP_CUDA_SPLITS=3``) so that every kernel runs with several blocks and
partial tiles.  Run directly with::

    NUMBA_ENABLE_CUDASIM=1 NALU_NP_CUDA_BLOCK=4 NALU_NP_CUDA_TILE=2 NALU_NP_CUDA_MAX_BLOCKS=3 \
        NALU_NP_CUDA_SPLITS=3 python -m pytest tests/support/numba_cuda_sim_nac_nalu.py -q
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("run with NUMBA_ENABLE_CUDASIM=1 (tests/gpu/test_nac_nalu.py does)", allow_module_level=True)

from numba import cuda  # noqa: E402

import nalu_np as nn  # noqa: E402
from nalu_np.kernels import cuda_common as cc  # noqa: E402
from nalu_np.kernels import numba_cuda as k  # noqa: E402

from support.gpu_cases import MODES, assert_close, check_against_reference, make_case, run  # noqa: E402

DTYPES = ["float32", "float64"]


def test_simulator_settings():
    assert k.SIMULATOR and k.xp is cuda
    assert cc.config.block <= 8 and cc.config.tile <= 3 and cc.config.max_blocks == 3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", list(MODES))
@settings(max_examples=3, suppress_health_check=[HealthCheck.function_scoped_fixture])  # kernel_path: a constant
@given(batch=st.integers(1, 9), n_in=st.integers(1, 4), n_out=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_matches_reference(kernel_path, mode, dtype, batch, n_in, n_out, seed):
    params, x, dy = make_case(np.random.default_rng(seed), mode, batch, n_in, n_out, dtype, zero_fraction=0.15)
    check_against_reference(k, mode, params, x, dy, k.asarray)


@pytest.mark.parametrize("mode", ["nacmul", "nalu-separate"])
def test_several_blocks_and_partial_tiles(kernel_path, mode):
    # 23 rows > max_blocks * block = 12 threads: grid-stride loops go round more than once; 5 x 3 leaves
    # partial tiles of side 2 and 3; split-K gets several splits
    params, x, dy = make_case(np.random.default_rng(1), mode, 23, 5, 3, "float64", zero_fraction=0.1)
    check_against_reference(k, mode, params, x, dy, k.asarray)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_one(kernel_path, dtype):
    params, x, dy = make_case(np.random.default_rng(2), "nalu-shared", 1, 3, 2, dtype)
    check_against_reference(k, "nalu-shared", params, x, dy, k.asarray)


@pytest.mark.parametrize("mode", list(MODES))
def test_zeros_in_x(kernel_path, mode):
    # log(|0| + eps) = log(eps) and the log-path slope at the kink is 0, as in the reference
    params, x, dy = make_case(np.random.default_rng(3), mode, 4, 3, 2, "float64")
    x[:, 1] = 0.0
    x[2] = 0.0
    check_against_reference(k, mode, params, x, dy, k.asarray)


@pytest.mark.parametrize("dtype, scale", [("float32", 1e30), ("float64", 1e200)])
@pytest.mark.parametrize("mode", ["nacmul", "nalu-shared"])
def test_exp_overflow_gives_inf(kernel_path, mode, dtype, scale):
    params, x, dy = make_case(np.random.default_rng(4), mode, 5, 2, 2, dtype, x_scale=scale)
    for key in params:
        if key != "G":  # W close to 1: log|x| @ W far beyond the exp overflow threshold
            params[key][:] = 5.0
    y, _, _ = run(k, mode, params, x, np.abs(dy), k.asarray)
    assert np.isinf(y).any()
    check_against_reference(k, mode, params, x, np.abs(dy), k.asarray)


@pytest.mark.parametrize("mode", list(MODES))
def test_weight_gradients_reproducible(kernel_path, mode):
    params, x, dy = make_case(np.random.default_rng(5), mode, 13, 2, 2, "float32")
    first = run(k, mode, params, x, dy, k.asarray)[2]
    second = run(k, mode, params, x, dy, k.asarray)[2]
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_host_arrays_refused():
    params, x, _ = make_case(np.random.default_rng(6), "nalu-shared", 3, 2, 1, "float32")
    dev = {key: k.asarray(v) for key, v in params.items()}
    with pytest.raises(TypeError, match="GPU array"):
        k.nalu_forward(dev, x)
    with pytest.raises(TypeError, match="GPU array"):
        k.nalu_forward(params, k.asarray(x))
    with pytest.raises(TypeError, match="dtype"):
        k.nalu_forward(dev, k.asarray(x.astype(np.float64)))


def test_cpu_tensor_with_cuda_array_interface_class_refused():
    torch = pytest.importorskip("torch")
    params, x, _ = make_case(np.random.default_rng(6), "nalu-shared", 3, 2, 1, "float32")
    dev = {key: k.asarray(v) for key, v in params.items()}
    assert isinstance(torch.from_numpy(x), k.array_type)  # its class exports the interface ...
    with pytest.raises(TypeError, match="GPU array"):  # ... but a CPU tensor has none to give
        k.nalu_forward(dev, torch.from_numpy(x))


def test_through_layer_and_backend_switch():
    backend = nn.get_backend("numba-cuda")
    layer = nn.NALU(3, 2, rng=7, dtype="float64", shared_weights=False)
    dev = copy.copy(layer)
    dev.params = {key: k.asarray(v) for key, v in layer.params.items()}
    x = np.random.default_rng(8).uniform(0.5, 2.0, (6, 3))
    with pytest.raises(TypeError, match="numba-cuda"):
        dev.forward(x, backend=backend)
    y, cache = dev.forward(k.asarray(x), backend=backend)
    dy = np.ones((6, 2))
    dx, grads = dev.backward(k.asarray(dy), cache)
    y0, cache0 = layer.forward(x)
    dx0, grads0 = layer.backward(dy, cache0)
    assert_close(nn.backends.to_numpy(y), y0, "y")
    assert_close(nn.backends.to_numpy(dx), dx0, "dx")
    for key in grads0:
        assert_close(nn.backends.to_numpy(grads[key]), grads0[key], key)
