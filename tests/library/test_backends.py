"""The backend switch: registry, precedence, thread isolation, lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import nalu_np as nn

# a second backend for the tests that need one: the reference under another name (tests/support/fake_backend.py)
if "fake" not in nn.backend_names():
    nn.register_backend("fake", "support.fake_backend")


@pytest.fixture(autouse=True)
def clean_default(monkeypatch):
    monkeypatch.delenv("NALU_NP_BACKEND", raising=False)
    nn.set_backend(None)
    yield
    nn.set_backend(None)


def test_default_is_numpy():
    assert nn.get_backend().name == "numpy"
    assert nn.get_backend().xp is np
    assert "numpy" in nn.available_backends()


def test_precedence(monkeypatch):
    monkeypatch.setenv("NALU_NP_BACKEND", "fake")
    assert nn.get_backend().name == "fake"  # env var over numpy
    nn.set_backend("numpy")
    assert nn.get_backend().name == "numpy"  # set_backend over env var
    nn.set_backend("fake")
    with nn.use_backend("numpy"):
        assert nn.get_backend().name == "numpy"  # use_backend over set_backend
        assert nn.get_backend("fake").name == "fake"  # argument over everything
        with nn.use_backend("fake"):
            assert nn.get_backend().name == "fake"
        assert nn.get_backend().name == "numpy"  # restored on exit
    assert nn.get_backend().name == "fake"


def test_layer_records_the_backend_it_ran_on():
    layer = nn.NALU(2, 1, rng=0)
    x = np.ones((3, 2), np.float32)
    with nn.use_backend("fake"):
        y, cache = layer.forward(x)
    assert cache.backend.name == "fake"
    y2, cache2 = layer.forward(x, backend="fake")
    assert cache2.backend.name == "fake"
    np.testing.assert_array_equal(y, y2)
    layer.backward(np.ones_like(y), cache)  # runs on the backend that made the cache


def test_use_backend_restores_after_exception():
    with pytest.raises(RuntimeError):
        with nn.use_backend("fake"):
            raise RuntimeError
    assert nn.get_backend().name == "numpy"


def test_threads_do_not_leak():
    nn.set_backend("numpy")
    inside = threading.Barrier(2)
    seen = {}

    def scoped():
        with nn.use_backend("fake"):
            inside.wait()  # the other thread looks while this one is inside use_backend
            seen["scoped"] = nn.get_backend().name
            inside.wait()

    def plain():
        inside.wait()
        seen["plain"] = nn.get_backend().name
        inside.wait()

    threads = [threading.Thread(target=scoped), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"scoped": "fake", "plain": "numpy"}
    assert nn.get_backend().name == "numpy"


def test_many_threads_each_see_their_own():
    names = ["fake", "numpy"] * 8
    errors = []
    start = threading.Barrier(len(names))

    def worker(name):
        start.wait()
        for _ in range(200):
            with nn.use_backend(name):
                if nn.get_backend().name != name:
                    errors.append(name)
            if nn.get_backend().name != "numpy":
                errors.append("leak")

    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_unknown_env_var(monkeypatch):
    monkeypatch.setenv("NALU_NP_BACKEND", "torch")
    with pytest.raises(ValueError, match="NALU_NP_BACKEND='torch': unknown backend"):
        nn.get_backend()


def test_missing_dependency_names_the_extra():
    nn.register_backend("needs-missing", "nalu_np.reference", needs=("no_such_module_xyz",),
                        install="pip install 'nalu-np[xyz]'") if "needs-missing" not in nn.backend_names() else None
    with pytest.raises(nn.BackendUnavailableError, match=r"needs the module 'no_such_module_xyz'.*pip install 'nalu-np\[xyz\]'"):
        nn.get_backend("needs-missing")
    assert "needs-missing" not in nn.available_backends()
    with pytest.raises(nn.BackendUnavailableError):
        nn.set_backend("needs-missing")
    assert nn.get_backend().name == "numpy"  # a failed set_backend changes nothing


def test_missing_kernel_is_not_implemented():
    with pytest.raises(NotImplementedError, match="backend 'fake' does not implement 'nothing_forward'"):
        nn.get_backend("fake").kernel("nothing_forward")


def test_register_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        nn.register_backend("numpy", "nalu_np.reference")


def test_import_loads_numpy_only():
    code = (
        "import sys, nalu_np\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'cupy', 'torch', 'jax', 'hypothesis', 'matplotlib'))\n"
        "assert not bad, bad\n"
        "print('ok', nalu_np.__version__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NALU_NP_BACKEND": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ")


def test_kernels_are_a_subpackage():
    import nalu_np.kernels

    assert nalu_np.kernels.__name__ == "nalu_np.kernels"
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('kernels') is not None)"
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True)
    assert out.returncode == 0, "installing nalu-np must not claim the top-level name 'kernels'"
