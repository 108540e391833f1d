// iNALU, after common.cuh (its sign term is a product of nmu.cu).

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
