"""The compiled training step: K steps of a network of 1 to 3 layers on the simple function task (or the
single-module task, its case ``I = 2``, ``a = x[0]``, ``b = x[1]``) in one Numba call.

Small-batch training in Python pays for every step in interpreter overhead (dozens of NumPy calls of a few
microseconds each).  Here a whole run of steps -- build the batch, forward, MSE, backward, optional
regularizer, optional gradient clipping, optimizer step (Adam, SGD or RMSProp), projection -- is one compiled
call, so a step costs what its arithmetic costs.

Each layer is an NAU, an NMU, a NALU with shared weights, a NAC, a NACMul, one of the study's baselines or one
of its variants, an NPU or a RealNPU (the kind codes ``NAU``, ``NMU``, ``NALU``, ``NAC``, ``NACMUL``, ``LINEAR``,
``RELU``, ``RELU6``, ``CLIPPEDNACMUL``, ``SIGMOIDNACMUL``, ``GATEDNAUNMU``, ``NPU``, ``REALNPU``, and
``CLAMPEDNPU``, ``CLAMPEDREALNPU`` for the NPUs with ``clamp_gate``), or a G-NALU (``GNALU``: the NALU on its
parameters scaled by ``ln(phi)``).
The step is composed of the units' block functions
(:func:`~nalu_np.kernels.numba.nau.nau_block_forward`, :func:`~nalu_np.kernels.numba.nmu.nmu_block_backward`,
:func:`~nalu_np.kernels.numba.nalu.nalu_block_forward`, ... -- the same functions the layer kernels call on each
block) applied to the whole batch laid out transposed, (features, batch), and of the optimizer blocks of
:mod:`nalu_np.kernels.numba._common` (the NAU/NMU regularizers,
:func:`~nalu_np.kernels.numba._common.clip_gradient`, :func:`~nalu_np.kernels.numba._common.adam_step`,
``sgd_step``, ``rmsprop_step`` with the projection: :func:`_optimizer_step`; the GatedNAUNMU's
:func:`~nalu_np.kernels.numba.gated.gatednaunmu_regularizer`, the NPUs'
:func:`~nalu_np.kernels.numba.npu.npu_regularizer`), and of the L1 term ``beta(t) sum |theta|`` over all parameters
(the Primer's NPU recipe; :func:`_l1`).

The model arrives packed: its parameters in one flat vector ``theta`` (each layer's parameters one after the
other, in the order of its ``params``, each (I, O) matrix row-major), the optimizer's state (Adam's two
moments, SGD's momentum buffer, RMSProp's mean square) in rows of the same layout, and the projection's bounds
per element in ``lo``, ``hi``.  :mod:`nalu_np.compiled` does the packing.
The batches are ``xlo + span * u[k]`` for given uniforms ``u`` (steps, B, I), or drawn inside the loop by
:mod:`nalu_np.kernels.numba.rng`.

The network is ``L = len(kinds)`` layers (1 to :data:`MAX_LAYERS`), layer ``l`` mapping ``dims[l]`` features to
``dims[l + 1]``, its parameters ``theta[offs[l]:offs[l + 1]]``; the work arrays are tuples with one slot per
layer (:func:`_work`), so one compiled code serves every depth.
"""

from __future__ import annotations

import numpy as np

from ._common import (EW, adam_step, clip_gradient, log_abs, nac_weight_grad_into, nac_weight_into, rmsprop_step,
                      sgd_step)
from ._math import jit as njit
from .dense import dense_block_backward, dense_block_forward
from .gated import gatednaunmu_block_backward, gatednaunmu_block_forward, gatednaunmu_regularizer
from .nac import nacmul_block_backward, nacmul_block_values, sigmoid_weight_grad_into, sigmoid_weight_into
from .gnalu import LN_PHI
from .nalu import nalu_block_backward, nalu_block_forward
from .nau import nau_block_backward, nau_block_forward, nau_regularizer
from .nmu import nmu_block_backward, nmu_block_forward, nmu_regularizer
from .npu import npu_block_backward, npu_block_forward, npu_regularizer
from .rng import fill_uniform

__all__ = ["MAX_LAYERS", "NAU", "NMU", "NALU", "LINEAR", "RELU", "RELU6", "NAC", "NACMUL", "CLIPPEDNACMUL", "SIGMOIDNACMUL",
           "GATEDNAUNMU", "NPU", "REALNPU", "CLAMPEDNPU", "CLAMPEDREALNPU", "GNALU", "ADAM", "SGD", "RMSPROP",
           "HYPER", "run", "sparsity_error", "takes_log_input",
           "log_input", "predict"]

#: the kind codes of the layers (LINEAR, RELU, RELU6: the study's baselines, ``W`` then the bias ``b``; NAC and
#: NACMUL: ``W = tanh(W_hat) sigma(M_hat)``, NACMUL in log space; CLIPPEDNACMUL, SIGMOIDNACMUL: the log-space
#: path with ``W`` itself or ``W = sigma(W_hat)``; GATEDNAUNMU: ``W_add``, ``W_mul``, then the gate ``G``; NPU:
#: ``W_r``, ``W_i``, then the gate ``g`` (I,); REALNPU: ``W_r``, ``g``; CLAMPEDNPU, CLAMPEDREALNPU: the same with
#: the gate ``clip(g, 0, 1)`` in the forward pass and ``dg`` zero where ``g`` is outside ``[0, 1]``; GNALU: the
#: NALU's ``W_hat``, ``M_hat``, ``G``, used as ``ln(phi)`` times them)
NAU, NMU, NALU, LINEAR, RELU, RELU6, NAC, NACMUL, CLIPPEDNACMUL, SIGMOIDNACMUL, GATEDNAUNMU, NPU, REALNPU, CLAMPEDNPU, \
    CLAMPEDREALNPU, GNALU = range(16)

#: the optimizer codes (:class:`nalu_np.optim.Adam`, ``SGD``, ``RMSProp``) and the length of the hyper-parameter
#: vector :func:`_optimizer_step` takes: ``lr``, the rule's own settings (Adam ``beta1, beta2, eps`` and its
#: ``overflow``, 0 ``"clip"`` or 1 ``"propagate"``; SGD ``momentum``; RMSProp ``alpha, eps``; unused entries 0),
#: ``clip_value``, ``clip_norm`` (``inf``: off)
ADAM, SGD, RMSPROP = range(3)
HYPER = 7


@njit(**EW)
def _optimizer_step(opt, hyper, theta, grad, slots, t, lo, hi):
    """Step ``t`` (1, 2, ...) of the optimizer ``opt`` (:data:`ADAM`, :data:`SGD`, :data:`RMSPROP`) with the
    hyper-parameters ``hyper`` (:data:`HYPER`,) on the flat ``theta`` and its gradient ``grad`` (clipped in
    place first, :func:`~nalu_np.kernels.numba._common.clip_gradient`), the state ``slots`` (n, P) in the order of
    the optimizer's ``slots`` (Adam ``exp_avg``, ``exp_avg_sq``; SGD ``momentum``; RMSProp ``square_avg``),
    then the projection to ``[lo, hi]``."""
    clip_gradient(grad, hyper[5], hyper[6])
    if opt == ADAM:
        adam_step(theta, grad, slots[0], slots[1], t, hyper[0], hyper[1], hyper[2], hyper[3], hyper[4] != 0.0,
                  lo, hi)
    elif opt == SGD:
        sgd_step(theta, grad, slots[0], t, hyper[0], hyper[1], lo, hi)
    else:
        rmsprop_step(theta, grad, slots[0], hyper[0], hyper[1], hyper[2], lo, hi)


@njit(**EW)
def _dense(kind):
    """Whether ``kind`` is one of the baselines (an affine map with a bias)."""
    return LINEAR <= kind <= RELU6


@njit(**EW)
def _nac_weights(kind):
    """Whether ``kind``'s weight is ``tanh(c W_hat) sigma(c M_hat)`` (NALU, NAC, NACMul: ``c = 1``; GNALU:
    :func:`_scale`)."""
    return kind == NALU or kind == NAC or kind == NACMUL or kind == GNALU


@njit(**EW)
def _scale(kind):
    """``c`` of the NAC weight and the gate: ``ln(phi)`` for the G-NALU, else 1."""
    return LN_PHI if kind == GNALU else 1.0


@njit(**EW)
def _log_path(kind):
    """Whether ``kind`` is the log-space path ``exp(log(|x| + eps) @ W)`` on its weight ``wts[0]`` (NACMul,
    ClippedNACMul, SigmoidNACMul)."""
    return kind == NACMUL or kind == CLIPPEDNACMUL or kind == SIGMOIDNACMUL


@njit(**EW)
def _npu(kind):
    """Whether ``kind`` is an NPU or a RealNPU, with or without ``clamp_gate``."""
    return NPU <= kind <= CLAMPEDREALNPU


@njit(**EW)
def _real(kind):
    """Whether ``kind`` is a RealNPU (no ``W_i``)."""
    return kind == REALNPU or kind == CLAMPEDREALNPU


@njit(**EW)
def takes_log_input(kind):
    """Whether ``kind`` needs ``log(|x| + eps)`` of its input (NALU, GNALU and the log-space path)."""
    return kind == NALU or kind == GNALU or _log_path(kind)


@njit(**EW)
def _clip_range(kind, dt):
    """The interval a baseline layer's output is clipped to (``dense.ACTIVATIONS``), in the dtype ``dt``."""
    if kind == RELU:
        return dt(0.0), dt(np.inf)
    if kind == RELU6:
        return dt(0.0), dt(6.0)
    return dt(-np.inf), dt(np.inf)


@njit(**EW)
def _layer_weights(kind, p, wts):
    """NALU, NAC, NACMul: ``wts[:3] = (W, tanh(W_hat), sigma(M_hat))`` (I, O) from the packed
    ``p = [W_hat, M_hat, ...]``; GNALU: the same of ``c W_hat``, ``c M_hat`` and ``wts[3] = c G``
    (:func:`_scale`); SigmoidNACMul: ``wts[0] = sigma(W_hat)``; ClippedNACMul: ``wts[0] = W`` (the log-space path
    reads ``wts[0]``; nothing to do for the other kinds, whose weights are in ``p`` itself)."""
    I, O = wts.shape[1], wts.shape[2]
    n = I * O
    if kind == GNALU:  # the scaled W_hat, M_hat into t, s first: nac_weight_into works element by element
        c = wts.dtype.type(LN_PHI)
        for i in range(I):
            for j in range(O):
                wts[1, i, j] = p[i * O + j] * c
                wts[2, i, j] = p[n + i * O + j] * c
                wts[3, i, j] = p[2 * n + i * O + j] * c
        nac_weight_into(wts[1], wts[2], wts[0], wts[1], wts[2])
    elif _nac_weights(kind):
        nac_weight_into(p[:n].reshape((I, O)), p[n:2 * n].reshape((I, O)), wts[0], wts[1], wts[2])
    elif kind == SIGMOIDNACMUL:
        sigmoid_weight_into(p[:n].reshape((I, O)), wts[0])
    elif kind == CLIPPEDNACMUL:
        wts[0][:, :] = p[:n].reshape((I, O))


@njit(**EW)
def _layer_forward(kind, p, xT, lT, eps, wts, act, ins, yT):
    """``yT = layer(xT)``, all (features, B); for the NALU and the log-space path ``lT = log(|xT| + eps)`` must
    be filled, and ``act`` (3, O, B) keeps the values the backward pass needs (NALU and GatedNAUNMU ``a``,
    ``m``, ``g``; the log-space path ``m``; the baselines ``z``; the NPUs ``A``, ``phi``), ``ins`` (6, I, B) the
    NPUs' (``|x| + eps``, ``r``, ``log r``, ``k``; rows 4, 5 are the backward pass's scratch)."""
    I, O = wts.shape[1], wts.shape[2]
    n = I * O
    B = xT.shape[1]
    if kind == NAU:
        nau_block_forward(xT, B, p[:n].reshape((I, O)), yT)
    elif kind == NAC:
        nau_block_forward(xT, B, wts[0], yT)
    elif _log_path(kind):
        nacmul_block_values(lT, B, wts[0], act[0])
        yT[:, :] = act[0]
    elif kind == GATEDNAUNMU:
        gatednaunmu_block_forward(xT, B, p[:n].reshape((I, O)), p[n:2 * n].reshape((I, O)),
                                  p[2 * n:3 * n].reshape((I, O)), act[0], act[1], act[2], yT)
    elif _dense(kind):
        lo, hi = _clip_range(kind, xT.dtype.type)
        dense_block_forward(xT, B, p[:n].reshape((I, O)), p[n:n + O], lo, hi, act[0], yT)
    elif kind == NMU:
        nmu_block_forward(xT, B, p[:n].reshape((I, O)), yT)
    elif _real(kind):  # W_i = None: a specialisation of its own, so two calls
        npu_block_forward(xT, B, p[:n].reshape((I, O)), None, p[n:n + I], eps, kind == CLAMPEDREALNPU, ins[0],
                          ins[1], ins[2], ins[3], act[0], act[1], yT)
    elif _npu(kind):
        npu_block_forward(xT, B, p[:n].reshape((I, O)), p[n:2 * n].reshape((I, O)), p[2 * n:2 * n + I], eps,
                          kind == CLAMPEDNPU, ins[0], ins[1], ins[2], ins[3], act[0], act[1], yT)
    else:
        G = wts[3] if kind == GNALU else p[2 * n:3 * n].reshape((I, O))
        nalu_block_forward(xT, lT, B, wts[0], wts[0], G, act[0], act[1], act[2], yT)


@njit(**EW)
def _layer_backward(kind, p, xT, lT, dyT, eps, wts, act, ins, dact, dW, gp, dxT, need_dx, pre, run):
    """Gradients of a layer into the packed gradient ``gp`` (layout of ``p``, overwritten) and, when
    ``need_dx``, ``dxT`` (overwritten).  Scratch: ``dact`` (3, O, B), ``dW`` (I, O), ``pre`` (>= I, B),
    ``run`` (B,), the NPUs' ``ins[4:6]``.  The NALU's shared weight gets ``dW_a + dW_m``, taken through
    ``tanh * sigma`` into ``W_hat`` and ``M_hat``; the log-space path's ``dW`` goes through the weight of its
    kind; a clamped NPU's ``dg`` is zeroed where ``g`` is outside ``[0, 1]`` (the chain rule of the clip)."""
    I, O = wts.shape[1], wts.shape[2]
    n = I * O
    B = xT.shape[1]
    if _npu(kind):
        gp[:] = 0.0
        m = n if _real(kind) else 2 * n  # where the gate starts
        g, dg = p[m:m + I], gp[m:m + I]
        if _real(kind):  # W_i = None: a specialisation of its own, so two calls
            npu_block_backward(xT, dyT, B, p[:n].reshape((I, O)), None, g, kind == CLAMPEDREALNPU, ins[0], ins[1],
                               ins[2], ins[3], act[0], act[1], dact[0], dact[1], ins[4], ins[5],
                               gp[:n].reshape((I, O)), dW, dg, dxT, need_dx)
        else:
            npu_block_backward(xT, dyT, B, p[:n].reshape((I, O)), p[n:2 * n].reshape((I, O)), g, kind == CLAMPEDNPU,
                               ins[0], ins[1], ins[2], ins[3], act[0], act[1], dact[0], dact[1], ins[4], ins[5],
                               gp[:n].reshape((I, O)), gp[n:2 * n].reshape((I, O)), dg, dxT, need_dx)
        if kind >= CLAMPEDNPU:
            for i in range(I):
                dg[i] *= 1.0 if 0.0 <= g[i] <= 1.0 else 0.0
        return
    if kind == NAC or _log_path(kind):
        dW[:, :] = 0.0
        if kind == NAC:
            nau_block_backward(xT, dyT, B, wts[0], dW, dxT, need_dx)
        else:
            nacmul_block_backward(xT, lT, act[0], dyT, B, wts[0], eps, dW, dxT, need_dx)
        if kind == CLIPPEDNACMUL:
            gp[:n].reshape((I, O))[:, :] = dW
        elif kind == SIGMOIDNACMUL:
            sigmoid_weight_grad_into(dW, wts[0], gp[:n].reshape((I, O)))
        else:
            nac_weight_grad_into(dW, wts[1], wts[2], gp[:n].reshape((I, O)), gp[n:2 * n].reshape((I, O)))
        return
    if kind == GATEDNAUNMU:
        gp[:] = 0.0
        gatednaunmu_block_backward(xT, dyT, B, p[:n].reshape((I, O)), p[n:2 * n].reshape((I, O)),
                                   p[2 * n:3 * n].reshape((I, O)), act[0], act[1], act[2], dact[0], dact[1],
                                   dact[2], gp[:n].reshape((I, O)), gp[n:2 * n].reshape((I, O)),
                                   gp[2 * n:3 * n].reshape((I, O)), dxT, need_dx, pre, run)
        return
    if kind == NALU or kind == GNALU:  # the G-NALU's gradients at its scaled parameters, times c
        G = wts[3] if kind == GNALU else p[2 * n:3 * n].reshape((I, O))
        dG = gp[2 * n:3 * n].reshape((I, O))
        dW[:, :] = 0.0
        dG[:, :] = 0.0
        nalu_block_backward(xT, lT, dyT, B, wts[0], wts[0], G, eps, act[0], act[1], act[2], dact[0], dact[1],
                            dact[2], dW, dW, dG, dxT, need_dx)
        nac_weight_grad_into(dW, wts[1], wts[2], gp[:n].reshape((I, O)), gp[n:2 * n].reshape((I, O)))
        if kind == GNALU:
            c = gp.dtype.type(LN_PHI)
            for k in range(3 * n):
                gp[k] *= c
        return
    W = p[:n].reshape((I, O))
    acc = gp[:n].reshape((I, O))
    acc[:, :] = 0.0
    if _dense(kind):
        lo, hi = _clip_range(kind, xT.dtype.type)
        gp[n:n + O] = 0.0
        dense_block_backward(xT, act[0], dyT, B, W, lo, hi, acc, gp[n:n + O], dact[0], dxT, need_dx)
    elif kind == NAU:
        nau_block_backward(xT, dyT, B, W, acc, dxT, need_dx)
    else:
        nmu_block_backward(xT, dyT, B, W, acc, dxT, need_dx, pre, run)


@njit(**EW)
def _penalty(kind, I, p, lam, gp):
    """The regularizer of a layer of ``I`` inputs: adds ``lam * dR/dp`` to ``gp`` and returns ``lam * R`` (0 for
    the kinds without one: NALU, NAC, NACMul, SigmoidNACMul, the baselines; the NPUs' is the L1 mean of ``W_r``
    plus that of ``W_i``)."""
    if kind == NAU:
        return nau_regularizer(p, lam, gp)
    if kind == NMU or kind == CLIPPEDNACMUL:
        return nmu_regularizer(p, lam, gp)
    if kind == GATEDNAUNMU:
        n = p.shape[0] // 3
        return gatednaunmu_regularizer(p[:n], p[n:2 * n], lam, gp[:n], gp[n:2 * n])
    if _npu(kind):
        n = (p.shape[0] - I) // (1 if _real(kind) else 2)  # I * O: p is W_r[, W_i] and g (I,)
        total = npu_regularizer(p[:n], lam, gp[:n])
        return total if _real(kind) else total + npu_regularizer(p[n:2 * n], lam, gp[n:2 * n])
    return 0.0


@njit(**EW)
def _beta(step, l1_at, l1_beta):
    """The L1 term's strength at ``step``: ``l1_beta[j]`` for the last ``j`` with ``l1_at[j] <= step`` (0 before
    the first piece, and without pieces)."""
    beta = 0.0
    for j in range(l1_at.shape[0]):
        if l1_at[j] <= step:
            beta = l1_beta[j]
    return beta


@njit(**EW)
def _l1(theta, beta, grad):
    """Add ``beta * sign(theta)`` to ``grad`` and return ``beta * sum |theta|`` (float64): the L1 term over all
    the parameters, as :meth:`nalu_np.arithmetic.SingleModuleTask.penalty` (``sign(0) = 0``)."""
    b = theta.dtype.type(beta)
    total = 0.0
    for k in range(theta.shape[0]):
        total += abs(np.float64(theta[k]))
        grad[k] += np.sign(theta[k]) * b
    return beta * total


@njit(**EW)
def _schedule(step, lam_hat, start, end):
    """:func:`nalu_np.reference.linear_schedule`."""
    if start == end:
        return lam_hat if step >= start else 0.0
    return lam_hat * min(max((step - start) / (end - start), 0.0), 1.0)


@njit(**EW)
def _targets(xT, op, o, s, v, a, c, t):
    """``t[b] = a op c`` with ``a = sum(x[o:o+s])``, ``c = sum(x[o+v:o+v+s])`` in float64 (scratch ``a``,
    ``c``), rounded once to the dtype of ``t``; ``op`` 0 to 5 is ``a + c``, ``a - c``, ``a * c``, ``a / c``,
    ``a * a``, ``sqrt(a)`` (the simple function task's ops)."""
    a[:] = 0.0
    c[:] = 0.0
    for i in range(s):
        for b in range(xT.shape[1]):
            a[b] += xT[o + i, b]
            c[b] += xT[o + v + i, b]
    for b in range(xT.shape[1]):
        if op == 0:
            t[b] = a[b] + c[b]
        elif op == 1:
            t[b] = a[b] - c[b]
        elif op == 2:
            t[b] = a[b] * c[b]
        elif op == 3:
            t[b] = a[b] / c[b]
        elif op == 4:
            t[b] = a[b] * a[b]
        else:
            t[b] = np.sqrt(a[b])


#: the most layers a network of the engine has
MAX_LAYERS = 3


@njit(**EW)
def _dim(dims, l):
    """``dims[l]``, or 0 past the network's last size (the unused slots of the work arrays are empty)."""
    return dims[l] if l < dims.shape[0] else 0


@njit(**EW)
def _npu_dim(kinds, dims, l):
    """``dims[l]`` for an NPU layer ``l``, else 0."""
    return dims[l] if l < kinds.shape[0] and _npu(kinds[l]) else 0


@njit(**EW)
def _work(kinds, dims, dt, B):
    """Work arrays of the ``L = len(kinds)`` layers (1 to :data:`MAX_LAYERS`) for batches of ``B``, each a tuple
    of one slot per layer (the slots past ``L`` empty), with ``d_l = dims[l]``:

    ``ws[l]`` (4, d_l, d_{l+1}): layer ``l``'s weights as the forward pass uses them (:func:`_layer_weights`);
    ``hs[l]`` (d_l, B) for ``l = 1..L``: the input of layer ``l`` and output of layer ``l - 1`` (``hs[L]`` the
    network's output; ``hs[0]`` is empty: the network's input is given); ``ls[l]`` (d_l, B): ``log(|hs[l]| +
    eps_l)`` for a layer that takes it (``ls[0]`` only where the first layer does, else (0, B)); ``acts[l]``
    (3, d_{l+1}, B): the values layer ``l``'s backward pass needs; ``ins[l]`` (6, d_l, B) an NPU layer's values
    and scratch of its inputs' size ((6, 0, B) for the other kinds).
    """
    ws = (np.empty((4, _dim(dims, 0), _dim(dims, 1)), dt), np.empty((4, _dim(dims, 1), _dim(dims, 2)), dt),
          np.empty((4, _dim(dims, 2), _dim(dims, 3)), dt))
    hs = (np.empty((0, B), dt), np.empty((_dim(dims, 1), B), dt), np.empty((_dim(dims, 2), B), dt),
          np.empty((_dim(dims, 3), B), dt))
    ls = (np.empty((dims[0] if takes_log_input(kinds[0]) else 0, B), dt), np.empty((_dim(dims, 1), B), dt),
          np.empty((_dim(dims, 2), B), dt))
    acts = (np.empty((3, _dim(dims, 1), B), dt), np.empty((3, _dim(dims, 2), B), dt),
            np.empty((3, _dim(dims, 3), B), dt))
    ins = (np.empty((6, _npu_dim(kinds, dims, 0), B), dt), np.empty((6, _npu_dim(kinds, dims, 1), B), dt),
           np.empty((6, _npu_dim(kinds, dims, 2), B), dt))
    return ws, hs, ls, acts, ins


@njit(**EW)
def _model_forward(kinds, eps, theta, offs, ws, hs, ls, acts, ins, have_lx):
    """``hs[L] = L_{L-1}(... L_0(hs[0]))``, all (features, B): each layer's weights, then its pass.

    ``hs``, ``ls``, ``acts``, ``ws``, ``ins`` as :func:`_work` makes them, with the network's input in ``hs[0]``
    and ``log(|hs[0]| + eps_0)`` in ``ls[0]`` when ``have_lx``; otherwise that is computed here for a first
    layer that takes it (:func:`takes_log_input`), as is ``ls[l]`` for every later layer that takes it.
    """
    dt = hs[0].dtype.type
    for l in range(kinds.shape[0]):
        p = theta[offs[l]:offs[l + 1]]
        _layer_weights(kinds[l], p, ws[l])
        if takes_log_input(kinds[l]) and (l > 0 or not have_lx):
            log_abs(hs[l], hs[l].shape[1], dt(eps[l]), ls[l])
        _layer_forward(kinds[l], p, hs[l], ls[l], dt(eps[l]), ws[l], acts[l], ins[l], hs[l + 1])


@njit(**EW)
def _distance(w):
    """``min(|w|, |1 - |w||)`` in float64: the distance of a weight to the nearest of -1, 0, 1."""
    a = abs(np.float64(w))
    return min(a, abs(1.0 - a))


@njit(**EW)
def _sigmoid64(m):
    """The logistic function of ``m`` in float64 (stable)."""
    m = np.float64(m)
    return 1.0 / (1.0 + np.exp(-m)) if m >= 0 else np.exp(m) / (1.0 + np.exp(m))


@njit(**EW)
def sparsity_error(kinds, dims, offs, theta):
    """Madsen & Johansen's sparsity error of the packed model ``theta``: the largest :func:`_distance` over the
    weights as the forward pass uses them (NAU, NMU, ClippedNACMul: ``W``; GatedNAUNMU: ``W_add`` and ``W_mul``;
    NPU: ``W_r`` and ``W_i``, RealNPU: ``W_r``;
    NAC, NACMul, NALU: ``tanh(W_hat) sigma(M_hat)``, GNALU: ``tanh(c W_hat) sigma(c M_hat)``, SigmoidNACMul:
    ``sigma(W_hat)``, in float64; the gates and a
    baseline's bias left out), as :func:`nalu_np.arithmetic.sparsity_error`."""
    worst = 0.0
    for layer in range(kinds.shape[0]):
        kind = kinds[layer]
        n = dims[layer] * dims[layer + 1]
        p = theta[offs[layer]:offs[layer + 1]]
        for k in range(2 * n if kind == GATEDNAUNMU or (_npu(kind) and not _real(kind)) else n):
            if _nac_weights(kind):
                c = _scale(kind)
                d = _distance(np.tanh(c * np.float64(p[k])) * _sigmoid64(c * np.float64(p[n + k])))
            elif kind == SIGMOIDNACMUL:
                d = _distance(_sigmoid64(p[k]))
            else:
                d = _distance(p[k])
            if not d <= worst:  # NaN wins, as numpy's max
                worst = d
    return worst


@njit(**EW)
def _evaluate(kinds, dims, offs, eps, theta, xs, lxs, ts, ws, hs, ls, acts, ins, row):
    """``row[j] = mean((y - t)^2)`` on each test set ``j`` (float64) and ``row[-1]`` the sparsity error.

    ``xs`` (sets, blocks, I, nb) holds each set's inputs in blocks of ``nb`` columns, the last block padded;
    ``lxs`` the same for ``log(|x| + eps)`` (I rows for a first layer that takes it, else 0); ``ts`` (sets, N) the
    targets in float64; ``ws``, ``hs``, ``ls``, ``acts``, ``ins`` the work arrays of :func:`_work` for batches of
    ``nb`` (the output ``y`` is ``hs[L][0]``).
    """
    nb = xs.shape[3]
    L = kinds.shape[0]
    for j in range(xs.shape[0]):
        N = ts.shape[1]
        total = 0.0
        for blk in range(xs.shape[1]):
            hb = (xs[j, blk], hs[1], hs[2], hs[3])
            lb = (lxs[j, blk], ls[1], ls[2])
            _model_forward(kinds, eps, theta, offs, ws, hb, lb, acts, ins, True)
            yT = hb[L]
            for b in range(min(nb, N - blk * nb)):
                d = np.float64(yT[0, b]) - ts[j, blk * nb + b]
                total += d * d
        row[j] = total / N
    row[xs.shape[0]] = sparsity_error(kinds, dims, offs, theta)


@njit(**EW)
def _train_seed(kinds, dims, offs, eps, theta, slots, lo, hi, u, state, steps, B, xlo, span, op, o, s, v,
                t0, opt, hyper, lam_hat, lam_start, lam_end, l1_at, l1_beta, every, first, xs, lxs, ts,
                losses, evals):
    """One seed of :func:`run`: returns (steps done, evaluations written)."""
    L = kinds.shape[0]
    I, O = dims[0], dims[L]
    dt = theta.dtype
    grad = np.zeros_like(theta)
    xflat = np.empty(I * B, dt)
    xT = xflat.reshape((I, B))
    t = np.empty(B, dt)
    sa = np.empty(B)
    sc = np.empty(B)
    # dys[l] (d_{l+1}, B): the gradient of the loss at layer l's output; dacts[l], dWs[l]: its scratch
    dys = (np.empty((_dim(dims, 1), B), dt), np.empty((_dim(dims, 2), B), dt), np.empty((_dim(dims, 3), B), dt))
    dacts = (np.empty((3, _dim(dims, 1), B), dt), np.empty((3, _dim(dims, 2), B), dt),
             np.empty((3, _dim(dims, 3), B), dt))
    dWs = (np.empty((_dim(dims, 0), _dim(dims, 1)), dt), np.empty((_dim(dims, 1), _dim(dims, 2)), dt),
           np.empty((_dim(dims, 2), _dim(dims, 3)), dt))
    widest = 0
    for l in range(L):
        widest = max(widest, dims[l])
    pre = np.empty((widest, B), dt)
    run_ = np.empty(B, dt)
    scale = dt.type(2.0 / (B * O))
    ws, hw, ls, acts, ins = _work(kinds, dims, dt, B)
    hs = (xT, hw[1], hw[2], hw[3])  # the batch is layer 0's input
    yT, dyT = hs[L], dys[L - 1]
    ne = 0
    if every > 0 and first:
        _evaluate(kinds, dims, offs, eps, theta, xs, lxs, ts, ws, hs, ls, acts, ins, evals[ne])
        ne += 1
    given = u.shape[0] == steps
    bad = False
    for k in range(steps):
        step = t0 + k  # optimizer steps taken before this one
        if given:
            for b in range(B):
                for i in range(I):
                    xT[i, b] = dt.type(xlo) + dt.type(span) * u[k, b, i]
        else:
            fill_uniform(state, dt.type(xlo), dt.type(span), xflat)
        _targets(xT, op, o, s, v, sa, sc, t)
        _model_forward(kinds, eps, theta, offs, ws, hs, ls, acts, ins, False)
        loss = 0.0
        for j in range(O):
            for b in range(B):
                d = yT[j, b] - t[b]
                loss += d * d
                dyT[j, b] = d * scale
        loss /= B * O
        for l in range(L - 1, -1, -1):  # layer l's gradients, and for l > 0 the gradient at its input
            below = max(l - 1, 0)  # (layer 0 writes no input gradient: dys[0] is only a placeholder there)
            _layer_backward(kinds[l], theta[offs[l]:offs[l + 1]], hs[l], ls[l], dys[l], dt.type(eps[l]), ws[l],
                            acts[l], ins[l], dacts[l], dWs[l], grad[offs[l]:offs[l + 1]], dys[below], l > 0, pre,
                            run_)
        lam = _schedule(step, lam_hat, lam_start, lam_end)
        if lam != 0.0:
            penalty = 0.0
            for l in range(L):
                penalty += _penalty(kinds[l], dims[l], theta[offs[l]:offs[l + 1]], lam, grad[offs[l]:offs[l + 1]])
            loss += penalty
        beta = _beta(step, l1_at, l1_beta)
        if beta != 0.0:
            loss += _l1(theta, beta, grad)
        losses[k] = loss
        bad = bad or not np.isfinite(loss)
        _optimizer_step(opt, hyper, theta, grad, slots, step + 1, lo, hi)
        if every > 0 and ((k + 1) % every == 0 or k + 1 == steps):
            _evaluate(kinds, dims, offs, eps, theta, xs, lxs, ts, ws, hs, ls, acts, ins, evals[ne])
            ne += 1
            if bad:
                return k + 1, ne
    return steps, ne


@njit(**EW)
def run(kinds, dims, offs, eps, theta, slots, lo, hi, u, states, active, steps, B, xlo, span, op, offsets, s,
        v, t0, opt, hyper, lam_hat, lam_start, lam_end, l1_at, l1_beta, every, first, xs, lxs, ts, losses,
        evals, done, nevals):
    """``steps`` training steps of ``S`` independent runs (seeds) of one network on the packed parameters
    ``theta[s]`` with the optimizer state ``slots[s]``, one seed after the other.

    It releases the GIL: :func:`nalu_np.compiled.train_seeds` spreads the seeds over threads, each running
    this same compiled code on its share, so that a seed's run is bit for bit the same alone or among any
    others (a ``prange`` version would be compiled apart, and LLVM may fuse its multiply-adds differently).

    A seed's run depends only on its own rows (parameters, moments, generator state, subset offset), so it is
    the same alone as among any others, and the same however the steps are split into calls.

    Parameters
    ----------
    kinds : int64 array, shape (L,)
        The layers' kind codes (``NAU``, ``NMU``, ``NALU``, ... of this module), ``1 <= L <=`` :data:`MAX_LAYERS`.
    dims : int64 array, shape (L + 1,)
        The features between the layers: ``(I, O)``, ``(I, H, O)`` or ``(I, H1, H2, O)``.
    offs : int64 array, shape (L + 1,)
        Start of each layer's parameters in a row of ``theta``, then the end.
    eps : float64 array, shape (L,)
        The layers' ``eps`` (used by the NALU and the log-space path).
    theta : array of a float dtype, shape (S, P)
        Parameters, updated in place.
    slots : array of the dtype of ``theta``, shape (S, n, P)
        The optimizer's state per seed, updated in place: Adam ``exp_avg``, ``exp_avg_sq`` (n = 2); SGD
        ``momentum``, RMSProp ``square_avg`` (n = 1).
    lo, hi : arrays, shape (P,)
        The projection's bounds.
    u : array, shape (S, steps, B, I) or (S, 0, 1, I)
        The uniforms of the batches; when it has no ``steps`` entries the batches are drawn from ``states``.
    states : uint64 array, shape (S, 4, LANES)
        The seeds' generator states (:mod:`nalu_np.kernels.numba.rng`), advanced in place.
    active : bool array, shape (S,)
        The seeds to train (the others are left as they are).
    xlo, span, op, offsets, s, v
        The task: ``x = xlo + span * u``, target ``sum(x[o:o+s]) op sum(x[o+v:o+v+s])`` with ``o = offsets[seed]``
        (the single-module task: ``I = 2``, ``o = 0``, ``s = v = 1``, so ``t = x[0] op x[1]``).
    t0 : int64 array, shape (S,)
        The optimizer's steps so far, per seed.
    opt : int
        The optimizer: :data:`ADAM`, :data:`SGD` or :data:`RMSPROP`.
    hyper : float64 array, shape (:data:`HYPER`,)
        Its hyper-parameters, clipping included (:func:`_optimizer_step`).
    lam_hat, lam_start, lam_end
        The regularizer ``lambda(t) sum_l R_l``, ``lambda(t) = lam_hat clip((t - start) / (end - start), 0, 1)``.
    l1_at, l1_beta : int64 and float64 arrays, shape (J,)
        The L1 term ``beta(t) sum |theta|`` over all parameters, ``beta`` piecewise constant: ``l1_beta[j]`` from
        step ``l1_at[j]`` (increasing) on, 0 before ``l1_at[0]``; J = 0: none.  Its gradient is
        ``beta sign(theta)``.
    every : int
        Evaluate after every ``every`` steps of the call and after its last step (0: never); with ``first``
        also before the first.  A seed whose loss was not finite stops at its next evaluation.
    xs, lxs, ts
        The test sets, as :func:`_evaluate` takes them (targets per seed: ``ts`` (S, sets, N)).
    losses : float64 array, shape (S, steps)
        Out: the loss of each step before its update (MSE plus regularizer plus L1 term).
    evals : float64 array, shape (S, evaluations, sets + 1)
        Out: each evaluation's test-set MSEs and sparsity error.
    done, nevals : int64 arrays, shape (S,)
        Out: the steps each seed took and the evaluations it wrote.
    """
    for q in range(theta.shape[0]):
        if active[q]:
            done[q], nevals[q] = _train_seed(
                kinds, dims, offs, eps, theta[q], slots[q], lo, hi, u[q], states[q], steps, B, xlo, span,
                op, offsets[q], s, v, t0[q], opt, hyper, lam_hat, lam_start, lam_end, l1_at, l1_beta,
                every, first, xs, lxs, ts[q], losses[q], evals[q])


@njit(**EW)
def log_input(kinds, eps, xT):
    """``log(|xT| + eps)`` (I, B) when the first layer takes it (:func:`takes_log_input`), else an empty (0, B)
    array."""
    lx = np.empty((xT.shape[0] if takes_log_input(kinds[0]) else 0, xT.shape[1]), xT.dtype)
    if takes_log_input(kinds[0]):
        log_abs(xT, xT.shape[1], xT.dtype.type(eps[0]), lx)
    return lx


@njit(**EW)
def predict(kinds, dims, offs, eps, theta, xT, lx, yT):
    """``yT = L_{L-1}(... L_0(xT))`` for a batch of any size, (features, B); ``lx`` from :func:`log_input`."""
    ws, hw, ls, acts, ins = _work(kinds, dims, theta.dtype, xT.shape[1])
    hs = (xT, hw[1], hw[2], hw[3])
    _model_forward(kinds, eps, theta, offs, ws, hs, (lx, ls[1], ls[2]), acts, ins, True)
    yT[:, :] = hs[kinds.shape[0]]
