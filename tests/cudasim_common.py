"""Helpers shared by the GPU-kernel tests (simulator and real device): cases, running a backend, comparing.

Not collected by pytest on its own (no ``test_`` prefix); imported by ``cudasim_numba_cuda.py`` (run under
``NUMBA_ENABLE_CUDASIM=1`` in a subprocess by ``test_numba_cuda_sim.py``) and by ``test_gpu.py``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from nalu_np import reference as ref
from nalu_np.backends import to_numpy

# (unit, parameter names); NALU with shared weights (seed 003) and separate weights (seed 000)
MODES = {
    "nac": ("nac", ("W_hat", "M_hat")),
    "nacmul": ("nacmul", ("W_hat", "M_hat")),
    "nalu-shared": ("nalu", ("W_hat", "M_hat", "G")),
    "nalu-separate": ("nalu", ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul", "G")),
}
RTOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-10}


def make_case(rng: np.random.Generator, mode: str, batch: int, n_in: int, n_out: int, dtype: Any, *,
              zero_fraction: float = 0.0, x_scale: float = 1.0) -> tuple[dict[str, np.ndarray], np.ndarray,
                                                                            np.ndarray]:
    """Random params, ``x`` (magnitudes in [0.2, 2] times ``x_scale``, random signs, some zeros) and ``dy``."""
    dt = np.dtype(dtype)
    params = {k: rng.normal(0.0, 1.0, (n_in, n_out)).astype(dt) for k in MODES[mode][1]}
    x = rng.uniform(0.2, 2.0, (batch, n_in)) * rng.choice([-1.0, 1.0], (batch, n_in)) * x_scale
    if zero_fraction:
        x[rng.random(x.shape) < zero_fraction] = 0.0
    dy = rng.normal(0.0, 1.0, (batch, n_out))
    return params, x.astype(dt), dy.astype(dt)


def run(module: Any, mode: str, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray,
        to_device: Callable[[np.ndarray], Any], eps: float = 1e-7) -> tuple[np.ndarray, np.ndarray, dict]:
    """Forward and backward of ``mode`` with ``module``'s kernels; returns ``y, dx, grads`` as NumPy arrays."""
    unit = MODES[mode][0]
    kw = {} if unit == "nac" else {"eps": eps}
    p = {k: to_device(v) for k, v in params.items()}
    y, cache = getattr(module, unit + "_forward")(p, to_device(x), **kw)
    dx, grads = getattr(module, unit + "_backward")(p, cache, to_device(dy), **kw)
    assert list(grads) == list(params)
    return to_numpy(y), to_numpy(dx), {k: to_numpy(v) for k, v in grads.items()}


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Same shape and dtype, same non-finite entries, finite entries within ``RTOL`` of the finite scale.

    Matrix products summed in another order differ by a few ulp of the largest term, hence the tolerance
    relative to the largest finite magnitude of ``want`` rather than per element.
    """
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, want.shape, got.dtype)
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), fin, err_msg=f"{what}: non-finite entries differ")
    np.testing.assert_array_equal(got[~fin], want[~fin], err_msg=f"{what}: inf/nan entries differ")
    if fin.any():
        rtol = RTOL[want.dtype]
        scale = float(np.max(np.abs(want[fin])))
        np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=rtol * scale, err_msg=what)


def check_against_reference(module: Any, mode: str, params: dict[str, np.ndarray], x: np.ndarray,
                            dy: np.ndarray, to_device: Callable[[np.ndarray], Any], eps: float = 1e-7) -> None:
    """Run ``module`` and the NumPy reference on the same case and compare every output."""
    y, dx, grads = run(module, mode, params, x, dy, to_device, eps)
    y0, dx0, grads0 = run(ref, mode, params, x, dy, lambda a: a, eps)
    assert_close(y, y0, "y")
    assert_close(dx, dx0, "dx")
    for k in grads0:
        assert_close(grads[k], grads0[k], f"grads[{k!r}]")
