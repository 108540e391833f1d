"""The compiled training step: K steps of a network of 1 to 3 layers on the simple function task (or the
single-module task, its case ``I = 2``, ``a = x[0]``, ``b = x[1]``) in one Numba call.

Small-batch training in Python pays for every step in interpreter overhead (dozens of NumPy calls of a few
microseconds each).  Here a whole run of steps -- build the batch, forward, MSE, backward, optional
regularizer, optional gradient clipping, optimizer step (Adam, SGD or RMSProp), projection -- is one compiled
call, so a step costs what its arithmetic costs.

Each layer is an NAU, an NMU, a NALU with shared or separate weights, a NAC, a NACMul, one of the study's
baselines or one of its variants, an NPU or a RealNPU (the kind codes ``NAU``, ``NMU``, ``NALU``, ``NAC``,
``NACMUL``, ``LINEAR``, ``RELU``, ``RELU6``, ``CLIPPEDNACMUL``, ``SIGMOIDNACMUL``, ``GATEDNAUNMU``, ``NPU``,
``REALNPU``, and ``CLAMPEDNPU``, ``CLAMPEDREALNPU`` for the NPUs with ``clamp_gate``, ``SEPARATENALU`` for the
NALU with separate weights), a G-NALU (``GNALU``: the NALU on its parameters scaled by ``ln(phi)``) or an iNALU
(``INALU``).
The step is composed of the units' block functions
(:func:`~nalu_np.kernels.numba.nau.nau_block_forward`, :func:`~nalu_np.kernels.numba.nmu.nmu_block_backward`,
:func:`~nalu_np.kernels.numba.nalu.nalu_block_forward`, ... -- the same functions the layer kernels call on each
block) applied to the whole batch laid out transposed, (features, batch), dispatched per kind by
:mod:`nalu_np.kernels.numba.kinds` (which holds the kind codes; this module re-exports them), and of the
optimizer blocks of
:mod:`nalu_np.kernels.numba._common` (the NAU/NMU regularizers,
:func:`~nalu_np.kernels.numba._common.clip_gradient`, :func:`~nalu_np.kernels.numba._common.adam_step`,
``sgd_step``, ``rmsprop_step`` with the projection: :func:`_optimizer_step`; the GatedNAUNMU's
:func:`~nalu_np.kernels.numba.gated.gatednaunmu_regularizer`, the NPUs'
:func:`~nalu_np.kernels.numba.npu.npu_regularizer`), and of the L1 term ``beta(t) sum |theta|`` over all parameters
(the Primer's NPU recipe; :func:`_l1`), and of the iNALU recipe's saturation regularizer ``weight * R`` from a
given step on (:func:`_saturation`).

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

from ._common import EW, adam_step, clip_gradient, log_abs, rmsprop_step, sgd_step
from ._math import jit as njit
from .kinds import (CLAMPEDNPU, CLAMPEDREALNPU, CLIPPEDNACMUL, GATEDNAUNMU, GNALU, INALU, LINEAR, NAC, NACMUL,
                    NALU, NAU, NMU, NPU, REALNPU, RELU, RELU6, SEPARATENALU, SIGMOIDNACMUL, WORK_SLOTS,
                    keeps_input_values, layer_backward, layer_forward, layer_penalty, layer_weights, sparsity_error,
                    takes_log_input)
from .rng import fill_uniform

__all__ = ["MAX_LAYERS", "NAU", "NMU", "NALU", "LINEAR", "RELU", "RELU6", "NAC", "NACMUL", "CLIPPEDNACMUL", "SIGMOIDNACMUL",
           "GATEDNAUNMU", "NPU", "REALNPU", "CLAMPEDNPU", "CLAMPEDREALNPU", "GNALU", "INALU", "SEPARATENALU", "ADAM",
           "SGD", "RMSPROP", "HYPER", "run", "sparsity_error", "takes_log_input",
           "log_input", "predict"]


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
def _saturation(theta, segs, weight, omega, grad):
    """Add ``weight * dR/dtheta`` to ``grad`` and return ``weight * R`` (float64): the iNALU recipe's saturation
    regularizer over the parameter arrays ``theta[segs[j]:segs[j + 1]]``, as
    :func:`nalu_np.primer.saturation_regularizer`.

    Notes
    -----
    ``R = sum_j mean(max(omega - |p_j|, 0))``, ``dR/dp = -sign(p) [|p| < omega] / size(p_j)`` (NaN passed
    through, as NumPy's ``maximum`` and ``NaN * 0``), the gradient times ``weight`` in the dtype of ``theta``.
    """
    dt = theta.dtype.type
    w, om = dt(weight), dt(omega)
    one, zero = dt(1.0), dt(0.0)
    total = 0.0
    for j in range(segs.shape[0] - 1):
        a, b = segs[j], segs[j + 1]
        size = dt(b - a)
        part = 0.0
        for k in range(a, b):
            gap = om - abs(theta[k])
            if not gap <= zero:  # max(gap, 0), NaN passed through
                part += np.float64(gap)
            grad[k] += -np.sign(theta[k]) * (one if gap > zero else zero) / size * w
        total += part / (b - a)
    return weight * total


@njit(**EW)
def _schedule(step, lam_hat, start, end):
    """:func:`nalu_np.reference.linear_schedule`."""
    if start == end:
        return lam_hat if step >= start else 0.0
    return lam_hat * min(max((step - start) / (end - start), 0.0), 1.0)


@njit(**EW)
def _add_rows(xT, r0, s, acc):
    """``acc[b] += xT[r0, b] + ... + xT[r0 + s - 1, b]``, added in that order in the dtype of ``acc``; four rows
    a pass, so that ``acc`` is loaded and stored once per four rows (the same bits as one row a pass)."""
    i = 0
    while i + 4 <= s:
        for b in range(xT.shape[1]):
            acc[b] = (((acc[b] + xT[r0 + i, b]) + xT[r0 + i + 1, b]) + xT[r0 + i + 2, b]) + xT[r0 + i + 3, b]
        i += 4
    for i in range(i, s):
        for b in range(xT.shape[1]):
            acc[b] += xT[r0 + i, b]


@njit(**EW)
def _targets(xT, op, o, s, v, a, c, t):
    """``t[b] = a op c`` with ``a = sum(x[o:o+s])``, ``c = sum(x[o+v:o+v+s])`` in float64 (scratch ``a``,
    ``c``), rounded once to the dtype of ``t``; ``op`` 0 to 5 is ``a + c``, ``a - c``, ``a * c``, ``a / c``,
    ``a * a``, ``sqrt(a)`` (the simple function task's ops)."""
    a[:] = 0.0
    c[:] = 0.0
    _add_rows(xT, o, s, a)
    _add_rows(xT, o + v, s, c)
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
def _ins_dim(kinds, dims, l):
    """``dims[l]`` for a layer ``l`` that keeps values of its inputs (:func:`keeps_input_values`), else 0."""
    return dims[l] if l < kinds.shape[0] and keeps_input_values(kinds[l]) else 0


@njit(**EW)
def _work(kinds, dims, dt, B):
    """Work arrays of the ``L = len(kinds)`` layers (1 to :data:`MAX_LAYERS`) for batches of ``B``, each a tuple
    of one slot per layer (the slots past ``L`` empty), with ``d_l = dims[l]``:

    ``ws[l]`` (:data:`WORK_SLOTS`, d_l, d_{l+1}): layer ``l``'s weights as the passes use them
    (:func:`~nalu_np.kernels.numba.kinds.layer_weights`);
    ``hs[l]`` (d_l, B) for ``l = 1..L``: the input of layer ``l`` and output of layer ``l - 1`` (``hs[L]`` the
    network's output; ``hs[0]`` is empty: the network's input is given); ``ls[l]`` (d_l, B): ``log(|hs[l]| +
    eps_l)`` for a layer that takes it (``ls[0]`` only where the first layer does, else (0, B)); ``acts[l]``
    (3, d_{l+1}, B): the values layer ``l``'s backward pass needs; ``ins[l]`` (6, d_l, B) an NPU or INALU layer's
    values and scratch of its inputs' size ((6, 0, B) for the other kinds).
    """
    n = WORK_SLOTS
    ws = (np.empty((n, _dim(dims, 0), _dim(dims, 1)), dt), np.empty((n, _dim(dims, 1), _dim(dims, 2)), dt),
          np.empty((n, _dim(dims, 2), _dim(dims, 3)), dt))
    hs = (np.empty((0, B), dt), np.empty((_dim(dims, 1), B), dt), np.empty((_dim(dims, 2), B), dt),
          np.empty((_dim(dims, 3), B), dt))
    ls = (np.empty((dims[0] if takes_log_input(kinds[0]) else 0, B), dt), np.empty((_dim(dims, 1), B), dt),
          np.empty((_dim(dims, 2), B), dt))
    acts = (np.empty((3, _dim(dims, 1), B), dt), np.empty((3, _dim(dims, 2), B), dt),
            np.empty((3, _dim(dims, 3), B), dt))
    ins = (np.empty((6, _ins_dim(kinds, dims, 0), B), dt), np.empty((6, _ins_dim(kinds, dims, 1), B), dt),
           np.empty((6, _ins_dim(kinds, dims, 2), B), dt))
    return ws, hs, ls, acts, ins


@njit(**EW)
def _model_forward(kinds, eps, omega, theta, offs, ws, hs, ls, acts, ins, have_lx):
    """``hs[L] = L_{L-1}(... L_0(hs[0]))``, all (features, B): each layer's weights, then its pass.

    ``hs``, ``ls``, ``acts``, ``ws``, ``ins`` as :func:`_work` makes them, with the network's input in ``hs[0]``
    and ``log(|hs[0]| + eps_0)`` in ``ls[0]`` when ``have_lx``; otherwise that is computed here for a first
    layer that takes it (:func:`takes_log_input`), as is ``ls[l]`` for every later layer that takes it.
    """
    dt = hs[0].dtype.type
    for l in range(kinds.shape[0]):
        p = theta[offs[l]:offs[l + 1]]
        layer_weights(kinds[l], p, ws[l])
        if takes_log_input(kinds[l]) and (l > 0 or not have_lx):
            log_abs(hs[l], hs[l].shape[1], dt(eps[l]), ls[l])
        layer_forward(kinds[l], p, hs[l], ls[l], dt(eps[l]), dt(omega[l]), ws[l], acts[l], ins[l], hs[l + 1])


@njit(**EW)
def _evaluate(kinds, dims, offs, eps, omega, theta, seeds, xs, lxs, ts, evals, nevals):
    """For each seed ``q`` of ``seeds``: ``evals[q, nevals[q], j] = mean((y - t)^2)`` on each test set ``j``
    (float64, targets ``ts[q, j]``) and ``evals[q, nevals[q], -1]`` the sparsity error of ``theta[q]``; then
    ``nevals[q] += 1``.

    ``xs`` (sets, blocks, I, nb) holds each set's inputs in blocks of ``nb`` columns, the last block padded;
    ``lxs`` the same for ``log(|x| + eps)`` (I rows for a first layer that takes it, else 0).  Each block is
    read once for all the seeds (a test set is megabytes, a block stays in cache); each seed's sum runs over the
    blocks and columns in order, as one seed alone.
    """
    nb = xs.shape[3]
    L = kinds.shape[0]
    ws, hw, ls, acts, ins = _work(kinds, dims, theta.dtype, nb)
    N = ts.shape[2]
    total = np.zeros(seeds.shape[0])
    for j in range(xs.shape[0]):
        total[:] = 0.0
        for blk in range(xs.shape[1]):
            hb = (xs[j, blk], hw[1], hw[2], hw[3])
            lb = (lxs[j, blk], ls[1], ls[2])
            for k in range(seeds.shape[0]):
                q = seeds[k]
                _model_forward(kinds, eps, omega, theta[q], offs, ws, hb, lb, acts, ins, True)
                yT = hb[L]
                for b in range(min(nb, N - blk * nb)):
                    d = np.float64(yT[0, b]) - ts[q, j, blk * nb + b]
                    total[k] += d * d
        for k in range(seeds.shape[0]):
            evals[seeds[k], nevals[seeds[k]], j] = total[k] / N
    for k in range(seeds.shape[0]):
        q = seeds[k]
        evals[q, nevals[q], xs.shape[0]] = sparsity_error(kinds, dims, offs, theta[q])
        nevals[q] += 1


@njit(**EW)
def _train_seed(kinds, dims, offs, eps, omega, theta, slots, lo, hi, u, state, steps, B, xlo, span, op, o, s, v,
                t0, opt, hyper, lam_hat, lam_start, lam_end, l1_at, l1_beta, segs, sat_weight, sat_omega, sat_start,
                losses):
    """``steps`` steps of one seed of :func:`run` (the batches from ``u`` when it has ``steps`` of them, else
    drawn from ``state``); returns whether a loss was not finite."""
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
        _model_forward(kinds, eps, omega, theta, offs, ws, hs, ls, acts, ins, False)
        loss = 0.0
        for j in range(O):
            for b in range(B):
                d = yT[j, b] - t[b]
                loss += d * d
                dyT[j, b] = d * scale
        loss /= B * O
        for l in range(L - 1, -1, -1):  # layer l's gradients, and for l > 0 the gradient at its input
            below = max(l - 1, 0)  # (layer 0 writes no input gradient: dys[0] is only a placeholder there)
            layer_backward(kinds[l], theta[offs[l]:offs[l + 1]], hs[l], ls[l], dys[l], dt.type(eps[l]),
                           dt.type(omega[l]), ws[l], acts[l], ins[l], dacts[l], dWs[l], grad[offs[l]:offs[l + 1]],
                           dys[below], l > 0, pre, run_)
        lam = _schedule(step, lam_hat, lam_start, lam_end)
        if lam != 0.0:
            penalty = 0.0
            for l in range(L):
                penalty += layer_penalty(kinds[l], dims[l], theta[offs[l]:offs[l + 1]], lam,
                                         grad[offs[l]:offs[l + 1]])
            loss += penalty
        beta = _beta(step, l1_at, l1_beta)
        if beta != 0.0:
            loss += _l1(theta, beta, grad)
        if sat_weight != 0.0 and step >= sat_start:
            loss += _saturation(theta, segs, sat_weight, sat_omega, grad)
        losses[k] = loss
        bad = bad or not np.isfinite(loss)
        _optimizer_step(opt, hyper, theta, grad, slots, step + 1, lo, hi)
    return bad


@njit(**EW)
def run(kinds, dims, offs, eps, omega, theta, slots, lo, hi, u, states, active, steps, B, xlo, span, op, offsets,
        s, v, t0, opt, hyper, lam_hat, lam_start, lam_end, l1_at, l1_beta, segs, sat_weight, sat_omega, sat_start,
        every, first, xs, lxs, ts, losses, evals, done, nevals):
    """``steps`` training steps of ``S`` independent runs (seeds) of one network on the packed parameters
    ``theta[s]`` with the optimizer state ``slots[s]``: the seeds one after the other up to the next evaluation,
    then the evaluation of all of them together (:func:`_evaluate`: each block of a test set is read once for
    all the seeds).

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
        The layers' ``eps`` (used by the NALU, the log-space path, the NPUs and the INALU).
    omega : float64 array, shape (L,)
        The layers' ``omega`` (the INALU's bound of its log-space sum; ignored by the other kinds).
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
    segs : int64 array, shape (arrays + 1,)
        Where each of the model's parameter arrays starts in a row of ``theta``, then the end.
    sat_weight, sat_omega, sat_start
        The iNALU recipe's saturation regularizer ``sat_weight * R`` (:func:`_saturation` over the arrays of
        ``segs`` with ``sat_omega``) at the steps ``t >= sat_start``; ``sat_weight = 0``: none.
    every : int
        Evaluate after every ``every`` steps of the call and after its last step (0: never); with ``first``
        also before the first.  A seed whose loss was not finite stops at its next evaluation.
    xs, lxs, ts
        The test sets, as :func:`_evaluate` takes them (targets per seed: ``ts`` (S, sets, N)).
    losses : float64 array, shape (S, steps)
        Out: the loss of each step before its update (MSE plus regularizer plus L1 term plus saturation term).
    evals : float64 array, shape (S, evaluations, sets + 1)
        Out: each evaluation's test-set MSEs and sparsity error.
    done, nevals : int64 arrays, shape (S,)
        Out: the steps each seed took and the evaluations it wrote.
    """
    S = theta.shape[0]
    seg = every if every > 0 else max(steps, 1)  # the steps between two evaluations
    bad = np.zeros(S, np.bool_)
    running = np.nonzero(active)[0]
    for q in running:
        done[q], nevals[q] = 0, 0
    if every > 0 and first:
        _evaluate(kinds, dims, offs, eps, omega, theta, running, xs, lxs, ts, evals, nevals)
    for k0 in range(0, steps, seg):
        k1 = min(k0 + seg, steps)
        for q in running:
            uq = u[q, k0:k1] if u.shape[1] == steps else u[q]
            bad[q] |= _train_seed(kinds, dims, offs, eps, omega, theta[q], slots[q], lo, hi, uq, states[q], k1 - k0,
                                  B, xlo, span, op, offsets[q], s, v, t0[q] + k0, opt, hyper, lam_hat, lam_start,
                                  lam_end, l1_at, l1_beta, segs, sat_weight, sat_omega, sat_start, losses[q, k0:k1])
            done[q] = k1
        if every > 0:
            _evaluate(kinds, dims, offs, eps, omega, theta, running, xs, lxs, ts, evals, nevals)
            running = running[~bad[running]]  # a seed whose loss was not finite stops at its evaluation


@njit(**EW)
def log_input(kinds, eps, xT):
    """``log(|xT| + eps)`` (I, B) when the first layer takes it (:func:`takes_log_input`), else an empty (0, B)
    array."""
    lx = np.empty((xT.shape[0] if takes_log_input(kinds[0]) else 0, xT.shape[1]), xT.dtype)
    if takes_log_input(kinds[0]):
        log_abs(xT, xT.shape[1], xT.dtype.type(eps[0]), lx)
    return lx


@njit(**EW)
def predict(kinds, dims, offs, eps, omega, theta, xT, lx, yT):
    """``yT = L_{L-1}(... L_0(xT))`` for a batch of any size, (features, B); ``lx`` from :func:`log_input`."""
    ws, hw, ls, acts, ins = _work(kinds, dims, theta.dtype, xT.shape[1])
    hs = (xT, hw[1], hw[2], hw[3])
    _model_forward(kinds, eps, omega, theta, offs, ws, hs, (lx, ls[1], ls[2]), acts, ins, True)
    yT[:, :] = hs[kinds.shape[0]]
