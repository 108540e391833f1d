// Host emulation of the CUDA built-ins used by the CUDA sources of nalu_np.kernels.cupy, for tests without a GPU.
// Every thread of a block is a std::thread; blocks run one after the other; __syncthreads is a barrier of the
// block and __shfl_down_sync exchanges values through a buffer with a barrier per warp (lanes beyond the warp
// keep their own value, as on the device).  Only x dimensions are used by the kernels under test.
#ifndef NALU_NP_CUDA_HOST_H
#define NALU_NP_CUDA_HOST_H
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using std::exp;
using std::fabs;
using std::log;
using std::tanh;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

struct emu_uint3 {
    unsigned x = 0, y = 0, z = 0;
};
inline thread_local emu_uint3 threadIdx, blockIdx;
inline emu_uint3 blockDim, gridDim;

namespace emu {
inline std::barrier<>* block_barrier = nullptr;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline std::vector<double> exchange;  // one slot per thread of the block, wide enough for float and double

template <typename... A, std::size_t... I>
void call(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}

template <typename... A>
void launch(void (*f)(A...), unsigned grid, unsigned block, void** args) {
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    exchange.assign(block, 0.0);
    warp_barriers.clear();
    for (unsigned w = 0; w * 32 < block; ++w)
        warp_barriers.emplace_back(new std::barrier<>(std::min(32u, block - 32 * w)));
    for (unsigned b = 0; b < grid; ++b) {
        std::barrier<> bar(block);
        block_barrier = &bar;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; ++t)
            threads.emplace_back([=] {
                blockIdx = {b, 0, 0};
                threadIdx = {t, 0, 0};
                call(f, args, std::index_sequence_for<A...>{});
            });
        for (auto& th : threads) th.join();
    }
}
}  // namespace emu

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }

template <typename T> T __shfl_down_sync(unsigned, T v, int offset) {
    const unsigned tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    std::memcpy(&emu::exchange[tid], &v, sizeof(T));
    emu::warp_barriers[warp]->arrive_and_wait();
    T r = v;
    if (lane + offset < 32 && tid + offset < blockDim.x) std::memcpy(&r, &emu::exchange[tid + offset], sizeof(T));
    emu::warp_barriers[warp]->arrive_and_wait();
    return r;
}

#endif  // NALU_NP_CUDA_HOST_H
