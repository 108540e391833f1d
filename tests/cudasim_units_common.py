"""Cases of the successor units (NAU, NMU, iNALU, NPU, RealNPU) for the GPU-kernel tests, and the comparison
of a backend with the NumPy reference.

Not collected by pytest on its own; imported by ``cudasim_units_numba_cuda.py`` (simulator),
``cudasim_units_cupy.py`` (host emulation of the CuPy kernels) and ``test_gpu_units.py`` (real device).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from nalu_np import reference as ref
from nalu_np.backends import to_numpy

from cudasim_common import assert_close

UNITS = ["nau", "nmu", "inalu", "npu", "realnpu"]


def make_unit_case(rng: np.random.Generator, unit: str, batch: int, n_in: int, n_out: int, dtype: Any, *,
                   zero_fraction: float = 0.1) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Params in each unit's working range, ``x`` (magnitudes in [0.2, 2], random signs, some zeros), ``dy``.

    NMU weights include exact 0 and 1 (with ``x = 0`` a factor is exactly 0, where ``y / f`` would fail).
    """
    dt = np.dtype(dtype)
    shape = (n_in, n_out)
    if unit == "nau":
        params = {"W": rng.uniform(-1.0, 1.0, shape)}
    elif unit == "nmu":
        W = rng.uniform(0.0, 1.0, shape)
        W[rng.random(shape) < 0.2] = 1.0
        W[rng.random(shape) < 0.1] = 0.0
        params = {"W": W}
    elif unit == "inalu":
        params = {k: rng.normal(0.0, 1.0, shape) for k in ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul")}
        params["g"] = rng.normal(0.0, 1.0, n_out)
    else:
        params = {"W_r": rng.normal(0.0, 0.7, shape)}
        if unit == "npu":
            params["W_i"] = rng.normal(0.0, 0.7, shape)
        params["g"] = rng.uniform(0.0, 1.0, n_in)
    x = rng.uniform(0.2, 2.0, (batch, n_in)) * rng.choice([-1.0, 1.0], (batch, n_in))
    if zero_fraction:
        x[rng.random(x.shape) < zero_fraction] = 0.0
    dy = rng.normal(0.0, 1.0, (batch, n_out))
    return {k: v.astype(dt) for k, v in params.items()}, x.astype(dt), dy.astype(dt)


def run_unit(module: Any, unit: str, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray,
             to_device: Callable[[np.ndarray], Any], **hyper: Any) -> tuple[np.ndarray, np.ndarray, dict]:
    """Forward and backward of ``unit`` with ``module``'s kernels; ``y, dx, grads`` as NumPy arrays."""
    p = {k: to_device(v) for k, v in params.items()}
    y, cache = getattr(module, unit + "_forward")(p, to_device(x), **hyper)
    dx, grads = getattr(module, unit + "_backward")(p, cache, to_device(dy), **hyper)
    assert list(grads) == list(params)
    return to_numpy(y), to_numpy(dx), {k: to_numpy(v) for k, v in grads.items()}


def check_unit(module: Any, unit: str, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray,
               to_device: Callable[[np.ndarray], Any], **hyper: Any) -> None:
    """Run ``module`` and the NumPy reference on the same case and compare every output."""
    y, dx, grads = run_unit(module, unit, params, x, dy, to_device, **hyper)
    y0, dx0, grads0 = run_unit(ref, unit, params, x, dy, lambda a: a, **hyper)
    assert_close(y, y0, f"{unit} y")
    assert_close(dx, dx0, f"{unit} dx")
    for k in grads0:
        assert_close(grads[k], grads0[k], f"{unit} grads[{k!r}]")


def nmu_zero_factor_case(dtype: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """An NMU case with ``W = 1`` and zeros in ``x``: factors exactly 0, one or two in a product (where
    ``y / f`` would be ``0 / 0``)."""
    params, x, dy = make_unit_case(np.random.default_rng(2), "nmu", 4, 3, 2, dtype, zero_fraction=0.0)
    params["W"][:] = 1.0
    x[1, 0] = 0.0
    x[2, :2] = 0.0
    return params, x, dy


def check_nmu_zero_factors(module: Any, to_device: Callable[[np.ndarray], Any]) -> None:
    """The gradients of :func:`nmu_zero_factor_case` are finite and match the reference."""
    params, x, dy = nmu_zero_factor_case("float64")
    _, dx, grads = run_unit(module, "nmu", params, x, dy, to_device)
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(grads["W"]))
    check_unit(module, "nmu", params, x, dy, to_device)


def check_inalu_clipped(module: Any, to_device: Callable[[np.ndarray], Any], batch: int, dtype: Any) -> None:
    """iNALU with ``omega`` small enough that some ``z = l @ W_m`` are clipped (no gradient through them) and
    ``eps`` above some ``|x|``, against the reference."""
    params, x, dy = make_unit_case(np.random.default_rng(3), "inalu", batch, 3, 2, dtype)
    x[0, 0] = 1e-4
    check_unit(module, "inalu", params, x, dy, to_device, eps=1e-3, omega=0.3)


def check_layer(layer: Any, backend: str, x: np.ndarray, dy: np.ndarray) -> None:
    """``layer.to(backend)`` through the layer protocol and the backend switch, against the layer on NumPy."""
    from nalu_np.backends import get_backend

    be = get_backend(backend)
    dev = layer.to(backend)
    y, cache = dev.forward(be.asarray(x), backend=backend)
    dx, grads = dev.backward(be.asarray(dy), cache)
    y0, cache0 = layer.forward(x, backend="numpy")
    dx0, grads0 = layer.backward(dy, cache0)
    assert_close(to_numpy(y), y0, "y")
    assert_close(to_numpy(dx), dx0, "dx")
    assert set(grads) == set(grads0)
    for key in grads0:
        assert_close(to_numpy(grads[key]), grads0[key], key)
