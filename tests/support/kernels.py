"""Helpers of the kernel tests (``tests/kernels``): unit cases, the comparison against the NumPy reference, and
the switch that forces each code path of the numba backend.

The kernel of a compiled backend must compute what :mod:`nalu_np.reference` computes, in the dtype of its
input: :func:`check_kernel` runs forward and backward on both and compares them with :func:`assert_close`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import pytest

import nalu_np as nn
from nalu_np import reference as ref
from nalu_np.backends import to_numpy

DTYPES = (np.float32, np.float64)
#: the code paths of the numba backend (see code_path); iNALU, NPU and RealNPU have the fused one only
PATHS = ("fused", "chunks", "rows", "blas")
FUSED_PATHS = ("fused", "chunks")
TOL = {np.float32: 1e-5, np.float64: 1e-12}

# unit case -> (kernel prefix, parameter names, hyper-parameters: the layers' defaults, and other ones)
UNITS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "nac": ("nac", ("W_hat", "M_hat"), {}),
    "nacmul": ("nacmul", ("W_hat", "M_hat"), {"eps": 1e-7}),
    "nalu": ("nalu", ("W_hat", "M_hat", "G"), {"eps": 1e-7}),
    "nalu_separate": ("nalu", ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul", "G"), {"eps": 1e-6}),
    "nau": ("nau", ("W",), {}),
    "nmu": ("nmu", ("W",), {}),
    "inalu": ("inalu", ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul", "g"), {"eps": 1e-7, "omega": 20.0}),
    "npu": ("npu", ("W_r", "W_i", "g"), {"eps": 1e-7}),
    "realnpu": ("realnpu", ("W_r", "g"), {"eps": 1e-6}),
    "dense": ("dense", ("W", "b"), {}),
    "relu": ("relu", ("W", "b"), {}),
    "relu6": ("relu6", ("W", "b"), {}),
    "sigmoidnacmul": ("sigmoidnacmul", ("W_hat",), {"eps": 1e-7}),
    "clippednacmul": ("clippednacmul", ("W",), {"eps": 1e-6}),
    "gatednaunmu": ("gatednaunmu", ("W_add", "W_mul", "G"), {}),
    "gnalu": ("gnalu", ("W_hat", "M_hat", "G"), {"eps": 1e-7}),
}
#: the kernels the GPU backends do not have (yet): their ``Backend.kernel`` raises NotImplementedError
HOST_ONLY = {"dense", "relu", "relu6", "sigmoidnacmul", "clippednacmul", "gatednaunmu", "gnalu"}


@contextlib.contextmanager
def code_path(path: str) -> Iterator[None]:
    """Force one of the numba backend's code paths by setting its tuning knobs (in
    :mod:`nalu_np.kernels.numba._common`): ``fused`` (one chunk, the forward pass keeps its values for the
    backward pass), ``chunks`` (tiny blocks spread over several threads, so that rows, blocks and threads do not
    divide evenly; the backward pass recomputes the forward values), ``rows`` (NALU and the linear kernels of NAU,
    NAC and the dense layers row by row, the layout for many inputs; the other units take their ``fused`` path
    there) and ``blas`` (matrix products in NumPy,
    elementwise passes in Numba)."""
    from nalu_np.kernels.numba import _common as nb

    knobs = ("BLAS_MIN_WEIGHTS", "BLAS_CHUNK_ROWS", "MIN_CHUNK_ROWS", "MAX_BLOCK_ROWS", "KEEP_MAX_BYTES",
             "ROWS_MIN_IN")
    saved = {k: getattr(nb, k) for k in knobs}
    try:
        nb.ROWS_MIN_IN = 1 << 62
        if path == "chunks":  # tiny blocks over several threads; the backward pass recomputes the forward's
            nb.MIN_CHUNK_ROWS, nb.MAX_BLOCK_ROWS, nb.KEEP_MAX_BYTES = 1, 8, 0
        elif path == "rows":  # NALU and linear kernels row by row, over several threads
            nb.ROWS_MIN_IN, nb.MIN_CHUNK_ROWS = 1, 1
        elif path == "blas":  # matrix products through BLAS, in chunks of 2 rows (the last one partial)
            nb.BLAS_MIN_WEIGHTS, nb.BLAS_CHUNK_ROWS = 1, 2
        else:
            nb.MIN_CHUNK_ROWS = 1 << 62
        yield
    finally:
        for k, v in saved.items():
            setattr(nb, k, v)


def make_params(unit: str, I: int, O: int, rng: np.random.Generator, dtype: Any) -> dict[str, np.ndarray]:
    """Random parameters of a unit case of ``UNITS``, off the kinks: NMU (and ClippedNACMul, GatedNAUNMU
    ``W_mul``) weights in ``[-0.2, 1.2]``; iNALU multiplicative weights of both signs with ``|W_hat_mul| >= 0.3``
    (so ``sign(W_m)`` is not at 0); NPU gates in ``[0.1, 0.9]`` and ``W_i != 0``."""
    names = UNITS[unit][1]
    if unit in ("nmu", "clippednacmul"):
        return {"W": rng.uniform(-0.2, 1.2, (I, O)).astype(dtype)}
    if unit == "gatednaunmu":  # both weights a little beyond their boxes, the gate of either sign
        p = {"W_add": rng.uniform(-1.2, 1.2, (I, O)), "W_mul": rng.uniform(-0.2, 1.2, (I, O)),
             "G": rng.normal(0.0, 0.8, (I, O))}
        return {k: v.astype(dtype) for k, v in p.items()}
    if unit == "inalu":
        p = {k: rng.normal(0.0, 0.8, (I, O)) for k in ("W_hat_add", "M_hat_add")}
        p["W_hat_mul"] = rng.choice([-1.0, 1.0], (I, O)) * rng.uniform(0.3, 2.0, (I, O))
        p["M_hat_mul"] = rng.normal(0.0, 0.8, (I, O))
        p["g"] = rng.normal(0.0, 1.0, O)
        return {k: v.astype(dtype) for k, v in p.items()}
    if unit in ("dense", "relu", "relu6"):  # biases around the kinks' scale: some outputs clipped, most not
        return {"W": rng.normal(0.0, 0.8, (I, O)).astype(dtype), "b": rng.normal(1.0, 2.0, O).astype(dtype)}
    if unit in ("npu", "realnpu"):
        p = {"W_r": rng.normal(0.0, 0.8, (I, O))}
        if unit == "npu":
            p["W_i"] = rng.normal(0.0, 0.8, (I, O))
        p["g"] = rng.uniform(0.1, 0.9, I)
        return {k: v.astype(dtype) for k, v in p.items()}
    return {k: rng.normal(0.0, 0.8, (I, O)).astype(dtype) for k in names}


def off_kink(shape: tuple[int, int], rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """Signed magnitudes in [0.1, 2]: away from the |x| kink at 0."""
    return (rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape)).astype(dtype)


def _rel_error(got: np.ndarray, want: np.ndarray, what: str) -> float:
    """Largest error over the finite entries relative to the largest of them; non-finite entries must match."""
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin], want[~fin].astype(got.dtype), err_msg=f"{what}: non-finite entries differ")
    assert np.isfinite(got[fin]).all(), f"{what}: non-finite where the reference is finite"
    if not fin.any():
        return 0.0
    scale = max(float(np.abs(want[fin]).max()), np.finfo(got.dtype).tiny)
    return float(np.abs(got[fin].astype(np.float64) - want[fin]).max()) / scale


def assert_close(got: np.ndarray, want: np.ndarray, dtype: Any, what: str, truth: np.ndarray | None = None) -> None:
    """Same dtype and shape; the same non-finite entries; the finite ones within TOL of the largest.

    For float32, ``truth`` is the reference computed in float64 on the same inputs: where the float32
    reference itself is off by more than TOL (cancellation, e.g. ``g a + (1 - g) m`` with opposite terms), the
    kernel passes if it is no further from the truth than twice the float32 reference's error.
    """
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape, (what, got.dtype, got.shape, want.shape)
    err = _rel_error(got, want, what)
    if err <= TOL[dtype]:
        return
    assert truth is not None, f"{what}: relative error {err:.3g} > {TOL[dtype]:g}"
    ref_err = _rel_error(want, truth, what + " (float32 reference vs float64)")
    own_err = _rel_error(got, truth, what + " (vs float64)")
    assert own_err <= max(TOL[dtype], 2.0 * ref_err), (
        f"{what}: relative error {err:.3g} against the float32 reference, {own_err:.3g} against float64 "
        f"(the float32 reference's own: {ref_err:.3g})"
    )


def run_reference(kernel: str, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray,
                  hyper: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    with np.errstate(all="ignore"):
        y, cache = getattr(ref, kernel + "_forward")(params, x, **hyper)
        dx, grads = getattr(ref, kernel + "_backward")(params, cache, dy, **hyper)
    return y, dx, grads


def check_kernel(kernel: str, hyper: dict[str, Any], params: dict[str, np.ndarray], x: np.ndarray,
                 dy: np.ndarray, *, strict: bool = False, backend: str = "numba") -> None:
    """Forward and backward of ``backend``'s kernel ``kernel`` against the reference (float32 also against the
    float64 reference, see ``assert_close``); inputs not mutated; gradients in ``params``' order.  ``strict``:
    no NumPy floating-point warning may come from the kernel calls.  The inputs are NumPy arrays, moved to the
    backend with ``asarray`` and the results back with ``to_numpy``."""
    y_ref, dx_ref, g_ref = run_reference(kernel, params, x, dy, hyper)
    truth: tuple[Any, Any, Any] = (None, None, {})
    if x.dtype == np.float32:
        truth = run_reference(kernel, {k: v.astype(np.float64) for k, v in params.items()},
                              x.astype(np.float64), dy.astype(np.float64), hyper)
    be = nn.get_backend(backend)
    before = {k: v.copy() for k, v in params.items()}
    x0, dy0 = x.copy(), dy.copy()
    p_be = {k: be.asarray(v) for k, v in params.items()}
    x_be, dy_be = be.asarray(x), be.asarray(dy)
    with np.errstate(all="raise") if strict else contextlib.nullcontext():
        y, cache = be.kernel(kernel + "_forward")(p_be, x_be, **hyper)
        dx, grads = be.kernel(kernel + "_backward")(p_be, cache, dy_be, **hyper)
    y, dx, grads = to_numpy(y), to_numpy(dx), {k: to_numpy(v) for k, v in grads.items()}
    dt = x.dtype.type
    assert_close(y, y_ref, dt, "y", truth[0])
    assert_close(dx, dx_ref, dt, "dx", truth[1])
    assert list(grads) == list(params)
    for k in params:
        assert_close(grads[k], g_ref[k], dt, f"grad {k}", truth[2].get(k))
        np.testing.assert_array_equal(to_numpy(p_be[k]), before[k])
    np.testing.assert_array_equal(to_numpy(x_be), x0)
    np.testing.assert_array_equal(to_numpy(dy_be), dy0)


def check_unit(unit: str, params: dict[str, np.ndarray], x: np.ndarray, dy: np.ndarray, *, strict: bool = False,
               backend: str = "numba") -> None:
    """:func:`check_kernel` of a unit case of ``UNITS`` with its hyper-parameters."""
    kernel, _, hyper = UNITS[unit]
    check_kernel(kernel, hyper, params, x, dy, strict=strict, backend=backend)


def random_case(unit: str, B: int, I: int, O: int, seed: int, dtype: Any
                ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """``params, x, dy`` of a unit case: :func:`make_params`, ``x`` off the kink, ``dy`` standard normal."""
    rng = np.random.default_rng(seed)
    params = make_params(unit, I, O, rng, dtype)
    x = off_kink((B, I), rng, dtype)
    dy = rng.normal(size=(B, O)).astype(dtype)
    return params, x, dy


def check_layer_dispatch(layer: Any) -> None:
    """``layer.forward(x, backend="numba")`` then ``layer.backward(dy, cache)`` on a strided view of ``x``,
    against the NumPy backend on a contiguous copy (float64 layers); gradients in ``layer.params``' order."""
    rng = np.random.default_rng(5)
    x = off_kink((20, 2 * layer.in_features), rng, np.float64)[:, ::2]  # a strided view
    y, cache = layer.forward(x, backend="numba")
    y_ref, cache_ref = layer.forward(np.ascontiguousarray(x), backend="numpy")
    dy = rng.normal(size=y.shape)
    dx, grads = layer.backward(dy, cache)
    dx_ref, grads_ref = layer.backward(dy, cache_ref)
    assert_close(y, y_ref, np.float64, "y")
    assert_close(dx, dx_ref, np.float64, "dx")
    assert list(grads) == list(layer.params)
    for k in grads:
        assert_close(grads[k], grads_ref[k], np.float64, k)


# ---------------------------------------------------------------------------------------------------------
# the checks that every unit's test module runs on its unit cases
# ---------------------------------------------------------------------------------------------------------

DTYPE_IDS = ["float32", "float64"]


def shapes() -> Any:
    """Hypothesis strategy of ``(B, I, O, seed)`` for :func:`check_random`: ragged small shapes."""
    from hypothesis import strategies as st

    return st.tuples(st.integers(1, 41), st.integers(1, 7), st.integers(1, 5), st.integers(0, 2**32 - 1))


def check_random(unit: str, dtype: Any, path: str, shape: tuple[int, int, int, int], *, strict: bool = False) -> None:
    """The numba kernel of ``unit`` on the code path ``path`` against the reference, random inputs of ``shape``
    ``(B, I, O, seed)``."""
    params, x, dy = random_case(unit, *shape, dtype)
    with code_path(path):
        check_unit(unit, params, x, dy, strict=strict)


def check_exact_zeros(unit: str, dtype: Any, path: str, *, strict: bool = False) -> None:
    """``x = 0`` exactly in some entries, rows and columns: the ``|x|`` kink (slope 0 of ``log(|x| + eps)``;
    iNALU ``sign(0) = 0`` and ``log(max(0, eps))``; NPU ``r = g eps + 1 - g``), NMU factors that are exactly 0
    (``W = 1``) and NPU gates at the bounds 0 and 1 of their projection."""
    rng = np.random.default_rng(7)
    B, I, O = 19, 5, 3
    params = make_params(unit, I, O, rng, dtype)
    if unit == "nmu":
        params["W"][1, :] = 1.0  # factor W x + 1 - W = x: exactly 0 where x = 0
        params["W"][3, 0] = 1.0
    if unit in ("npu", "realnpu"):
        params["g"][1], params["g"][3] = 1.0, 0.0
    x = off_kink((B, I), rng, dtype)
    x[::2, 1] = 0.0
    x[::3, 3] = 0.0
    x[5, :] = 0.0
    dy = rng.normal(size=(B, O)).astype(dtype)
    with code_path(path):
        check_unit(unit, params, x, dy, strict=strict)


def check_overflow(unit: str, dtype: Any, path: str) -> None:
    """Products too large for the dtype are ``inf`` (and ``(1 - g) inf`` is NaN where g = 1), as in NumPy
    (NACMul, NALU, NMU and the log-space and gated variants)."""
    rng = np.random.default_rng(3)
    B, I, O = 9, 4, 2
    params = make_params(unit, I, O, rng, dtype)
    big = np.finfo(dtype).max ** 0.5
    x = off_kink((B, I), rng, dtype)
    x[:4] = big  # exp(sum log|x| W) and prod(x) overflow for W near 1
    for k in params:
        if k.startswith("W_hat"):
            params[k][:] = 1.5  # W = tanh(1.5) sigma(4) = 0.89 (not where 1 - tanh^2 cancels)
        elif k.startswith("M_hat"):
            params[k][:] = 4.0
        elif k in ("W", "W_mul"):
            params[k][:] = 1.0
        elif k == "G" and unit == "gatednaunmu":
            # g = 0 for the big rows, y = m = inf.  Not g = 1: the NMU's gradient would then be 0 * inf, NaN in
            # the reference and NaN or 0 in the NMU's block, whose products may be reassociated (SUM flags)
            params[k][:] = -1.0
        elif k == "G":
            params[k][:, 0] = -1.0  # g = 0 for the big rows: y = m = inf
            params[k][:, 1:] = 1.0  # g = 1: y = NaN from (1 - g) * inf
    dy = rng.uniform(0.5, 1.5, size=(B, O)).astype(dtype)  # one sign: no cancellation of the huge terms
    y_ref = getattr(ref, UNITS[unit][0] + "_forward")(params, x, **UNITS[unit][2])[0]
    assert not np.isfinite(y_ref).all()
    with np.errstate(all="ignore"), code_path(path):
        check_unit(unit, params, x, dy)


def check_large_batch(unit: str, dtype: Any, *, strict: bool = False) -> None:
    """The default plan on a batch large enough for several chunks (threads), rows not a multiple of the
    block."""
    rng = np.random.default_rng(11)
    B, I, O = 3 * 4096 + 77, 3, 2
    params = make_params(unit, I, O, rng, dtype)
    check_unit(unit, params, off_kink((B, I), rng, dtype), rng.normal(size=(B, O)).astype(dtype), strict=strict)


def check_backend(unit: str, backend: str, dtype: Any) -> None:
    """Backend-neutral: ``backend``'s kernel of ``unit`` on random inputs (shape (37, 5, 3) and a ragged small
    one) against the reference, forward and backward; a kernel of ``HOST_ONLY`` on a GPU backend raises
    NotImplementedError naming the backend and the kernel."""
    kernel = UNITS[unit][0]
    if backend != "numba" and kernel in HOST_ONLY:
        be = nn.get_backend(backend)
        for name in (kernel + "_forward", kernel + "_backward"):
            with pytest.raises(NotImplementedError, match=f"backend '{backend}' does not implement '{name}' yet"):
                be.kernel(name)
        return
    for shape in ((37, 5, 3, 0), (3, 2, 1, 1)):
        params, x, dy = random_case(unit, *shape, dtype)
        check_unit(unit, params, x, dy, backend=backend)


#: weights for the regularizer blocks: the range they are drawn from, and a row of kinks (slope 0 there)
REGULARIZER_WEIGHTS = {"nau": ((-1.2, 1.2), [0.0, 0.5, -0.5]), "nmu": ((-0.2, 1.2), [0.0, 0.5, 1.0])}


def check_regularizer_block(unit: str, dtype: Any) -> None:
    """The regularizer block ``<unit>_regularizer(W, lam, dW) -> lam R`` (adds ``lam dR/dW`` to ``dW``) of the NAU
    or NMU against ``nalu_np.reference.<unit>_regularizer(W) -> (R, dR)``, with weights at the kinks, on ``W`` and
    on its flat view (the compiled step's packed layout)."""
    import importlib

    block = getattr(importlib.import_module(f"nalu_np.kernels.numba.{unit}"), f"{unit}_regularizer")
    (lo, hi), kinks = REGULARIZER_WEIGHTS[unit]
    W = np.random.default_rng(1).uniform(lo, hi, (5, 3)).astype(dtype)
    W[0, :] = kinks
    lam = 0.37
    R, dR = getattr(ref, f"{unit}_regularizer")(W)
    for w in (W, W.reshape(-1)):
        base = np.random.default_rng(0).normal(size=w.shape).astype(W.dtype)
        dW = base.copy()
        value = block(w, lam, dW)
        np.testing.assert_allclose(value, lam * float(R), rtol=TOL[W.dtype.type])
        np.testing.assert_allclose(dW, base + W.dtype.type(lam) * dR.reshape(w.shape), rtol=TOL[W.dtype.type],
                                   atol=TOL[W.dtype.type])


def transposed_case(unit: str, dtype: Any, B: int = 23, I: int = 4, O: int = 3
                    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, Any, Any]:
    """A unit case with ``x`` and ``dy`` transposed, (features, B), as the block functions see them, and the
    reference's ``(y, dx, grads)`` of the same inputs (``y`` and ``dx`` transposed as well)."""
    params, x, dy = random_case(unit, B, I, O, 3, dtype)
    y, dx, grads = run_reference(UNITS[unit][0], params, x, dy, UNITS[unit][2])
    return params, np.ascontiguousarray(x.T), np.ascontiguousarray(dy.T), (y.T, dx.T), grads


def check_weight_blocks(unit: str, dtype: Any, need_dx: bool) -> None:
    """The block functions of a unit with one weight ``W`` (NAU, NMU) on a whole batch, (features, B), as the
    compiled training step calls them: ``<unit>_block_forward(xT, n, W, yT)`` and
    ``<unit>_block_backward(xT, dT, n, W, acc, dxT, need_dx[, pre, run])`` (the NMU's scratch of prefix
    products); the gradient is added to the accumulator, ``dxT`` is left alone without ``need_dx``.  Then its
    regularizer block (:func:`check_regularizer_block`)."""
    import importlib

    module = importlib.import_module(f"nalu_np.kernels.numba.{unit}")
    forward, backward = getattr(module, f"{unit}_block_forward"), getattr(module, f"{unit}_block_backward")
    params, xT, dT, (yT_ref, dxT_ref), grads = transposed_case(unit, dtype)
    W = params["W"]
    B = xT.shape[1]
    tol = TOL[dtype]
    yT = np.empty((W.shape[1], B), dtype)
    forward(xT, B, W, yT)
    np.testing.assert_allclose(yT, yT_ref, rtol=tol, atol=tol)
    acc = np.ones_like(W)
    dxT = np.full_like(xT, 7.0)
    scratch = (np.empty((xT.shape[0] + 2, B), dtype), np.empty(B, dtype)) if unit == "nmu" else ()
    backward(xT, dT, B, W, acc, dxT, need_dx, *scratch)
    np.testing.assert_allclose(acc, 1.0 + grads["W"], rtol=tol, atol=tol)
    np.testing.assert_allclose(dxT, dxT_ref if need_dx else 7.0, rtol=tol, atol=tol)
    check_regularizer_block(unit, dtype)


def check_bad_input(kernel: str) -> None:
    """A kernel with gates (iNALU, NPU, RealNPU) refuses a wrong dtype, a non-2-d ``x``, weights and gate of
    the wrong shape and a ``dy`` of the wrong dtype or shape, before the compiled loops (which check no bounds)
    see them."""
    nb = nn.get_backend("numba")
    rng = np.random.default_rng(0)
    fwd, bwd = nb.kernel(kernel + "_forward"), nb.kernel(kernel + "_backward")
    params = make_params(kernel, 2, 3, rng, np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        fwd(params, np.ones((4, 2), np.int64))
    with pytest.raises(TypeError, match="must be a numpy.ndarray of dtype float64 like x"):
        fwd(params, np.ones((4, 2), np.float64))
    with pytest.raises(TypeError, match="2-d"):
        fwd(params, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="must have shape"):
        fwd(params, np.ones((4, 5), np.float32))  # 5 inputs, weights for 2
    bad = dict(params, g=params["g"][:1])
    with pytest.raises(ValueError, match="g must have shape"):
        fwd(bad, np.ones((4, 2), np.float32))
    y, cache = fwd(params, np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="dy"):
        bwd(params, cache, np.ones((4, 3), np.float64))
    with pytest.raises(ValueError, match="dy must have shape"):
        bwd(params, cache, np.ones((4, 2), np.float32))


def unit_tests(cases: list[str], paths: tuple[str, ...], *, strict: bool = False, max_examples: int = 12) -> Any:
    """The tests that every unit's test module runs on its unit cases, as test functions for the module to
    bind to its own names (pytest collects them there):

    - ``test_kernel_equals_reference_on_backend`` (``kernel_backend`` fixture: every compiled backend),
    - ``test_kernel_matches_reference`` (numba, random ragged shapes, on each of ``paths``),
    - ``test_exact_zeros_in_x`` (numba, :func:`check_exact_zeros` on each of ``paths``).

    ``strict``: no NumPy floating-point warning may come from the numba kernels.
    """
    from hypothesis import given, settings

    @pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
    @pytest.mark.parametrize("unit", cases)
    def test_kernel_equals_reference_on_backend(kernel_backend: str, unit: str, dtype: Any) -> None:
        check_backend(unit, kernel_backend, dtype)

    @pytest.mark.parametrize("path", paths)
    @pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
    @pytest.mark.parametrize("unit", cases)
    @settings(max_examples=max_examples)
    @given(shape=shapes())
    def test_kernel_matches_reference(unit: str, dtype: Any, path: str, shape: tuple[int, int, int, int]) -> None:
        check_random(unit, dtype, path, shape, strict=strict)

    @pytest.mark.parametrize("path", paths)
    @pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
    @pytest.mark.parametrize("unit", cases)
    def test_exact_zeros_in_x(unit: str, dtype: Any, path: str) -> None:
        check_exact_zeros(unit, dtype, path, strict=strict)

    return test_kernel_equals_reference_on_backend, test_kernel_matches_reference, test_exact_zeros_in_x
