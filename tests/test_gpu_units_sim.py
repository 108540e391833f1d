"""NAU, NMU, iNALU, NPU and RealNPU of the GPU backends without a GPU (see ``test_numba_cuda_sim.py`` and
``test_gpu.py`` for the same checks of NAC, NACMul and NALU).

* ``test_unit_kernels_under_simulator`` runs ``tests/cudasim_units_numba_cuda.py`` in a subprocess under
  ``NUMBA_ENABLE_CUDASIM=1`` with small launch settings, against the NumPy reference.
* ``test_unit_kernels_compile_for_sm90`` types and lowers every kernel of
  :mod:`nalu_np.kernels.numba_cuda_units` to LLVM IR for compute capability 9.0: no atomics, and no float64
  in the float32 kernels.
* ``test_cupy_units_under_host_emulation`` runs ``tests/cudasim_units_cupy.py`` with the stand-in CuPy of
  ``tests/cudasim_fakecupy`` (the CUDA C++ built for the host with ``g++``), against the NumPy reference.
* ``test_cupy_units_source_compiles_with_nvcc``: that CUDA C++ for sm_90 when a CUDA toolkit is installed, with
  no register spills, no atomics and no float64 instructions in the float kernels.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba")
pytest.importorskip("numba.cuda")

from test_numba_cuda_sim import SIM_ENV, _device_free_compile  # noqa: E402

HERE = Path(__file__).resolve().parent


def _pytest_passes(test_file: str, env: dict[str, str]) -> None:
    """Run ``tests/<test_file>`` in a subprocess with ``env``; every test must pass, none skip."""
    cmd = [sys.executable, "-m", "pytest", str(HERE / test_file), "-q", "-x", "-p", "no:cacheprovider",
           "--rootdir", str(HERE.parent)]
    proc = subprocess.run(cmd, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=600)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    last = proc.stdout.splitlines()[-1]
    assert " passed" in last and "skipped" not in last, tail


def test_unit_kernels_under_simulator():
    _pytest_passes("cudasim_units_numba_cuda.py", {**os.environ, **SIM_ENV})


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_unit_kernels_compile_for_sm90(monkeypatch, dtype):
    from numba import cuda, types

    if numba.config.ENABLE_CUDASIM:
        pytest.skip("this process runs the simulator")
    if cuda.is_available():
        pytest.skip("a CUDA device is present: its tests compile the kernels for it")
    from numba.cuda.compiler import compile_cuda

    from nalu_np.kernels import numba_cuda_units as u

    _device_free_compile(monkeypatch)
    T = numba.from_dtype(np.dtype(dtype))
    A, V, n = types.Array(T, 2, "C"), types.Array(T, 1, "C"), types.int64
    kernels = [(u._sum_parts_kernel(dtype, two), (A,) * 3) for two in (False, True)]
    kernels += [(u._colsum_kernel(dtype, factor), (A, A, n, n, A)) for factor in (-1, u._NMU_FACTOR, u._SIGN_FACTOR)]
    for factor in (u._NMU_FACTOR, u._SIGN_FACTOR):
        product, loo, nmu_dx = u._product_kernels(factor, dtype)
        kernels += [(product, (A,) * 3), (loo, (A,) * 4), (nmu_dx, (A,) * 3)]
    log_in, output, grads, dx, finish, gate_finish = u._inalu_kernels(dtype)
    kernels += [(log_in, (A, T, A)), (output, (A, A, A, V, T, A)), (grads, (A, A, A, A, V, T) + (A,) * 4),
                (dx, (A, A, A, T, A)), (finish, (A,) * 12), (gate_finish, (A, V, V))]
    for imaginary in (False, True):
        stack_inputs, stack_weights, output, grads, dx = u._npu_kernels(dtype, imaginary)
        kernels += [(stack_inputs, (A, V, T, A)), (stack_weights, (A,) * 3), (output, (A,) * 4),
                    (grads, (A,) * 5), (dx, (A, V, T, A, A, A))]
    for kernel, sig in kernels:
        ir = compile_cuda(kernel.py_func, types.void, sig, cc=(9, 0)).library.get_llvm_str()
        assert "atomicrmw" not in ir, kernel.py_func.__name__
        if dtype == "<f4":  # no float64 arithmetic sneaks into float32 kernels
            assert "double" not in ir, kernel.py_func.__name__


def test_cupy_units_under_host_emulation():
    if shutil.which("g++") is None:
        pytest.skip("no g++ to build the host emulation of the CUDA kernels")
    env = {**os.environ, "NALU_NP_CUDA_BLOCK": "64", "NALU_NP_CUDA_MAX_BLOCKS": "3",
           "PYTHONPATH": os.pathsep.join([str(HERE / "cudasim_fakecupy"), os.environ.get("PYTHONPATH", "")])}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    _pytest_passes("cudasim_units_cupy.py", env)


def test_cupy_units_source_compiles_with_nvcc(tmp_path: Path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("no CUDA toolkit (nvcc) here")
    from nalu_np.kernels import _cupy_source

    before = set(sys.modules)
    sys.path.insert(0, str(HERE / "cudasim_fakecupy"))  # cupy_units imports cupy; only its source is used here
    try:
        from nalu_np.kernels import cupy_units
    finally:
        sys.path.remove(str(HERE / "cudasim_fakecupy"))
        import nalu_np.kernels as kernels_pkg

        for name in set(sys.modules) - before:  # later tests must not find the fake cupy, nor modules built on it
            del sys.modules[name]
            if name.startswith("nalu_np.kernels."):
                kernels_pkg.__dict__.pop(name.rsplit(".", 1)[1], None)
    names = cupy_units.kernel_names("float") + cupy_units.kernel_names("double")
    source = (_cupy_source.SOURCE + cupy_units.SOURCE + "\nvoid* all_kernels[] = {\n"
              + ",\n".join(f"(void*)&{n}" for n in names) + "};\n")
    (tmp_path / "k.cu").write_text(source)
    proc = subprocess.run([nvcc, "-std=c++14", "-arch=sm_90", "-Xptxas=-v", "-c", "-o", str(tmp_path / "k.o"),
                           "--keep", "--keep-dir", str(tmp_path), str(tmp_path / "k.cu")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    spills = [line for line in proc.stderr.splitlines() if "spill" in line and " 0 bytes spill stores" not in line]
    assert not spills, spills
    ptx = (tmp_path / "k.ptx").read_text()  # kept by --keep
    assert "atom." not in ptx
    entries = re.split(r"\.visible \.entry ", ptx)[1:]
    ours = [e for e in entries if any(e.startswith(f"_Z{len(k)}{k}I") for k in _UNITS_KERNELS)]
    assert len(ours) == len(names)
    for entry in ours:
        name = entry.split("(", 1)[0]
        # the float instantiations: no double arithmetic (except in CUDA's own sinf / cosf, whose reduction of
        # huge arguments multiplies in float64: the NPU's output and gradient kernels)
        if name.split("I", 1)[1].startswith("f") and not re.match(r"_Z\d+npu_(output|grads)I", name):
            assert ".f64" not in entry, name


_UNITS_KERNELS = ("product", "loo", "factor_grad_t", "inalu_log", "inalu_output", "inalu_grads", "inalu_dx",
                  "inalu_finish", "inalu_gate", "npu_inputs", "npu_output", "npu_grads", "npu_dx")
