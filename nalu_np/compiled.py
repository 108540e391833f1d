"""Temporary shim until the numba package lands."""
from .kernels.numba_train import *  # noqa
from .kernels.numba_train import LAYER_KINDS, SimpleFunction, draw_uniforms, predict, predictor, rng_state, supports, train, train_steps, uniforms  # noqa
