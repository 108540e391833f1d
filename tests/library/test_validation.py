"""Bad input gives a clear exception that names the problem."""

from __future__ import annotations

import numpy as np
import pytest

import nalu_np as nn


@pytest.fixture
def layer():
    return nn.NALU(3, 2, rng=0)  # float32


def test_wrong_ndim(layer):
    with pytest.raises(ValueError, match="2 dimensions"):
        layer.forward(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="2 dimensions"):
        layer.forward(np.ones((1, 2, 3), np.float32))


def test_wrong_in_features(layer):
    with pytest.raises(ValueError, match=r"shape \(B, 3\).*\(4, 5\)"):
        layer.forward(np.ones((4, 5), np.float32))


def test_empty_batch(layer):
    with pytest.raises(ValueError, match="empty"):
        layer.forward(np.ones((0, 3), np.float32))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.complex64, np.complex128, np.float16])
def test_non_float_or_other_precision_dtype(layer, dtype):
    with pytest.raises(TypeError, match="dtype"):
        layer.forward(np.ones((4, 3), dtype))


def test_mismatched_dtype(layer):
    with pytest.raises(TypeError, match="float64 but the layer computes in float32"):
        layer.forward(np.ones((4, 3), np.float64))


def test_not_an_array(layer):
    with pytest.raises(TypeError, match="numpy.ndarray"):
        layer.forward([[1.0, 2.0, 3.0]])


def test_backward_checks_dy_and_cache(layer):
    y, cache = layer.forward(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \(4, 2\)"):
        layer.backward(np.ones((4, 3), np.float32), cache)
    with pytest.raises(TypeError, match="dy has dtype float64"):
        layer.backward(np.ones((4, 2)), cache)
    other = nn.NALU(3, 2, rng=1)
    with pytest.raises(ValueError, match="cache does not come from this layer"):
        other.backward(np.ones((4, 2), np.float32), cache)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="in_features must be >= 1"):
        nn.NAC(0, 1)
    with pytest.raises(TypeError, match="out_features must be an integer"):
        nn.NAC(2, 1.5)
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.NAC(2, 1, dtype="int32")
    with pytest.raises(ValueError, match="unknown init preset 'xavier'"):
        nn.NALU(2, 1, init="xavier")
    with pytest.raises(ValueError, match="unknown init preset"):
        nn.NALU.preset("seed-999", 2, 1)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        nn.NACMul(2, 1, eps=0.0)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        nn.NALU(2, 1, eps=float("nan"))
    with pytest.raises(TypeError, match="rng must be"):
        nn.NAC(2, 1, rng="seed")


def test_unknown_backend(layer):
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'; known backends: numpy, numba"):
        layer.forward(np.ones((4, 3), np.float32), backend="tensorflow")
    with pytest.raises(ValueError, match="unknown backend"):
        nn.set_backend("jax")
    with pytest.raises(TypeError, match="backend name must be a str"):
        nn.get_backend(3)


def test_unavailable_backend_names_the_install():
    pytest.importorskip  # cupy cannot be imported on a machine without CUDA
    try:
        import cupy  # noqa: F401
    except Exception:
        with pytest.raises(nn.BackendUnavailableError, match=r"pip install 'nalu-np\[cuda\]'"):
            nn.get_backend("cupy")
    else:  # pragma: no cover - GPU machines
        pytest.skip("cupy is importable here")


def test_sequential_checks_sizes():
    with pytest.raises(ValueError, match="gives 2 features but the next NAC takes 3"):
        nn.Sequential([nn.NAC(4, 2), nn.NAC(3, 1)])
    with pytest.raises(ValueError, match="at least one layer"):
        nn.Sequential([])
