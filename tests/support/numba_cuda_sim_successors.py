"""NAU, NMU, iNALU, NPU and RealNPU of the numba-cuda backend under Numba's CUDA simulator, against the NumPy
reference.

Run by ``tests/gpu/test_successors.py`` in a subprocess (:mod:`support.gpu_subprocess`) with
``NUMBA_ENABLE_CUDASIM=1`` and the small launch settings of the simulator runs (blocks of 4 threads, at most 3
blocks, tiles of 2, 3 splits), so that grid-stride loops go round, tiles are partial and weight gradients add
several partials.  Run directly::

    NUMBA_ENABLE_CUDASIM=1 NALU_NP_CUDA_BLOCK=4 NALU_NP_CUDA_TILE=2 NALU_NP_CUDA_MAX_BLOCKS=3 \
        NALU_NP_CUDA_SPLITS=3 python -m pytest tests/support/numba_cuda_sim_successors.py -q
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("run with NUMBA_ENABLE_CUDASIM=1 (tests/gpu/test_successors.py does)", allow_module_level=True)

import nalu_np as nn  # noqa: E402
from nalu_np.kernels import cuda_common as cc  # noqa: E402
from nalu_np.kernels import numba_cuda as k  # noqa: E402

from support.gpu_cases import (  # noqa: E402
    UNITS, check_inalu_clipped, check_layer, check_nmu_zero_factors, check_unit, make_unit_case, run_unit)


def test_simulator_settings():
    assert k.SIMULATOR and cc.config.block <= 8 and cc.config.tile <= 3 and cc.config.max_blocks == 3


@pytest.mark.parametrize("unit", UNITS)
@settings(max_examples=3)
@given(batch=st.integers(1, 7), n_in=st.integers(1, 4), n_out=st.integers(1, 3),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**32 - 1))
def test_matches_reference(unit, dtype, batch, n_in, n_out, seed):
    params, x, dy = make_unit_case(np.random.default_rng(seed), unit, batch, n_in, n_out, dtype)
    check_unit(k, unit, params, x, dy, k.asarray)


@pytest.mark.parametrize("unit", ["nmu", "npu"])
def test_several_blocks_partial_tiles_float32(unit):
    # 13 rows > 12 threads; 3 x 1 leaves partial tiles of 2; the batch sums add several splits
    params, x, dy = make_unit_case(np.random.default_rng(1), unit, 13, 3, 1, "float32")
    check_unit(k, unit, params, x, dy, k.asarray)


def test_nmu_zero_factors():
    check_nmu_zero_factors(k, k.asarray)


def test_inalu_clipped_log_space():
    check_inalu_clipped(k, k.asarray, 6, "float32")


def test_weight_gradients_reproducible():
    params, x, dy = make_unit_case(np.random.default_rng(4), "nau", 13, 2, 1, "float32")
    first = run_unit(k, "nau", params, x, dy, k.asarray)[2]
    again = run_unit(k, "nau", params, x, dy, k.asarray)[2]
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])


@pytest.mark.parametrize("layer_cls", [nn.NMU, nn.RealNPU])
def test_through_layer_and_backend_switch(layer_cls):
    layer = layer_cls(3, 2, rng=7, dtype="float64")
    x = np.random.default_rng(8).uniform(0.5, 2.0, (5, 3))
    with pytest.raises(TypeError, match="numba-cuda"):
        layer.to("numba-cuda").forward(x, backend="numba-cuda")
    check_layer(layer, "numba-cuda", x, np.ones((5, 2)))
