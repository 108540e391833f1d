"""NAU, NMU, iNALU, NPU and RealNPU for the ``cupy`` backend (re-exported by :mod:`nalu_np.kernels.cupy_gpu`,
whose checks, launch settings and weight kernel they share).

Matrix products go to cuBLAS (``@`` and batched ``cupy.matmul``); everything elementwise is one fused kernel
per pass, CUDA C++ in :data:`SOURCE` (compiled with :data:`nalu_np.kernels._cupy_source.SOURCE`, whose
helpers it uses, by NVRTC at first use):

* NAU: ``x @ W``, ``dy @ W.T``, ``x.T @ dy``.
* NMU and the iNALU sign term: one thread per ``(row, output)`` forms the product over the inputs; backward
  writes the scaled leave-one-out products (an exclusive suffix pass, then an exclusive prefix pass; never
  ``y / f``) to a scratch ``C`` of shape (I, B, O), whose sums over the batch and the outputs are batched
  matrix products.
* NPU and RealNPU: one product ``[log r; k] @ [W_r | W_i]`` of shape (2B, I) @ (I, 2O) forward, and
  ``[log r; k].T @ D``, ``D @ [W_r | W_i].T`` backward with ``D = [[dA, dphi], [dphi, -dA]]``.
* Sums over the batch of the gate gradients: ``cupy.sum`` (a block reduction).

No atomics: the gradients are bitwise reproducible run to run with fixed launch settings.  The formulas are
those of :mod:`nalu_np.reference`.
"""

from __future__ import annotations

import functools
from typing import Any

import cupy
import numpy as np

from . import _cuda_common as cc
from . import _cupy_source as src

__all__ = [
    "nau_forward",
    "nau_backward",
    "nmu_forward",
    "nmu_backward",
    "inalu_forward",
    "inalu_backward",
    "npu_forward",
    "npu_backward",
    "realnpu_forward",
    "realnpu_backward",
]

Params = dict[str, Any]

# kinds of the product units' factors f = u(x) v(W) + 1 - v(W) (template argument F)
_NMU_FACTOR = 0  # u = x, v = W
_SIGN_FACTOR = 1  # u = sign(x), v = |W| (the iNALU sign term)

#: CUDA C++ of the successor units; needs ``GRID_STRIDE`` and ``sigmoid_`` of ``_cupy_source.SOURCE`` before it
SOURCE = r"""
template <typename T> __device__ __forceinline__ T sign_(T v) {
    return v > T(0) ? T(1) : (v < T(0) ? T(-1) : v);
}

// factor of the product units: F = 0 the NMU's W x + 1 - W, F = 1 the iNALU sign term's sign(x) |W| + 1 - |W|
template <int F, typename T> __device__ __forceinline__ T factor_(T v, T w) {
    if (F == 0) return w * v + (T(1) - w);
    w = fabs(w);
    return sign_(v) * w + (T(1) - w);
}

// y[b, o] = prod_i f(x[b, i], W[i, o]); n = B * NO
template <typename T, int F>
__global__ void product(const T* __restrict__ x, const T* __restrict__ W, T* __restrict__ y, long long n, int NI,
                        int NO) {
    GRID_STRIDE(k, n) {
        const long long b = k / NO;
        const int o = (int)(k - b * NO);
        T p = T(1);
        for (int i = 0; i < NI; ++i) p *= factor_<F>(x[b * NI + i], W[i * NO + o]);
        y[k] = p;
    }
}

// C[i, b, o] = scale[b, o] * (prod_{j < i} f[b, j, o] * prod_{j > i} f[b, j, o]), layout (NI, B, NO); n = B * NO
template <typename T, int F>
__global__ void loo(const T* __restrict__ x, const T* __restrict__ W, const T* __restrict__ scale,
                    T* __restrict__ C, long long n, int NI, int NO) {
    GRID_STRIDE(k, n) {
        const long long b = k / NO;
        const int o = (int)(k - b * NO);
        T s = T(1);
        for (int i = NI - 1; i >= 0; --i) {
            C[i * n + k] = s;
            s *= factor_<F>(x[b * NI + i], W[i * NO + o]);
        }
        T p = T(1);
        const T d = scale[k];
        for (int i = 0; i < NI; ++i) {
            C[i * n + k] = d * (p * C[i * n + k]);
            p *= factor_<F>(x[b * NI + i], W[i * NO + o]);
        }
    }
}

// U[i, b] = u(x[b, i]) - 1, the derivative of the factor by v(W), transposed to (NI, B); n = B * NI
template <typename T, int F>
__global__ void factor_grad_t(const T* __restrict__ x, T* __restrict__ U, long long n, int NI) {
    GRID_STRIDE(k, n) {
        const long long b = k / NI;
        const int i = (int)(k - b * NI);
        U[i * (n / NI) + b] = (F == 0 ? x[k] : sign_(x[k])) - T(1);
    }
}

// ---- iNALU ---------------------------------------------------------------------------------------------

// l = log(max(|x|, eps))
template <typename T> __global__ void inalu_log(const T* __restrict__ x, T eps, T* __restrict__ l, long long n) {
    GRID_STRIDE(k, n) {
        const T a = fabs(x[k]);
        l[k] = log(a < eps ? eps : a);
    }
}

template <typename T> __device__ __forceinline__ T clipped_exp(T z, T omega) { return exp(z > omega ? omega : z); }

// y = G a + (1 - G) m s, G = sigma(g[o]), m = exp(min(z, omega)); n = B * NO
template <typename T>
__global__ void inalu_output(const T* __restrict__ a, const T* __restrict__ z, const T* __restrict__ s,
                             const T* __restrict__ g, T omega, T* __restrict__ y, long long n, int NO) {
    GRID_STRIDE(k, n) {
        const T G = sigmoid_(g[k % NO]), m = clipped_exp(z[k], omega);
        y[k] = G * a[k] + (T(1) - G) * m * s[k];
    }
}

// da = delta G, dz = delta (1 - G) s m [z < omega], cm = delta (1 - G) m, gt = delta (a - m s)
template <typename T>
__global__ void inalu_grads(const T* __restrict__ dy, const T* __restrict__ a, const T* __restrict__ z,
                            const T* __restrict__ s, const T* __restrict__ g, T omega, T* __restrict__ da,
                            T* __restrict__ dz, T* __restrict__ cm, T* __restrict__ gt, long long n, int NO) {
    GRID_STRIDE(k, n) {
        const T G = sigmoid_(g[k % NO]), m = clipped_exp(z[k], omega), d = dy[k], dms = d * (T(1) - G);
        da[k] = d * G;
        dz[k] = dms * s[k] * m * (z[k] < omega ? T(1) : T(0));
        cm[k] = dms * m;
        gt[k] = d * (a[k] - m * s[k]);
    }
}

// dx = r + r_log * [|x| > eps] sign(x) / |x|
template <typename T>
__global__ void inalu_dx(const T* __restrict__ x, const T* __restrict__ r, const T* __restrict__ r_log, T eps,
                         T* __restrict__ dx, long long n) {
    GRID_STRIDE(k, n) {
        const T v = x[k];
        const T dl = v > eps ? T(1) / v : (v < -eps ? T(-1) / -v : T(0));
        dx[k] = r[k] + r_log[k] * dl;
    }
}

// dW_a = Sa, dW_m = Sm + sign(W_m) Ss, then the chain rule through W = tanh(W_hat) sigma(M_hat); n = I * O
template <typename T>
__global__ void inalu_finish(const T* __restrict__ Sa, const T* __restrict__ Sm, const T* __restrict__ Ss,
                             const T* __restrict__ Wm, const T* __restrict__ ta, const T* __restrict__ sa,
                             const T* __restrict__ tm, const T* __restrict__ sm, T* __restrict__ gwa,
                             T* __restrict__ gma, T* __restrict__ gwm, T* __restrict__ gmm, long long n) {
    GRID_STRIDE(k, n) {
        const T dwm = Sm[k] + sign_(Wm[k]) * Ss[k];
        T t = ta[k], s = sa[k];
        gwa[k] = Sa[k] * (T(1) - t * t) * s;
        gma[k] = Sa[k] * t * s * (T(1) - s);
        t = tm[k];
        s = sm[k];
        gwm[k] = dwm * (T(1) - t * t) * s;
        gmm[k] = dwm * t * s * (T(1) - s);
    }
}

// dg = S G (1 - G), S the batch sum of gt
template <typename T>
__global__ void inalu_gate(const T* __restrict__ S, const T* __restrict__ g, T* __restrict__ dg, long long n) {
    GRID_STRIDE(k, n) {
        const T G = sigmoid_(g[k]);
        dg[k] = S[k] * G * (T(1) - G);
    }
}

// ---- NPU (IM = true) and RealNPU: Q = [log r; k] @ [W_r | W_i], rows of QW = (IM ? 2 : 1) * NO -------

#define NPU_PI T(3.14159265358979323846)

// r = g (|x| + eps) + 1 - g; L = [log r; k] (2B, NI) with k = pi g [x < 0]; n = B * NI
template <typename T>
__global__ void npu_inputs(const T* __restrict__ x, const T* __restrict__ g, T eps, T* __restrict__ L,
                           long long n, int NI) {
    GRID_STRIDE(k, n) {
        const T v = x[k], gi = g[k % NI];
        L[k] = log(gi * (fabs(v) + eps) + (T(1) - gi));
        L[n + k] = gi * (v < T(0) ? NPU_PI : T(0));
    }
}

// A = log r @ W_r - k @ W_i, phi = k @ W_r + log r @ W_i, E = exp(A), y = E cos(phi); n = B * NO
template <typename T, bool IM>
__global__ void npu_output(const T* __restrict__ Q, T* __restrict__ y, T* __restrict__ E, T* __restrict__ phi,
                           long long n, int NO) {
    const int QW = IM ? 2 * NO : NO;
    GRID_STRIDE(k, n) {
        const long long b = k / NO, b2 = n / NO + b;
        const int o = (int)(k - b * NO);
        T A = Q[b * QW + o], p = Q[b2 * QW + o];
        if (IM) {
            A -= Q[b2 * QW + NO + o];
            p += Q[b * QW + NO + o];
        }
        const T e = exp(A);
        E[k] = e;
        phi[k] = p;
        y[k] = e * cos(p);
    }
}

// dA = delta y, dphi = -delta E sin(phi); D = [[dA, dphi], [dphi, -dA]] (RealNPU: [dA; dphi]), (2B, QW)
template <typename T, bool IM>
__global__ void npu_grads(const T* __restrict__ dy, const T* __restrict__ y, const T* __restrict__ E,
                          const T* __restrict__ phi, T* __restrict__ D, long long n, int NO) {
    const int QW = IM ? 2 * NO : NO;
    GRID_STRIDE(k, n) {
        const long long b = k / NO, b2 = n / NO + b;
        const int o = (int)(k - b * NO);
        const T d = dy[k], dA = d * y[k], dphi = -d * E[k] * sin(phi[k]);
        D[b * QW + o] = dA;
        D[b2 * QW + o] = dphi;
        if (IM) {
            D[b * QW + NO + o] = dphi;
            D[b2 * QW + NO + o] = -dA;
        }
    }
}

// R = D @ [W_r | W_i].T = [d log r; dk] (2B, NI); dr = d log r / r, dx = dr g sign(x),
// gt = dr (|x| + eps - 1) + dk pi [x < 0] (summed over the batch for dg); n = B * NI
template <typename T>
__global__ void npu_dx(const T* __restrict__ x, const T* __restrict__ g, T eps, const T* __restrict__ R,
                       T* __restrict__ dx, T* __restrict__ gt, long long n, int NI) {
    GRID_STRIDE(k, n) {
        const T v = x[k], gi = g[k % NI], ax = fabs(v) + eps;
        const T dr = R[k] / (gi * ax + (T(1) - gi));
        dx[k] = dr * gi * sign_(v);
        gt[k] = dr * (ax - T(1)) + R[n + k] * (v < T(0) ? NPU_PI : T(0));
    }
}
"""


def kernel_names(c: str) -> list[str]:
    """Name expressions of every kernel of :data:`SOURCE` for the C type ``c``."""
    names = [f"{k}<{c}, {f}>" for k in ("product", "loo", "factor_grad_t") for f in (_NMU_FACTOR, _SIGN_FACTOR)]
    names += [f"{k}<{c}>" for k in ("inalu_log", "inalu_output", "inalu_grads", "inalu_dx", "inalu_finish",
                                    "inalu_gate", "npu_inputs", "npu_dx")]
    names += [f"{k}<{c}, {im}>" for k in ("npu_output", "npu_grads") for im in ("true", "false")]
    return names


@functools.lru_cache(maxsize=None)
def _module(dtype: str) -> Any:
    return cupy.RawModule(code=src.SOURCE + SOURCE, options=("--std=c++14",),
                          name_expressions=kernel_names(src.ctype(dtype)))


def _run(dtype: np.dtype, kernel: str, n: int, *args: Any) -> None:
    """Launch ``kernel`` (template arguments after the C type, e.g. ``"loo<{c}, 1>"``) over ``n`` items."""
    cg._launch(_module(dtype.str).get_function(kernel.format(c=src.ctype(dtype.str))), n, *args)


def _check(x: Any, params: Params, *more: Any) -> np.dtype:
    return cc.require_device(cg.name, x, params, *more, array_type=cupy.ndarray)


def _i32(v: int) -> np.int32:
    return np.int32(v)


# ---------------------------------------------------------------------------------------------------------
# products over the inputs: NMU and the iNALU sign term
# ---------------------------------------------------------------------------------------------------------


def _product(factor: int, x: Any, W: Any, dtype: np.dtype) -> Any:
    y = cupy.empty((x.shape[0], W.shape[1]), dtype)
    _run(dtype, "product<{c}, %d>" % factor, y.size, x, W, y, np.int64(y.size), _i32(x.shape[1]), _i32(W.shape[1]))
    return y


def _loo(factor: int, x: Any, W: Any, scale: Any, dtype: np.dtype) -> tuple[Any, Any]:
    """``C`` (I, B, O), ``scale`` times the leave-one-out products, and ``U = u(x).T - 1`` (I, B)."""
    n_batch, n_in = x.shape
    C = cupy.empty((n_in, n_batch, W.shape[1]), dtype)
    _run(dtype, "loo<{c}, %d>" % factor, scale.size, x, W, scale, C, np.int64(scale.size), _i32(n_in),
         _i32(W.shape[1]))
    U = cupy.empty((n_in, n_batch), dtype)
    _run(dtype, "factor_grad_t<{c}, %d>" % factor, x.size, x, U, np.int64(x.size), _i32(n_in))
    return C, U


def _batch_sum(C: Any, U: Any) -> Any:
    """``S[i, o] = sum_b U[i, b] C[i, b, o]`` as I batched products (1, B) @ (B, O)."""
    return cupy.matmul(U[:, None, :], C).reshape(C.shape[0], C.shape[2])


# ---------------------------------------------------------------------------------------------------------
# NAU and NMU
# ---------------------------------------------------------------------------------------------------------


def nau_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NAU, ``y = x @ W`` (cuBLAS); see :func:`nalu_np.reference.nau_forward`.

    Parameters
    ----------
    params : dict
        ``W``, cupy.ndarray of shape (I, O).
    x : cupy.ndarray, shape (B, I)

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict
    """
    _check(x, params)
    return x @ params["W"], {"x": x}


def nau_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NAU: ``dW = x.T @ delta``, ``dx = delta @ W.T`` (cuBLAS).

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).
    """
    x = cache["x"]
    _check(x, params, dy)
    return dy @ params["W"].T, {"W": x.T @ dy}


def nmu_forward(params: Params, x: Any) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NMU, ``y[b, o] = prod_i (W[i, o] x[b, i] + 1 - W[i, o])``.

    See :func:`nalu_np.reference.nmu_forward`.  One thread per ``(b, o)``; the cache holds ``x`` only.

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict
    """
    dtype = _check(x, params)
    x = cg._contiguous(x)
    return _product(_NMU_FACTOR, x, cg._contiguous(params["W"]), dtype), {"x": x}


def nmu_backward(params: Params, cache: dict[str, Any], dy: Any) -> tuple[Any, Params]:
    """Backward pass of the NMU.

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        ``W``, shape (I, O).

    Notes
    -----
    ``c[b, i, o] = delta[b, o] * prod_{k != i} f[b, k, o]`` (prefix times suffix products, a scratch of shape
    (I, B, O)); ``dx[b, i] = sum_o c * W[i, o]`` and ``dW[i, o] = sum_b c * (x[b, i] - 1)``, both batched
    matrix products.
    """
    x = cache["x"]
    dtype = _check(x, params, dy)
    W = cg._contiguous(params["W"])
    C, U = _loo(_NMU_FACTOR, x, W, cg._contiguous(dy), dtype)
    dx = cupy.ascontiguousarray(cupy.matmul(C, W[:, :, None])[:, :, 0].T)
    return dx, {"W": _batch_sum(C, U)}


# ---------------------------------------------------------------------------------------------------------
# iNALU
# ---------------------------------------------------------------------------------------------------------


def inalu_forward(params: Params, x: Any, eps: float = 1e-7, omega: float = 20.0) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the iNALU; see :func:`nalu_np.reference.inalu_forward`.

    Parameters
    ----------
    params : dict
        ``W_hat_add``, ``M_hat_add``, ``W_hat_mul``, ``M_hat_mul`` (I, O) and ``g`` (O,), cupy.ndarray.
    x : cupy.ndarray, shape (B, I)
    eps, omega : float

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``y = G * (x @ W_a) + (1 - G) * exp(min(log(max(|x|, eps)) @ W_m, omega)) * s``, ``G = sigma(g)``, with the
    sign term ``s[b, o] = prod_i (sign(x[b, i]) |W_m[i, o]| + 1 - |W_m[i, o]|)``.
    """
    dtype = _check(x, params)
    x = cg._contiguous(x)
    Wa, ta, sa = cg._nac_weight(params["W_hat_add"], params["M_hat_add"])
    Wm, tm, sm = cg._nac_weight(params["W_hat_mul"], params["M_hat_mul"])
    l = cupy.empty_like(x)
    _run(dtype, "inalu_log<{c}>", x.size, x, dtype.type(eps), l, np.int64(x.size))
    a = x @ Wa
    z = l @ Wm
    s = _product(_SIGN_FACTOR, x, Wm, dtype)
    y = cupy.empty_like(a)
    _run(dtype, "inalu_output<{c}>", y.size, a, z, s, cg._contiguous(params["g"]), dtype.type(omega), y,
         np.int64(y.size), _i32(y.shape[1]))
    return y, {"x": x, "l": l, "a": a, "z": z, "s": s, "Wa": Wa, "ta": ta, "sa": sa, "Wm": Wm, "tm": tm, "sm": sm}


def inalu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7,
                   omega: float = 20.0) -> tuple[Any, Params]:
    """Backward pass of the iNALU; see :func:`nalu_np.reference.inalu_backward` for the formulas.

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        Same keys as ``params``.
    """
    x = cache["x"]
    dtype = _check(x, params, dy)
    dy = cg._contiguous(dy)
    g = cg._contiguous(params["g"])
    Wa, Wm = cache["Wa"], cache["Wm"]
    n = np.int64(dy.size)
    da, dz, cm, gt = (cupy.empty_like(dy) for _ in range(4))
    _run(dtype, "inalu_grads<{c}>", dy.size, dy, cache["a"], cache["z"], cache["s"], g, dtype.type(omega),
         da, dz, cm, gt, n, _i32(dy.shape[1]))
    Ss = _batch_sum(*_loo(_SIGN_FACTOR, x, Wm, cm, dtype))
    out = {key: cupy.empty_like(Wa) for key in ("W_hat_add", "M_hat_add", "W_hat_mul", "M_hat_mul")}
    _run(dtype, "inalu_finish<{c}>", Wa.size, x.T @ da, cache["l"].T @ dz, Ss, Wm, cache["ta"], cache["sa"],
         cache["tm"], cache["sm"], out["W_hat_add"], out["M_hat_add"], out["W_hat_mul"], out["M_hat_mul"],
         np.int64(Wa.size))
    out["g"] = cupy.empty_like(g)
    _run(dtype, "inalu_gate<{c}>", g.size, gt.sum(axis=0), g, out["g"], np.int64(g.size))
    dx = cupy.empty_like(x)
    _run(dtype, "inalu_dx<{c}>", x.size, x, da @ Wa.T, dz @ Wm.T, dtype.type(eps), dx, np.int64(x.size))
    return dx, {key: out[key] for key in params}


# ---------------------------------------------------------------------------------------------------------
# NPU and RealNPU
# ---------------------------------------------------------------------------------------------------------


def _npu_forward(W_r: Any, W_i: Any, g: Any, x: Any, eps: float, dtype: np.dtype) -> tuple[Any, dict[str, Any]]:
    """Shared forward pass of NPU and RealNPU (``W_i is None``)."""
    x, g = cg._contiguous(x), cg._contiguous(g)
    im = "true" if W_i is not None else "false"
    n_batch, n_in = x.shape
    n_out = W_r.shape[1]
    L = cupy.empty((2 * n_batch, n_in), dtype)
    _run(dtype, "npu_inputs<{c}>", x.size, x, g, dtype.type(eps), L, np.int64(x.size), _i32(n_in))
    Wc = W_r if W_i is None else cupy.concatenate([W_r, W_i], axis=1)
    y, E, phi = (cupy.empty((n_batch, n_out), dtype) for _ in range(3))
    _run(dtype, "npu_output<{c}, %s>" % im, y.size, cg._contiguous(L @ Wc), y, E, phi, np.int64(y.size),
         _i32(n_out))
    return y, {"x": x, "L": L, "Wc": Wc, "y": y, "E": E, "phi": phi}


def _npu_backward(W_i: Any, g: Any, cache: dict[str, Any], dy: Any, eps: float,
                  dtype: np.dtype) -> tuple[Any, dict[str, Any]]:
    """Shared backward pass of NPU and RealNPU; grads ``W_r``, ``g`` and, unless ``W_i is None``, ``W_i``."""
    x, L, Wc = cache["x"], cache["L"], cache["Wc"]
    g = cg._contiguous(g)
    n_out = dy.shape[1]
    D = cupy.empty((2 * x.shape[0], Wc.shape[1]), dtype)
    _run(dtype, "npu_grads<{c}, %s>" % ("false" if W_i is None else "true"), dy.size, cg._contiguous(dy),
         cache["y"], cache["E"], cache["phi"], D, np.int64(dy.size), _i32(n_out))
    dW = L.T @ D
    grads = {"W_r": dW} if W_i is None else {"W_r": cupy.ascontiguousarray(dW[:, :n_out]),
                                               "W_i": cupy.ascontiguousarray(dW[:, n_out:])}
    dx, gt = cupy.empty_like(x), cupy.empty_like(x)
    _run(dtype, "npu_dx<{c}>", x.size, x, g, dtype.type(eps), cg._contiguous(D @ Wc.T), dx, gt, np.int64(x.size),
         _i32(x.shape[1]))
    grads["g"] = gt.sum(axis=0)
    return dx, grads


def npu_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the NPU; see :func:`nalu_np.reference.npu_forward`.

    Parameters
    ----------
    params : dict
        ``W_r``, ``W_i`` (I, O) and the relevance gate ``g`` (I,), cupy.ndarray.
    x : cupy.ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict

    Notes
    -----
    ``r = g * (|x| + eps) + 1 - g``, ``k = pi * g * [x < 0]``,
    ``y = exp(log(r) @ W_r - k @ W_i) * cos(log(r) @ W_i + k @ W_r)``.
    """
    dtype = _check(x, params)
    return _npu_forward(params["W_r"], params["W_i"], params["g"], x, eps, dtype)


def npu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the NPU; see :func:`nalu_np.reference.npu_backward` for the formulas.

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        ``W_r``, ``W_i`` (I, O) and ``g`` (I,).
    """
    dtype = _check(cache["x"], params, dy)
    dx, grads = _npu_backward(params["W_i"], params["g"], cache, dy, eps, dtype)
    return dx, {k: grads[k] for k in params}


def realnpu_forward(params: Params, x: Any, eps: float = 1e-7) -> tuple[Any, dict[str, Any]]:
    """Forward pass of the RealNPU, ``y = exp(log(r) @ W_r) * cos(k @ W_r)``; see
    :func:`nalu_np.reference.realnpu_forward`.

    Parameters
    ----------
    params : dict
        ``W_r`` (I, O) and ``g`` (I,), cupy.ndarray.
    x : cupy.ndarray, shape (B, I)
    eps : float

    Returns
    -------
    y : cupy.ndarray, shape (B, O)
    cache : dict
    """
    dtype = _check(x, params)
    return _npu_forward(params["W_r"], None, params["g"], x, eps, dtype)


def realnpu_backward(params: Params, cache: dict[str, Any], dy: Any, eps: float = 1e-7) -> tuple[Any, Params]:
    """Backward pass of the RealNPU; see :func:`nalu_np.reference.realnpu_backward`.

    Returns
    -------
    dx : cupy.ndarray, shape (B, I)
    grads : dict
        ``W_r`` (I, O) and ``g`` (I,).
    """
    dtype = _check(cache["x"], params, dy)
    dx, grads = _npu_backward(None, params["g"], cache, dy, eps, dtype)
    return dx, {k: grads[k] for k in params}


# last: importing the backend module first runs its re-export of this module's (by now defined) functions
from . import cupy_gpu as cg  # noqa: E402
