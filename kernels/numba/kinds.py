"""The per-kind dispatch of the compiled training step (:mod:`nalu_np.kernels.numba.train`): the layers' kind
codes, and for each kind its weights, forward and backward pass and regularizer, composed of the units' block
functions (the same functions the layer kernels call on each block), and the sparsity error of a packed model.

A layer ``l`` sees its packed parameters ``p`` (each of its ``params`` one after the other, in their order, each
(I, O) matrix row-major), its input transposed ``xT`` (I, B), and work arrays of
:func:`nalu_np.kernels.numba.train._work`: ``wts`` (:data:`WORK_SLOTS`, I, O) the weights as the passes use
them (:func:`layer_weights`), ``act`` (3, O, B) the values of its outputs the backward pass needs, ``ins``
(6, I, B) those of its inputs (the kinds of :func:`keeps_input_values`; (6, 0, B) for the others).
"""

from __future__ import annotations

import numpy as np

from ._common import EW, nac_weight_grad_into, nac_weight_into
from ._math import jit as njit
from .dense import dense_block_backward, dense_block_forward
from .gated import gatednaunmu_block_backward, gatednaunmu_block_forward, gatednaunmu_regularizer
from .gnalu import LN_PHI
from .inalu import inalu_block_backward, inalu_block_forward, inalu_param_grads, inalu_weights_into
from .nac import nacmul_block_backward, nacmul_block_values, sigmoid_weight_grad_into, sigmoid_weight_into
from .nalu import nalu_block_backward, nalu_block_forward
from .nau import nau_block_backward, nau_block_forward, nau_regularizer
from .nmu import nmu_block_backward, nmu_block_forward, nmu_regularizer
from .npu import npu_block_backward, npu_block_forward, npu_regularizer

__all__ = ["NAU", "NMU", "NALU", "LINEAR", "RELU", "RELU6", "NAC", "NACMUL", "CLIPPEDNACMUL", "SIGMOIDNACMUL",
           "GATEDNAUNMU", "NPU", "REALNPU", "CLAMPEDNPU", "CLAMPEDREALNPU", "GNALU", "INALU", "SEPARATENALU",
           "WORK_SLOTS", "takes_log_input", "keeps_input_values", "layer_weights", "layer_forward",
           "layer_backward", "layer_penalty", "sparsity_error"]

#: the kind codes of the layers (LINEAR, RELU, RELU6: the study's baselines, ``W`` then the bias ``b``; NAC and
#: NACMUL: ``W = tanh(W_hat) sigma(M_hat)``, NACMUL in log space; CLIPPEDNACMUL, SIGMOIDNACMUL: the log-space
#: path with ``W`` itself or ``W = sigma(W_hat)``; GATEDNAUNMU: ``W_add``, ``W_mul``, then the gate ``G``; NPU:
#: ``W_r``, ``W_i``, then the gate ``g`` (I,); REALNPU: ``W_r``, ``g``; CLAMPEDNPU, CLAMPEDREALNPU: the same with
#: the gate ``clip(g, 0, 1)`` in the forward pass and ``dg`` zero where ``g`` is outside ``[0, 1]``; GNALU: the
#: NALU's ``W_hat``, ``M_hat``, ``G``, used as ``ln(phi)`` times them; INALU: ``W_hat_add``, ``M_hat_add``,
#: ``W_hat_mul``, ``M_hat_mul``, then the gate ``g`` (O,); SEPARATENALU: the NALU with separate weights,
#: ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul``, then ``G`` (I, O))
NAU, NMU, NALU, LINEAR, RELU, RELU6, NAC, NACMUL, CLIPPEDNACMUL, SIGMOIDNACMUL, GATEDNAUNMU, NPU, REALNPU, CLAMPEDNPU, \
    CLAMPEDREALNPU, GNALU, INALU, SEPARATENALU = range(18)

#: the (I, O) slots of a layer's ``wts``: the INALU's ``W_a``, ``tanh(W_hat_add)``, ``sigma(M_hat_add)``, ``W_m``,
#: ``tanh(W_hat_mul)``, ``sigma(M_hat_mul)``, ``|W_m|``, ``G`` (in row 0 of slot 7) and two sums of its backward
#: pass; the separate-weights NALU's first six the same, slot 8 the sum of its ``dW_m``; the other kinds use the
#: first four at most
WORK_SLOTS = 10


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
def _two_paths(kind):
    """Whether ``kind`` has separate weights ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul`` (each
    pair used as ``tanh(W_hat) sigma(M_hat)``) first in its parameters: the INALU and the separate-weights NALU."""
    return kind == INALU or kind == SEPARATENALU


@njit(**EW)
def _nalu(kind):
    """Whether ``kind`` runs the NALU's block functions: the NALU (shared or separate weights) and the G-NALU."""
    return kind == NALU or kind == GNALU or kind == SEPARATENALU


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
    """Whether ``kind`` needs ``log(|x| + eps)`` of its input (the NALUs, GNALU and the log-space path)."""
    return _nalu(kind) or _log_path(kind)


@njit(**EW)
def keeps_input_values(kind):
    """Whether ``kind`` keeps values of its inputs in ``ins`` (the NPUs and the INALU)."""
    return _npu(kind) or kind == INALU


@njit(**EW)
def _clip_range(kind, dt):
    """The interval a baseline layer's output is clipped to (``dense.ACTIVATIONS``), in the dtype ``dt``."""
    if kind == RELU:
        return dt(0.0), dt(np.inf)
    if kind == RELU6:
        return dt(0.0), dt(6.0)
    return dt(-np.inf), dt(np.inf)


@njit(**EW)
def layer_weights(kind, p, wts):
    """NALU, NAC, NACMul: ``wts[:3] = (W, tanh(W_hat), sigma(M_hat))`` (I, O) from the packed
    ``p = [W_hat, M_hat, ...]``; GNALU: the same of ``c W_hat``, ``c M_hat`` and ``wts[3] = c G``
    (:func:`_scale`); SigmoidNACMul: ``wts[0] = sigma(W_hat)``; ClippedNACMul: ``wts[0] = W`` (the log-space path
    reads ``wts[0]``); INALU: ``wts[:7] = (W_a, tanh(W_hat_add), sigma(M_hat_add), W_m, tanh(W_hat_mul),
    sigma(M_hat_mul), |W_m|)`` and ``wts[7][0] = sigma(g)`` (O,)
    (:func:`~nalu_np.kernels.numba.inalu.inalu_weights_into`); SEPARATENALU: ``wts[:6] = (W_a, tanh(W_hat_add),
    sigma(M_hat_add), W_m, tanh(W_hat_mul), sigma(M_hat_mul))``; nothing to do for the other kinds, whose weights
    are in ``p`` itself."""
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
    elif kind == SEPARATENALU:
        nac_weight_into(p[:n].reshape((I, O)), p[n:2 * n].reshape((I, O)), wts[0], wts[1], wts[2])
        nac_weight_into(p[2 * n:3 * n].reshape((I, O)), p[3 * n:4 * n].reshape((I, O)), wts[3], wts[4], wts[5])
    elif _nac_weights(kind):
        nac_weight_into(p[:n].reshape((I, O)), p[n:2 * n].reshape((I, O)), wts[0], wts[1], wts[2])
    elif kind == SIGMOIDNACMUL:
        sigmoid_weight_into(p[:n].reshape((I, O)), wts[0])
    elif kind == CLIPPEDNACMUL:
        wts[0][:, :] = p[:n].reshape((I, O))
    elif kind == INALU:  # wts[:7] = W_a, tanh, sigma, W_m, tanh, sigma, |W_m|; G in wts[7][0]
        m = 4 * n
        inalu_weights_into(p[:n].reshape((I, O)), p[n:2 * n].reshape((I, O)), p[2 * n:3 * n].reshape((I, O)),
                           p[3 * n:m].reshape((I, O)), p[m:m + O], wts[0], wts[1], wts[2], wts[3], wts[4], wts[5],
                           wts[6], wts[7][0])


@njit(**EW)
def _nalu_gate_start(kind, n):
    """Where the gate ``G`` of a NALU kind starts in its packed parameters, ``n = I * O``: after the shared
    ``W_hat``, ``M_hat`` (NALU, GNALU) or after the four separate ones (SEPARATENALU)."""
    return 4 * n if kind == SEPARATENALU else 2 * n


@njit(**EW)
def _nalu_weights(kind, p, wts):
    """``(W_m, G)`` (I, O) of a NALU kind as its passes use them, after :func:`layer_weights` (``W_a`` is
    ``wts[0]``): ``W_m = W_a`` for shared weights, ``wts[3]`` for separate ones; ``G`` the GNALU's scaled
    ``wts[3]``, else taken from ``p``."""
    I, O = wts.shape[1], wts.shape[2]
    n = I * O
    m = _nalu_gate_start(kind, n)
    Wm = wts[3] if kind == SEPARATENALU else wts[0]
    G = wts[3] if kind == GNALU else p[m:m + n].reshape((I, O))
    return Wm, G


@njit(**EW)
def layer_forward(kind, p, xT, lT, eps, omega, wts, act, ins, yT):
    """``yT = layer(xT)``, all (features, B); for the NALU and the log-space path ``lT = log(|xT| + eps)`` must
    be filled, and ``act`` (3, O, B) keeps the values the backward pass needs (NALU and GatedNAUNMU ``a``,
    ``m``, ``g``; the log-space path ``m``; the baselines ``z``; the NPUs ``A``, ``phi``), ``ins`` (6, I, B) the
    NPUs' (``|x| + eps``, ``r``, ``log r``, ``k``; rows 4, 5 are the backward pass's scratch).  The INALU keeps
    ``a``, ``z``, ``m`` in ``act`` and ``sign(x)``, ``log(max(|x|, eps))`` in ``ins[:2]``, with its ``omega``
    (the other kinds ignore it)."""
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
    elif kind == INALU:
        inalu_block_forward(xT, B, wts[0], wts[3], wts[6], wts[7][0], eps, omega, ins[0], ins[1], act[0], act[1],
                            act[2], yT)
    elif _npu(kind):
        npu_block_forward(xT, B, p[:n].reshape((I, O)), p[n:2 * n].reshape((I, O)), p[2 * n:2 * n + I], eps,
                          kind == CLAMPEDNPU, ins[0], ins[1], ins[2], ins[3], act[0], act[1], yT)
    else:  # the NALUs
        Wm, G = _nalu_weights(kind, p, wts)
        nalu_block_forward(xT, lT, B, wts[0], Wm, G, act[0], act[1], act[2], yT)


@njit(**EW)
def layer_backward(kind, p, xT, lT, dyT, eps, omega, wts, act, ins, dact, dW, gp, dxT, need_dx, pre, run):
    """Gradients of a layer into the packed gradient ``gp`` (layout of ``p``, overwritten) and, when
    ``need_dx``, ``dxT`` (overwritten).  Scratch: ``dact`` (3, O, B), ``dW`` (I, O), ``pre`` (>= I, B),
    ``run`` (B,), the NPUs' ``ins[4:6]``.  The NALU's shared weight gets ``dW_a + dW_m``, taken through
    ``tanh * sigma`` into ``W_hat`` and ``M_hat``; with separate weights ``dW_a`` (summed in ``dW``) and ``dW_m``
    (in ``wts[8]``) go each through its own path's ``tanh * sigma``; the log-space path's ``dW`` goes through
    the weight of its kind; a clamped NPU's ``dg`` is zeroed where ``g`` is outside ``[0, 1]`` (the chain rule of
    the clip); the INALU sums into ``dW`` and ``wts[8:10]`` (scratch ``ins[2:4]``), then takes them on to its raw
    parameters."""
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
    if kind == INALU:
        acc_g = gp[4 * n:4 * n + O]  # sum_b delta (a - m s), then dg in place
        dW[:, :] = 0.0
        wts[8][:, :] = 0.0
        wts[9][:, :] = 0.0
        acc_g[:] = 0.0
        inalu_block_backward(xT, dyT, B, wts[0], wts[3], wts[6], wts[7][0], eps, omega, ins[0], ins[1], act[0],
                             act[1], act[2], dact[0], dact[1], dact[2], pre, ins[2], run, ins[3][0], dW, wts[8],
                             wts[9], acc_g, dxT, need_dx)
        inalu_param_grads(dW, wts[8], wts[9], acc_g, wts[3], wts[1], wts[2], wts[4], wts[5], wts[7][0],
                          gp[:n].reshape((I, O)), gp[n:2 * n].reshape((I, O)), gp[2 * n:3 * n].reshape((I, O)),
                          gp[3 * n:4 * n].reshape((I, O)), acc_g)
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
    if _nalu(kind):  # the G-NALU's gradients at its scaled parameters, times c
        Wm, G = _nalu_weights(kind, p, wts)
        m = _nalu_gate_start(kind, n)
        dG = gp[m:m + n].reshape((I, O))
        dWm = wts[8] if kind == SEPARATENALU else dW  # shared weights: one sum dW_a + dW_m
        dW[:, :] = 0.0
        dWm[:, :] = 0.0
        dG[:, :] = 0.0
        nalu_block_backward(xT, lT, dyT, B, wts[0], Wm, G, eps, act[0], act[1], act[2], dact[0], dact[1],
                            dact[2], dW, dWm, dG, dxT, need_dx)
        nac_weight_grad_into(dW, wts[1], wts[2], gp[:n].reshape((I, O)), gp[n:2 * n].reshape((I, O)))
        if kind == SEPARATENALU:
            nac_weight_grad_into(dWm, wts[4], wts[5], gp[2 * n:3 * n].reshape((I, O)),
                                 gp[3 * n:4 * n].reshape((I, O)))
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
def layer_penalty(kind, I, p, lam, gp):
    """The regularizer of a layer of ``I`` inputs: adds ``lam * dR/dp`` to ``gp`` and returns ``lam * R`` (0 for
    the kinds without one: the NALUs, NAC, NACMul, SigmoidNACMul, the baselines, the INALU; the NPUs' is the L1
    mean of ``W_r`` plus that of ``W_i``)."""
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
    NAC, NACMul, NALU: ``tanh(W_hat) sigma(M_hat)``, INALU and the separate-weights NALU: that of both paths,
    GNALU: ``tanh(c W_hat) sigma(c M_hat)``, SigmoidNACMul: ``sigma(W_hat)``, in float64; the gates and a
    baseline's bias left out), as :func:`nalu_np.arithmetic.sparsity_error`."""
    worst = 0.0
    for layer in range(kinds.shape[0]):
        kind = kinds[layer]
        n = dims[layer] * dims[layer + 1]
        p = theta[offs[layer]:offs[layer + 1]]
        for k in range(2 * n if kind == GATEDNAUNMU or _two_paths(kind) or (_npu(kind) and not _real(kind)) else n):
            if _two_paths(kind):  # W_a from p[k], p[n + k]; W_m from p[2 n + k'], p[3 n + k'] for k = n + k'
                j = k if k < n else k + n
                d = _distance(np.tanh(np.float64(p[j])) * _sigmoid64(p[j + n]))
            elif _nac_weights(kind):
                c = _scale(kind)
                d = _distance(np.tanh(c * np.float64(p[k])) * _sigmoid64(c * np.float64(p[n + k])))
            elif kind == SIGMOIDNACMUL:
                d = _distance(_sigmoid64(p[k]))
            else:
                d = _distance(p[k])
            if not d <= worst:  # NaN wins, as numpy's max
                worst = d
    return worst

