"""NAC, NACMul and NALU on the GPU backends (``cupy``, ``numba-cuda``), against the NumPy reference.

Tests marked ``gpu`` run on a real device, only with ``--gpu``, and skip cleanly when the backend cannot run (no
CuPy, no device).  The others need no GPU and always run:

* ``test_kernels_under_simulator`` runs ``tests/support/numba_cuda_sim_nac_nalu.py`` in a subprocess with
  ``NUMBA_ENABLE_CUDASIM=1`` (the variable must be set before Numba is imported, and this pytest process has
  imported Numba for the CPU backend already) and small launch settings, so every kernel runs on several
  blocks; it compares every kernel with the NumPy reference.
* ``test_kernels_compile_for_sm90`` types and lowers every numba-cuda kernel to LLVM IR for a real device
  (compute capability 9.0) in this process (see :mod:`support.sm90`).
* ``test_cupy_backend_under_host_emulation`` runs the whole ``cupy`` backend against the reference with a
  stand-in CuPy whose kernels are its CUDA C++ compiled for the host (``tests/support/cupy_host_nac_nalu.py``
  in a subprocess, see ``tests/support/fakecupy``).
* ``test_cupy_source_compiles_with_nvcc``: that CUDA C++ compiled with ``nvcc`` for sm_90 when a CUDA toolkit
  is installed, no register spills allowed (``tests/support/cupy_nvcc.py``).

The whole GPU check, with the benchmark, is ``bash bench/gpu_check.sh``.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import nalu_np as nn

from support.gpu_cases import (BACKENDS, MODES, check_adam_trajectory, check_against_reference, device_backend,
                               make_case, run, to_device)
from support.gpu_subprocess import host_emulation_env, run_pytest, simulator_env
from support.sm90 import check_lowered_for_sm90


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=5, suppress_health_check=[HealthCheck.function_scoped_fixture])  # kernel_path: a constant
@given(batch=st.integers(1, 5000), n_in=st.integers(1, 5), n_out=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_matches_reference(kernel_path, backend, mode, dtype, batch, n_in, n_out, seed):
    be = device_backend(backend)
    params, x, dy = make_case(np.random.default_rng(seed), mode, batch, n_in, n_out, dtype, zero_fraction=0.05)
    check_against_reference(be.module, mode, params, x, dy, to_device(be))


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(200_003, 2, 1), (4099, 64, 64), (1000, 100, 2)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_large_shapes(backend, dtype, shape):
    be = device_backend(backend)
    params, x, dy = make_case(np.random.default_rng(0), "nalu-shared", *shape, dtype)
    for key in params:
        params[key] *= 0.3  # keep exp(l @ W) moderate over 64 inputs
    check_against_reference(be.module, "nalu-shared", params, x, dy, to_device(be))


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(1 << 20, 2, 1), (1 << 15, 64, 64)])
@pytest.mark.parametrize("mode", ["nalu-shared", "nalu-separate"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_weight_gradients_reproducible(backend, mode, shape):
    be = device_backend(backend)
    params, x, dy = make_case(np.random.default_rng(1), mode, *shape, "float32")
    for key in params:
        params[key] *= 0.3
    first = run(be.module, mode, params, x, dy, to_device(be))
    for _ in range(3):
        again = run(be.module, mode, params, x, dy, to_device(be))
        for a, b in zip(first[:2], again[:2]):
            np.testing.assert_array_equal(a, b)
        for key in first[2]:
            np.testing.assert_array_equal(first[2][key], again[2][key])


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_overflow_and_zeros(backend):
    be = device_backend(backend)
    for dtype, scale in (("float32", 1e30), ("float64", 1e200)):
        params, x, dy = make_case(np.random.default_rng(2), "nacmul", 50, 2, 2, dtype, x_scale=scale)
        for key in params:
            params[key][:] = 5.0
        x[3] = 0.0
        y = run(be.module, "nacmul", params, x, np.abs(dy), to_device(be))[0]
        assert np.isinf(y).any()
        check_against_reference(be.module, "nacmul", params, x, np.abs(dy), to_device(be))


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_host_arrays_refused(backend):
    be = device_backend(backend)
    params, x, _ = make_case(np.random.default_rng(3), "nalu-shared", 4, 2, 1, "float32")
    dev = {k: to_device(be)(v) for k, v in params.items()}
    with pytest.raises(TypeError, match="GPU array"):
        be.module.nalu_forward(dev, x)
    layer = nn.NALU(2, 1, rng=0).to(backend)
    with pytest.raises(TypeError, match=backend):
        layer.forward(x, backend=backend)


@pytest.mark.gpu
def test_numba_cuda_takes_cupy_and_numba_arrays():
    be = device_backend("numba-cuda")
    cupy = pytest.importorskip("cupy")
    from numba import cuda

    params, x, dy = make_case(np.random.default_rng(4), "nalu-shared", 300, 3, 2, "float64")
    want = run(be.module, "nalu-shared", params, x, dy, cupy.asarray)
    got = run(be.module, "nalu-shared", params, x, dy, cuda.to_device)
    for a, b in zip(want[:2], got[:2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_training_steps_in_place(backend):
    """Adam on GPU parameters updated in place gives the trajectory of the NumPy backend."""
    check_adam_trajectory(backend, nn.NALU, 4096, 25)


def test_kernels_under_simulator():
    pytest.importorskip("numba.cuda")
    # the only test allowed to skip is the PyTorch interoperability one, where PyTorch is not installed
    run_pytest("numba_cuda_sim_nac_nalu.py", simulator_env(), allowed_skip="torch")


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_kernels_compile_for_sm90(monkeypatch, dtype):
    def kernels(T, types):
        from nalu_np.kernels.numba_cuda._nac_family import finish_kernel, row_kernels, tiled_kernels, weight_kernel

        A = types.Array(T, 2, "C")
        out = [(weight_kernel(dtype), (A,) * 5)]
        for unit in (0, 1, 2):
            for separate in ((False, True) if unit == 2 else (False,)):
                out.append((finish_kernel(unit, separate, dtype), (A,) * 10))
            row = row_kernels(unit, dtype, 2, 1, 256)
            out += [(row.forward, (A,) * 4 + (T, A)), (row.backward, (A,) * 5 + (T, A, A))]
            tiled = tiled_kernels(unit, dtype, 16)
            out += [(tiled.forward, (A,) * 4 + (T,) + (A,) * 4), (tiled.grads, (A,) * 7),
                    (tiled.dx, (A,) * 7 + (T, A)), (tiled.wgrad, (A,) * 4 + (T, types.int64, A))]
        return out

    check_lowered_for_sm90(monkeypatch, dtype, kernels)


def test_backend_unavailable_without_device():
    numba = pytest.importorskip("numba")
    pytest.importorskip("numba.cuda")
    from numba import cuda

    if numba.config.ENABLE_CUDASIM or cuda.is_available():
        pytest.skip("a CUDA device (or the simulator) is present")
    with pytest.raises(nn.BackendUnavailableError, match="numba-cuda.*NUMBA_ENABLE_CUDASIM"):
        nn.get_backend("numba-cuda")


def test_cupy_source_compiles_with_nvcc():
    if shutil.which("nvcc") is None:
        pytest.skip("no CUDA toolkit (nvcc) here")
    run_pytest("cupy_nvcc.py::test_nac_family_source_compiles", host_emulation_env())


def test_cupy_backend_under_host_emulation():
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the host emulation of the CUDA kernels")
    run_pytest("cupy_host_nac_nalu.py", host_emulation_env())
