// CUDA backend of the advantage family: gae, whiten, groupAdvantages.
//
// GAE is a chunked parallel scan of affine maps (kernels/common/
// advantages.cuh), one launch: each thread owns 8 consecutive steps of a row
// (RK_GAE_ITEMS, kernels/tuning.cuh) and composes their maps; a warp scans
// its 32 thread maps (suffix scan, shuffles); every thread walks the later
// warp maps of its row in shared memory to the carry that enters its warp;
// then it reruns the plain recursion over its 8 steps from that carry. A
// row of up to one tile (8 steps per thread of the block: 4096 at 512
// threads) is one block's (a block holds several short rows); longer rows
// loop over tiles from the end, carrying the state. One block per row group,
// of 512 threads, or 256 or 64 for many rows longer than a 512-thread tile
// (gae() below). On an H100, a persistent grid with L2 prefetch and a
// single thread walking the maps for the whole block were each slower
// (bench/results/gpu/2026-11-27-h100.md). Every sum has a fixed shape:
// results are reproducible bit for bit. They differ from the sequential CPU
// recursion only in how the carry entering each 8-step segment was rounded.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "../native/cuda/device.h"
#include "block_sums.cuh"
#include "common/advantages.cuh"
#include "launch.cuh"
#include "tuning.cuh"

namespace rk::cudaops {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;

// ---------------------------------------------------------------------- GAE

// Launch shapes (kernels/tuning.cuh): steps per thread; threads per block
// and blocks per SM, and the same for rows longer than one such block's tile.
constexpr int kItems = RK_GAE_ITEMS;
static_assert(kItems % 4 == 0 && kItems <= 32, "steps per thread: quads, and one bit each in a uint32_t");

template <int Threads, int MinBlocks, bool Pipeline = false>
struct GaeShape {
  static constexpr int kThreads = Threads, kMinBlocks = MinBlocks, kWarps = Threads / 32;
  static constexpr bool kPipeline = Pipeline;  // RK_GAE_PIPELINE
  static_assert(Threads % 32 == 0 && (kWarps & (kWarps - 1)) == 0 && kWarps <= 32,
                "GAE threads: a power-of-two number of warps (a row takes a power of two of them), at most 32");
};
using GaeShort = GaeShape<RK_GAE_THREADS, RK_GAE_MIN_BLOCKS>;
using GaeMid = GaeShape<RK_GAE_MID_THREADS, RK_GAE_MID_MIN_BLOCKS>;
using GaeLong = GaeShape<RK_GAE_LONG_THREADS, RK_GAE_LONG_MIN_BLOCKS, RK_GAE_PIPELINE != 0>;

__device__ __forceinline__ GaeMap shuffleDown(const GaeMap& m, int delta) {
  return GaeMap{__shfl_down_sync(kFullMask, m.kind, delta), __shfl_down_sync(kFullMask, m.q, delta),
                __shfl_down_sync(kFullMask, m.s, delta), __shfl_down_sync(kFullMask, m.u, delta),
                __shfl_down_sync(kFullMask, m.w, delta)};
}

// GAE's loads and stores: read-only loads, or with RK_GAE_STREAMING (kernels/
// tuning.cuh) loads and stores marked streaming (evict first: every byte is
// touched once).
template <class T>
__device__ __forceinline__ T loadHint(const T* p) {
  return RK_GAE_STREAMING ? __ldcs(p) : __ldg(p);
}
template <class T>
__device__ __forceinline__ void storeHint(T* p, T v) {
  if (RK_GAE_STREAMING)
    __stcs(p, v);
  else
    *p = v;
}

// Steps [i, i + count) of a row into out[0, count), zeros after. kVec: the
// float arrays are 16-byte aligned and rows a multiple of 4 steps long.
template <bool kVec>
__device__ __forceinline__ void loadFloats(const float* __restrict__ src, int64_t i, int count, float (&out)[kItems]) {
  if (kVec && count == kItems) {
#pragma unroll
    for (int q = 0; q < kItems / 4; ++q) {
      const float4 a = loadHint(reinterpret_cast<const float4*>(src + i) + q);
      out[4 * q] = a.x, out[4 * q + 1] = a.y, out[4 * q + 2] = a.z, out[4 * q + 3] = a.w;
    }
    return;
  }
  if (count == kItems) {
#pragma unroll
    for (int j = 0; j < kItems; ++j) out[j] = loadHint(src + i + j);
    return;
  }
#pragma unroll
  for (int j = 0; j < kItems; ++j) out[j] = j < count ? loadHint(src + i + j) : 0.0f;
}

template <bool kVec>
__device__ __forceinline__ void storeFloats(float* __restrict__ dst, int64_t i, int count, const float (&in)[kItems]) {
  if (kVec && count == kItems) {
#pragma unroll
    for (int q = 0; q < kItems / 4; ++q)
      storeHint(reinterpret_cast<float4*>(dst + i) + q, make_float4(in[4 * q], in[4 * q + 1], in[4 * q + 2], in[4 * q + 3]));
    return;
  }
#pragma unroll
  for (int j = 0; j < kItems; ++j)
    if (j < count) storeHint(dst + i + j, in[j]);
}

// Bit j set where byte i + j is nonzero, for j < count.
template <bool kVec>
__device__ __forceinline__ uint32_t loadByteBits(const uint8_t* __restrict__ src, int64_t i, int count) {
  uint32_t bits = 0;
  if (kVec && count == kItems) {
    unsigned words[kItems / 4];
#pragma unroll
    for (int q = 0; q < kItems / 4; ++q) words[q] = loadHint(reinterpret_cast<const unsigned*>(src + i) + q);
#pragma unroll
    for (int q = 0; q < kItems / 4; ++q)
#pragma unroll
      for (int j = 0; j < 4; ++j) bits |= ((words[q] >> (8 * j)) & 0xffu) ? 1u << (4 * q + j) : 0u;
    return bits;
  }
#pragma unroll
  for (int j = 0; j < kItems; ++j) bits |= (j < count && loadHint(src + i + j) != 0) ? 1u << j : 0u;
  return bits;
}

// The kGae* flags of item j from the three bit sets.
__device__ __forceinline__ uint32_t itemFlags(uint32_t valid, uint32_t done, uint32_t cut, int j) {
  return ((valid >> j) & 1u) * kGaeValid | ((done >> j) & 1u) * kGaeDone | ((cut >> j) & 1u) * kGaeTruncated;
}

// One thread's steps of a tile: their inputs, and where they are.
struct GaeSteps {
  float r[kItems], v[kItems], tv[kItems];
  uint32_t valid, done, cut;  // bit j: step j's flag
  int count;                  // steps in the row (0 past its end or in a dead row)
  int64_t i0;                 // flat index of step 0
};

// Episodes: dones or truncated may be given; without, their flags are 0
// at compile time.
template <bool kVec, bool Episodes>
__device__ __forceinline__ GaeSteps loadSteps(const GaeParams& p, int64_t i0, int count) {
  GaeSteps x;
  x.count = count;
  x.i0 = i0;
  loadFloats<kVec>(p.rewards, i0, count, x.r);
  loadFloats<kVec>(p.values, i0, count, x.v);
  // Steps past the row are not valid and carry no flag: identity maps.
  const uint32_t inRow = count == 32 ? ~0u : (1u << count) - 1u;
  x.valid = p.mask ? loadByteBits<kVec>(p.mask, i0, count) : inRow;
  x.done = Episodes && p.dones ? loadByteBits<kVec>(p.dones, i0, count) : 0u;
  x.cut = Episodes && p.truncated ? loadByteBits<kVec>(p.truncated, i0, count) : 0u;
  if (Episodes && p.truncated) {
    loadFloats<kVec>(p.truncatedValues, i0, count, x.tv);
  } else {
#pragma unroll
    for (int j = 0; j < kItems; ++j) x.tv[j] = 0.0f;
  }
  return x;
}

// One block: kWarps / warpsPerRow rows, warpsPerRow warps per row.
// Episodes false (no dones, no truncated: RLHF's usual call): no Reset map
// can arise, and the code for one is left out (on an H200, 1.23x at 2048 x
// 8192). The same operations; the compiler may fuse multiply-adds
// differently, so results can differ from a call with all-zero flags in the
// last bits (each is deterministic).
template <class Shape, bool kVec, bool Episodes>
__global__ void __launch_bounds__(Shape::kThreads, Shape::kMinBlocks) gaeKernel(GaeParams p, int warpsPerRow) {
  constexpr int kGaeWarps = Shape::kWarps;
  __shared__ GaeMap warpMaps[kGaeWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int slot = warp / warpsPerRow, warpInRow = warp % warpsPerRow;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kGaeWarps / warpsPerRow) + slot;
  // Threads of rows past the end run with empty steps: every thread reaches
  // every shuffle and barrier.
  const bool live = row < p.rows;
  const int64_t T = p.steps;
  const int64_t tile = static_cast<int64_t>(warpsPerRow) * 32 * kItems;
  const int64_t tiles = (T + tile - 1) / tile;
  const float gamma = p.gamma, gammaLambda = p.gamma * p.lambda;
  GaeCarry carry{live && p.lastValues ? p.lastValues[row] : 0.0f, 0.0f};
  // This thread's steps of tile k.
  const auto stepsOf = [&](int64_t k) {
    const int64_t t0 = k * tile + static_cast<int64_t>(warpInRow * 32 + lane) * kItems;
    const int count = live && t0 < T ? static_cast<int>(T - t0 < kItems ? T - t0 : kItems) : 0;
    return loadSteps<kVec, Episodes>(p, (live ? row * T : 0) + t0, count);
  };

  // Shape::kPipeline (RK_GAE_PIPELINE, kernels/tuning.cuh): tile k - 1's
  // loads are in flight while tile k is scanned.
  GaeSteps x;
  if (Shape::kPipeline) x = stepsOf(tiles - 1);
  for (int64_t k = tiles - 1; k >= 0; --k) {
    if (!Shape::kPipeline) x = stepsOf(k);
    GaeSteps next;
    if (Shape::kPipeline && k > 0) next = stepsOf(k - 1);
    float (&r)[kItems] = x.r;
    float (&v)[kItems] = x.v;
    const float (&tv)[kItems] = x.tv;
    const uint32_t valid = x.valid, done = x.done, cut = x.cut;

    // This thread's 8 steps as one map, then the warp's suffix scan:
    // afterwards m = map of lanes [lane, 31] composed.
    GaeMap m = gaeIdentity();
#pragma unroll
    for (int j = kItems - 1; j >= 0; --j) m = gaeCompose<Episodes>(gaeStepMap(r[j], v[j], tv[j], itemFlags(valid, done, cut, j), gamma, gammaLambda), m);
#pragma unroll
    for (int d = 1; d < 32; d *= 2) {
      const GaeMap later = shuffleDown(m, d);
      if (lane + d < 32) m = gaeCompose<Episodes>(m, later);
    }
    const GaeMap afterMe = shuffleDown(m, 1);  // lanes (lane, 31]; unused by lane 31
    if (lane == 0) warpMaps[warp] = m;
    __syncthreads();

    // The carry entering this warp: through the later warps of the row, in
    // order (on the row's first tile, k == 0, no further). Carried on through
    // the earlier warps, it is the next tile's.
    const GaeMap* rowMaps = warpMaps + slot * warpsPerRow;
    GaeCarry c = carry, entering = carry;
    for (int w = warpsPerRow - 1; w >= 0; --w) {
      if (w == warpInRow) {
        entering = c;
        if (k == 0) break;
      }
      c = gaeApply<Episodes>(rowMaps[w], c);
    }
    carry = c;

    GaeCarry s = lane == 31 ? entering : gaeApply<Episodes>(afterMe, entering);
#pragma unroll
    for (int j = kItems - 1; j >= 0; --j) {
      float a;
      s = gaeStep(s, r[j], v[j], tv[j], itemFlags(valid, done, cut, j), gamma, gammaLambda, &a);
      v[j] = ((valid >> j) & 1u) ? a + v[j] : 0.0f;
      r[j] = a;
    }
    storeFloats<kVec>(p.advantages, x.i0, x.count, r);
    storeFloats<kVec>(p.returns, x.i0, x.count, v);
    if (Shape::kPipeline && k > 0) x = next;
    __syncthreads();  // warpMaps is rewritten by the next tile
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
    float count = 0.0f;
    double sum = 0.0;  // double: a float sum of values on a large offset (1e5 + noise) would lose their spread
#pragma unroll
    for (int j = 0; j < kStatItems; ++j) {
      const int64_t i = t * kStatTile + j * kStatThreads + threadIdx.x;  // coalesced
      valid[j] = i < p.count && (!p.mask || p.mask[i]);
      x[j] = valid[j] ? p.x[i] : 0.0f;
      count += valid[j] ? 1.0f : 0.0f;
      sum += x[j];
    }
    double countSum[2] = {count, sum};  // one reduction for both
    blockSums<kStatThreads>(countSum);
    const double n = countSum[0];
    if (n == 0) continue;  // uniform: every thread has the same n
    // Deviations from the tile's mean as hi + lo: x - hi is exact near the
    // mean, so they keep the spread however large the offset. Squared in
    // float out of registers, or in double where a float square overflows
    // (deviations past ~1e19): a thread's choice, so only data that need it
    // pay for double arithmetic.
    const double mean = countSum[1] / n;
    const float meanHi = static_cast<float>(mean), meanLo = static_cast<float>(mean - meanHi);
    float m2 = 0.0f;
#pragma unroll
    for (int j = 0; j < kStatItems; ++j) {
      const float d = valid[j] ? (x[j] - meanHi) - meanLo : 0.0f;
      m2 += d * d;
    }
    double deviations[1] = {m2};
    if (!isfinite(m2)) {
      deviations[0] = 0;
#pragma unroll
      for (int j = 0; j < kStatItems; ++j) {
        const double d = valid[j] ? static_cast<double>(x[j]) - mean : 0.0;
        deviations[0] += d * d;
      }
    }
    blockSums<kStatThreads>(deviations);
    acc = mergeMoments(acc, Moments{n, mean, deviations[0]});
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// Writes out[first + k * stride] for the grid's threads: kWide picks the
// double path (common/advantages.cuh), once per call, not per element.
template <bool kWide>
__device__ __forceinline__ void whitenApply(const WhitenParams& p, const WhitenAffine& a, bool vec, int64_t first, int64_t stride) {
  const auto value = [&](float x, bool valid) { return kWide ? whitenWide(x, valid, a) : whitenNarrow(x, valid, a); };
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
              make_float4(value(x[j].x, mk[j] & 0xffu), value(x[j].y, (mk[j] >> 8) & 0xffu),
                          value(x[j].z, (mk[j] >> 16) & 0xffu), value(x[j].w, mk[j] >> 24));
      }
    }
    for (int64_t i = p.count / 4 * 4 + first; i < p.count; i += stride) p.out[i] = value(p.x[i], !p.mask || p.mask[i]);
    return;
  }
  for (int64_t i = first; i < p.count; i += stride) p.out[i] = value(p.x[i], !p.mask || p.mask[i]);
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
  if (a.wide)
    whitenApply<true>(p, a, vec, first, stride);
  else
    whitenApply<false>(p, a, vec, first, stride);
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

template <class Shape>
int launchGae(const GaeParams& p, cudaStream_t stream) {
  // Warps per row: the fewest (a power of two) that cover the row, at most a block.
  int warpsPerRow = 1;
  while (warpsPerRow < Shape::kWarps && static_cast<int64_t>(warpsPerRow) * 32 * kItems < p.steps) warpsPerRow *= 2;
  const int64_t rowsPerGroup = Shape::kWarps / warpsPerRow;
  const int64_t groups = (p.rows + rowsPerGroup - 1) / rowsPerGroup;
  if (groups > INT32_MAX) return cudaErrorInvalidConfiguration;
  const bool vec = p.steps % 4 == 0 && aligned(p.rewards, 16) && aligned(p.values, 16) && aligned(p.advantages, 16) &&
                   aligned(p.returns, 16) && aligned(p.truncatedValues, 16) && aligned(p.mask, 4) &&
                   aligned(p.dones, 4) && aligned(p.truncated, 4);
  const unsigned blocks = static_cast<unsigned>(groups);
  const bool episodes = p.dones || p.truncated;
  if (vec && episodes)
    gaeKernel<Shape, true, true><<<blocks, Shape::kThreads, 0, stream>>>(p, warpsPerRow);
  else if (vec)
    gaeKernel<Shape, true, false><<<blocks, Shape::kThreads, 0, stream>>>(p, warpsPerRow);
  else if (episodes)
    gaeKernel<Shape, false, true><<<blocks, Shape::kThreads, 0, stream>>>(p, warpsPerRow);
  else
    gaeKernel<Shape, false, false><<<blocks, Shape::kThreads, 0, stream>>>(p, warpsPerRow);
  return cudaGetLastError();
}

}  // namespace

int gae(const GaeParams& p, const CudaLaunch& launch) {
  if (p.rows <= 0 || p.steps <= 0) return cudaSuccess;
  auto stream = static_cast<cudaStream_t>(launch.stream);
  // Rows longer than one tile, enough of them to fill every SM with the
  // smaller blocks: they keep more rows in flight per SM (at 2048 x 8192,
  // 146.3 us with 512 threads, 118.6 with 256 on an H100; 113.5 with 256,
  // 99.2 with 128, 93.5 with 64 on an H200). Fewer rows keep larger blocks,
  // more threads per row. Whatever the shape, a row's warps cover the same
  // 256-step spans and walk the same maps in the same order: the same bits.
  const bool longRows = p.steps > int64_t{GaeShort::kThreads} * kItems;
  const int64_t sms = launch.multiprocessors > 0 ? launch.multiprocessors : 1;
  if (longRows && p.rows >= GaeLong::kMinBlocks * sms) return launchGae<GaeLong>(p, stream);
  if (longRows && p.rows >= GaeMid::kMinBlocks * sms) return launchGae<GaeMid>(p, stream);
  return launchGae<GaeShort>(p, stream);
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
