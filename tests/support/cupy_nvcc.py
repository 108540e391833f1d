"""The CUDA C++ of the ``cupy`` backend compiled with ``nvcc`` for sm_90, every template instance.

Run by ``tests/gpu/test_nac_nalu.py`` and ``tests/gpu/test_successors.py`` (one test each) in a subprocess
(:mod:`support.gpu_subprocess`) with the stand-in CuPy of ``tests/support/fakecupy`` first on ``PYTHONPATH``:
the sources and their template instances are read from :mod:`nalu_np.kernels.cupy`, which imports ``cupy``;
nothing is run.  No register spills; for the successors also no atomics, and no float64 instructions in the
float instantiations.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nalu_np.kernels.cupy import inalu, nmu, npu
from nalu_np.kernels.cupy._common import cuda_source
from nalu_np.kernels.cupy._nac_family import FILE, ROW_SIZES_FOR_CHECK, general_names, row_names

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="no CUDA toolkit (nvcc) here")

#: the kernels of the successors' sources (the entries of their PTX)
SUCCESSOR_KERNELS = ("product", "loo", "factor_grad_t", "inalu_log", "inalu_output", "inalu_grads", "inalu_dx",
                     "inalu_finish", "inalu_gate", "npu_inputs", "npu_output", "npu_grads", "npu_dx")


def _compile(tmp_path: Path, source: str, names: list[str], *extra: str) -> None:
    """Compile ``source`` with every instance of ``names`` referenced; no register spills."""
    source += "\nvoid* all_kernels[] = {\n" + ",\n".join(f"(void*)&{n}" for n in names) + "};\n"
    (tmp_path / "k.cu").write_text(source)
    proc = subprocess.run([NVCC, "-std=c++14", "-arch=sm_90", "-Xptxas=-v", "-c", "-o", str(tmp_path / "k.o"),
                           *extra, str(tmp_path / "k.cu")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    spills = [line for line in proc.stderr.splitlines() if "spill" in line and " 0 bytes spill stores" not in line]
    assert not spills, spills


def test_nac_family_source_compiles(tmp_path: Path):
    names = []
    for c in ("float", "double"):
        names += general_names(c)
        for unit in (0, 1, 2):
            for n_in, n_out in ROW_SIZES_FOR_CHECK:
                names += row_names(c, unit, n_in, n_out)
    _compile(tmp_path, cuda_source(FILE), names)


def test_successor_sources_compile(tmp_path: Path):
    modules = (nmu, inalu, npu)
    names = [n for m in modules for c in ("float", "double") for n in m.kernel_names(c)]
    _compile(tmp_path, cuda_source(*(m.FILE for m in modules)), names, "--keep", "--keep-dir", str(tmp_path))
    ptx = (tmp_path / "k.ptx").read_text()  # kept by --keep
    assert "atom." not in ptx
    entries = re.split(r"\.visible \.entry ", ptx)[1:]
    ours = [e for e in entries if any(e.startswith(f"_Z{len(k)}{k}I") for k in SUCCESSOR_KERNELS)]
    assert len(ours) == len(names)
    for entry in ours:
        name = entry.split("(", 1)[0]
        # the float instantiations: no double arithmetic (except in CUDA's own sinf / cosf, whose reduction of
        # huge arguments multiplies in float64: the NPU's output and gradient kernels)
        if name.split("I", 1)[1].startswith("f") and not re.match(r"_Z\d+npu_(output|grads)I", name):
            assert ".f64" not in entry, name
