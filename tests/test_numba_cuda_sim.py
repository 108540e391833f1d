"""The numba-cuda backend without a GPU.

* ``test_kernels_under_simulator`` runs ``tests/cudasim_numba_cuda.py`` in a subprocess with
  ``NUMBA_ENABLE_CUDASIM=1`` (the variable must be set before Numba is imported, and this pytest process has
  imported Numba for the CPU backend already) and small launch settings, so every kernel runs on several
  blocks; it compares every kernel with the NumPy reference.
* ``test_kernels_compile_for_sm90`` types and lowers every kernel to LLVM IR for a real device (compute
  capability 9.0) in this process: the simulator runs the kernels as Python and would not notice code that
  real Numba-CUDA rejects, float32 kernels that promote to float64, or atomics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types as pytypes
from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba")
pytest.importorskip("numba.cuda")

HERE = Path(__file__).resolve().parent
SIM_ENV = {
    "NUMBA_ENABLE_CUDASIM": "1",
    "NALU_NP_CUDA_BLOCK": "4",
    "NALU_NP_CUDA_TILE": "2",
    "NALU_NP_CUDA_MAX_BLOCKS": "3",
    "NALU_NP_CUDA_SPLITS": "3",
}


def test_kernels_under_simulator():
    env = {**os.environ, **SIM_ENV}
    cmd = [sys.executable, "-m", "pytest", str(HERE / "cudasim_numba_cuda.py"), "-q", "-rs", "-p",
           "no:cacheprovider", "-x", "--rootdir", str(HERE.parent)]
    proc = subprocess.run(cmd, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=600)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout.splitlines()[-1], tail
    # the only test allowed to skip is the PyTorch interoperability one, where PyTorch is not installed
    skips = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("torch" in line for line in skips), tail


def _device_free_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let device functions compile without a GPU: they ask the current device for its compute capability."""
    import numba.cuda.dispatcher as dispatcher

    monkeypatch.setattr(dispatcher, "get_current_device",
                        lambda: pytypes.SimpleNamespace(compute_capability=(9, 0)))


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_kernels_compile_for_sm90(monkeypatch, dtype):
    from numba import cuda, types

    if numba.config.ENABLE_CUDASIM:
        pytest.skip("this process runs the simulator")
    if cuda.is_available():  # the real-device tests (tests/test_gpu.py --gpu) compile for the device itself
        pytest.skip("a CUDA device is present: its tests compile the kernels for it")
    from numba.cuda.compiler import compile_cuda

    from nalu_np.kernels import numba_cuda as k

    _device_free_compile(monkeypatch)
    T = numba.from_dtype(np.dtype(dtype))
    A = types.Array(T, 2, "C")
    kernels = [(k._weight_kernel(dtype), (A,) * 5)]
    for unit in (0, 1, 2):
        for separate in ((False, True) if unit == 2 else (False,)):
            kernels.append((k._finish_kernel(unit, separate, dtype), (A,) * 10))
        row = k._row_kernels(unit, dtype, 2, 1, 256)
        kernels += [(row.forward, (A,) * 4 + (T, A)), (row.backward, (A,) * 5 + (T, A, A))]
        tiled = k._tiled_kernels(unit, dtype, 16)
        kernels += [(tiled.forward, (A,) * 4 + (T,) + (A,) * 4), (tiled.grads, (A,) * 7),
                    (tiled.dx, (A,) * 7 + (T, A)), (tiled.wgrad, (A,) * 4 + (T, types.int64, A))]
    for kernel, sig in kernels:
        ir = compile_cuda(kernel.py_func, types.void, sig, cc=(9, 0)).library.get_llvm_str()
        assert "atomicrmw" not in ir, kernel.py_func.__name__
        if dtype == "<f4":  # no float64 arithmetic sneaks into float32 kernels
            assert "double" not in ir, kernel.py_func.__name__


def test_backend_unavailable_without_device():
    from numba import cuda

    import nalu_np as nn

    if numba.config.ENABLE_CUDASIM or cuda.is_available():
        pytest.skip("a CUDA device (or the simulator) is present")
    with pytest.raises(nn.BackendUnavailableError, match="numba-cuda.*NUMBA_ENABLE_CUDASIM"):
        nn.get_backend("numba-cuda")
