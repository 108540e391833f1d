"""GPU backends on a real device: ``cupy`` and ``numba-cuda`` against the NumPy reference.

Tests marked ``gpu`` run only with ``--gpu`` and skip cleanly when the backend cannot run (no CuPy, no device).
Two tests need no GPU and always run: the CUDA C++ source of the ``cupy`` backend is compiled with ``nvcc``
for sm_90 when a CUDA toolkit is installed (no register spills allowed), and the whole ``cupy`` backend runs
against the reference with a stand-in CuPy whose kernels are that source compiled for the host
(``tests/cudasim_cupy.py`` in a subprocess, see ``tests/cudasim_fakecupy``).

The whole GPU check, with the benchmark, is ``bash bench/gpu_check.sh``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import nalu_np as nn
from nalu_np.kernels import _cuda_common as cc
from nalu_np.kernels import _cupy_source
from nalu_np.optim import Adam

from cudasim_common import MODES, check_against_reference, make_case, run

BACKENDS = ["cupy", "numba-cuda"]


def _backend(name: str):
    try:
        be = nn.get_backend(name)
    except (nn.BackendUnavailableError, ImportError) as err:
        pytest.skip(f"{name}: {err}")
    if name == "numba-cuda" and be.module.SIMULATOR:
        pytest.skip("numba-cuda runs in the simulator in this process")
    return be


def _to_device(be):
    return be.module.asarray if hasattr(be.module, "asarray") else be.xp.asarray


@pytest.fixture(params=["row", "general"])
def path(request: pytest.FixtureRequest):
    saved = cc.config.row_path_max
    cc.config.row_path_max = 10**6 if request.param == "row" else 0
    yield request.param
    cc.config.row_path_max = saved


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=5, suppress_health_check=[HealthCheck.function_scoped_fixture])  # path: a constant
@given(batch=st.integers(1, 5000), n_in=st.integers(1, 5), n_out=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_matches_reference(path, backend, mode, dtype, batch, n_in, n_out, seed):
    be = _backend(backend)
    params, x, dy = make_case(np.random.default_rng(seed), mode, batch, n_in, n_out, dtype, zero_fraction=0.05)
    check_against_reference(be.module, mode, params, x, dy, _to_device(be))


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(200_003, 2, 1), (4099, 64, 64), (1000, 100, 2)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_large_shapes(backend, dtype, shape):
    be = _backend(backend)
    params, x, dy = make_case(np.random.default_rng(0), "nalu-shared", *shape, dtype)
    for key in params:
        params[key] *= 0.3  # keep exp(l @ W) moderate over 64 inputs
    check_against_reference(be.module, "nalu-shared", params, x, dy, _to_device(be))


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(1 << 20, 2, 1), (1 << 15, 64, 64)])
@pytest.mark.parametrize("mode", ["nalu-shared", "nalu-separate"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_weight_gradients_reproducible(backend, mode, shape):
    be = _backend(backend)
    params, x, dy = make_case(np.random.default_rng(1), mode, *shape, "float32")
    for key in params:
        params[key] *= 0.3
    first = run(be.module, mode, params, x, dy, _to_device(be))
    for _ in range(3):
        again = run(be.module, mode, params, x, dy, _to_device(be))
        for a, b in zip(first[:2], again[:2]):
            np.testing.assert_array_equal(a, b)
        for key in first[2]:
            np.testing.assert_array_equal(first[2][key], again[2][key])


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_overflow_and_zeros(backend):
    be = _backend(backend)
    for dtype, scale in (("float32", 1e30), ("float64", 1e200)):
        params, x, dy = make_case(np.random.default_rng(2), "nacmul", 50, 2, 2, dtype, x_scale=scale)
        for key in params:
            params[key][:] = 5.0
        x[3] = 0.0
        y = run(be.module, "nacmul", params, x, np.abs(dy), _to_device(be))[0]
        assert np.isinf(y).any()
        check_against_reference(be.module, "nacmul", params, x, np.abs(dy), _to_device(be))


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_host_arrays_refused(backend):
    be = _backend(backend)
    params, x, _ = make_case(np.random.default_rng(3), "nalu-shared", 4, 2, 1, "float32")
    dev = {k: _to_device(be)(v) for k, v in params.items()}
    with pytest.raises(TypeError, match="GPU array"):
        be.module.nalu_forward(dev, x)
    layer = nn.NALU(2, 1, rng=0).to(backend)
    with pytest.raises(TypeError, match=backend):
        layer.forward(x, backend=backend)


@pytest.mark.gpu
def test_numba_cuda_takes_cupy_and_numba_arrays():
    be = _backend("numba-cuda")
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
    be = _backend(backend)
    rng = np.random.default_rng(5)
    x = rng.uniform(1.0, 3.0, (4096, 2))
    t = x[:, :1] * x[:, 1:]
    host = nn.NALU(2, 1, rng=6, dtype="float64")
    dev = host.to(backend)
    xd, td = be.asarray(x), be.asarray(t)
    for layer, xs, ts in ((host, x, t), (dev, xd, td)):
        opt = Adam(layer.params, lr=0.05)
        for _ in range(25):
            y, cache = layer.forward(xs, backend="numpy" if layer is host else backend)
            _, grads = layer.backward(2.0 * (y - ts) / y.size, cache)
            opt.step(grads)
    for key in host.params:
        np.testing.assert_allclose(nn.backends.to_numpy(dev.params[key]), host.params[key], rtol=1e-6, atol=1e-9)


def test_cupy_source_compiles_with_nvcc(tmp_path: Path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("no CUDA toolkit (nvcc) here")
    names = []
    for c in ("float", "double"):
        names += _cupy_source.general_names(c)
        for unit in (0, 1, 2):
            for n_in, n_out in _cupy_source.ROW_SIZES_FOR_CHECK:
                names += _cupy_source.row_names(c, unit, n_in, n_out)
    source = _cupy_source.SOURCE + "\nvoid* all_kernels[] = {\n" + ",\n".join(f"(void*)&{n}" for n in names) + "};\n"
    (tmp_path / "k.cu").write_text(source)
    proc = subprocess.run([nvcc, "-std=c++14", "-arch=sm_90", "-Xptxas=-v", "-c", "-o", str(tmp_path / "k.o"),
                           str(tmp_path / "k.cu")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    spills = [line for line in proc.stderr.splitlines() if "spill" in line and " 0 bytes spill stores" not in line]
    assert not spills, spills


def test_cupy_backend_under_host_emulation():
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the host emulation of the CUDA kernels")
    here = Path(__file__).resolve().parent
    env = {**os.environ, "NALU_NP_CUDA_BLOCK": "64", "NALU_NP_CUDA_MAX_BLOCKS": "3",
           "PYTHONPATH": os.pathsep.join([str(here / "cudasim_fakecupy"), os.environ.get("PYTHONPATH", "")])}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    cmd = [sys.executable, "-m", "pytest", str(here / "cudasim_cupy.py"), "-q", "-x", "-p", "no:cacheprovider",
           "--rootdir", str(here.parent)]
    proc = subprocess.run(cmd, cwd=here.parent, env=env, capture_output=True, text=True, timeout=900)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], tail
