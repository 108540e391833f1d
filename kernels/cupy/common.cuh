// Helpers of every CUDA C++ source of the cupy backend; nalu_np.kernels.cupy._common puts this file before
// each family's .cu when it compiles one (cupy.RawModule, NVRTC, at first use).
//
// T is float or double; arrays are C-contiguous; n counts rows or elements (64-bit).  No fast-math: exp
// overflows to inf as IEEE says, and the sigmoid is the stable one of nalu_np.reference.  Reductions never use
// atomics: per-block partial sums and a fixed-order second pass make the weight gradients bitwise reproducible.

#define GRID_STRIDE(k, n) \
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < (n); \
         k += (long long)blockDim.x * gridDim.x)

template <typename T> __device__ __forceinline__ T sigmoid_(T h) {
    T e = exp(-fabs(h));
    return (h >= T(0) ? T(1) : e) / (T(1) + e);
}

template <typename T> __device__ __forceinline__ T sign_(T v) {
    return v > T(0) ? T(1) : (v < T(0) ? T(-1) : v);
}
