"""A second backend for the tests of the backend switch: the NumPy reference under the name ``fake``."""

from nalu_np.reference import *  # noqa: F401,F403  (the kernels, under their names)
from nalu_np.reference import array_type, xp  # noqa: F401

name = "fake"
