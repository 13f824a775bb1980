// CUDA backend of the preference family (mirrors native/cpu/preference.cpp).
//
// preferenceLoss is one launch: every block computes the gradients of its
// pairs (the gradient of a batch mean is dl/dd / B, no reduction needed) and
// the partial sums of the statistics; the last block to finish (counted on
// the launch's integer block counter, kernels/arrival.cuh) reads the
// partials from global memory, combines them in block order and resets the
// counter. No float atomics: the same inputs give the same bits every run.
// (On an H100 a thread block cluster combining through distributed shared
// memory took 7.1 us at 16 K pairs against 6.0 us for this, and fewer,
// larger blocks were slower still: bench/results/gpu/2026-11-27-h100.md.)
#include <cuda_runtime.h>

#include <cstdint>

#include "../native/ops/all.h"
#include "arrival.cuh"
#include "common/preference.cuh"
#include "launch.cuh"
#include "preference_sequence.cuh"
#include "tuning.cuh"

namespace rk::cudaops {
namespace {

constexpr int kLossThreads = RK_PREF_THREADS;  // kernels/tuning.cuh
constexpr int kPairsPerThread = RK_PREF_PAIRS_PER_THREAD;  // kernels/tuning.cuh
constexpr int kPairsPerBlock = kLossThreads * kPairsPerThread;

struct LossPartial {
  double loss;    // sum of l
  double margin;  // sum of d
  double center;  // sum of (chosen + rejected)^2
  double chosen;  // sum of the chosen side: chosen, or chosen - refChosen
  double rejected;
  unsigned long long correct;
};

__device__ LossPartial addPartials(LossPartial a, const LossPartial& b) {
  a.loss += b.loss;
  a.margin += b.margin;
  a.center += b.center;
  a.chosen += b.chosen;
  a.rejected += b.rejected;
  a.correct += b.correct;
  return a;
}

// Fixed shuffle tree over a warp: the total in lane 0.
__device__ LossPartial warpSum(LossPartial v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    v.loss += __shfl_down_sync(kFullMask, v.loss, offset);
    v.margin += __shfl_down_sync(kFullMask, v.margin, offset);
    v.center += __shfl_down_sync(kFullMask, v.center, offset);
    v.chosen += __shfl_down_sync(kFullMask, v.chosen, offset);
    v.rejected += __shfl_down_sync(kFullMask, v.rejected, offset);
    v.correct += __shfl_down_sync(kFullMask, v.correct, offset);
  }
  return v;
}

// The warp tree, then the warps' results in warp order: deterministic.
// The total is valid in thread 0.
template <int Threads>
__device__ LossPartial blockSum(LossPartial v, LossPartial* warps) {
  v = warpSum(v);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < Threads / 32; ++w) v = addPartials(v, warps[w]);
  return v;
}

// The loss's means divide by the given normalizer, or the pair count.
__device__ double lossDenominator(const PreferenceLossParams& p) {
  return p.normalizer > 0 ? p.normalizer : static_cast<double>(p.count);
}

__device__ void writeStats(const PreferenceLossParams& p, const LossPartial& t) {
  const double n = static_cast<double>(p.count), N = lossDenominator(p);
  double loss = t.loss / N;
  if (p.centerCoef > 0.0f) loss += p.centerCoef * (t.center / N);
  *p.loss = static_cast<float>(loss);
  *p.accuracy = static_cast<float>(static_cast<double>(t.correct) / n);
  *p.meanMargin = static_cast<float>(t.margin / n);
  const double rewardScale = p.refChosen ? p.beta : 1.0;  // DPO's implicit reward is beta * (log pi - log ref)
  *p.chosenReward = static_cast<float>(rewardScale * (t.chosen / n));
  *p.rejectedReward = static_cast<float>(rewardScale * (t.rejected / n));
}

// The gradients of this thread's pairs (block b's thread j: pairs
// b * Threads * kPairsPerThread + j + k * Threads), and their sums.
template <PreferenceKind Kind, int Threads>
__device__ LossPartial threadPairs(const PreferenceLossParams& p) {
  const float invCount = 1.0f / static_cast<float>(lossDenominator(p));
  const float halfInvBeta = 0.5f / p.beta;
  const float centerScale = 2.0f * p.centerCoef * invCount;

  // Every load of this thread's pairs first, then the math and the stores:
  // the outputs may alias the inputs as far as the compiler knows, so loads
  // interleaved with stores would wait for one memory round trip per pair.
  const int64_t base = static_cast<int64_t>(blockIdx.x) * Threads * kPairsPerThread + threadIdx.x;
  // cs / rs: each side's term of d (the reward sums), as pairDifference forms them.
  float c[kPairsPerThread], r[kPairsPerThread], cs[kPairsPerThread], rs[kPairsPerThread], d[kPairsPerThread],
      m[kPairsPerThread];
#pragma unroll
  for (int k = 0; k < kPairsPerThread; ++k) {
    const int64_t i = base + static_cast<int64_t>(k) * Threads;
    const bool in = i < p.count;
    c[k] = in ? __ldg(p.chosen + i) : 0.0f;
    r[k] = in ? __ldg(p.rejected + i) : 0.0f;
    const bool dpo = in && p.refChosen;
    const float rc = dpo ? __ldg(p.refChosen + i) : 0.0f, rr = dpo ? __ldg(p.refRejected + i) : 0.0f;
    d[k] = dpo ? preference::pairDifference(c[k], r[k], rc, rr) : preference::pairDifference(c[k], r[k]);
    cs[k] = dpo ? c[k] - rc : c[k];
    rs[k] = dpo ? r[k] - rr : r[k];
    m[k] = in && p.margin ? __ldg(p.margin + i) : 0.0f;
  }

  LossPartial acc = {0.0, 0.0, 0.0, 0.0, 0.0, 0ull};
#pragma unroll
  for (int k = 0; k < kPairsPerThread; ++k) {
    const int64_t i = base + static_cast<int64_t>(k) * Threads;
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
    acc.chosen += cs[k];
    acc.rejected += rs[k];
    acc.center += static_cast<double>(sum) * sum;  // used only when centerCoef > 0
    acc.correct += d[k] > 0.0f ? 1ull : 0ull;
  }
  return acc;
}

// Partial j, written by another block of this launch: from L2.
__device__ LossPartial loadPartial(const LossPartial* partials, unsigned j) {
  return LossPartial{__ldcg(&partials[j].loss),   __ldcg(&partials[j].margin),   __ldcg(&partials[j].center),
                     __ldcg(&partials[j].chosen), __ldcg(&partials[j].rejected), __ldcg(&partials[j].correct)};
}

// partials: [gridDim.x] and done: a counter that is 0 at the launch and is
// 0 again at the end; both unused when gridDim.x == 1.
template <PreferenceKind Kind>
__global__ void __launch_bounds__(kLossThreads)
    preferenceLossKernel(PreferenceLossParams p, LossPartial* partials, unsigned* done) {
  __shared__ LossPartial warps[kLossThreads / 32];
  __shared__ bool lastBlock;
  LossPartial block = blockSum<kLossThreads>(threadPairs<Kind, kLossThreads>(p), warps);
  if (gridDim.x == 1) {
    if (threadIdx.x == 0) writeStats(p, block);
    return;
  }
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = block;
    lastBlock = arriveRelease(done) == gridDim.x - 1;  // kernels/arrival.cuh
    if (lastBlock) acquireArrivals();
  }
  __syncthreads();
  if (!lastBlock) return;
  if (threadIdx.x == 0) *done = 0;  // every other block has counted itself: ready for the next launch

  // The last block: thread j sums partials j, j + kLossThreads, ... in order
  // (L2 loads: other blocks wrote them), then the same fixed tree.
  // RK_PREF_WARP_COMBINE (kernels/tuning.cuh): up to 32 * kLanePartials
  // partials in the first warp alone, its loads all issued before the sums,
  // and no barrier.
  constexpr int kLanePartials = 4;
  if (RK_PREF_WARP_COMBINE && gridDim.x <= 32 * kLanePartials) {
    if (threadIdx.x >= 32) return;
    LossPartial q[kLanePartials];
#pragma unroll
    for (int k = 0; k < kLanePartials; ++k) {
      const unsigned j = threadIdx.x + 32 * k;
      q[k] = j < gridDim.x ? loadPartial(partials, j) : LossPartial{0.0, 0.0, 0.0, 0.0, 0.0, 0ull};
    }
    LossPartial total = q[0];
#pragma unroll
    for (int k = 1; k < kLanePartials; ++k) total = addPartials(total, q[k]);
    total = warpSum(total);
    if (threadIdx.x == 0) writeStats(p, total);
    return;
  }
  LossPartial total = {0.0, 0.0, 0.0, 0.0, 0.0, 0ull};
  for (unsigned j = threadIdx.x; j < gridDim.x; j += kLossThreads) total = addPartials(total, loadPartial(partials, j));
  total = blockSum<kLossThreads>(total, warps);
  if (threadIdx.x == 0) writeStats(p, total);
}

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
  if (p.steps % 4 == 0 && aligned(p.tokenLogprobs, 16) && aligned(p.mask, 4))
    sequenceLogProbsKernel<true><<<rowBlocks(p.rows), kRowThreads, 0, stream>>>(p);
  else
    sequenceLogProbsKernel<false><<<rowBlocks(p.rows), kRowThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

int sequenceLogProbsBackward(const SequenceLogProbsBackwardParams& p, const CudaLaunch& launch) {
  if (p.rows <= 0) return cudaSuccess;
  auto stream = static_cast<cudaStream_t>(launch.stream);
  if (p.steps % 4 == 0 && aligned(p.out, 16) && aligned(p.mask, 4))
    sequenceLogProbsBackwardKernel<true><<<rowBlocks(p.rows), kRowThreads, 0, stream>>>(p);
  else
    sequenceLogProbsBackwardKernel<false><<<rowBlocks(p.rows), kRowThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace rk::cudaops
