"""The building blocks of the reference and nalu_np.regularizers: the stable sigmoid, the slope of the log
path, leave-one-out products, the clip projection and the regularizer schedule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

from nalu_np import reference as ref


@given(z=st.floats(allow_nan=False, allow_subnormal=False))
def test_sigmoid_is_stable(z):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = float(ref.sigmoid(np.array(z)))
    assert 0.0 <= s <= 1.0
    if abs(z) < 30:
        assert s == pytest.approx(1.0 / (1.0 + np.exp(-z)), rel=1e-14)
    assert (s > 0.5) <= (z > 0) and (s < 0.5) <= (z < 0)  # monotone about 0.5


def test_sigmoid_extremes():
    z = np.array([-np.inf, -1000.0, 0.0, 1000.0, np.inf, np.nan])
    s = ref.sigmoid(z)
    np.testing.assert_array_equal(s[:5], [0.0, 0.0, 0.5, 1.0, 1.0])
    assert np.isnan(s[5])


def test_log_path_slope_at_zero_is_one_over_eps():
    # d/dx log(|x| + eps) just right of 0 is 1/eps; at 0 itself the reference takes 0 (between -1/eps and 1/eps)
    eps = 1e-6
    x = np.array([[0.0], [1e-300]])
    g = ref.log_input_grad(x, eps)
    assert g[0, 0] == 0.0 and g[1, 0] == pytest.approx(1 / eps)


def test_leave_one_out_products_match_explicit_products():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(3, 5, 2))
    f[0, 2, 1] = 0.0
    loo = ref.leave_one_out_products(f)
    for i in range(5):
        np.testing.assert_allclose(loo[:, i], np.prod(np.delete(f, i, axis=1), axis=1), rtol=1e-12)


def test_leave_one_out_products_single_input_is_one():
    f = np.full((2, 1, 3), 7.0)
    np.testing.assert_array_equal(ref.leave_one_out_products(f), np.ones((2, 1, 3)))


def test_clip_projection():
    p = ref.clip_projection(-1, 1)
    W = np.array([[-2.0, 0.5], [1.5, -1.0]], dtype=np.float32)
    out = p(W)
    np.testing.assert_array_equal(out, [[-1.0, 0.5], [1.0, -1.0]])
    assert out.dtype == np.float32
    assert W[0, 0] == -2.0  # pure: the input is not changed
    with pytest.raises(ValueError, match="lo <= hi"):
        ref.clip_projection(1, 0)


def test_linear_schedule():
    s = ref.linear_schedule
    assert s(0, 10.0, 100, 200) == 0.0
    assert s(100, 10.0, 100, 200) == 0.0
    assert s(150, 10.0, 100, 200) == pytest.approx(5.0)
    assert s(200, 10.0, 100, 200) == 10.0
    assert s(10_000, 10.0, 100, 200) == 10.0
    assert s(99, 2.0, 100, 100) == 0.0 and s(100, 2.0, 100, 100) == 2.0
    with pytest.raises(ValueError, match="start <= end"):
        s(0, 1.0, 200, 100)
