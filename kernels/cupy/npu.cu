// NPU (IM = true) and RealNPU, after common.cuh: Q = [log r; k] @ [W_r | W_i], rows of QW = (IM ? 2 : 1) * NO.

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
