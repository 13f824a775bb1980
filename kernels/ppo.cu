// CUDA backend of the PPO family: ppoPolicyLoss and ppoValueLoss, each one
// cooperative launch that computes loss, gradient and statistics.
//
// The gradient of token t is w_t * dL_t, and w_t depends on the
// aggregation's normalizer: sum(M) (token-mean), B' (the seq-mean modes) or
// a row's count (seq-mean-token-mean). Those are reductions over the mask
// alone, so the kernel runs in phases (a cooperative launch, so that every
// block is resident and a grid-wide barrier cannot deadlock):
//   1. (with a mask, unless seq-mean-token-sum-norm or a given normalizer
//      makes the counts unneeded) every tile counts its valid tokens, and for
//      the seq-mean modes its non-empty rows, into scratch. Integer counts:
//      exact in any order.
//   -- a grid barrier (only when phase 1 ran)
//   2. every block sums those counts (a few thousand integers, from L2),
//      then computes its tiles' tokens, writes final gradients once and one
//      statistics partial per tile. (RK_PPO_TALLY 1: where one integer is
//      all phase 2 needs, the barrier's atomic carries each block's count
//      and the last poll reads the total: tallyBarrier.)
//   3. the last block to finish phase 2 combines the partials in tile order.
// The barrier and the "last block" test count arrivals on the launch's
// block counter (CudaLaunch::blockCounter, kernels/arrival.cuh), which the
// last block resets.
// HBM traffic per token is the minimum (inputs read once, gradients written
// once) plus a second read of the mask byte, mostly served by L2. The
// alternatives cost more: rescaling gradients after the fact rereads and
// rewrites them (+8 or +16 bytes per token), a count kernel before the main
// one adds a launch (a few microseconds at this size), and float atomics
// would not be deterministic.
//
// A tile's inputs are all loaded before any of its tokens is computed
// (RK_PPO_LOADS 1, kernels/tuning.cuh): 4 tokens' loads in flight per
// thread, in tiles of 1024 tokens, at most 64 registers, 4 blocks of 256
// threads per SM. Loading each token's just before its math (0) waits one
// memory round trip per token. On an H100 tiles of 1024 at 4 blocks per SM
// beat an L2 prefetch of the next tile, 2048-token tiles, 5 or 8 blocks per
// SM, and a tile held in registers across phase 1 at 2 blocks per SM
// (bench/results/gpu/2026-11-27-h100.md).
//
// The kernel is bound by instruction issue, not memory (Nsight Compute,
// 2026-11-28: 184 instructions per token, issue slots 47 % busy, DRAM 18 %),
// so the per-token work is kept to the math: a thread's pointers are moved
// to its first token once per tile and reach its other tokens at
// compile-time offsets; a tile of kTile tokens (every tile of the long rows
// RLHF has) takes an instantiation with no bounds checks; ops without
// per-row inputs (GRPO's [B] advantages, GSPO) never compute a token's row;
// rows and segments come from a multiply-high (Divider); phase 1 counts a
// whole aligned tile's mask 4 bytes a word. On sm_90 (scripts/sass.js; the
// policy loss with a mask, token-mean, rows of 4096) a thread's full tile
// (4 tokens) went from about 600 SASS instructions to 435, phase 1's batch
// of 4 tiles from 471 to 299: about 180 a token to 128. Then: full tiles
// have a copy of the token math with the dual clip and one without (chosen
// once per tile; PPO's usual call has none); clamps are two NaN-keeping
// min/max (sm_80+) and "inside the clamp" one comparison with the clamped
// value; a tile of rows that are whole multiples of kTile starts at t kTile
// (no 64-bit products); and no barrier follows a tile's block sum (its
// warp sums alternate between two buffers). A full tile, with the mask
// counted at its upload (no phase 1): 445 -> 347 instructions without a
// dual clip, 390 with one, 615 -> 508 with k3 and entropy; the value loss
// 292 -> 239.
//
// Determinism: tiles are fixed by the shape alone (kTile tokens, whole rows
// or row segments: kernels/ppo_tiles.cuh), each tile's partial is reduced in
// a fixed order, and partials are combined in tile order: bit-identical
// results run to run and whatever the grid size.
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "../native/cuda/device.h"
#include "common/ppo.cuh"
#include "arrival.cuh"
#include "launch.cuh"
#include "ppo_tiles.cuh"

namespace rk::cudaops {
namespace {

// The block's sums, in thread 0: each float field down a fixed warp tree,
// then the warps in order. Fields the op never sets (Op::kStats) stay 0 and
// are not reduced. One barrier. The warps' sums go to one of two buffers,
// alternating from call to call (`call`: the block's count of calls): the
// next call writes the other one, and the call after it passes its barrier
// only once thread 0 has arrived there, done reading this one. So no
// barrier is needed after a call: the other warps go on to their next tile
// while thread 0 adds.
template <unsigned Stats>
__device__ Partial blockPartial(Partial a, unsigned call) {
  alignas(16) __shared__ Partial buffers[2][kWarps];
  Partial* warps = buffers[call % 2];
  for (int o = 16; o > 0; o >>= 1) {
    a.loss += __shfl_down_sync(0xffffffffu, a.loss, o);
    if (Stats & kApproxKlStat) a.approxKl += __shfl_down_sync(0xffffffffu, a.approxKl, o);
    if (Stats & kKlStat) a.kl += __shfl_down_sync(0xffffffffu, a.kl, o);
  }
  a.valid = warpCount(a.valid);
  a.clipped = warpCount(a.clipped);
  if (Stats & kClippedLowerStat) a.clippedLower = warpCount(a.clippedLower);
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = a;
  __syncthreads();
  Partial total{};
  if (threadIdx.x == 0)
    for (int w = 0; w < kWarps; ++w) {
      total.loss += warps[w].loss;
      if (Stats & kApproxKlStat) total.approxKl += warps[w].approxKl;
      if (Stats & kKlStat) total.kl += warps[w].kl;
      total.valid += warps[w].valid;
      total.clipped += warps[w].clipped;
      if (Stats & kClippedLowerStat) total.clippedLower += warps[w].clippedLower;
    }
  return total;
}

// Counts this block's arrival on the launch's counter (kernels/
// arrival.cuh); true in the last of `expected` arrivals. The block's writes
// before it are visible to the block that sees the count, once it acquires.
__device__ bool arrive(unsigned* counter, unsigned expected) {
  __shared__ bool last;
  __syncthreads();
  if (threadIdx.x == 0) last = arriveRelease(counter) == expected - 1;
  __syncthreads();
  return last;
}

// Grid-wide barrier: every block has arrived (the counter reached gridDim.x;
// co-residency, from the cooperative launch, lets the waiters spin).
__device__ void gridBarrier(unsigned* counter) {
  arrive(counter, gridDim.x);
  if (threadIdx.x == 0) {
    while (arrivalsSeen(counter) < gridDim.x) __nanosleep(64);
    acquireArrivals();
  }
  __syncthreads();
}

// Grid-wide barrier that also sums one count over the blocks (Layout::
// tally): each block adds its count, shifted past 16 bits of arrivals, and
// its arrival in one 64-bit atomic. Once the arrivals read gridDim.x (at
// most 65535, and counts below 2^47: launchPpo checks), the bits above them
// hold the total. Integers, so exact in any order; the count travels in the
// atomic itself, so no fence is needed for it.
__device__ long long tallyBarrier(unsigned long long* tally, long long count) {
  constexpr int kArrivalBits = 16;
  constexpr unsigned long long kArrivals = (1ull << kArrivalBits) - 1;
  __shared__ long long total;
  if (threadIdx.x == 0) {
    const unsigned long long mine = (static_cast<unsigned long long>(count) << kArrivalBits) + 1;
    unsigned long long seen = atomicAdd(tally, mine) + mine;
    while ((seen & kArrivals) < gridDim.x) {
      __nanosleep(64);
      seen = *reinterpret_cast<const volatile unsigned long long*>(tally);
    }
    total = static_cast<long long>(seen >> kArrivalBits);
  }
  __syncthreads();
  return total;
}

// The three phases; Op points a thread into a tile (cursor), loads a
// token's inputs, computes the token (writes its gradients, accumulates) and
// writes the final statistics. (At least RK_PPO_MIN_BLOCKS blocks per SM, 4
// as shipped: at most 64 registers, no spill on sm_75 to sm_90 (kernels/
// tuning.cuh); left to itself, ptxas chose 62 to 76.)
template <class Op>
__global__ void __launch_bounds__(kThreads, RK_PPO_MIN_BLOCKS) ppoKernel(const Op op, const Layout l, const Scratch s) {
  extern __shared__ int32_t rowShared[];  // [rowsPerTile]: counts, then weights (packed + mask + seq-mean)
  float* rowWeight = reinterpret_cast<float*>(rowShared);
  const uint8_t* mask = op.mask();

  // RK_PPO_LOADS (kernels/tuning.cuh) 1 and 2: a tile's inputs, loaded
  // before any of its tokens is computed. Full: the tile has kTile tokens,
  // so no token needs a bounds check (known at compile time in the
  // instantiation for full tiles); past the end of a partial tile a token
  // loads nothing and comes out invalid.
  typename Op::Inputs x[kLoads > 0 ? kPerThread : 1];
  const auto loadTile = [&](const typename Op::Cursor& c, const Tile& tile, auto full) {
#pragma unroll
    for (int k = 0; k < (kLoads > 0 ? kPerThread : 0); ++k) x[k] = op.load(c, k, full || inTile(k) < tile.count, l);
  };
  if (kLoads == 2 && blockIdx.x < l.tiles) {  // in flight across phase 1
    const Tile first = tileAt(l, blockIdx.x);
    loadTile(op.cursor(l, first), first, std::false_type{});
  }

  Totals n{l.rows * l.steps, l.steps > 0 ? l.rows : 0};  // without a mask
  if (l.counts) {
    const Totals mine = countTiles(mask, l, s, rowShared);
    if (l.tally && l.aggregation == Aggregation::TokenMean) {
      n.valid = tallyBarrier(s.tally, mine.valid);
    } else if (l.tally) {
      n.nonEmpty = tallyBarrier(s.tally, mine.nonEmpty);
    } else {
      gridBarrier(s.counter);
      n = totalsFromTiles(l, s);
    }
  }

  const double denominator = denominatorOf(l, n);
  const bool perRowWeight = l.aggregation == Aggregation::SeqMeanTokenMean;
  // Every token's weight, unless it depends on the row's count (a double
  // reciprocal: once, not per tile).
  const float uniformWeight = inverse(perRowWeight && !mask ? static_cast<double>(l.steps) * denominator : denominator);

  const auto runTile = [&](const Tile& tile, int64_t t, unsigned call, auto full, auto dual) {
    const typename Op::Cursor c = op.cursor(l, tile);
    if (kLoads == 1 || (kLoads == 2 && t != blockIdx.x)) loadTile(c, tile, full);
    float weight = uniformWeight;
    bool sharedWeights = false;
    if (perRowWeight && mask && !l.packed) {
      long long row = 0;
      for (int64_t g = threadIdx.x; g < l.segments; g += kThreads) row += __ldcg(s.tileValid + tile.row * l.segments + g);
      weight = inverse(static_cast<double>(blockSum(row)) * denominator);
    } else if (perRowWeight && mask) {
      countRows(mask, l, tile, rowShared);
      for (int r = threadIdx.x; r < tile.rows; r += kThreads)
        rowWeight[r] = inverse(static_cast<double>(rowShared[r]) * denominator);
      __syncthreads();
      sharedWeights = true;
    }
    Partial a{};
    // Every thread runs all its tokens' math: one past the tile's end has
    // zeros for inputs, is invalid (adds nothing) and stores nothing. No
    // branch per token, so the compiler can interleave the tokens.
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      const bool in = full || inTile(k) < tile.count;
      const float w = !sharedWeights ? weight : in ? rowWeight[l.bySteps.quotient(inTile(k))] : 0.0f;
      op.token(c, k, w, kLoads > 0 ? x[k] : op.load(c, k, in, l), in, a, dual);
    }
    const Partial block = blockPartial<Op::kStats>(a, call);
    if (threadIdx.x == 0) s.partials[t] = block;
    if (sharedWeights) __syncthreads();  // rowShared is rewritten by the next tile
  };
  unsigned call = 0;
  for (int64_t t = blockIdx.x; t < l.tiles; t += gridDim.x, ++call) {
    const Tile tile = tileAt(l, t);
    if (Op::kFullTiles && tile.count == kTile) {
      // The policy's dual clip, tested once here: the full-tile copy of the
      // token math without one leaves its instructions out.
      if (op.dualClip()) {
        runTile(tile, t, call, std::true_type{}, std::true_type{});
      } else {
        runTile(tile, t, call, std::true_type{}, std::false_type{});
      }
    } else {
      runTile(tile, t, call, std::false_type{}, std::true_type{});
    }
  }

  // Arrivals so far: gridDim.x at the barrier (when phase 1 ran without the
  // tally), then these.
  const unsigned expected = (l.counts && !l.tally ? 2u : 1u) * gridDim.x;
  if (!arrive(s.counter, expected)) return;
  if (threadIdx.x == 0) {
    // Every block has counted all its arrivals and read the tally: ready for the next launch.
    *s.counter = 0;
    if (l.tally) *s.tally = 0;
  }
  acquireArrivals();
  double sums[3] = {0, 0, 0};      // loss, approxKl, kl
  long long counts[3] = {0, 0, 0};  // valid, clipped, clippedLower
  for (int64_t t = threadIdx.x; t < l.tiles; t += kThreads) {
    // Other blocks wrote the partials: read them from L2.
    sums[0] += __ldcg(&s.partials[t].loss);
    sums[1] += __ldcg(&s.partials[t].approxKl);
    sums[2] += __ldcg(&s.partials[t].kl);
    counts[0] += __ldcg(&s.partials[t].valid);
    counts[1] += __ldcg(&s.partials[t].clipped);
    counts[2] += __ldcg(&s.partials[t].clippedLower);
  }
  blockSums<kThreads>(sums);
  blockSums<kThreads>(counts);
  if (threadIdx.x == 0) {
    const long long valid = counts[0];
    auto mean = [&](double sum) { return valid > 0 ? static_cast<float>(sum / static_cast<double>(valid)) : 0.0f; };
    op.finish(static_cast<float>(sums[0]), mean(static_cast<double>(counts[1])), mean(static_cast<double>(counts[2])),
              mean(sums[1]), mean(sums[2]));
  }
}

// GSPO's first launch: one block per row (striding over rows past the
// grid), each thread summing its tokens' logprob - oldLogprob (in float, as
// the token pass forms it) in double, in order, then a fixed tree: each
// row's mean log-ratio over its valid tokens, 0 for an empty row.
constexpr int kRatioThreads = 128;

__global__ void __launch_bounds__(kRatioThreads) sequenceLogRatioKernel(PpoPolicyLossParams p) {
  __shared__ double sums[kRatioThreads / 32];
  __shared__ long long counts[kRatioThreads / 32];
  for (int64_t b = blockIdx.x; b < p.rows; b += gridDim.x) {
    const int64_t base = b * p.steps;
    double sum = 0;
    long long count = 0;
    for (int64_t t = threadIdx.x; t < p.steps; t += kRatioThreads) {
      const bool valid = !p.mask || __ldg(p.mask + base + t) != 0;
      const float d = __ldg(p.logprobs + base + t) - __ldg(p.oldLogprobs + base + t);
      sum += valid ? static_cast<double>(d) : 0.0;  // a select: a NaN at a masked step stays out
      count += valid ? 1 : 0;
    }
    for (int o = 16; o > 0; o >>= 1) {
      sum += __shfl_down_sync(0xffffffffu, sum, o);
      count += __shfl_down_sync(0xffffffffu, count, o);
    }
    if (threadIdx.x % 32 == 0) sums[threadIdx.x / 32] = sum, counts[threadIdx.x / 32] = count;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < kRatioThreads / 32; ++w) sums[0] += sums[w], counts[0] += counts[w];
      p.sequenceLogRatio[b] = counts[0] > 0 ? static_cast<float>(sums[0] / static_cast<double>(counts[0])) : 0.0f;
    }
    __syncthreads();  // sums and counts are rewritten for the next row
  }
}

// RowInputs: whether the op reads per-row inputs (GRPO's [B] advantages,
// GSPO's sequence log-ratio); without, a token's row is never computed.
template <bool HasMask, int Kl, bool HasEntropy, bool RowInputs>
struct PolicyOp {
  PpoPolicyLossParams p;
  ppo::PolicyConsts c;

  __device__ const uint8_t* mask() const { return HasMask ? p.mask : nullptr; }
  static constexpr unsigned kStats = kApproxKlStat | kClippedLowerStat | (Kl >= 0 ? kKlStat : 0u);
  static constexpr bool kFullTiles = !RowInputs;  // a separate full-tile path (ppoKernel) for the common ops only
  __device__ bool dualClip() const { return c.dualClip == c.dualClip; }  // not NaN (off)

  struct Inputs {
    float logprob, old, advantage, ref, entropy, sequenceLogRatio;
    bool valid;
  };

  // A thread's pointers into a tile, at its first token (inTile).
  struct Cursor {
    const float *logprob, *old, *advantage, *ref, *entropy;
    const uint8_t* mask;
    float *grad, *gradEntropy;
    int64_t row;  // the tile's first row (RowInputs)
  };

  __device__ Cursor cursor(const Layout&, const Tile& tile) const {
    const int64_t i = tile.begin + threadIdx.x;
    return Cursor{p.logprobs + i,
                  p.oldLogprobs + i,
                  p.advantages + i,
                  Kl >= 0 ? p.refLogprobs + i : nullptr,
                  HasEntropy ? p.entropy + i : nullptr,
                  HasMask ? p.mask + i : nullptr,
                  p.gradLogprobs + i,
                  HasEntropy ? p.gradEntropy + i : nullptr,
                  tile.row};
  }

  // Token k of the thread; `in`: inside the tile (else all zeros, invalid).
  __device__ Inputs load(const Cursor& t, int k, bool in, const Layout& l) const {
    const int o = k * kThreads;
    Inputs x{};
    x.logprob = in ? __ldg(t.logprob + o) : 0.0f;
    x.old = in ? __ldg(t.old + o) : 0.0f;
    if (Kl >= 0) x.ref = in ? __ldg(t.ref + o) : 0.0f;
    if (HasEntropy) x.entropy = in ? __ldg(t.entropy + o) : 0.0f;
    x.valid = in && (!HasMask || __ldg(t.mask + o) != 0);
    if (!RowInputs) {
      x.advantage = in ? __ldg(t.advantage + o) : 0.0f;
      return x;
    }
    // The token's row: in a tile of whole rows, its index in the tile / steps.
    const int64_t row = l.packed ? t.row + l.bySteps.quotient(inTile(k)) : t.row;
    x.advantage = !in ? 0.0f : p.advantagePerRow ? __ldg(p.advantages + row) : __ldg(t.advantage + o);
    x.sequenceLogRatio = in && p.sequenceRatio ? __ldcg(p.sequenceLogRatio + row) : 0.0f;  // written by the launch before
    return x;
  }

  template <bool MayDualClip>
  __device__ void token(const Cursor& t, int k, float w, const Inputs& x, bool in, Partial& a,
                        std::bool_constant<MayDualClip>) const {
    const int o = k * kThreads;
    const bool valid = x.valid;
    const ppo::PolicyToken<ppo::ScalarLanes> r = ppo::policyToken<Kl, HasEntropy, ppo::ScalarLanes, MayDualClip>(
        x.logprob, x.old, x.advantage, x.ref, x.entropy, c, RowInputs && p.sequenceRatio, x.sequenceLogRatio);
    if (in) t.grad[o] = valid ? w * r.grad : 0.0f;
    if (HasEntropy && in) t.gradEntropy[o] = valid ? -c.entropyCoef * w : 0.0f;
    // Selects, not a branch: a masked token adds +0 (a sum from +0 is never
    // -0, so the bits are those of skipping it) and its NaNs stay out.
    a.loss += valid ? w * r.loss : 0.0f;
    a.approxKl += valid ? r.approxKl : 0.0f;
    if (Kl >= 0) a.kl += valid ? r.kl : 0.0f;
    a.valid += valid;
    a.clipped += valid && r.clipped;
    a.clippedLower += valid && r.clippedLower;
  }

  __device__ void finish(float loss, float clipFraction, float clipFractionLower, float approxKl, float kl) const {
    *p.loss = loss;
    *p.clipFraction = clipFraction;
    *p.clipFractionLower = clipFractionLower;
    *p.approxKl = approxKl;
    if (p.kl) *p.kl = kl;
  }
};

template <bool HasMask, bool Clip>
struct ValueOp {
  PpoValueLossParams p;

  __device__ const uint8_t* mask() const { return HasMask ? p.mask : nullptr; }
  static constexpr unsigned kStats = 0;  // loss, valid and clipped alone
  static constexpr bool kFullTiles = true;
  static constexpr bool dualClip() { return false; }  // (one full-tile copy)

  struct Inputs {
    float value, old, ret;
    bool valid;
  };

  struct Cursor {  // as PolicyOp's
    const float *value, *old, *ret;
    const uint8_t* mask;
    float* grad;
  };

  __device__ Cursor cursor(const Layout&, const Tile& tile) const {
    const int64_t i = tile.begin + threadIdx.x;
    return Cursor{p.values + i, p.oldValues + i, p.returns + i, HasMask ? p.mask + i : nullptr, p.gradValues + i};
  }

  __device__ Inputs load(const Cursor& t, int k, bool in, const Layout&) const {
    const int o = k * kThreads;
    return Inputs{in ? __ldg(t.value + o) : 0.0f, in ? __ldg(t.old + o) : 0.0f, in ? __ldg(t.ret + o) : 0.0f,
                  in && (!HasMask || __ldg(t.mask + o) != 0)};
  }

  template <class Dual>
  __device__ void token(const Cursor& t, int k, float w, const Inputs& x, bool in, Partial& a, Dual) const {
    const bool valid = x.valid;
    const ppo::ValueToken<ppo::ScalarLanes> r = ppo::valueToken<Clip, ppo::ScalarLanes>(x.value, x.old, x.ret, p.clip);
    if (in) t.grad[k * kThreads] = valid ? w * r.grad : 0.0f;
    a.loss += valid ? w * r.loss : 0.0f;  // as PolicyOp's
    a.valid += valid;
    a.clipped += valid && r.clipped;
  }

  __device__ void finish(float loss, float clipFraction, float, float, float) const {
    *p.loss = loss;
    *p.clipFraction = clipFraction;
  }
};

// Launches ppoKernel<Op> cooperatively: at most as many blocks as fit on the
// device at once (the occupancy query is cached per device).
template <class Op>
int launchPpo(const Op& op, bool hasMask, const Layout& l, const CudaLaunch& launch) {
  const bool perRowShared = hasMask && l.packed &&
                            (l.aggregation == Aggregation::SeqMeanTokenSum || l.aggregation == Aggregation::SeqMeanTokenMean);
  const size_t smem = perRowShared ? sizeof(int32_t) * static_cast<size_t>(l.rowsPerTile) : 0;
  // Queried with the most shared memory any layout uses, so it holds for all.
  static ResidentCache cache;
  if (l.tiles >= (int64_t{1} << 31)) return cudaErrorInvalidValue;  // tile indices are 32-bit (Divider)
  cudaError_t e = cudaSuccess;
  const int64_t capacity = residentBlocks(ppoKernel<Op>, kThreads, sizeof(int32_t) * kTile, launch, cache, &e);
  if (e != cudaSuccess) return e;
  const int grid = static_cast<int>(std::max<int64_t>(1, std::min(l.tiles, capacity)));
  Layout layoutArg = l;
  // The tally (RK_PPO_TALLY, kernels/tuning.cuh) carries a single count:
  // sum(M) for token-mean, B' when tiles hold whole rows; 16 bits of arrivals.
  layoutArg.tally = RK_PPO_TALLY && l.counts && l.normalizer == 0 &&
                    (l.aggregation == Aggregation::TokenMean || l.packed) && grid < (1 << 16) &&
                    l.rows * l.steps < (int64_t{1} << 47);

  const size_t tiles = static_cast<size_t>(l.tiles);
  const size_t bytes = tiles * (2 * sizeof(int32_t) + sizeof(Partial)) + sizeof(Partial);
  char* base = static_cast<char*>(launch.scratch(launch.owner, bytes));
  if (!base) return cudaErrorMemoryAllocation;
  // Partials first: 4-byte fields, so every array stays aligned.
  Scratch s{reinterpret_cast<int32_t*>(base + tiles * sizeof(Partial)),
            reinterpret_cast<int32_t*>(base + tiles * (sizeof(Partial) + sizeof(int32_t))),
            reinterpret_cast<Partial*>(base), launch.blockCounter, launch.gridTally};
  if (RK_PPO_PLAIN_GRID && !l.counts) {
    const unsigned plain = static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(1, l.tiles), INT32_MAX));
    ppoKernel<Op><<<plain, kThreads, smem, static_cast<cudaStream_t>(launch.stream)>>>(op, layoutArg, s);
    return cudaGetLastError();
  }
  Op opArg = op;
  void* args[] = {&opArg, &layoutArg, &s};
  return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(ppoKernel<Op>), dim3(grid), dim3(kThreads), args,
                                     smem, static_cast<cudaStream_t>(launch.stream));
}

template <bool HasMask, bool HasEntropy, bool RowInputs>
int policyWith(const PpoPolicyLossParams& p, const Layout& l, const CudaLaunch& launch) {
  const ppo::PolicyConsts c{1.0f - p.clipLow, 1.0f + p.clipHigh, p.dualClip, p.klCoef, p.entropyCoef};
  if (!p.refLogprobs) return launchPpo(PolicyOp<HasMask, -1, HasEntropy, RowInputs>{p, c}, HasMask, l, launch);
  switch (p.klEstimator) {
    case KlEstimator::K1: return launchPpo(PolicyOp<HasMask, 0, HasEntropy, RowInputs>{p, c}, HasMask, l, launch);
    case KlEstimator::K2: return launchPpo(PolicyOp<HasMask, 1, HasEntropy, RowInputs>{p, c}, HasMask, l, launch);
    case KlEstimator::K3: break;
  }
  return launchPpo(PolicyOp<HasMask, 2, HasEntropy, RowInputs>{p, c}, HasMask, l, launch);
}

template <bool RowInputs>
int policyWithRows(const PpoPolicyLossParams& p, const Layout& l, const CudaLaunch& launch) {
  if (p.mask)
    return p.entropy ? policyWith<true, true, RowInputs>(p, l, launch) : policyWith<true, false, RowInputs>(p, l, launch);
  return p.entropy ? policyWith<false, true, RowInputs>(p, l, launch)
                   : policyWith<false, false, RowInputs>(p, l, launch);
}

}  // namespace

int ppoPolicyLoss(const PpoPolicyLossParams& p, const CudaLaunch& launch) {
  if (p.sequenceRatio && p.rows > 0) {
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(p.rows, int64_t{1} << 20));
    sequenceLogRatioKernel<<<grid, kRatioThreads, 0, static_cast<cudaStream_t>(launch.stream)>>>(p);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  const Layout l = layoutFor(p.rows, p.steps, p.mask != nullptr, p.aggregation, p.normalizer);
  return p.advantagePerRow || p.sequenceRatio ? policyWithRows<true>(p, l, launch) : policyWithRows<false>(p, l, launch);
}

int ppoValueLoss(const PpoValueLossParams& p, const CudaLaunch& launch) {
  const Layout l = layoutFor(p.rows, p.steps, p.mask != nullptr, p.aggregation, p.normalizer);
  const bool clip = p.clip >= 0.0f;
  if (p.mask) return clip ? launchPpo(ValueOp<true, true>{p}, true, l, launch) : launchPpo(ValueOp<true, false>{p}, true, l, launch);
  return clip ? launchPpo(ValueOp<false, true>{p}, false, l, launch) : launchPpo(ValueOp<false, false>{p}, false, l, launch);
}

}  // namespace rk::cudaops
