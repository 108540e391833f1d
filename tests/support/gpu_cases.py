"""Cases of every unit for the GPU-kernel tests, running a backend on them and comparing it with the NumPy
reference; the backend fixture of the device tests and the training check they share.

Used by the device tests (``tests/gpu``) and by the scripts that run without a device in subprocesses: the
Numba-CUDA simulator (``numba_cuda_sim_*.py``) and the host emulation of the CuPy kernels (``cupy_host_*.py``).
NAC, NACMul and NALU are named by *mode* (:data:`MODES`: the NALU with shared or separate weights), the other
units by name (:data:`UNITS`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import reference as ref
from nalu_np.backends import to_numpy
from nalu_np.optim import Adam

# (unit, parameter names); NALU with shared weights (seed 003) and separate weights (seed 000)
MODES = {
    "nac": ("nac", ("W_hat", "M_hat")),
    "nacmul": ("nacmul", ("W_hat", "M_hat")),
    "nalu-shared": ("nalu", ("W_hat", "M_hat", "G")),
    "nalu-separate": ("nalu", ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul", "G")),
}
UNITS = ["nau", "nmu", "inalu", "npu", "realnpu"]
RTOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-10}
#: the GPU backends of the device tests
BACKENDS = ["cupy", "numba-cuda"]


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


def _mode_args(mode: str, eps: float) -> tuple[str, dict[str, float]]:
    unit = MODES[mode][0]
    return unit, ({} if unit == "nac" else {"eps": eps})


def run(module: Any, mode: str, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray,
        to_device: Callable[[np.ndarray], Any], eps: float = 1e-7) -> tuple[np.ndarray, np.ndarray, dict]:
    """Forward and backward of ``mode`` with ``module``'s kernels; returns ``y, dx, grads`` as NumPy arrays."""
    unit, hyper = _mode_args(mode, eps)
    return run_unit(module, unit, params, x, dy, to_device, **hyper)


def check_against_reference(module: Any, mode: str, params: dict[str, np.ndarray], x: np.ndarray,
                            dy: np.ndarray, to_device: Callable[[np.ndarray], Any], eps: float = 1e-7) -> None:
    """Run ``module`` and the NumPy reference on the same case of ``mode`` and compare every output."""
    unit, hyper = _mode_args(mode, eps)
    check_unit(module, unit, params, x, dy, to_device, **hyper)


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
    be = nn.get_backend(backend)
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


def device_backend(name: str) -> Any:
    """The backend ``name`` on a real device; skips the test where it cannot run (no CuPy, no device) or where
    ``numba-cuda`` runs in the simulator in this process."""
    try:
        be = nn.get_backend(name)
    except (nn.BackendUnavailableError, ImportError) as err:
        pytest.skip(f"{name}: {err}")
    if name == "numba-cuda" and be.module.SIMULATOR:
        pytest.skip("numba-cuda runs in the simulator in this process")
    return be


def to_device(be: Any) -> Callable[[np.ndarray], Any]:
    """The host-to-device move of the backend ``be``."""
    return be.module.asarray if hasattr(be.module, "asarray") else be.xp.asarray


def check_adam_trajectory(backend: str, layer_cls: type, n_rows: int, steps: int, *,
                          projections: bool = False) -> None:
    """Adam on the parameters of ``layer_cls(2, 1)`` moved to ``backend`` (updated in place there) follows the
    trajectory of the same layer on the NumPy backend, on ``t = x1 * x2`` with ``x`` in [1, 3]; ``projections``:
    with the unit's projections after each step."""
    be = device_backend(backend)
    rng = np.random.default_rng(5)
    x = rng.uniform(1.0, 3.0, (n_rows, 2))
    t = x[:, :1] * x[:, 1:]
    host = layer_cls(2, 1, rng=6, dtype="float64")
    dev = host.to(backend)
    for layer, xs, ts, name in ((host, x, t, "numpy"), (dev, be.asarray(x), be.asarray(t), backend)):
        opt = Adam(layer.params, lr=0.05, projections=layer.projections() if projections else None)
        for _ in range(steps):
            y, cache = layer.forward(xs, backend=name)
            _, grads = layer.backward(2.0 * (y - ts) / y.size, cache)
            opt.step(grads)
    for key in host.params:
        np.testing.assert_allclose(nn.backends.to_numpy(dev.params[key]), host.params[key], rtol=1e-6, atol=1e-9)
