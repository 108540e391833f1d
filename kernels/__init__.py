"""Hand-written kernels, installed as ``nalu_np.kernels``.

Each backend package exports the functions of :mod:`nalu_np.reference` under the same names and signatures
(``nac_forward``, ``nalu_backward``, ...) plus ``name``, ``xp`` and ``array_type``; the backend registry in
:mod:`nalu_np.backends` imports it the first time its backend is asked for.  The packages have the same module
names: ``_common.py`` (checks, plans, launches, shared blocks), ``nac.py`` (NAC, NACMul), ``nalu.py``,
``nau.py``, ``nmu.py``, ``inalu.py`` and ``npu.py`` (NPU, RealNPU); the package's ``__init__`` is the backend
(its name, array module and kernel table).

* ``numba/`` (backend ``numba``): Numba CPU kernels; each unit module holds the block functions that its layer
  kernels and the compiled training step (``numba/train.py``, with ``numba/rng.py``) share.
* ``cupy/`` (backend ``cupy``) and ``numba_cuda/`` (backend ``numba-cuda``): the GPU backends, with
  ``_nac_family.py`` (what NAC, NACMul and NALU share); the CuPy CUDA sources are ``.cu`` files.
* ``cuda_common.py``: what the two GPU backends share (launch settings, the CUDA array type, argument checks,
  the units' compile-time codes).

Kernels take arrays and scalars; they never import the layers, optimizers, tasks or training code.
"""
