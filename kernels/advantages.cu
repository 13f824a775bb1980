// CUDA backend of the advantage family: gae, whiten, groupAdvantages.
//
// GAE is a chunked parallel scan of affine maps (kernels/common/
// advantages.cuh), one launch: each thread owns 8 consecutive steps of a row
// (RK_GAE_ITEMS, kernels/tuning.cuh) and composes their maps; a warp scans
// its 32 thread maps (suffix scan, shuffles); one thread per row walks the
// row's warp maps in shared memory and hands each warp the carry that
// enters it; then every thread reruns the plain recursion over its 8 steps
// from that carry. Rows of up to 4096 steps are one tile of one block (a
// block holds several short rows); longer rows loop over tiles from the end,
// carrying the state. The grid is persistent (the resident blocks take row
// groups in turn) and each block prefetches its next tile into L2 while it
// scans the current one: with equal work per block, blocks otherwise load
// together and then scan together while HBM idles. Every sum has a fixed
// shape: results are reproducible bit for bit, whatever the grid. They
// differ from the sequential CPU recursion only in how the carry entering
// each 8-step segment was rounded.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "../native/cuda/device.h"
#include "block_sums.cuh"
#include "common/advantages.cuh"
#include "launch.cuh"
#include "prefetch.cuh"
#include "tuning.cuh"

namespace rk::cudaops {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;

// ---------------------------------------------------------------------- GAE

constexpr int kItems = RK_GAE_ITEMS;  // consecutive steps per thread (kernels/tuning.cuh)
constexpr int kGaeThreads = RK_GAE_THREADS;
constexpr int kGaeWarps = kGaeThreads / 32;
static_assert(kItems % 4 == 0 && kItems <= 32, "steps per thread: quads, and one bit each in a uint32_t");
static_assert(kGaeThreads % 32 == 0 && (kGaeWarps & (kGaeWarps - 1)) == 0 && kGaeWarps <= 32,
              "GAE threads: a power-of-two number of warps, at most 32 (the row walkers are warp 0's lanes)");

__device__ __forceinline__ GaeMap shuffleDown(const GaeMap& m, int delta) {
  return GaeMap{__shfl_down_sync(kFullMask, m.kind, delta), __shfl_down_sync(kFullMask, m.q, delta),
                __shfl_down_sync(kFullMask, m.s, delta), __shfl_down_sync(kFullMask, m.u, delta),
                __shfl_down_sync(kFullMask, m.w, delta)};
}

// Steps [i, i + count) of a row into out[0, count), zeros after. kVec: the
// float arrays are 16-byte aligned and rows a multiple of 4 steps long.
template <bool kVec>
__device__ __forceinline__ void loadFloats(const float* __restrict__ src, int64_t i, int count, float (&out)[kItems]) {
  if (kVec && count == kItems) {
#pragma unroll
    for (int q = 0; q < kItems / 4; ++q) {
      const float4 a = __ldg(reinterpret_cast<const float4*>(src + i) + q);
      out[4 * q] = a.x, out[4 * q + 1] = a.y, out[4 * q + 2] = a.z, out[4 * q + 3] = a.w;
    }
    return;
  }
  if (count == kItems) {
#pragma unroll
    for (int j = 0; j < kItems; ++j) out[j] = __ldg(src + i + j);
    return;
  }
#pragma unroll
  for (int j = 0; j < kItems; ++j) out[j] = j < count ? __ldg(src + i + j) : 0.0f;
}

template <bool kVec>
__device__ __forceinline__ void storeFloats(float* __restrict__ dst, int64_t i, int count, const float (&in)[kItems]) {
  if (kVec && count == kItems) {
#pragma unroll
    for (int q = 0; q < kItems / 4; ++q)
      reinterpret_cast<float4*>(dst + i)[q] = make_float4(in[4 * q], in[4 * q + 1], in[4 * q + 2], in[4 * q + 3]);
    return;
  }
#pragma unroll
  for (int j = 0; j < kItems; ++j)
    if (j < count) dst[i + j] = in[j];
}

// Bit j set where byte i + j is nonzero, for j < count.
template <bool kVec>
__device__ __forceinline__ uint32_t loadByteBits(const uint8_t* __restrict__ src, int64_t i, int count) {
  uint32_t bits = 0;
  if (kVec && count == kItems) {
    unsigned words[kItems / 4];
#pragma unroll
    for (int q = 0; q < kItems / 4; ++q) words[q] = __ldg(reinterpret_cast<const unsigned*>(src + i) + q);
#pragma unroll
    for (int q = 0; q < kItems / 4; ++q)
#pragma unroll
      for (int j = 0; j < 4; ++j) bits |= ((words[q] >> (8 * j)) & 0xffu) ? 1u << (4 * q + j) : 0u;
    return bits;
  }
#pragma unroll
  for (int j = 0; j < kItems; ++j) bits |= (j < count && __ldg(src + i + j) != 0) ? 1u << j : 0u;
  return bits;
}

// The kGae* flags of item j from the three bit sets.
__device__ __forceinline__ uint32_t itemFlags(uint32_t valid, uint32_t done, uint32_t cut, int j) {
  return ((valid >> j) & 1u) * kGaeValid | ((done >> j) & 1u) * kGaeDone | ((cut >> j) & 1u) * kGaeTruncated;
}

// This thread's steps of tile k of `row` (begin and count), for loads and
// for the prefetch of the next one.
struct GaeSpan {
  int64_t i0;
  int count;
};

__device__ __forceinline__ GaeSpan gaeSpan(const GaeParams& p, int64_t row, int64_t k, int64_t tile, int warpInRow, int lane) {
  const int64_t T = p.steps;
  const int64_t t0 = k * tile + static_cast<int64_t>(warpInRow * 32 + lane) * kItems;
  const bool live = row < p.rows && t0 < T;
  return GaeSpan{(live ? row * T : 0) + t0, live ? static_cast<int>(T - t0 < kItems ? T - t0 : kItems) : 0};
}

// L2 prefetch of a span's inputs (kernels/prefetch.cuh), by the line of its
// first step: spans are contiguous and a line holds at least four of them,
// so the warp's lines are all covered but for a tail crossing into one more.
__device__ __forceinline__ void prefetchSpan(const GaeParams& p, GaeSpan s) {
  if (s.count == 0) return;
  prefetchL2(p.rewards + s.i0);
  prefetchL2(p.values + s.i0);
  if (p.truncatedValues) prefetchL2(p.truncatedValues + s.i0);
  if (p.mask) prefetchL2(p.mask + s.i0);
  if (p.dones) prefetchL2(p.dones + s.i0);
  if (p.truncated) prefetchL2(p.truncated + s.i0);
}

// A persistent grid: block b takes row groups b, b + grid, ...; a group is
// kGaeWarps / warpsPerRow rows, warpsPerRow warps per row.
template <bool kVec>
__global__ void __launch_bounds__(kGaeThreads, RK_GAE_MIN_BLOCKS) gaeKernel(GaeParams p, int warpsPerRow, int64_t groups) {
  __shared__ GaeMap warpMaps[kGaeWarps];
  __shared__ GaeCarry enteringWarp[kGaeWarps];  // the carry entering each warp's steps
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int slot = warp / warpsPerRow, warpInRow = warp % warpsPerRow;
  const int64_t rowsPerGroup = kGaeWarps / warpsPerRow;
  const int64_t T = p.steps;
  const int64_t tile = static_cast<int64_t>(warpsPerRow) * 32 * kItems;
  const int64_t tiles = (T + tile - 1) / tile;
  const float gamma = p.gamma, gammaLambda = p.gamma * p.lambda;

  for (int64_t group = blockIdx.x; group < groups; group += gridDim.x) {
    // Threads of rows past the end run with empty steps: every thread reaches
    // every shuffle and barrier.
    const int64_t row = group * rowsPerGroup + slot;
    // The carry into the row's current tile, held by the row's walker:
    // thread j (of warp 0) for the group's row j.
    const int64_t walkedRow = group * rowsPerGroup + threadIdx.x;
    GaeCarry carry{threadIdx.x < rowsPerGroup && walkedRow < p.rows && p.lastValues ? p.lastValues[walkedRow] : 0.0f, 0.0f};

    for (int64_t k = tiles - 1; k >= 0; --k) {
      const GaeSpan span = gaeSpan(p, row, k, tile, warpInRow, lane);
      const int count = span.count;
      const int64_t i0 = span.i0;

      float r[kItems], v[kItems], tv[kItems];
      loadFloats<kVec>(p.rewards, i0, count, r);
      loadFloats<kVec>(p.values, i0, count, v);
      // Steps past the row are not valid and carry no flag: identity maps.
      const uint32_t inRow = count == 32 ? ~0u : (1u << count) - 1u;
      const uint32_t valid = p.mask ? loadByteBits<kVec>(p.mask, i0, count) : inRow;
      const uint32_t done = p.dones ? loadByteBits<kVec>(p.dones, i0, count) : 0u;
      const uint32_t cut = p.truncated ? loadByteBits<kVec>(p.truncated, i0, count) : 0u;
      if (p.truncated) {
        loadFloats<kVec>(p.truncatedValues, i0, count, tv);
      } else {
#pragma unroll
        for (int j = 0; j < kItems; ++j) tv[j] = 0.0f;
      }
      // While this tile computes, L2 fetches the block's next one: the
      // earlier tile of this row, or the last tile of the next group's row.
      prefetchSpan(p, k > 0 ? gaeSpan(p, row, k - 1, tile, warpInRow, lane)
                            : gaeSpan(p, row + gridDim.x * rowsPerGroup, tiles - 1, tile, warpInRow, lane));

      // This thread's 8 steps as one map, then the warp's suffix scan:
      // afterwards m = map of lanes [lane, 31] composed.
      GaeMap m = gaeIdentity();
#pragma unroll
      for (int j = kItems - 1; j >= 0; --j) m = gaeCompose(gaeStepMap(r[j], v[j], tv[j], itemFlags(valid, done, cut, j), gamma, gammaLambda), m);
#pragma unroll
      for (int d = 1; d < 32; d *= 2) {
        const GaeMap later = shuffleDown(m, d);
        if (lane + d < 32) m = gaeCompose(m, later);
      }
      const GaeMap afterMe = shuffleDown(m, 1);  // lanes (lane, 31]; unused by lane 31
      if (lane == 0) warpMaps[warp] = m;
      __syncthreads();

      // The carry entering each warp: the row's walker applies the row's warp
      // maps one by one from its end (the same operations, in the same order,
      // as if every thread walked them: one thread does the serial work
      // instead of all of them). Carried on through the whole row, it is the
      // next tile's. The next map is read before this one is applied, so the
      // chain waits on each step's arithmetic, not also on a shared load.
      if (threadIdx.x < rowsPerGroup) {
        const GaeMap* rowMaps = warpMaps + threadIdx.x * warpsPerRow;
        GaeCarry* rowEntering = enteringWarp + threadIdx.x * warpsPerRow;
        GaeMap next = rowMaps[warpsPerRow - 1];
        for (int w = warpsPerRow - 1; w >= 0; --w) {
          const GaeMap m = next;
          if (w > 0) next = rowMaps[w - 1];
          rowEntering[w] = carry;
          carry = gaeApply(m, carry);
        }
      }
      __syncthreads();
      const GaeCarry entering = enteringWarp[warp];

      GaeCarry s = lane == 31 ? entering : gaeApply(afterMe, entering);
#pragma unroll
      for (int j = kItems - 1; j >= 0; --j) {
        float a;
        s = gaeStep(s, r[j], v[j], tv[j], itemFlags(valid, done, cut, j), gamma, gammaLambda, &a);
        v[j] = ((valid >> j) & 1u) ? a + v[j] : 0.0f;
        r[j] = a;
      }
      storeFloats<kVec>(p.advantages, i0, count, r);
      storeFloats<kVec>(p.returns, i0, count, v);
      // No barrier here: the next tile writes warpMaps after the walkers read
      // them, and enteringWarp after its first barrier, which every thread
      // reaches only once done with this tile.
    }
  }
}


// ------------------------------------------------------------------- whiten
//
// Launch 1: block b of at most kMaxPartials reduces a fixed run of 4096-
// element tiles to Moments (per tile: count and sum, then squared deviations
// from the tile's mean out of registers; tiles merged in order). Launch 2:
// every block merges the partials with the same fixed tree, then applies the
// affine map. The partition depends on the element count only.

constexpr int kStatThreads = 256;
constexpr int kStatItems = 16;
constexpr int64_t kStatTile = kStatThreads * kStatItems;
constexpr int kMaxPartials = 1024;
constexpr int kApplyThreads = 256;
constexpr int kApplyBatch = 4;

__global__ void __launch_bounds__(kStatThreads)
    whitenStatsKernel(WhitenParams p, int64_t tilesPerBlock, Moments* partials) {
  const int64_t firstTile = static_cast<int64_t>(blockIdx.x) * tilesPerBlock;
  const int64_t tiles = (p.count + kStatTile - 1) / kStatTile;
  const int64_t endTile = firstTile + tilesPerBlock < tiles ? firstTile + tilesPerBlock : tiles;
  Moments acc{0, 0, 0};
  for (int64_t t = firstTile; t < endTile; ++t) {
    float x[kStatItems];
    bool valid[kStatItems];
    float count = 0.0f, sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kStatItems; ++j) {
      const int64_t i = t * kStatTile + j * kStatThreads + threadIdx.x;  // coalesced
      valid[j] = i < p.count && (!p.mask || p.mask[i]);
      x[j] = valid[j] ? p.x[i] : 0.0f;
      count += valid[j] ? 1.0f : 0.0f;
      sum += x[j];
    }
    // The next tile into L2 while this one is reduced (kernels/prefetch.cuh).
    if (t + 1 < endTile) {
#pragma unroll
      for (int j = 0; j < kStatItems; ++j) {
        const int64_t i = (t + 1) * kStatTile + j * kStatThreads + threadIdx.x;
        if (i < p.count) {
          prefetchL2(p.x + i);
          if (p.mask && threadIdx.x % 128 < 32) prefetchL2(p.mask + i);  // a line holds 4 warps' mask bytes: one asks
        }
      }
    }
    double countSum[2] = {count, sum};  // one reduction for both
    blockSums<kStatThreads>(countSum);
    const double n = countSum[0];
    if (n == 0) continue;  // uniform: every thread has the same n
    const float mean = static_cast<float>(countSum[1] / n);
    float m2 = 0.0f;
#pragma unroll
    for (int j = 0; j < kStatItems; ++j) {
      const float d = valid[j] ? x[j] - mean : 0.0f;
      m2 += d * d;
    }
    // Deviations from the rounded mean: a consistent (count, mean, m2).
    double deviations[1] = {m2};
    blockSums<kStatThreads>(deviations);
    acc = mergeMoments(acc, Moments{n, mean, deviations[0]});
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void __launch_bounds__(kApplyThreads)
    whitenApplyKernel(WhitenParams p, const Moments* partials, int parts, bool vec) {
  __shared__ Moments tree[kApplyThreads];
  __shared__ WhitenAffine affine;
  Moments m{0, 0, 0};
  for (int i = threadIdx.x; i < parts; i += kApplyThreads) m = mergeMoments(m, partials[i]);
  tree[threadIdx.x] = m;
  __syncthreads();
  for (int stride = kApplyThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) tree[threadIdx.x] = mergeMoments(tree[threadIdx.x], tree[threadIdx.x + stride]);
    __syncthreads();
  }
  if (threadIdx.x == 0) affine = whitenAffine(tree[0], p.eps, p.shiftMean);
  __syncthreads();
  const WhitenAffine a = affine;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kApplyThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kApplyThreads + threadIdx.x;
  if (vec) {
    // Four elements per thread and quad: 16-byte loads and stores, a 4-byte
    // mask word; kApplyBatch quads loaded before any is stored (a load after
    // a store of a pointer that may alias waits for it).
    const int64_t quads = p.count / 4;
    for (int64_t q0 = first; q0 < quads; q0 += kApplyBatch * stride) {
      float4 x[kApplyBatch];
      unsigned mk[kApplyBatch];
#pragma unroll
      for (int j = 0; j < kApplyBatch; ++j) {
        const int64_t q = q0 + j * stride;
        x[j] = q < quads ? __ldg(reinterpret_cast<const float4*>(p.x) + q) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        mk[j] = q < quads && p.mask ? __ldg(reinterpret_cast<const unsigned*>(p.mask) + q) : 0x01010101u;
      }
#pragma unroll
      for (int j = 0; j < kApplyBatch; ++j) {
        const int64_t q = q0 + j * stride;
        if (q < quads)
          reinterpret_cast<float4*>(p.out)[q] =
              make_float4(whitenValue(x[j].x, mk[j] & 0xffu, a), whitenValue(x[j].y, (mk[j] >> 8) & 0xffu, a),
                          whitenValue(x[j].z, (mk[j] >> 16) & 0xffu, a), whitenValue(x[j].w, mk[j] >> 24, a));
      }
    }
    for (int64_t i = p.count / 4 * 4 + first; i < p.count; i += stride)
      p.out[i] = whitenValue(p.x[i], !p.mask || p.mask[i], a);
    return;
  }
  for (int64_t i = first; i < p.count; i += stride) p.out[i] = whitenValue(p.x[i], !p.mask || p.mask[i], a);
}

// --------------------------------------------------------- group advantages
//
// One warp per group; double sums in a butterfly, which gives every lane
// the same bits.

constexpr int kGroupThreads = 256;

__device__ __forceinline__ double warpAllSum(double x) {
#pragma unroll
  for (int d = 16; d > 0; d /= 2) x += __shfl_xor_sync(kFullMask, x, d);
  return x;
}

__global__ void __launch_bounds__(kGroupThreads) groupAdvantagesKernel(GroupAdvantagesParams p) {
  const int64_t group = static_cast<int64_t>(blockIdx.x) * (kGroupThreads / 32) + threadIdx.x / 32;
  if (group >= p.groups) return;  // whole warps leave together
  const int lane = threadIdx.x % 32;
  const int64_t k = p.groupSize;
  const float* s = p.scores + group * k;
  float* out = p.out + group * k;
  double sum = 0;
  for (int64_t j = lane; j < k; j += 32) sum += s[j];
  const double mean = warpAllSum(sum) / static_cast<double>(k);
  double m2 = 0;
  for (int64_t j = lane; j < k; j += 32) m2 += (s[j] - mean) * (s[j] - mean);
  const double factor = groupFactor(warpAllSum(m2), k, p.estimator, p.eps);
  for (int64_t j = lane; j < k; j += 32) out[j] = groupAdvantage(s[j], mean, factor);
}

}  // namespace

int gae(const GaeParams& p, const CudaLaunch& launch) {
  if (p.rows <= 0 || p.steps <= 0) return cudaSuccess;
  // Warps per row: the fewest (a power of two) that cover the row, at most a block.
  int warpsPerRow = 1;
  while (warpsPerRow < kGaeWarps && static_cast<int64_t>(warpsPerRow) * 32 * kItems < p.steps) warpsPerRow *= 2;
  const int64_t rowsPerGroup = kGaeWarps / warpsPerRow;
  const int64_t groups = (p.rows + rowsPerGroup - 1) / rowsPerGroup;
  const bool vec = p.steps % 4 == 0 && aligned(p.rewards, 16) && aligned(p.values, 16) && aligned(p.advantages, 16) &&
                   aligned(p.returns, 16) && aligned(p.truncatedValues, 16) && aligned(p.mask, 4) &&
                   aligned(p.dones, 4) && aligned(p.truncated, 4);
  auto stream = static_cast<cudaStream_t>(launch.stream);
  // A persistent grid: as many blocks as are resident at once, each taking
  // groups in turn, so that each can prefetch its next group's row.
  static ResidentCache vecCache, scalarCache;
  cudaError_t e = cudaSuccess;
  const int64_t resident = vec ? residentBlocks(gaeKernel<true>, kGaeThreads, 0, launch, vecCache, &e)
                               : residentBlocks(gaeKernel<false>, kGaeThreads, 0, launch, scalarCache, &e);
  if (e != cudaSuccess) return e;
  const unsigned blocks = static_cast<unsigned>(groups < resident ? groups : resident);
  if (vec)
    gaeKernel<true><<<blocks, kGaeThreads, 0, stream>>>(p, warpsPerRow, groups);
  else
    gaeKernel<false><<<blocks, kGaeThreads, 0, stream>>>(p, warpsPerRow, groups);
  return cudaGetLastError();
}

int whiten(const WhitenParams& p, const CudaLaunch& launch) {
  if (p.count <= 0) return cudaSuccess;
  const int64_t tiles = (p.count + kStatTile - 1) / kStatTile;
  const int64_t tilesPerBlock = (tiles + kMaxPartials - 1) / kMaxPartials;
  const int parts = static_cast<int>((tiles + tilesPerBlock - 1) / tilesPerBlock);
  auto* partials = static_cast<Moments*>(launch.scratch(launch.owner, sizeof(Moments) * parts));
  if (!partials) return cudaErrorMemoryAllocation;
  auto stream = static_cast<cudaStream_t>(launch.stream);
  whitenStatsKernel<<<parts, kStatThreads, 0, stream>>>(p, tilesPerBlock, partials);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const bool vec = aligned(p.x, 16) && aligned(p.out, 16) && aligned(p.mask, 4);
  const int64_t perBlock = static_cast<int64_t>(kApplyThreads) * (vec ? 4 : 1);
  int64_t blocks = (p.count + perBlock - 1) / perBlock;
  // At most the blocks resident at once: each merges the partials first.
  static ResidentCache applyCache;
  cudaError_t e = cudaSuccess;
  const int64_t most = residentBlocks(whitenApplyKernel, kApplyThreads, 0, launch, applyCache, &e);
  if (e != cudaSuccess) return e;
  if (blocks > most) blocks = most;
  whitenApplyKernel<<<static_cast<unsigned>(blocks), kApplyThreads, 0, stream>>>(p, partials, parts, vec);
  return cudaGetLastError();
}

int groupAdvantages(const GroupAdvantagesParams& p, const CudaLaunch& launch) {
  if (p.groups <= 0 || p.groupSize <= 0) return cudaSuccess;
  constexpr int64_t perBlock = kGroupThreads / 32;
  const int64_t blocks = (p.groups + perBlock - 1) / perBlock;
  if (blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  groupAdvantagesKernel<<<static_cast<unsigned>(blocks), kGroupThreads, 0, static_cast<cudaStream_t>(launch.stream)>>>(p);
  return cudaGetLastError();
}

}  // namespace rk::cudaops
