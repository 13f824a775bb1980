// The sequence log-prob sums of the preference family (sequenceLogProbs and
// its backward): kernels of kernels/preference.cu, its only includer, which
// launches them.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../native/ops/all.h"

namespace rk::cudaops {
namespace {

constexpr int kRowThreads = 128;
constexpr int64_t kMaxRowBlocks = int64_t{1} << 20;  // row kernels stride over the rest
constexpr unsigned kFullMask = 0xffffffffu;           // every lane of a warp (also the loss kernels')

template <class T>
__device__ T warpSum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(kFullMask, v, offset);
  return v;
}

// Sum over the block, returned to every thread; `warps` is reusable after it.
template <class T>
__device__ T blockSumAll(T v, T* warps) {
  v = warpSum(v);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = v;
  __syncthreads();
  T total = warps[0];
  for (int w = 1; w < kRowThreads / 32; ++w) total += warps[w];
  __syncthreads();
  return total;
}

// Rows are cut into quads of 4 steps (the last may be short). Thread j of a
// row's block takes quads j, j + kRowThreads, ..., a batch at a time with
// every load of the batch issued before any is used (the stores of the
// backward would otherwise hold each load back a memory round trip).
// kVec: 16-byte loads of four log-probs, 4-byte loads of their mask bytes,
// 16-byte stores (steps % 4 == 0, aligned arrays). The scalar path reads the
// same elements one at a time and adds them in the same order: the bits do
// not depend on the path.
constexpr int kForwardBatch = 4;   // quads in flight per thread: 20 registers
constexpr int kBackwardBatch = 8;  // mask words only

// Bit e set where step 4q + e is in the row and valid.
template <bool kVec>
__device__ __forceinline__ uint32_t quadMask(const uint8_t* m, int64_t steps, int64_t q) {
  const int64_t i = 4 * q;
  if (i >= steps) return 0;
  if (kVec) {
    const uint32_t w = __ldg(reinterpret_cast<const uint32_t*>(m + i));
    return (w & 0xffu ? 1u : 0u) | (w & 0xff00u ? 2u : 0u) | (w & 0xff0000u ? 4u : 0u) | (w & 0xff000000u ? 8u : 0u);
  }
  uint32_t bits = 0;
#pragma unroll
  for (int e = 0; e < 4; ++e) bits |= (i + e < steps && __ldg(m + i + e) != 0) ? 1u << e : 0u;
  return bits;
}

template <bool kVec>
__device__ __forceinline__ void quadValues(const float* x, int64_t steps, int64_t q, float (&v)[4]) {
  const int64_t i = 4 * q;
  if constexpr (kVec) {
    const float4 f = i < steps ? __ldg(reinterpret_cast<const float4*>(x + i)) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  } else {
#pragma unroll
    for (int e = 0; e < 4; ++e) v[e] = i + e < steps ? __ldg(x + i + e) : 0.0f;
  }
}

// One block per row (striding over rows beyond the grid); each thread sums
// its quads in order, then a fixed tree: a row's result depends on its own
// data only.
template <bool kVec>
__global__ void __launch_bounds__(kRowThreads) sequenceLogProbsKernel(SequenceLogProbsParams p) {
  __shared__ float sums[kRowThreads / 32];
  __shared__ long long counts[kRowThreads / 32];
  const int64_t quads = (p.steps + 3) / 4;
  for (int64_t b = blockIdx.x; b < p.rows; b += gridDim.x) {
    const float* x = p.tokenLogprobs + b * p.steps;
    const uint8_t* m = p.mask + b * p.steps;
    float sum = 0.0f;
    long long count = 0;
    for (int64_t q0 = threadIdx.x; q0 < quads; q0 += int64_t{kForwardBatch} * kRowThreads) {
      float v[kForwardBatch][4];
      uint32_t valid[kForwardBatch];
#pragma unroll
      for (int j = 0; j < kForwardBatch; ++j) {
        valid[j] = quadMask<kVec>(m, p.steps, q0 + j * kRowThreads);
        quadValues<kVec>(x, p.steps, q0 + j * kRowThreads, v[j]);
      }
#pragma unroll
      for (int j = 0; j < kForwardBatch; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const bool ok = (valid[j] >> e) & 1u;
          sum += ok ? v[j][e] : 0.0f;  // a select: NaN in masked-out positions stays out
          count += ok ? 1 : 0;
        }
    }
    sum = blockSumAll(sum, sums);
    count = blockSumAll(count, counts);
    if (threadIdx.x == 0) {
      float out = sum;
      if (p.reduce == SequenceReduce::Mean) out = count > 0 ? sum / static_cast<float>(count) : 0.0f;
      p.out[b] = out;
    }
  }
}

// (Launch bounds with a minimum of blocks: left to itself, ptxas chose 32
// registers on sm_80 and spilled 8 bytes.)
template <bool kVec>
__global__ void __launch_bounds__(kRowThreads, 8)
    sequenceLogProbsBackwardKernel(SequenceLogProbsBackwardParams p) {
  __shared__ long long counts[kRowThreads / 32];
  const int64_t quads = (p.steps + 3) / 4;
  for (int64_t b = blockIdx.x; b < p.rows; b += gridDim.x) {
    const uint8_t* m = p.mask + b * p.steps;
    float* out = p.out + b * p.steps;
    float scale = p.gradSequence[b];
    if (p.reduce == SequenceReduce::Mean) {
      long long count = 0;
      for (int64_t q0 = threadIdx.x; q0 < quads; q0 += int64_t{kBackwardBatch} * kRowThreads) {
        uint32_t valid[kBackwardBatch];
#pragma unroll
        for (int j = 0; j < kBackwardBatch; ++j) valid[j] = quadMask<kVec>(m, p.steps, q0 + j * kRowThreads);
#pragma unroll
        for (int j = 0; j < kBackwardBatch; ++j) count += __popc(valid[j]);
      }
      count = blockSumAll(count, counts);
      scale = count > 0 ? scale / static_cast<float>(count) : 0.0f;
    }
    for (int64_t q0 = threadIdx.x; q0 < quads; q0 += int64_t{kBackwardBatch} * kRowThreads) {
      uint32_t valid[kBackwardBatch];
#pragma unroll
      for (int j = 0; j < kBackwardBatch; ++j) valid[j] = quadMask<kVec>(m, p.steps, q0 + j * kRowThreads);
#pragma unroll
      for (int j = 0; j < kBackwardBatch; ++j) {
        const int64_t i = 4 * (q0 + j * kRowThreads);
        const uint32_t w = valid[j];
        if (i >= p.steps) continue;
        if (kVec) {
          *reinterpret_cast<float4*>(out + i) = make_float4(w & 1u ? scale : 0.0f, w & 2u ? scale : 0.0f,
                                                            w & 4u ? scale : 0.0f, w & 8u ? scale : 0.0f);
        } else {
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (i + e < p.steps) out[i + e] = (w >> e) & 1u ? scale : 0.0f;
        }
      }
    }
  }
}


unsigned rowBlocks(int64_t rows) { return static_cast<unsigned>(rows < kMaxRowBlocks ? rows : kMaxRowBlocks); }

}  // namespace
}  // namespace rk::cudaops
