"""Hand-written kernels, installed as ``nalu_np.kernels``.

Each backend exports the functions of :mod:`nalu_np.reference` under the same names and signatures
(``nac_forward``, ``nalu_backward``, ...) plus ``name``, ``xp`` and ``array_type``; the backend registry in
:mod:`nalu_np.backends` imports it the first time its backend is asked for:

- :mod:`nalu_np.kernels.numba` (package): Numba CPU kernels, one module per unit family, and the compiled
  training step built from the units' block functions;
- :mod:`nalu_np.kernels.cupy_gpu` and :mod:`nalu_np.kernels.numba_cuda` (with ``cupy_units``,
  ``numba_cuda_units``): the GPU backends.

Kernels take arrays and scalars; they never import the layers, optimizers, tasks or training code.
"""
