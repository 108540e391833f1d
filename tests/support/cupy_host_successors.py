"""NAU, NMU, iNALU, NPU and RealNPU of the ``cupy`` backend without a GPU, against the NumPy reference.

Run by ``tests/gpu/test_successors.py`` in a subprocess (:mod:`support.gpu_subprocess`) whose ``PYTHONPATH``
starts with ``tests/support/fakecupy`` (the host emulation of CuPy: NumPy for cuBLAS, the CUDA C++ kernels built with
``g++``, one ``std::thread`` per CUDA thread), with blocks of 64 threads and at most 3 blocks, so that
grid-stride loops go round.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cupy

if not cupy.__version__.endswith("host-emulation"):
    pytest.skip("needs tests/support/fakecupy first on PYTHONPATH", allow_module_level=True)

import nalu_np as nn  # noqa: E402
from nalu_np.kernels import cupy as k  # noqa: E402

from support.gpu_cases import (  # noqa: E402
    UNITS, check_inalu_clipped, check_layer, check_nmu_zero_factors, check_unit, make_unit_case, run_unit)


@pytest.mark.parametrize("unit", UNITS)
@settings(max_examples=8)
@given(batch=st.integers(1, 300), n_in=st.integers(1, 4), n_out=st.integers(1, 3),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**32 - 1))
def test_matches_reference(unit, dtype, batch, n_in, n_out, seed):
    # up to 300 rows: more than 3 blocks of 64 threads
    params, x, dy = make_unit_case(np.random.default_rng(seed), unit, batch, n_in, n_out, dtype)
    check_unit(k, unit, params, x, dy, cupy.asarray)


def test_nmu_zero_factors():
    check_nmu_zero_factors(k, cupy.asarray)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inalu_clipped_log_space(dtype):
    check_inalu_clipped(k, cupy.asarray, 200, dtype)


@pytest.mark.parametrize("unit", UNITS)
def test_noncontiguous_inputs_and_reproducible(unit):
    params, x, dy = make_unit_case(np.random.default_rng(4), unit, 130, 3, 2, "float32")
    want = run_unit(k, unit, params, x, dy, cupy.asarray)
    got = run_unit(k, unit, params, x, dy, lambda a: cupy.asarray(np.asfortranarray(a)))
    for a, b in zip(want[:2], got[:2]):
        np.testing.assert_array_equal(a, b)
    for key in want[2]:
        np.testing.assert_array_equal(want[2][key], got[2][key])


def test_host_arrays_refused_and_layer_round_trip():
    layer = nn.NPU(3, 2, rng=5, dtype="float64")
    x = np.random.default_rng(6).uniform(-2.0, 2.0, (7, 3))
    with pytest.raises(TypeError, match="GPU array"):
        k.npu_forward({key: cupy.asarray(v) for key, v in layer.params.items()}, x)
    check_layer(layer, "cupy", x, np.ones((7, 2)))
