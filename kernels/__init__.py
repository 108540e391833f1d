"""Hand-written kernels, installed as ``nalu_np.kernels``.

Each backend module exports the functions of :mod:`nalu_np.reference` under the same names and signatures
(``nac_forward``, ``nalu_backward``, ...) plus ``name``, ``xp`` and ``array_type``; the backend registry in
:mod:`nalu_np.backends` imports a module the first time its backend is asked for.

* ``cupy/`` (backend ``cupy``) and ``numba_cuda/`` (backend ``numba-cuda``): one package per GPU backend with
  the same module names, ``_common.py`` (checks, device arrays, launches), ``_nac_family.py`` (what NAC, NACMul
  and NALU share), ``nac.py`` (NAC, NACMul), ``nalu.py``, ``nau.py``, ``nmu.py``, ``inalu.py`` and ``npu.py``
  (NPU, RealNPU); the package's ``__init__`` is the backend (its name, array module and kernel table).
* ``cuda_common.py``: what the two GPU backends share (launch settings, the CUDA array type, argument checks,
  the units' compile-time codes).
* ``numba_cpu.py`` and the modules it builds on: the ``numba`` backend.
"""
