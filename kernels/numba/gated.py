"""The gated NAU/NMU (Madsen & Johansen 2020, the all-models table), ``y = g a + (1 - g) m`` with the NAU's
``a = x @ W_add``, the NMU's ``m_o = prod_i (W_mul,io x_i + 1 - W_mul,io)`` and the gate ``g = sigma(x @ G)``:
block functions and kernels.

Block functions (on transposed blocks, shape (features, n); also called by the compiled training step):
:func:`gatednaunmu_block_values`, :func:`gatednaunmu_block_forward`, :func:`gatednaunmu_block_backward` and
:func:`gatednaunmu_regularizer`.  They are made of the NAU's and the NMU's block functions and regularizers, so
the NMU's product keeps its leave-one-out products without division.  The projections (``W_add`` onto
``[-1, 1]``, ``W_mul`` onto ``[0, 1]``) are :func:`nalu_np.kernels.numba._common.clip` with the layer's bounds.
The layer kernels take the fused path only (the NMU's product has no BLAS form); the forward pass keeps only
``x`` and the backward pass recomputes the block values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from ._common import EW, PAR, Params, block_range, check, gate_mix, grad, load, matmul, matmul_t, partials, plan, \
    store, sum_partials
from ._math import jit as njit, vsigmoid
from .nau import nau_block_forward, nau_regularizer
from .nmu import nmu_block_backward, nmu_block_forward, nmu_regularizer

__all__ = ["gatednaunmu_forward", "gatednaunmu_backward"]


@njit(**EW)
def gatednaunmu_block_values(xT, n, Wa, Wm, G, aT, mT, gT):
    """The values of one block: ``aT = W_add.T @ xT``, ``mT`` the NMU's product of ``xT`` with ``W_mul`` and
    ``gT = sigma(G.T @ xT)`` (O, nb) from ``xT`` (I, nb)."""
    nau_block_forward(xT, n, Wa, aT)
    nmu_block_forward(xT, n, Wm, mT)
    matmul(xT, n, G, gT)
    for o in range(gT.shape[0]):
        for r in range(n):
            gT[o, r] = vsigmoid(gT[o, r])


@njit(**EW)
def gatednaunmu_block_forward(xT, n, Wa, Wm, G, aT, mT, gT, yT):
    """:func:`gatednaunmu_block_values`, then ``yT = g a + (1 - g) m`` (O, nb)."""
    gatednaunmu_block_values(xT, n, Wa, Wm, G, aT, mT, gT)
    gate_mix(gT, aT, mT, n, yT)


@njit(**EW)
def gatednaunmu_block_backward(xT, dT, n, Wa, Wm, G, aT, mT, gT, dA, dM, dH, accA, accM, accG, dxT, need_dx,
                               pre, run):
    """Gradients of one block from its values (:func:`gatednaunmu_block_values`) and ``delta`` transposed ``dT``
    (O, nb).

    ``dA = delta g``, ``dM = delta (1 - g)``, ``dH = delta (a - m) g (1 - g)`` (O, nb, scratch);
    ``accA += xT @ dA.T``, ``accM +=`` the NMU's gradient of ``dM`` (:func:`~nalu_np.kernels.numba.nmu.
    nmu_block_backward`, with its scratch ``pre`` (>= I, nb) and ``run`` (nb,)), ``accG += xT @ dH.T`` (I, O);
    when ``need_dx``, ``dxT`` = the NMU's ``dx`` of ``dM`` ``+ W_add @ dA + G @ dH`` (I, nb, overwritten).
    """
    one = xT.dtype.type(1.0)
    for o in range(dT.shape[0]):
        for r in range(n):
            d = dT[o, r]
            g = gT[o, r]
            dA[o, r] = d * g
            dM[o, r] = d * (one - g)
            dH[o, r] = d * (aT[o, r] - mT[o, r]) * g * (one - g)
    nmu_block_backward(xT, dM, n, Wm, accM, dxT, need_dx, pre, run)
    grad(xT, dA, n, accA)
    grad(xT, dH, n, accG)
    if need_dx:
        matmul_t(dA, n, Wa, dxT, True)
        matmul_t(dH, n, G, dxT, True)


@njit(**EW)
def gatednaunmu_regularizer(Wa, Wm, lam, dWa, dWm):
    """Add ``lam * dR/dW`` to ``dWa``, ``dWm`` and return ``lam * R`` (float64) for the sum of the sub-layers'
    regularizers ``R = mean(min(|W_add|, 1 - |W_add|)) + mean(min(W_mul, 1 - W_mul))`` (the NAU's and the NMU's
    blocks)."""
    return nau_regularizer(Wa, lam, dWa) + nmu_regularizer(Wm, lam, dWm)


@njit(**EW)
def _fwd_chunk(c, nchunks, x, Wa, Wm, G, nb, y):
    B, I = x.shape
    O = G.shape[1]
    xT = np.empty((I, nb), x.dtype)
    aT = np.empty((O, nb), x.dtype)
    mT = np.empty((O, nb), x.dtype)
    gT = np.empty((O, nb), x.dtype)
    yT = np.empty((O, nb), x.dtype)
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        gatednaunmu_block_forward(xT, n, Wa, Wm, G, aT, mT, gT, yT)
        store(yT, r0, n, y)


@njit(**PAR)
def _fwd(x, Wa, Wm, G, nb, nchunks, y):
    if nchunks == 1:
        _fwd_chunk(0, 1, x, Wa, Wm, G, nb, y)
    else:
        for c in prange(nchunks):
            _fwd_chunk(c, nchunks, x, Wa, Wm, G, nb, y)


@njit(**EW)
def _bwd_chunk(c, nchunks, x, dy, Wa, Wm, G, nb, dx, pA, pM, pG):
    B, I = x.shape
    O = G.shape[1]
    xT = np.empty((I, nb), x.dtype)
    tT = np.empty((I, nb), x.dtype)
    pre = np.empty((I, nb), x.dtype)  # the NMU's exclusive prefix products of one output
    run = np.empty(nb, x.dtype)
    st = np.empty((7, O, nb), x.dtype)  # a, m, g, delta, dA, dM, dH
    b0, b1 = block_range(c, nchunks, B, nb)
    for b in range(b0, b1):
        r0 = b * nb
        n = min(nb, B - r0)
        load(x, r0, n, xT)
        gatednaunmu_block_values(xT, n, Wa, Wm, G, st[0], st[1], st[2])
        load(dy, r0, n, st[3])
        gatednaunmu_block_backward(xT, st[3], n, Wa, Wm, G, st[0], st[1], st[2], st[4], st[5], st[6], pA[c], pM[c],
                                   pG[c], tT, True, pre, run)
        store(tT, r0, n, dx)


@njit(**PAR)
def _bwd(x, dy, Wa, Wm, G, nb, nchunks, dx, pA, pM, pG):
    if nchunks == 1:
        _bwd_chunk(0, 1, x, dy, Wa, Wm, G, nb, dx, pA, pM, pG)
    else:
        for c in prange(nchunks):
            _bwd_chunk(c, nchunks, x, dy, Wa, Wm, G, nb, dx, pA, pM, pG)


def _weights(params: Params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``W_add``, ``W_mul``, ``G``; ValueError unless all are (I, O) for the I inputs of ``x`` (the compiled loops
    check no bounds)."""
    Wa, Wm, G = params["W_add"], params["W_mul"], params["G"]
    if Wa.shape[0] != x.shape[1] or Wm.shape != Wa.shape or G.shape != Wa.shape:
        raise ValueError(f"x {x.shape}, W_add {Wa.shape}, W_mul {Wm.shape} and G {G.shape} do not fit: need (B, I) "
                         "and three (I, O)")
    return Wa, Wm, G


def gatednaunmu_forward(params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
    """Forward pass of the GatedNAUNMU; see :func:`nalu_np.reference.gatednaunmu_forward`.

    Takes ``params`` (``W_add``, ``W_mul``, ``G``, shape (I, O)) and ``x`` (B, I); returns ``y`` (B, O) and a cache
    that holds only ``x`` (the backward pass recomputes the block values).

    Notes
    -----
    ``y = sigma(x @ G) * (x @ W_add) + (1 - sigma(x @ G)) * prod_i (W_mul[i] x[:, i] + 1 - W_mul[i])``.
    """
    check(x, params)
    x = np.ascontiguousarray(x)
    Wa, Wm, G = _weights(params, x)
    B, I = x.shape
    y = np.empty((B, G.shape[1]), x.dtype)
    _fwd(x, Wa, Wm, G, *plan(B, I, G.shape[1], x.itemsize), y)
    return y, x


def gatednaunmu_backward(params: Params, cache: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
    """Backward pass of the GatedNAUNMU; see :func:`nalu_np.reference.gatednaunmu_backward`.

    Takes the forward pass's cache and ``dy`` (B, O); returns ``dx`` (B, I) and the gradients ``W_add``, ``W_mul``,
    ``G`` (I, O).

    Notes
    -----
    ``dA = delta g``, ``dM = delta (1 - g)``, ``dH = delta (a - m) g (1 - g)``; ``dW_add = x.T @ dA``,
    ``dG = x.T @ dH``, the NMU's ``dW_mul`` and ``dx`` of ``dM`` (leave-one-out products, no division), and
    ``dx += dA @ W_add.T + dH @ G.T``.
    """
    x = cache
    dt = check(x, params, dy)
    Wa, Wm, G = _weights(params, x)
    B, I = x.shape
    O = G.shape[1]
    if dy.shape != (B, O):
        raise ValueError(f"dy must have shape (batch, out_features) = {(B, O)}, got {dy.shape}")
    nb, nchunks = plan(B, I, O, x.itemsize)
    pA, pM, pG = (partials(nchunks, (I, O)) for _ in range(3))
    dx = np.empty_like(x)
    _bwd(x, np.ascontiguousarray(dy), Wa, Wm, G, nb, nchunks, dx, pA, pM, pG)
    return dx, {"W_add": sum_partials(pA).astype(dt), "W_mul": sum_partials(pM).astype(dt),
                "G": sum_partials(pG).astype(dt)}
