// Products over the inputs, after common.cuh: the NMU (F = 0) and the iNALU sign term (F = 1).

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
