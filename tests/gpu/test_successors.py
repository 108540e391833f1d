"""NAU, NMU, iNALU, NPU and RealNPU on the GPU backends (``cupy``, ``numba-cuda``), against the NumPy reference.

Tests marked ``gpu`` run on a real device, only with ``--gpu``, and skip cleanly when a backend cannot run here.
The others need no GPU and always run (``tests/gpu/test_nac_nalu.py`` has the same checks of NAC, NACMul and
NALU):

* ``test_unit_kernels_under_simulator`` runs ``tests/support/numba_cuda_sim_successors.py`` in a subprocess
  under ``NUMBA_ENABLE_CUDASIM=1`` with small launch settings, against the NumPy reference.
* ``test_unit_kernels_compile_for_sm90`` types and lowers every kernel of these units on the numba-cuda backend
  to LLVM IR for compute capability 9.0: no atomics, and no float64 in the float32 kernels.
* ``test_cupy_units_under_host_emulation`` runs ``tests/support/cupy_host_successors.py`` with the stand-in
  CuPy of ``tests/support/fakecupy`` (the CUDA C++ built for the host with ``g++``), against the NumPy
  reference.
* ``test_cupy_units_source_compiles_with_nvcc``: that CUDA C++ for sm_90 when a CUDA toolkit is installed, with
  no register spills, no atomics and no float64 instructions in the float kernels (``tests/support/cupy_nvcc.py``).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nalu_np as nn

from support.gpu_cases import (BACKENDS, UNITS, check_adam_trajectory, check_unit, device_backend, make_unit_case,
                               run_unit, to_device)
from support.gpu_subprocess import host_emulation_env, run_pytest, simulator_env
from support.sm90 import check_lowered_for_sm90


def _moderate(params: dict[str, np.ndarray], scale: float) -> dict[str, np.ndarray]:
    """Weights times ``scale`` (gates kept), so that sums and products over many inputs stay moderate."""
    return {k: v if k == "g" else (v * scale).astype(v.dtype) for k, v in params.items()}


@pytest.mark.gpu
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=6)
@given(batch=st.integers(1, 5000), n_in=st.integers(1, 5), n_out=st.integers(1, 3),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**32 - 1))
def test_units_match_reference(backend, unit, dtype, batch, n_in, n_out, seed):
    be = device_backend(backend)
    params, x, dy = make_unit_case(np.random.default_rng(seed), unit, batch, n_in, n_out, dtype)
    check_unit(be.module, unit, params, x, dy, to_device(be))


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(4099, 64, 64), (1000, 100, 2), (100_003, 2, 1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_units_large_shapes(backend, unit, dtype, shape):
    be = device_backend(backend)
    params, x, dy = make_unit_case(np.random.default_rng(0), unit, *shape, dtype)
    check_unit(be.module, unit, _moderate(params, 0.1), x, dy, to_device(be))


@pytest.mark.gpu
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_units_reproducible(backend, unit):
    be = device_backend(backend)
    params, x, dy = make_unit_case(np.random.default_rng(1), unit, 1 << 15, 16, 8, "float32")
    params = _moderate(params, 0.2)
    first = run_unit(be.module, unit, params, x, dy, to_device(be))
    for _ in range(2):
        again = run_unit(be.module, unit, params, x, dy, to_device(be))
        for a, b in zip(first[:2], again[:2]):
            np.testing.assert_array_equal(a, b)
        for key in first[2]:
            np.testing.assert_array_equal(first[2][key], again[2][key])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, scale", [("float32", 1e30), ("float64", 1e200)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_nmu_overflow_and_zero_factors(backend, dtype, scale):
    be = device_backend(backend)
    params, x, dy = make_unit_case(np.random.default_rng(2), "nmu", 300, 3, 2, dtype)
    params["W"][:] = 1.0
    x[::2] *= scale  # products overflow to inf
    x[1, 0] = 0.0  # a factor exactly 0
    y = run_unit(be.module, "nmu", params, x, dy, to_device(be))[0]
    assert np.isinf(y).any()
    check_unit(be.module, "nmu", params, x, dy, to_device(be))


@pytest.mark.gpu
@pytest.mark.parametrize("layer_cls", [nn.NAU, nn.NMU, nn.NPU])
@pytest.mark.parametrize("backend", BACKENDS)
def test_training_steps_with_projection(backend, layer_cls):
    """Adam with the units' projections on GPU parameters gives the trajectory of the NumPy backend."""
    if device_backend(backend).xp is not pytest.importorskip("cupy"):
        pytest.skip("optimizers need CuPy arrays")
    check_adam_trajectory(backend, layer_cls, 2048, 20, projections=True)


def test_unit_kernels_under_simulator():
    pytest.importorskip("numba.cuda")
    run_pytest("numba_cuda_sim_successors.py", simulator_env())


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_unit_kernels_compile_for_sm90(monkeypatch, dtype):
    def kernels(T, types):
        from nalu_np.kernels.cuda_common import NMU_FACTOR, SIGN_FACTOR
        from nalu_np.kernels.numba_cuda import inalu, nmu, npu
        from nalu_np.kernels.numba_cuda._linalg import colsum_kernel, sum_parts_kernel

        A, V, n = types.Array(T, 2, "C"), types.Array(T, 1, "C"), types.int64
        out = [(sum_parts_kernel(dtype, two), (A,) * 3) for two in (False, True)]
        out += [(colsum_kernel(dtype, factor), (A, A, n, n, A)) for factor in (-1, NMU_FACTOR, SIGN_FACTOR)]
        for factor in (NMU_FACTOR, SIGN_FACTOR):
            product, loo, nmu_dx = nmu.product_kernels(factor, dtype)
            out += [(product, (A,) * 3), (loo, (A,) * 4), (nmu_dx, (A,) * 3)]
        log_in, output, grads, dx, finish, gate_finish = inalu.inalu_kernels(dtype)
        out += [(log_in, (A, T, A)), (output, (A, A, A, V, T, A)), (grads, (A, A, A, A, V, T) + (A,) * 4),
                (dx, (A, A, A, T, A)), (finish, (A,) * 12), (gate_finish, (A, V, V))]
        for imaginary in (False, True):
            stack_inputs, stack_weights, output, grads, dx = npu.npu_kernels(dtype, imaginary)
            out += [(stack_inputs, (A, V, T, A)), (stack_weights, (A,) * 3), (output, (A,) * 4),
                    (grads, (A,) * 5), (dx, (A, V, T, A, A, A))]
        return out

    check_lowered_for_sm90(monkeypatch, dtype, kernels)


def test_cupy_units_under_host_emulation():
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the host emulation of the CUDA kernels")
    run_pytest("cupy_host_successors.py", host_emulation_env())


def test_cupy_units_source_compiles_with_nvcc():
    if shutil.which("nvcc") is None:
        pytest.skip("no CUDA toolkit (nvcc) here")
    run_pytest("cupy_nvcc.py::test_successor_sources_compile", host_emulation_env())
