"""The one runner of the GPU-kernel scripts that must run in a fresh process, and their environments.

The Numba-CUDA simulator is switched on by ``NUMBA_ENABLE_CUDASIM=1`` before Numba is first imported (the test
process has imported it already, for the CPU backend), and the stand-in CuPy of ``tests/support/fakecupy``
must come first on ``PYTHONPATH``: so the scripts ``tests/support/numba_cuda_sim_*.py`` and
``tests/support/cupy_*.py`` run in a subprocess, a pytest of their own with the same rootdir, configuration
and ``tests/conftest.py``, and every test in them must pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parents[1]

#: small launch settings under the simulator, so that every kernel runs on several blocks and partial tiles,
#: and weight gradients add several partials
SIM_ENV = {
    "NUMBA_ENABLE_CUDASIM": "1",
    "NALU_NP_CUDA_BLOCK": "4",
    "NALU_NP_CUDA_TILE": "2",
    "NALU_NP_CUDA_MAX_BLOCKS": "3",
    "NALU_NP_CUDA_SPLITS": "3",
}


def simulator_env() -> dict[str, str]:
    """This process's environment with the simulator on and :data:`SIM_ENV`'s launch settings."""
    return {**os.environ, **SIM_ENV}


def host_emulation_env() -> dict[str, str]:
    """This process's environment with the stand-in CuPy first on ``PYTHONPATH``, blocks of 64 threads and at
    most 3 of them (grid-stride loops go round), and the simulator off."""
    env = {**os.environ, "NALU_NP_CUDA_BLOCK": "64", "NALU_NP_CUDA_MAX_BLOCKS": "3",
           "PYTHONPATH": os.pathsep.join([str(SUPPORT / "fakecupy"), os.environ.get("PYTHONPATH", "")])}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return env


def run_pytest(script: str, env: dict[str, str], *, allowed_skip: str | None = None, timeout: int = 900) -> str:
    """Run ``tests/support/<script>`` (a file, or a file and ``::test``) with pytest in a subprocess.

    Every test must pass; a test may skip only when ``allowed_skip`` is in its skip reason.  Returns the
    summary line (``"51 passed, 1 skipped in ..."``).
    """
    cmd = [sys.executable, "-m", "pytest", str(SUPPORT / script), "-q", "-rs", "-x", "-p", "no:cacheprovider",
           "--rootdir", str(ROOT)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    lines = proc.stdout.splitlines()
    assert lines and " passed" in lines[-1], tail
    skips = [line for line in lines if line.startswith("SKIPPED")]
    assert all(allowed_skip is not None and allowed_skip in line for line in skips), tail
    return lines[-1]
