// NAC, NACMul and NALU (the unit U: 0 NAC, 1 NACMul, 2 NALU, as in nalu_np.kernels.cuda_common), after
// common.cuh.  The fused per-row kernels are templated on the layer size NI, NO as well; the general path's
// epilogues and the second pass of the weight gradients are not.

// d log(|v| + eps) / dv = sign(v) / (|v| + eps); 0 at the kink v = 0, NaN for NaN
template <typename T> __device__ __forceinline__ T log_grad(T v, T eps) {
    return v > T(0) ? T(1) / (v + eps) : (v < T(0) ? T(-1) / (eps - v) : v);
}

template <int U, typename T> __device__ __forceinline__ T output_(T a, T m, T g) {
    if (U == 0) return a;
    if (U == 1) return m;
    return g * a + (T(1) - g) * m;
}

// gradients of the additive path (da), of the exponent of the multiplicative path (dz), of the gate (dh)
template <int U, typename T>
__device__ __forceinline__ void path_grads(T d, T a, T m, T g, T& da, T& dz, T& dh) {
    if (U == 0) { da = d; dz = T(0); dh = T(0); return; }
    if (U == 1) { da = T(0); dz = d * m; dh = T(0); return; }
    da = d * g;
    dz = d * (T(1) - g) * m;
    dh = d * (a - m) * g * (T(1) - g);
}

// sum of v over the block (blockDim.x a multiple of 32), in a fixed order; the total is in thread 0
template <typename T> __device__ T block_sum(T v) {
    __shared__ T warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    v = (threadIdx.x < (blockDim.x >> 5)) ? warp_sums[threadIdx.x] : T(0);
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();  // warp_sums is reused by the next call
    return v;
}

// W = tanh(W_hat) * sigma(M_hat) and the factors of its gradient, over n weights
template <typename T>
__global__ void weight(const T* __restrict__ W_hat, const T* __restrict__ M_hat, T* __restrict__ W,
                       T* __restrict__ t, T* __restrict__ s, long long n) {
    GRID_STRIDE(k, n) {
        const T tk = tanh(W_hat[k]), sk = sigmoid_(M_hat[k]);
        t[k] = tk;
        s[k] = sk;
        W[k] = tk * sk;
    }
}

// ---- fused per-row kernels: one thread owns whole rows ------------------------------------------------

template <typename T, int U, int NI, int NO>
__device__ __forceinline__ void load_row(const T* __restrict__ x, long long b, T eps, T* xl, T* ll) {
#pragma unroll
    for (int i = 0; i < NI; ++i) {
        xl[i] = x[b * NI + i];
        if (U != 0) ll[i] = log(fabs(xl[i]) + eps);
    }
}

// the weights of a small layer in registers: read once per thread, not once per row
template <typename T, int U, int NI, int NO> struct RowWeights {
    T a[NI * NO], m[NI * NO], g[NI * NO];
    __device__ __forceinline__ RowWeights(const T* __restrict__ Wa, const T* __restrict__ Wm,
                                          const T* __restrict__ G) {
#pragma unroll
        for (int k = 0; k < NI * NO; ++k) {
            if (U != 1) a[k] = Wa[k];
            if (U != 0) m[k] = Wm[k];
            if (U == 2) g[k] = G[k];
        }
    }
};

template <typename T, int U, int NI, int NO>
__device__ __forceinline__ void row_paths(const T* xl, const T* ll, const RowWeights<T, U, NI, NO>& w, int j,
                                          T& a, T& m, T& g) {
    T z = T(0), h = T(0);
    a = T(0);
#pragma unroll
    for (int i = 0; i < NI; ++i) {
        if (U != 1) a += xl[i] * w.a[i * NO + j];
        if (U != 0) z += ll[i] * w.m[i * NO + j];
        if (U == 2) h += xl[i] * w.g[i * NO + j];
    }
    m = (U != 0) ? exp(z) : T(0);
    g = (U == 2) ? sigmoid_(h) : T(0);
}

template <typename T, int U, int NI, int NO>
__global__ void row_forward(const T* __restrict__ x, const T* __restrict__ Wa, const T* __restrict__ Wm,
                            const T* __restrict__ G, T eps, T* __restrict__ y, long long n) {
    const RowWeights<T, U, NI, NO> w(Wa, Wm, G);
    T xl[NI], ll[NI];
    GRID_STRIDE(b, n) {
        load_row<T, U, NI, NO>(x, b, eps, xl, ll);
#pragma unroll
        for (int j = 0; j < NO; ++j) {
            T a, m, g;
            row_paths<T, U, NI, NO>(xl, ll, w, j, a, m, g);
            y[b * NO + j] = output_<U>(a, m, g);
        }
    }
}

// dx per row; the weight-gradient sums of the block go to part[blockIdx.x * NS + k], additive sums first,
// then multiplicative, then gate, each of NI * NO entries (i, j) at i * NO + j
template <typename T, int U, int NI, int NO>
__global__ void row_backward(const T* __restrict__ x, const T* __restrict__ dy, const T* __restrict__ Wa,
                             const T* __restrict__ Wm, const T* __restrict__ G, T eps, T* __restrict__ dx,
                             T* __restrict__ part, long long n) {
    constexpr int K = NI * NO;
    constexpr int OFF_M = (U != 1) ? K : 0;
    constexpr int OFF_G = OFF_M + ((U != 0) ? K : 0);
    constexpr int NS = OFF_G + ((U == 2) ? K : 0);
    const RowWeights<T, U, NI, NO> w(Wa, Wm, G);
    T acc[NS], xl[NI], ll[NI], dxa[NI], dxm[NI];
#pragma unroll
    for (int k = 0; k < NS; ++k) acc[k] = T(0);
    GRID_STRIDE(b, n) {
        load_row<T, U, NI, NO>(x, b, eps, xl, ll);
#pragma unroll
        for (int i = 0; i < NI; ++i) dxa[i] = dxm[i] = T(0);
#pragma unroll
        for (int j = 0; j < NO; ++j) {
            T a, m, g, da, dz, dh;
            row_paths<T, U, NI, NO>(xl, ll, w, j, a, m, g);
            path_grads<U>(dy[b * NO + j], a, m, g, da, dz, dh);
#pragma unroll
            for (int i = 0; i < NI; ++i) {
                const int k = i * NO + j;
                if (U != 1) { dxa[i] += da * w.a[k]; acc[k] += xl[i] * da; }
                if (U != 0) { dxm[i] += dz * w.m[k]; acc[OFF_M + k] += ll[i] * dz; }
                if (U == 2) { dxa[i] += dh * w.g[k]; acc[OFF_G + k] += xl[i] * dh; }
            }
        }
#pragma unroll
        for (int i = 0; i < NI; ++i)
            dx[b * NI + i] = (U != 0) ? dxa[i] + dxm[i] * log_grad(xl[i], eps) : dxa[i];
    }
#pragma unroll
    for (int k = 0; k < NS; ++k) {
        const T s = block_sum(acc[k]);
        if (threadIdx.x == 0) part[blockIdx.x * NS + k] = s;
    }
}

// second pass: sums S_c[p * part_stride + i * ld_c + j] over p = 0 .. parts-1 in order, then the chain rule
// through W = tanh(W_hat) sigma(M_hat): dW = S_a + S_m (NAC, NACMul, shared NALU) or S_a and S_m apart
// (SEP, separate NALU weights); dG = S_g
template <typename T, int U, bool SEP>
__global__ void finish(int parts, long long part_stride, const T* __restrict__ Sa, int lda,
                       const T* __restrict__ Sm, int ldm, const T* __restrict__ Sg, int ldg,
                       const T* __restrict__ ta, const T* __restrict__ sa, const T* __restrict__ tm,
                       const T* __restrict__ sm, T* __restrict__ gwa, T* __restrict__ gma, T* __restrict__ gwm,
                       T* __restrict__ gmm, T* __restrict__ gG, long long K, int NO) {
    GRID_STRIDE(k, K) {
        const long long i = k / NO, j = k - i * NO;
        T s_a = T(0), s_m = T(0), s_g = T(0);
        for (int p = 0; p < parts; ++p) {
            if (U != 1) s_a += Sa[p * part_stride + i * lda + j];
            if (U != 0) s_m += Sm[p * part_stride + i * ldm + j];
            if (U == 2) s_g += Sg[p * part_stride + i * ldg + j];
        }
        const T dw = SEP ? s_a : s_a + s_m;
        T t = ta[k], s = sa[k];
        gwa[k] = dw * (T(1) - t * t) * s;
        gma[k] = dw * t * s * (T(1) - s);
        if (SEP) {
            t = tm[k];
            s = sm[k];
            gwm[k] = s_m * (T(1) - t * t) * s;
            gmm[k] = s_m * t * s * (T(1) - s);
        }
        if (U == 2) gG[k] = s_g;
    }
}

// ---- epilogues of the cuBLAS (general) path -----------------------------------------------------------

template <typename T> __global__ void log_abs(const T* __restrict__ x, T eps, T* __restrict__ l, long long n) {
    GRID_STRIDE(k, n) l[k] = log(fabs(x[k]) + eps);
}

// NALU forward: P = x @ [W_a | G] (rows of 2 NO: a then h), z = l @ W_m; y = g a + (1 - g) m, and in place
// for backward: h -> g in P, z -> m
template <typename T>
__global__ void nalu_epilogue(T* __restrict__ P, T* __restrict__ z, T* __restrict__ y, long long n, int NO) {
    GRID_STRIDE(k, n) {
        const long long b = k / NO, j = k - b * NO;
        T* row = P + b * 2 * NO;
        const T a = row[j], g = sigmoid_(row[NO + j]), m = exp(z[k]);
        y[k] = output_<2>(a, m, g);
        row[NO + j] = g;
        z[k] = m;
    }
}

// NALU backward, elementwise: D = [da | dh] (rows of 2 NO) and dz, from dy, P = [a | g] and m
template <typename T>
__global__ void nalu_grads(const T* __restrict__ dy, const T* __restrict__ P, const T* __restrict__ m,
                           T* __restrict__ D, T* __restrict__ dz, long long n, int NO) {
    GRID_STRIDE(k, n) {
        const long long b = k / NO, j = k - b * NO;
        T da, dh;
        path_grads<2>(dy[k], P[b * 2 * NO + j], m[k], P[b * 2 * NO + NO + j], da, dz[k], dh);
        D[b * 2 * NO + j] = da;
        D[b * 2 * NO + NO + j] = dh;
    }
}

// dz = dy * y for NACMul (y = exp(l @ W) = m)
template <typename T>
__global__ void nacmul_grads(const T* __restrict__ dy, const T* __restrict__ y, T* __restrict__ dz, long long n) {
    GRID_STRIDE(k, n) {
        T da, dh;
        path_grads<1>(dy[k], T(0), y[k], T(0), da, dz[k], dh);
    }
}

// dx = r + r_log * log_grad(x)  (r absent for NACMul)
template <typename T, bool HAS_R>
__global__ void dx_combine(const T* __restrict__ r, const T* __restrict__ r_log, const T* __restrict__ x, T eps,
                           T* __restrict__ dx, long long n) {
    GRID_STRIDE(k, n) {
        const T v = r_log[k] * log_grad(x[k], eps);
        dx[k] = HAS_R ? r[k] + v : v;
    }
}

// y = exp(z) in place (NACMul forward)
template <typename T> __global__ void exp_inplace(T* __restrict__ z, long long n) {
    GRID_STRIDE(k, n) z[k] = exp(z[k]);
}
