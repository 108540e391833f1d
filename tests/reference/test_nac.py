"""NAC and NACMul (nalu_np.reference.nac): saturated weights add, subtract, multiply and divide; overflow and
infinite input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nalu_np as nn


def _saturated(unit, i, o, **kwargs):
    """A NAC or NACMul whose weights are all tanh(30) sigma(40) = 1 (float64)."""
    layer = unit(i, o, dtype="float64", **kwargs)
    layer.params["W_hat"][:] = 30.0
    layer.params["M_hat"][:] = 40.0
    return layer


def test_nac_saturated_weights_add_and_subtract():
    layer = _saturated(nn.NAC, 2, 2)
    layer.params["W_hat"][:] = [[30.0, 30.0], [30.0, -30.0]]
    x = np.array([[3.0, 4.0], [-1.5, 10.0]])
    np.testing.assert_allclose(layer(x), [[7.0, -1.0], [8.5, -11.5]], rtol=1e-15)


def test_nac_infinite_input_gives_infinite_output():
    assert _saturated(nn.NAC, 1, 1)(np.array([[np.inf]]))[0, 0] == np.inf


def test_nacmul_saturated_weights_multiply_and_divide():
    layer = _saturated(nn.NACMul, 2, 2, eps=1e-12)
    layer.params["W_hat"][:] = [[30.0, 30.0], [30.0, -30.0]]
    x = np.array([[3.0, 4.0], [-1.5, 10.0]])
    np.testing.assert_allclose(layer(x), [[12.0, 0.75], [15.0, 0.15]], rtol=1e-10)


def test_nacmul_overflow_is_inf_without_warning():
    layer = _saturated(nn.NACMul, 2, 1)
    x = np.array([[1e200, 1e200], [2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, cache = layer.forward(x)
    assert y[0, 0] == np.inf and y[1, 0] == pytest.approx(6.0)
