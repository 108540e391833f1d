"""Hand-written kernels, installed as ``nalu_np.kernels``.

Each module exports the functions of :mod:`nalu_np.reference` under the same names and signatures
(``nac_forward``, ``nalu_backward``, ...) plus ``name``, ``xp`` and ``array_type``; the backend registry in
:mod:`nalu_np.backends` imports a module the first time its backend is asked for.
"""
