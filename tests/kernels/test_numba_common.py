"""The numba backend as a package: its registry entry, the layout of its modules, and the shared optimizer
blocks of :mod:`nalu_np.kernels.numba._common` that the compiled training step uses."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from support.kernels import DTYPE_IDS, DTYPES, UNITS  # noqa: E402

import nalu_np as nn  # noqa: E402
from nalu_np import reference as ref  # noqa: E402
from nalu_np.kernels import numba as nb  # noqa: E402
from nalu_np.kernels.numba import _common  # noqa: E402

PACKAGE = Path(nb.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("unit", sorted({kernel for kernel, _, _ in UNITS.values()}))
def test_registered_backend(unit: str) -> None:
    assert "numba" in nn.available_backends()
    be = nn.get_backend("numba")
    assert be.name == "numba" and be.xp is np and be.array_type is np.ndarray and be.module is nb
    for half in ("forward", "backward"):
        assert f"{unit}_{half}" in nb.__all__
        assert callable(be.kernel(f"{unit}_{half}"))


@pytest.mark.parametrize("module", MODULES)
def test_each_module_can_be_imported_first(module: str) -> None:
    """No import cycle: every module of the package imports on its own in a fresh interpreter."""
    code = f"import nalu_np.kernels.numba.{module} as m, nalu_np.kernels.numba as k; assert k.npu_forward"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module", MODULES + ["__init__"])
def test_module_layout(module: str) -> None:
    """Under 700 lines; no module ``__getattr__``; imports between the modules name no private helper; nothing
    imports the layers, optimizers, tasks or training code (kernels take arrays and scalars)."""
    source = (PACKAGE / f"{module}.py").read_text()
    assert source.count("\n") <= 700
    tree = ast.parse(source)
    assert not any(isinstance(node, ast.FunctionDef) and node.name == "__getattr__" for node in tree.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level <= 1 and not (node.module or "").startswith("nalu_np"), ast.dump(node)
            if node.level == 1:
                assert not any(a.name.startswith("_") and node.module for a in node.names), ast.dump(node)
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("nalu_np") for a in node.names), ast.dump(node)


def test_tuning_knobs_are_read_at_call_time() -> None:
    """Setting a knob in ``_common`` changes the next call's plan (the tests force every code path so)."""
    saved = _common.MAX_BLOCK_ROWS
    try:
        _common.MAX_BLOCK_ROWS = 8
        assert _common.plan(1000, 2, 1, 4)[0] == 8
    finally:
        _common.MAX_BLOCK_ROWS = saved
    assert _common.plan(1000, 2, 1, 4)[0] == saved


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_clip_is_the_reference_projection(dtype: Any) -> None:
    q = np.array([-2.0, -1.0, -0.3, 0.0, 0.7, 1.0, 3.0, np.inf, -np.inf], dtype)
    for lo, hi in ((-1.0, 1.0), (0.0, 1.0)):
        got = np.array([_common.clip(v, dtype(lo), dtype(hi)) for v in q], dtype)
        np.testing.assert_array_equal(got, ref.clip_projection(lo, hi)(q))
    assert np.isnan(_common.clip(dtype(np.nan), dtype(0.0), dtype(1.0)))  # a NaN stays NaN


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("overflow", nn.optim.ADAM_OVERFLOW)
def test_adam_step_is_nalu_np_optim_adam(dtype: Any, overflow: str) -> None:
    """Three steps of the block on a flat vector equal :class:`nalu_np.optim.Adam` with the clip projection,
    gradients whose squares overflow included."""
    rng = np.random.default_rng(2)
    p = rng.uniform(-1.2, 1.2, 40).astype(dtype)
    lo, hi = np.full(40, -1.0, dtype), np.full(40, 1.0, dtype)
    lo[20:], hi[20:] = -np.inf, np.inf  # "G" is not projected
    params = {"W": p[:20].copy(), "G": p[20:].copy()}
    opt = nn.optim.Adam(params, lr=0.05, projections={"W": ref.clip_projection(-1.0, 1.0)}, overflow=overflow)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, 5):
        g = rng.normal(size=40).astype(dtype)
        if t == 2:  # squares that overflow the dtype: clipped, or v = inf (frozen) and NaN from inf, as optim.Adam
            g[[3, 25, 30]] = np.finfo(dtype).max / 4 * np.array([1, -1, np.inf])
        _common.adam_step(p, g, m, v, t, 0.05, 0.9, 0.999, 1e-8, overflow == "propagate", lo, hi)
        opt.step({"W": g[:20], "G": g[20:]})
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(p, np.concatenate([params["W"], params["G"]]), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(m, np.concatenate([opt.state["exp_avg"][k] for k in ("W", "G")]), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(v, np.concatenate([opt.state["exp_avg_sq"][k] for k in ("W", "G")]), rtol=rtol)
    assert np.isnan(p[30]) == (overflow == "propagate")  # from an infinite gradient
    assert np.isinf(v[[3, 25]]).all() == (overflow == "propagate")
    assert np.nanmax(np.abs(p[:20])) <= 1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("make", [lambda p, pr: nn.optim.SGD(p, lr=0.05, momentum=0.9, projections=pr),
                                  lambda p, pr: nn.optim.SGD(p, lr=0.05, projections=pr),
                                  lambda p, pr: nn.optim.RMSProp(p, lr=0.05, alpha=0.9, eps=1e-4, projections=pr)],
                         ids=["sgd-momentum", "sgd", "rmsprop"])
def test_sgd_and_rmsprop_steps_are_nalu_np_optim(make: Any, dtype: Any) -> None:
    """Four steps of ``sgd_step`` / ``rmsprop_step`` on a flat vector equal :class:`nalu_np.optim.SGD` /
    ``RMSProp`` with the clip projection: parameters and state (SGD without momentum leaves its buffer 0)."""
    rng = np.random.default_rng(3)
    p = rng.uniform(-1.2, 1.2, 40).astype(dtype)
    lo, hi = np.full(40, -1.0, dtype), np.full(40, 1.0, dtype)
    lo[20:], hi[20:] = -np.inf, np.inf  # "G" is not projected
    params = {"W": p[:20].copy(), "G": p[20:].copy()}
    opt = make(params, {"W": ref.clip_projection(-1.0, 1.0)})
    slot = np.zeros_like(p)
    for t in range(1, 5):
        g = rng.normal(size=40).astype(dtype)
        if isinstance(opt, nn.optim.SGD):
            _common.sgd_step(p, g, slot, t, opt.lr, opt.momentum, lo, hi)
        else:
            _common.rmsprop_step(p, g, slot, opt.lr, opt.alpha, opt.eps, lo, hi)
        opt.step({"W": g[:20], "G": g[20:]})
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(p, np.concatenate([params["W"], params["G"]]), rtol=rtol, atol=rtol)
    (name,) = opt.slots
    np.testing.assert_allclose(slot, np.concatenate([opt.state[name][k] for k in ("W", "G")]), rtol=rtol, atol=rtol)
    assert np.abs(p[:20]).max() <= 1.0 and np.abs(p[20:]).max() > 1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("clip_value,clip_norm", [(0.5, None), (None, 1.0), (0.5, 1.0), (None, 1e6)])
@pytest.mark.parametrize("special", [None, np.nan, np.inf])
def test_clip_gradient_is_the_optimizers_clipping(clip_value: Any, clip_norm: Any, special: Any,
                                                  dtype: Any) -> None:
    """``clip_gradient`` on the flat gradient of two parameters is :class:`nalu_np.optim.Optimizer`'s clipping:
    elementwise first, then the global norm over both (a limit not reached leaves the gradient alone; a NaN
    passes through, and a NaN norm scales nothing; an inf gives an inf norm, so a scale of 0)."""
    g = np.random.default_rng(4).normal(0.0, 2.0, 30).astype(dtype)
    if special is not None:
        g[7] = special
    opt = nn.optim.SGD({"W": np.zeros(12, dtype), "G": np.zeros(18, dtype)}, lr=1.0, clip_value=clip_value,
                       clip_norm=clip_norm)
    with np.errstate(invalid="ignore"):  # inf * 0
        want = opt._clipped({"W": g[:12], "G": g[12:]})
    got = g.copy()
    _common.clip_gradient(got, np.inf if clip_value is None else clip_value, np.inf if clip_norm is None else clip_norm)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got, np.concatenate([want["W"], want["G"]]), rtol=rtol, atol=0)
    if clip_norm == 1e6 and clip_value is None and special != np.inf:  # under the limit, or a NaN norm
        np.testing.assert_array_equal(got, g)


def test_cache_stamp_is_the_hash_of_every_kernel_source(tmp_path: Path) -> None:
    """Numba's stamp is a function's own file; ours is the whole package, so that editing a block function
    recompiles its callers in other files too (``train.run`` calling ``nmu_block_backward``)."""
    from nalu_np.kernels.numba import _math, nmu, rng, train

    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(f"# {name}\n")
    (tmp_path / "notes.txt").write_text("not a source\n")
    before = _math.sources_stamp(str(tmp_path))
    (tmp_path / "notes.txt").write_text("still not a source\n")
    assert _math.sources_stamp(str(tmp_path)) == before
    (tmp_path / "b.py").write_text("# b.py, edited\n")
    assert _math.sources_stamp(str(tmp_path)) != before
    assert _math.STAMP == _math.sources_stamp(str(PACKAGE))
    for kernel in (train.run, rng.fill_uniform, nmu.nmu_block_backward):
        cache = kernel._cache
        assert isinstance(cache, _math._PackageCache) and cache._cache_file._source_stamp == _math.STAMP


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("I,n,nb,O", [(100, 128, 128, 2), (100, 150, 137, 3), (2, 128, 128, 1), (0, 64, 64, 2),
                                      (7, 40, 33, 2), (5, 100, 100, 2), (5, 100, 70, 2), (5, 100, 17, 1),
                                      (3, 300, 257, 1)])
def test_matmul_tiles_sum_as_the_plain_loop(dtype: Any, I: int, n: int, nb: int, O: int) -> None:
    """The register tiles give the bits of the plain loop ``0 + in_0 w_0 + in_1 w_1 ...`` compiled with the same
    flags (each tile size, the overlapping last tile, the columns past ``nb`` untouched), for any strides of
    ``W`` and, through the plain loop, of ``inT``."""
    import numba

    @numba.njit(**_common.EW)
    def plain(inT, nb, W, outT):
        for o in range(W.shape[1]):
            for r in range(nb):
                outT[o, r] = 0.0
            for i in range(W.shape[0]):
                for r in range(nb):
                    outT[o, r] += inT[i, r] * W[i, o]

    rng = np.random.default_rng(I + n + nb)
    x = rng.standard_normal((I, n)).astype(dtype)
    W = rng.standard_normal((I, O)).astype(dtype)
    expect = np.full((O, n), 7.0, dtype)
    plain(x, nb, W, expect)
    for xin, Win in ((x, W), (np.asfortranarray(x), W), (x, np.asfortranarray(W))):
        out = np.full((O, n), 7.0, dtype)
        _common.matmul(xin, nb, Win, out)
        np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("I,n,nb,O", [(100, 128, 128, 2), (7, 40, 33, 3), (4, 64, 64, 2), (5, 100, 17, 1),
                                      (9, 200, 130, 5), (3, 16, 16, 4), (2, 30, 0, 2)])
def test_grad_is_the_block_product(dtype: Any, I: int, n: int, nb: int, O: int) -> None:
    """``grad`` adds ``inT[:, :nb] @ dT[:, :nb].T`` into ``acc`` for any number of inputs and outputs: the blocks
    of 4 inputs by 2 outputs, the rows and the output left over, the columns past ``nb`` unread."""
    rng = np.random.default_rng(I * O + nb)
    x = rng.standard_normal((I, n)).astype(dtype)
    d = rng.standard_normal((O, n)).astype(dtype)
    x[:, nb:] = np.nan
    acc = rng.standard_normal((I, O)).astype(dtype)
    expect = acc.astype(np.float64) + x[:, :nb].astype(np.float64) @ d[:, :nb].T.astype(np.float64)
    _common.grad(x, d, nb, acc)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(acc, expect, rtol=tol, atol=tol * (1 + np.sqrt(nb)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("s,v", [(25, 13), (3, 1), (9, 4)])
def test_targets_sum_in_order_then_round_once(dtype: Any, s: int, v: int) -> None:
    """The compiled step's targets: ``a = x[o] + x[o+1] + ...`` added in that order in float64 (four rows a pass
    and the rows left over), ``c`` likewise from ``o + v``, then ``a op c`` rounded once, for every op."""
    from nalu_np.kernels.numba import train

    rng = np.random.default_rng(s)
    I, B, o = 40, 37, 2
    x = (rng.uniform(-3.0, 7.0, (I, B)) * np.exp(rng.uniform(-20.0, 20.0, (I, B)))).astype(dtype)
    a = [sum((float(x[o + i, b]) for i in range(s)), 0.0) for b in range(B)]  # Python floats: float64, in order
    c = [sum((float(x[o + v + i, b]) for i in range(s)), 0.0) for b in range(B)]
    ops = (lambda p, q: p + q, lambda p, q: p - q, lambda p, q: p * q, lambda p, q: p / q, lambda p, q: p * p,
           lambda p, q: np.sqrt(p))
    with np.errstate(invalid="ignore"):
        for op, f in enumerate(ops):
            t = np.empty(B, dtype)
            train._targets(x, op, o, s, v, np.empty(B), np.empty(B), t)
            np.testing.assert_array_equal(t, np.array([f(p, q) for p, q in zip(a, c)]).astype(dtype))
