// CUDA backend of the preference family (mirrors native/cpu/preference.cpp).
//
// preferenceLoss is one launch: every block computes the gradients of its
// kPairsPerBlock pairs (the gradient of a batch mean is dl/dd / B, no
// reduction needed) and the partial sums of the statistics; the last block
// to finish (threadfence + the launch's integer block counter) combines the
// partials in block order and resets the counter. No float atomics: the same
// inputs give the same bits every run.
#include <cuda_runtime.h>

#include <cstdint>

#include "../native/ops/all.h"
#include "common/preference.cuh"

namespace rk::cudaops {
namespace {

constexpr int kLossThreads = 256;
constexpr int kPairsPerThread = 4;
constexpr int kPairsPerBlock = kLossThreads * kPairsPerThread;
constexpr int kRowThreads = 128;
constexpr int64_t kMaxRowBlocks = int64_t{1} << 20;  // row kernels stride over the rest
constexpr unsigned kFullMask = 0xffffffffu;

struct LossPartial {
  double loss;    // sum of l
  double margin;  // sum of d
  double center;  // sum of (chosen + rejected)^2
  unsigned long long correct;
};

__device__ LossPartial addPartials(LossPartial a, const LossPartial& b) {
  a.loss += b.loss;
  a.margin += b.margin;
  a.center += b.center;
  a.correct += b.correct;
  return a;
}

// Fixed shuffle tree, then the warps' results in warp order: deterministic.
// The total is valid in thread 0.
__device__ LossPartial blockSum(LossPartial v, LossPartial* warps) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    v.loss += __shfl_down_sync(kFullMask, v.loss, offset);
    v.margin += __shfl_down_sync(kFullMask, v.margin, offset);
    v.center += __shfl_down_sync(kFullMask, v.center, offset);
    v.correct += __shfl_down_sync(kFullMask, v.correct, offset);
  }
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < kLossThreads / 32; ++w) v = addPartials(v, warps[w]);
  return v;
}

__device__ void writeStats(const PreferenceLossParams& p, const LossPartial& t) {
  const double n = static_cast<double>(p.count);
  double loss = t.loss / n;
  if (p.centerCoef > 0.0f) loss += p.centerCoef * (t.center / n);
  *p.loss = static_cast<float>(loss);
  *p.accuracy = static_cast<float>(static_cast<double>(t.correct) / n);
  *p.meanMargin = static_cast<float>(t.margin / n);
}

// partials: [gridDim.x] and done: a counter that is 0 at the launch and is
// 0 again at the end; both unused when gridDim.x == 1.
template <PreferenceKind Kind>
__global__ void __launch_bounds__(kLossThreads)
    preferenceLossKernel(PreferenceLossParams p, LossPartial* partials, unsigned* done) {
  __shared__ LossPartial warps[kLossThreads / 32];
  __shared__ bool lastBlock;
  const float invCount = 1.0f / static_cast<float>(p.count);
  const float halfInvBeta = 0.5f / p.beta;
  const float centerScale = 2.0f * p.centerCoef * invCount;

  // Every load of this thread's pairs first, then the math and the stores:
  // the outputs may alias the inputs as far as the compiler knows, so loads
  // interleaved with stores would wait for one memory round trip per pair.
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kPairsPerBlock + threadIdx.x;
  float c[kPairsPerThread], r[kPairsPerThread], d[kPairsPerThread], m[kPairsPerThread];
#pragma unroll
  for (int k = 0; k < kPairsPerThread; ++k) {
    const int64_t i = base + static_cast<int64_t>(k) * kLossThreads;
    const bool in = i < p.count;
    c[k] = in ? __ldg(p.chosen + i) : 0.0f;
    r[k] = in ? __ldg(p.rejected + i) : 0.0f;
    d[k] = in && p.refChosen ? preference::pairDifference(c[k], r[k], __ldg(p.refChosen + i), __ldg(p.refRejected + i))
                             : preference::pairDifference(c[k], r[k]);
    m[k] = in && p.margin ? __ldg(p.margin + i) : 0.0f;
  }

  LossPartial acc = {0.0, 0.0, 0.0, 0ull};
#pragma unroll
  for (int k = 0; k < kPairsPerThread; ++k) {
    const int64_t i = base + static_cast<int64_t>(k) * kLossThreads;
    if (i >= p.count) break;
    preference::PairTerms t = preference::pairTerms(Kind, d[k], m[k], p.beta, halfInvBeta, p.labelSmoothing);
    float g = t.slope * invCount;
    float sum = c[k] + r[k];
    float centerRaw = centerScale * sum;  // as on cpu: 0 * inf stays out when there is no centering
    float center = centerRaw == centerRaw ? centerRaw : 0.0f;
    p.gradChosen[i] = g + center;
    p.gradRejected[i] = center - g;
    acc.loss += t.loss;
    acc.margin += d[k];
    acc.center += static_cast<double>(sum) * sum;  // used only when centerCoef > 0
    acc.correct += d[k] > 0.0f ? 1ull : 0ull;
  }

  LossPartial block = blockSum(acc, warps);
  if (gridDim.x == 1) {
    if (threadIdx.x == 0) writeStats(p, block);
    return;
  }
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = block;
    __threadfence();  // the partial is visible device-wide before the count says so
    lastBlock = atomicAdd(done, 1u) == gridDim.x - 1;
    __threadfence();
  }
  __syncthreads();
  if (!lastBlock) return;
  if (threadIdx.x == 0) *done = 0;  // every other block has counted itself: ready for the next launch

  // The last block: thread j sums partials j, j + kLossThreads, ... in order
  // (L2 loads: other blocks wrote them), then the same fixed tree.
  LossPartial total = {0.0, 0.0, 0.0, 0ull};
  for (unsigned j = threadIdx.x; j < gridDim.x; j += kLossThreads) {
    LossPartial q;
    q.loss = __ldcg(&partials[j].loss);
    q.margin = __ldcg(&partials[j].margin);
    q.center = __ldcg(&partials[j].center);
    q.correct = __ldcg(&partials[j].correct);
    total = addPartials(total, q);
  }
  total = blockSum(total, warps);
  if (threadIdx.x == 0) writeStats(p, total);
}

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

// One block per row (striding over rows beyond the grid). Each thread sums
// the row's positions t = threadIdx.x + k * kRowThreads in order, then a
// fixed tree: a row's result depends on its own data only.
__global__ void __launch_bounds__(kRowThreads) sequenceLogProbsKernel(SequenceLogProbsParams p) {
  __shared__ float sums[kRowThreads / 32];
  __shared__ long long counts[kRowThreads / 32];
  for (int64_t b = blockIdx.x; b < p.rows; b += gridDim.x) {
    const float* x = p.tokenLogprobs + b * p.steps;
    const uint8_t* m = p.mask + b * p.steps;
    float sum = 0.0f;
    long long count = 0;
#pragma unroll 4
    for (int64_t t = threadIdx.x; t < p.steps; t += kRowThreads) {
      bool valid = m[t] != 0;
      sum += valid ? x[t] : 0.0f;  // a select: NaN in masked-out positions stays out
      count += valid ? 1 : 0;
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

__global__ void __launch_bounds__(kRowThreads)
    sequenceLogProbsBackwardKernel(SequenceLogProbsBackwardParams p) {
  __shared__ long long counts[kRowThreads / 32];
  for (int64_t b = blockIdx.x; b < p.rows; b += gridDim.x) {
    const uint8_t* m = p.mask + b * p.steps;
    float* out = p.out + b * p.steps;
    float scale = p.gradSequence[b];
    if (p.reduce == SequenceReduce::Mean) {
      long long count = 0;
      for (int64_t t = threadIdx.x; t < p.steps; t += kRowThreads) count += m[t] != 0 ? 1 : 0;
      count = blockSumAll(count, counts);
      scale = count > 0 ? scale / static_cast<float>(count) : 0.0f;
    }
    for (int64_t t = threadIdx.x; t < p.steps; t += kRowThreads) out[t] = m[t] != 0 ? scale : 0.0f;
  }
}

unsigned rowBlocks(int64_t rows) { return static_cast<unsigned>(rows < kMaxRowBlocks ? rows : kMaxRowBlocks); }

}  // namespace

int preferenceLoss(const PreferenceLossParams& p, const CudaLaunch& launch) {
  auto stream = static_cast<cudaStream_t>(launch.stream);
  const int64_t blocks = (p.count + kPairsPerBlock - 1) / kPairsPerBlock;
  if (blocks < 1 || blocks > INT32_MAX) return cudaErrorInvalidValue;  // the binding allows 1 <= count < 2^53
  LossPartial* partials = nullptr;
  if (blocks > 1) {
    partials = static_cast<LossPartial*>(launch.scratch(launch.owner, static_cast<size_t>(blocks) * sizeof(LossPartial)));
    if (!partials) return cudaErrorMemoryAllocation;
  }
  unsigned* done = launch.blockCounter;
  const dim3 grid(static_cast<unsigned>(blocks));
  switch (p.kind) {
    case PreferenceKind::Hinge:
      preferenceLossKernel<PreferenceKind::Hinge><<<grid, kLossThreads, 0, stream>>>(p, partials, done);
      break;
    case PreferenceKind::Ipo:
      preferenceLossKernel<PreferenceKind::Ipo><<<grid, kLossThreads, 0, stream>>>(p, partials, done);
      break;
    default:
      preferenceLossKernel<PreferenceKind::Sigmoid><<<grid, kLossThreads, 0, stream>>>(p, partials, done);
      break;
  }
  return cudaGetLastError();
}

int sequenceLogProbs(const SequenceLogProbsParams& p, const CudaLaunch& launch) {
  if (p.rows <= 0) return cudaSuccess;
  auto stream = static_cast<cudaStream_t>(launch.stream);
  sequenceLogProbsKernel<<<rowBlocks(p.rows), kRowThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

int sequenceLogProbsBackward(const SequenceLogProbsBackwardParams& p, const CudaLaunch& launch) {
  if (p.rows <= 0) return cudaSuccess;
  auto stream = static_cast<cudaStream_t>(launch.stream);
  sequenceLogProbsBackwardKernel<<<rowBlocks(p.rows), kRowThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace rk::cudaops
