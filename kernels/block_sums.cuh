// Block-wide sums in a fixed order, for kernels whose results must be the
// same bits on every run and every GPU (kernels/ppo.cu, the whiten stats in
// kernels/advantages.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

namespace rk::cudaops {

// A warp's sum of a 32-bit integer, in every lane: one instruction from
// sm_80 on (integers: any order gives the same sum), a shuffle tree before.
__device__ __forceinline__ int32_t warpCount(int32_t v) {
#if __CUDA_ARCH__ >= 800
  return __reduce_add_sync(0xffffffffu, v);
#else
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
#endif
}

// Sums of N values over a block of Threads threads, the same in every
// thread: each value down a shuffle tree per warp (32-bit integers: warpCount),
// then the warps' sums in warp order. The N sums share their shuffle rounds
// and barriers: one reduction's latency, not N in a row. Every thread of the
// block must call it.
template <int Threads, class T, int N>
__device__ void blockSums(T (&v)[N]) {
  constexpr int kWarps = Threads / 32;
  static_assert(Threads % 32 == 0 && Threads <= 1024, "whole warps, at most a block");
  __shared__ T warpSums[N][kWarps];
  if constexpr (std::is_same_v<T, int32_t>) {
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = warpCount(v[k]);
  } else {
    for (int o = 16; o > 0; o >>= 1)
#pragma unroll
      for (int k = 0; k < N; ++k) v[k] += __shfl_down_sync(0xffffffffu, v[k], o);
  }
  __syncthreads();  // the previous call's readers are done with warpSums
  if (threadIdx.x % 32 == 0)
#pragma unroll
    for (int k = 0; k < N; ++k) warpSums[k][threadIdx.x / 32] = v[k];
  __syncthreads();
#pragma unroll
  for (int k = 0; k < N; ++k) {
    T total = warpSums[k][0];
    for (int w = 1; w < kWarps; ++w) total += warpSums[k][w];
    v[k] = total;
  }
}

}  // namespace rk::cudaops
