"""Every Python snippet of README.md runs as written (in order, in one namespace, in a scratch directory)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
#: snippets that need what a plain install may lack, by a word they contain
NEEDS = {'"numba"': "numba", "use_backend": "numba"}


def test_the_readme_has_snippets():
    assert len(BLOCKS) >= 3


@pytest.fixture
def restored_backend():
    """The snippets set the process default backend: put it back for the tests that come after."""
    import nalu_np as nn

    yield
    nn.set_backend(None)


def test_readme_snippets_run(tmp_path, monkeypatch, restored_backend):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    ran = 0
    for block in BLOCKS:
        for mod in {mod for word, mod in NEEDS.items() if word in block}:
            pytest.importorskip(mod)
        code = block.replace("...", "pass")  # `with nn.use_backend("numpy"): ...`
        exec(compile(code, f"README.md snippet {ran}", "exec"), namespace)
        ran += 1
    assert ran == len(BLOCKS)
    assert namespace["result"].steps_done == 22000 and np.isfinite(namespace["loss"])
