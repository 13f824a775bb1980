// CUDA backend of the preference family (mirrors native/cpu/preference.cpp).
//
// preferenceLoss is one launch: every block computes the gradients of its
// pairs (the gradient of a batch mean is dl/dd / B, no reduction needed) and
// the partial sums of the statistics, which one block then combines in block
// order. How the partials meet:
//  - up to kClusterMaxPairs pairs on a GPU with thread block clusters
//    (sm_90 and newer): the blocks form one cluster; each leaves its sums in
//    its shared memory, and after the cluster barrier rank 0 reads them
//    there (distributed shared memory). No global memory round trip: at 16 K
//    pairs that chain (fence, atomic, L2 reads) was a good part of a launch
//    that is mostly latency.
//  - otherwise the last block to finish (threadfence + the launch's integer
//    block counter) reads them from global memory and resets the counter.
// No float atomics: the same inputs give the same bits every run.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <atomic>

#include <cstdint>

#include "../native/ops/all.h"
#include "common/preference.cuh"
#include "resident.cuh"

namespace rk::cudaops {
namespace {

constexpr int kLossThreads = 256;
constexpr int kPairsPerThread = 4;
constexpr int kPairsPerBlock = kLossThreads * kPairsPerThread;
constexpr int kClusterThreads = 512;
constexpr int kClusterBlocks = 8;  // the portable cluster size
constexpr int64_t kClusterMaxPairs = int64_t{kClusterBlocks} * kClusterThreads * kPairsPerThread;  // 16384
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
template <int Threads>
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
    for (int w = 1; w < Threads / 32; ++w) v = addPartials(v, warps[w]);
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

// The gradients of this thread's pairs (block b's thread j: pairs
// b * Threads * kPairsPerThread + j + k * Threads), and their sums.
template <PreferenceKind Kind, int Threads>
__device__ LossPartial threadPairs(const PreferenceLossParams& p) {
  const float invCount = 1.0f / static_cast<float>(p.count);
  const float halfInvBeta = 0.5f / p.beta;
  const float centerScale = 2.0f * p.centerCoef * invCount;

  // Every load of this thread's pairs first, then the math and the stores:
  // the outputs may alias the inputs as far as the compiler knows, so loads
  // interleaved with stores would wait for one memory round trip per pair.
  const int64_t base = static_cast<int64_t>(blockIdx.x) * Threads * kPairsPerThread + threadIdx.x;
  float c[kPairsPerThread], r[kPairsPerThread], d[kPairsPerThread], m[kPairsPerThread];
#pragma unroll
  for (int k = 0; k < kPairsPerThread; ++k) {
    const int64_t i = base + static_cast<int64_t>(k) * Threads;
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
    acc.center += static_cast<double>(sum) * sum;  // used only when centerCoef > 0
    acc.correct += d[k] > 0.0f ? 1ull : 0ull;
  }
  return acc;
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
  total = blockSum<kLossThreads>(total, warps);
  if (threadIdx.x == 0) writeStats(p, total);
}

// The cluster path: gridDim.x <= kClusterBlocks blocks launched as one
// cluster. Each block's sums stay in its shared memory; rank 0 adds them in
// rank order after the cluster barrier, and a second barrier keeps every
// block (and its shared memory) alive until rank 0 has read it. Compiled
// for every architecture, run only where the device has clusters.
template <PreferenceKind Kind>
__global__ void __launch_bounds__(kClusterThreads) preferenceLossClusterKernel(PreferenceLossParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  __shared__ LossPartial warps[kClusterThreads / 32];
  __shared__ LossPartial blockTotal;
  const LossPartial block = blockSum<kClusterThreads>(threadPairs<Kind, kClusterThreads>(p), warps);
  if (threadIdx.x == 0) blockTotal = block;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  if (cluster.block_rank() == 0 && threadIdx.x == 0) {
    LossPartial total = blockTotal;
    for (unsigned r = 1; r < cluster.num_blocks(); ++r) total = addPartials(total, *cluster.map_shared_rank(&blockTotal, r));
    writeStats(p, total);
  }
  cluster.sync();
#endif
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

bool aligned(const void* ptr, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }

unsigned rowBlocks(int64_t rows) { return static_cast<unsigned>(rows < kMaxRowBlocks ? rows : kMaxRowBlocks); }

// The cluster path's launch: one cluster of every block.
template <PreferenceKind Kind>
cudaError_t launchCluster(const PreferenceLossParams& p, cudaStream_t stream) {
  constexpr int64_t perBlock = int64_t{kClusterThreads} * kPairsPerThread;
  const unsigned blocks = static_cast<unsigned>((p.count + perBlock - 1) / perBlock);
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = blocks;
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(blocks);
  config.blockDim = dim3(kClusterThreads);
  config.stream = stream;
  config.attrs = &cluster;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, preferenceLossClusterKernel<Kind>, p);
}

}  // namespace

int preferenceLoss(const PreferenceLossParams& p, const CudaLaunch& launch) {
  auto stream = static_cast<cudaStream_t>(launch.stream);
  // More than one plain block's pairs, few enough for one cluster.
  if (p.count > kPairsPerBlock && p.count <= kClusterMaxPairs && hasClusters(launch)) {
    switch (p.kind) {
      case PreferenceKind::Hinge: return launchCluster<PreferenceKind::Hinge>(p, stream);
      case PreferenceKind::Ipo: return launchCluster<PreferenceKind::Ipo>(p, stream);
      default: return launchCluster<PreferenceKind::Sigmoid>(p, stream);
    }
  }
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
