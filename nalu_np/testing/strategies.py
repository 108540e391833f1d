"""Hypothesis strategies for property tests of arithmetic units (yours too).

Magnitudes are built as ``sign * [margin, hi]`` so that inputs stay off the kinks of ``|x|``, ``min`` and
``clip`` unless a test asks for near-kink values; no subnormals anywhere.

>>> from hypothesis import given
>>> from nalu_np.testing import strategies as st_nalu
>>> @given(st_nalu.layer_inputs())
... def test_shapes(case):
...     batch, in_features, out_features, x, seed = case
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "nalu_np.testing.strategies needs hypothesis: pip install 'nalu-np[test]'"
    ) from err

__all__ = ["magnitudes", "off_kink", "off_kink_arrays", "near_kink_arrays", "shapes", "layer_inputs", "seeds"]


def magnitudes(margin: float = 0.1, hi: float = 2.0) -> st.SearchStrategy[float]:
    """Floats in ``[margin, hi]``, no NaN, no infinity, no subnormals."""
    if not 0 < margin <= hi:
        raise ValueError(f"need 0 < margin <= hi, got margin={margin}, hi={hi}")
    return st.floats(min_value=margin, max_value=hi, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False)


def off_kink(margin: float = 0.1, hi: float = 2.0, signed: bool = True) -> st.SearchStrategy[float]:
    """``sign * m`` with ``m`` in ``[margin, hi]``: at least ``margin`` away from the kink at 0."""
    mags = magnitudes(margin, hi)
    if not signed:
        return mags
    return st.tuples(st.sampled_from((-1.0, 1.0)), mags).map(lambda t: t[0] * t[1])


def off_kink_arrays(shape: Any, dtype: Any = np.float64, margin: float = 0.1, hi: float = 2.0,
                    signed: bool = True) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``shape`` whose entries are :func:`off_kink` values, cast to ``dtype``."""
    return hnp.arrays(np.float64, shape, elements=off_kink(margin, hi, signed)).map(
        lambda a: a.astype(dtype))


def near_kink_arrays(shape: Any, dtype: Any = np.float64, scale: float = 1e-3) -> st.SearchStrategy[np.ndarray]:
    """Arrays with entries at or within ``scale`` of 0 (exact zeros included), for tests about the kink."""
    elem = st.one_of(st.just(0.0), off_kink(scale * 1e-3, scale))
    return hnp.arrays(np.float64, shape, elements=elem).map(lambda a: a.astype(dtype))


def shapes(max_batch: int = 6, max_in: int = 5, max_out: int = 4) -> st.SearchStrategy[tuple[int, int, int]]:
    """``(batch, in_features, out_features)``, each from 1 up."""
    return st.tuples(st.integers(1, max_batch), st.integers(1, max_in), st.integers(1, max_out))


def seeds() -> st.SearchStrategy[int]:
    """Seeds for ``numpy.random.default_rng`` (parameter initialisation, checker directions)."""
    return st.integers(0, 2**32 - 1)


@st.composite
def layer_inputs(draw: Any, max_batch: int = 6, max_in: int = 5, max_out: int = 4, dtype: Any = np.float64,
                 margin: float = 0.1, hi: float = 2.0, signed: bool = True) -> tuple[int, int, int, np.ndarray, int]:
    """``(batch, in_features, out_features, x, seed)`` with ``x`` of shape (batch, in_features) off the kinks."""
    batch, i, o = draw(shapes(max_batch, max_in, max_out))
    x = draw(off_kink_arrays((batch, i), dtype, margin, hi, signed))
    return batch, i, o, x, draw(seeds())
