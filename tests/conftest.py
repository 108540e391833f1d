"""Test configuration: hypothesis profiles and the opt-in markers ``gpu`` and ``slow``.

Profiles (``HYPOTHESIS_PROFILE`` or ``--hypothesis-profile``): ``ci`` is derandomized (the same examples every
run) and is the default when ``CI`` is set; ``dev`` draws fresh examples.  Both have ``deadline=None``
because JIT compilation makes first calls slow.
"""

from __future__ import annotations

import os

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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gpu", action="store_true", help="run tests marked gpu (needs a CUDA device)")
    parser.addoption("--slow", action="store_true", help="run tests marked slow (long experiments)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, option in (("gpu", "--gpu"), ("slow", "--slow")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"opt-in: pass {option} to run")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
