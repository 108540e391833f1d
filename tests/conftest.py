"""Test configuration: hypothesis profiles, the opt-in markers ``gpu`` and ``slow``, and the ``backend`` fixture.

Profiles (``HYPOTHESIS_PROFILE`` or ``--hypothesis-profile``): ``ci`` is derandomized (the same examples every
run) and is the default when ``CI`` is set; ``dev`` draws fresh examples.  Both have ``deadline=None``
because JIT compilation makes first calls slow.

``kernel_backend`` (a backend name) runs a test once per compiled backend: ``numba`` where it imports, and ``cupy``
and ``numba-cuda`` on a device (marked ``gpu``, so only with ``--gpu``).  The GPU kernels are also tested
without a device, under the Numba-CUDA simulator and the host emulation of the CuPy sources, in subprocesses
(``tests/gpu``), since the simulator must be switched on before Numba is first imported.  ``kernel_path`` runs
a GPU test once on the fused per-row path and once on the general path of the NAC family's kernels, for every
layer size (the subprocess scripts in ``tests/support`` see this file too).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=40, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

#: compiled backends the ``kernel_backend`` fixture runs, with the module each needs and whether it needs a device
KERNEL_BACKENDS = (("numba", "numba", False), ("cupy", "cupy", True), ("numba-cuda", "numba", True))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gpu", action="store_true", help="run tests marked gpu (needs a CUDA device)")
    parser.addoption("--slow", action="store_true", help="run tests marked slow (long experiments)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kernel_backend" in metafunc.fixturenames:
        params = [pytest.param(name, id=name, marks=[pytest.mark.gpu] if device else [])
                  for name, _, device in KERNEL_BACKENDS]
        metafunc.parametrize("kernel_backend", params, indirect=True)


@pytest.fixture
def kernel_backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test; skipped where its module is not installed."""
    name = request.param
    module = next(mod for n, mod, _ in KERNEL_BACKENDS if n == name)
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"backend {name!r} needs {module}, which is not installed")
    return name


@pytest.fixture(params=["row", "general"])
def kernel_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Force the per-row or the general path of the GPU kernels of NAC, NACMul and NALU for every layer size."""
    from nalu_np.kernels.cuda_common import config

    saved = config.row_path_max
    config.row_path_max = 10**6 if request.param == "row" else 0
    yield request.param
    config.row_path_max = saved


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, option in (("gpu", "--gpu"), ("slow", "--slow")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"opt-in: pass {option} to run")
        for item in items:
            if item.get_closest_marker(marker) is not None:  # not `in item.keywords`: tests/gpu is a keyword too
                item.add_marker(skip)
