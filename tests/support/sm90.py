"""Lowering the numba-cuda kernels for a real device (compute capability 9.0) without one.

The simulator runs the kernels as Python and would not notice code that real Numba-CUDA rejects, float32
kernels that promote to float64, or atomics; :func:`check_lowered_for_sm90` types and lowers kernels to LLVM
IR in the test process and checks those.
"""

from __future__ import annotations

import types as pytypes
from typing import Any, Callable, Sequence

import pytest


def check_lowered_for_sm90(monkeypatch: pytest.MonkeyPatch, dtype: str,
                           kernels: Callable[[Any, Any], Sequence[tuple[Any, tuple[Any, ...]]]]) -> None:
    """Lower every ``(kernel, argument types)`` of ``kernels(T, types)`` for sm_90 (``T`` the Numba float type of
    ``dtype``, ``types`` the module :mod:`numba.types`): no atomics, and no float64 in float32 kernels.

    Skips without numba-cuda, where this process runs the simulator, or where a CUDA device is present (its
    tests compile the kernels for it).  Device functions ask the current device for its compute capability, so
    that question is answered with (9, 0) while the kernels are built and lowered.
    """
    numba = pytest.importorskip("numba")
    pytest.importorskip("numba.cuda")
    import numba.cuda.dispatcher as dispatcher
    import numpy as np
    from numba import cuda, types

    if numba.config.ENABLE_CUDASIM:
        pytest.skip("this process runs the simulator")
    if cuda.is_available():
        pytest.skip("a CUDA device is present: its tests compile the kernels for it")
    from numba.cuda.compiler import compile_cuda

    monkeypatch.setattr(dispatcher, "get_current_device",
                        lambda: pytypes.SimpleNamespace(compute_capability=(9, 0)))
    for kernel, sig in kernels(numba.from_dtype(np.dtype(dtype)), types):
        ir = compile_cuda(kernel.py_func, types.void, sig, cc=(9, 0)).library.get_llvm_str()
        assert "atomicrmw" not in ir, kernel.py_func.__name__
        if dtype == "<f4":  # no float64 arithmetic sneaks into float32 kernels
            assert "double" not in ir, kernel.py_func.__name__
