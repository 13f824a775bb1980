// Tiles, counts and block reductions of the PPO kernels (kernels/ppo.cu,
// the only includer): how [rows, steps] tokens are cut into fixed tiles,
// phase 1's per-tile mask counts, and the totals every block derives from
// them. Tiles depend on the shape alone, which keeps every reduction's order
// independent of the grid size.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../native/ops/ppo.h"
#include "block_sums.cuh"
#include "tuning.cuh"

namespace rk::cudaops {
namespace {

constexpr int kThreads = RK_PPO_THREADS;  // kernels/tuning.cuh
constexpr int kTile = RK_PPO_TILE;        // tokens per tile
constexpr int kPerThread = kTile / kThreads;
constexpr int kWarps = kThreads / 32;
constexpr int kLoads = RK_PPO_LOADS;      // when a tile's inputs are loaded
static_assert(kLoads >= 0 && kLoads <= 2, "RK_PPO_LOADS: 0, 1 or 2");
static_assert(kThreads % 32 == 0 && kThreads <= 1024 && kTile % kThreads == 0, "PPO: whole warps, and tiles of whole threads");

// n / d for 0 <= n < 2^31 by a multiply-high and a shift (Granlund and
// Montgomery's method, as CUTLASS's FastDivmod): with l = ceil(log2 d),
// m = ceil(2^(31 + l) / d) fits in 32 bits and floor(n m / 2^(31 + l)) =
// floor(n / d) for every such n. Two instructions where a 32-bit division
// takes about twenty (a 64-bit one, a call).
struct Divider {
  uint32_t d, m, shift;  // d = 1: m = 0, the quotient is n

  static Divider of(uint32_t d) {
    uint32_t l = 0;
    while ((uint64_t{1} << l) < d) ++l;
    if (d == 1) return Divider{1, 0, 0};
    return Divider{d, static_cast<uint32_t>(((uint64_t{1} << (31 + l)) + d - 1) / d), l - 1};
  }
  __device__ uint32_t quotient(uint32_t n) const { return d == 1 ? n : __umulhi(n, m) >> shift; }
};

// How tokens are cut into tiles: whole rows when a row fits in a tile
// (packed), else row segments of kTile tokens.
struct Layout {
  int64_t rows, steps;
  int64_t tiles;
  int64_t segments;     // tiles per row (1 when packed)
  Divider bySegments;   // t / segments (segmented; tiles < 2^31: launchPpo checks)
  Divider bySteps;      // a token's row in a packed tile: its index in the tile / steps
  int32_t rowsPerTile;  // whole rows per tile (1 when segmented)
  bool packed;
  bool wholeSegments;   // segmented, and steps a multiple of kTile: tile t is tokens [t kTile, (t + 1) kTile)
  bool counts;          // phase 1 runs (a mask, and an aggregation that needs a count)
  bool tally;           // phase 1's count goes through Scratch::tally (RK_PPO_TALLY; set at launch)
  Aggregation aggregation;
  double normalizer;    // > 0: the aggregation's denominator, given; 0: from the counts
};

struct Tile {
  int64_t begin, end;  // flat token range
  int64_t row;         // first row
  int32_t rows;        // rows in the tile (packed), or 1
  int32_t count;       // end - begin (at most kTile)
};

// Token k of a thread in a tile: the thread's tokens are kThreads apart
// (coalesced), at [begin + threadIdx.x + k kThreads]. Pointers moved to
// begin + threadIdx.x once per tile reach them at compile-time offsets
// k kThreads, with no 64-bit index arithmetic per token.
__device__ __forceinline__ int inTile(int k) { return static_cast<int>(threadIdx.x) + k * kThreads; }

__device__ Tile tileAt(const Layout& l, int64_t t) {
  Tile r;
  if (l.packed) {
    r.row = t * l.rowsPerTile;
    const int64_t last = r.row + l.rowsPerTile < l.rows ? r.row + l.rowsPerTile : l.rows;
    r.rows = static_cast<int32_t>(last - r.row);
    r.begin = r.row * l.steps;
    r.end = last * l.steps;
  } else {
    r.row = l.bySegments.quotient(static_cast<uint32_t>(t));
    r.rows = 1;
    if (l.wholeSegments) {  // row steps + offset is then t kTile: no 64-bit products
      r.begin = t * kTile;
      r.end = r.begin + kTile;
    } else {
      const int64_t offset = (t - r.row * l.segments) * kTile;
      r.begin = r.row * l.steps + offset;
      r.end = r.row * l.steps + (offset + kTile < l.steps ? offset + kTile : l.steps);
    }
  }
  r.count = static_cast<int32_t>(r.end - r.begin);
  return r;
}

// Sums over a thread's, a block's or a tile's tokens; zero with Partial{}.
struct Partial {
  float loss, approxKl, kl;
  int32_t valid, clipped, clippedLower;
};
// The optional fields an op sets (Op::kStats); loss, valid and clipped always.
enum : unsigned { kApproxKlStat = 1, kKlStat = 2, kClippedLowerStat = 4 };

struct Scratch {
  int32_t* tileValid;  // [tiles] valid tokens per tile (phase 1)
  int32_t* tileRows;   // [tiles] non-empty rows per packed tile (phase 1, seq-mean modes)
  Partial* partials;   // [tiles]
  unsigned* counter;   // CudaLaunch::blockCounter: 0 at the launch and again at the end
  unsigned long long* tally;  // CudaLaunch::gridTally: the same
};

// One block sum (kernels/block_sums.cuh), the same in every thread.
template <class T>
__device__ T blockSum(T v) {
  T one[1] = {v};
  blockSums<kThreads>(one);
  return one[0];
}

// Valid tokens per row of a packed tile, into counts[0, tile.rows).
// Lanes of a warp holding the same row add their votes in one atomic:
// integer shared-memory atomics, exact in any order.
__device__ void countRows(const uint8_t* mask, const Layout& l, const Tile& tile, int32_t* counts) {
  for (int r = threadIdx.x; r < tile.rows; r += kThreads) counts[r] = 0;
  __syncthreads();
  const int lane = threadIdx.x % 32;
  const uint8_t* m = mask + tile.begin + threadIdx.x;
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) {
    const bool in = inTile(k) < tile.count;
    const int r = in ? static_cast<int>(l.bySteps.quotient(inTile(k))) : -1;
    const bool valid = in && m[k * kThreads] != 0;
    const unsigned peers = __match_any_sync(0xffffffffu, r);
    const unsigned votes = __ballot_sync(0xffffffffu, valid);
    if (in && lane == __ffs(peers) - 1 && (peers & votes)) atomicAdd(&counts[r], __popc(peers & votes));
  }
  __syncthreads();
}

// The nonzero bytes of a word. In y a byte's top bit is set iff the byte is
// 0: (b & 0x7f) + 0x7f reaches 0x80 iff the low 7 bits are not all 0 (and
// at most 0xfe: no carry into the next byte), b itself has the top bit when
// b >= 0x80, and the complement of their OR keeps the top bit alone.
__device__ __forceinline__ int nonzeroBytes(uint32_t w) {
  const uint32_t y = ~(((w & 0x7f7f7f7fu) + 0x7f7f7f7fu) | w | 0x7f7f7f7fu);
  return 4 - __popc(y);
}

struct Totals {
  long long valid;     // sum(M)
  long long nonEmpty;  // B'
};

// Phase 1: per-tile counts into scratch (unless l.tally: then only the
// block's), and the block's totals over its tiles, the same in every thread.
constexpr int kCountBatch = 4;  // tiles whose mask bytes a block has in flight at once

__device__ Totals countTiles(const uint8_t* mask, const Layout& l, const Scratch& s, int32_t* rowCounts) {
  Totals mine{0, 0};
  if (l.packed && l.aggregation != Aggregation::TokenMean) {
    for (int64_t t = blockIdx.x; t < l.tiles; t += gridDim.x) {
      const Tile tile = tileAt(l, t);
      countRows(mask, l, tile, rowCounts);
      int sums[2] = {0, 0};  // valid tokens, non-empty rows
      for (int r = threadIdx.x; r < tile.rows; r += kThreads) {
        sums[0] += rowCounts[r];
        sums[1] += rowCounts[r] > 0;
      }
      blockSums<kThreads>(sums);
      if (threadIdx.x == 0 && !l.tally) {
        s.tileValid[t] = sums[0];
        s.tileRows[t] = sums[1];
      }
      mine.valid += sums[0];
      mine.nonEmpty += sums[1];
    }
    return mine;
  }
  // Tiles t0, t0 + grid, ... in batches: every mask byte of a batch is
  // loaded before the first sum, so a block waits one memory round trip per
  // batch rather than one per tile.
  for (int64_t t0 = blockIdx.x; t0 < l.tiles; t0 += int64_t{kCountBatch} * gridDim.x) {
    int valid[kCountBatch];
#pragma unroll
    for (int b = 0; b < kCountBatch; ++b) {
      const int64_t t = t0 + int64_t{b} * gridDim.x;
      valid[b] = 0;
      if (t >= l.tiles) continue;
      const Tile tile = tileAt(l, t);
      const uint8_t* m = mask + tile.begin;
      if (kPerThread % 4 == 0 && tile.count == kTile && reinterpret_cast<uintptr_t>(m) % 4 == 0) {
        // A whole aligned tile: 4 mask bytes a word (the order of the
        // tokens within a count does not matter).
        const uint32_t* words = reinterpret_cast<const uint32_t*>(m);
#pragma unroll
        for (int k = 0; k < kPerThread / 4; ++k) valid[b] += nonzeroBytes(words[threadIdx.x + k * kThreads]);
        continue;
      }
#pragma unroll
      for (int k = 0; k < kPerThread; ++k) valid[b] += inTile(k) < tile.count && m[inTile(k)] != 0;
    }
    blockSums<kThreads>(valid);
#pragma unroll
    for (int b = 0; b < kCountBatch; ++b) {
      const int64_t t = t0 + int64_t{b} * gridDim.x;
      if (threadIdx.x == 0 && t < l.tiles && !l.tally) s.tileValid[t] = valid[b];
      mine.valid += valid[b];
    }
  }
  return mine;
}

// After phase 1, in every block: sum(M) and B' from the tile counts.
__device__ Totals totalsFromTiles(const Layout& l, const Scratch& s) {
  long long sums[2] = {0, 0};  // sum(M), B'
  // Other blocks wrote the counts: every read goes to L2 (__ldcg).
  for (int64_t t = threadIdx.x; t < l.tiles; t += kThreads) sums[0] += __ldcg(s.tileValid + t);
  if (l.aggregation == Aggregation::TokenMean) {
    sums[0] = blockSum(sums[0]);
    return Totals{sums[0], 0};
  }
  if (l.packed) {
    for (int64_t t = threadIdx.x; t < l.tiles; t += kThreads) sums[1] += __ldcg(s.tileRows + t);
  } else {
    for (int64_t b = threadIdx.x; b < l.rows; b += kThreads) {
      int64_t row = 0;
      for (int64_t g = 0; g < l.segments; ++g) row += __ldcg(s.tileValid + b * l.segments + g);
      sums[1] += row > 0;
    }
  }
  blockSums<kThreads>(sums);
  return Totals{sums[0], sums[1]};
}

// The aggregation's denominator: the given normalizer, else from the totals.
__device__ double denominatorOf(const Layout& l, const Totals& n) {
  if (l.normalizer > 0) return l.normalizer;
  switch (l.aggregation) {
    case Aggregation::TokenMean: return static_cast<double>(n.valid);
    case Aggregation::SeqMeanTokenSum:
    case Aggregation::SeqMeanTokenMean: return static_cast<double>(n.nonEmpty);
    case Aggregation::SeqMeanTokenSumNorm: break;
  }
  return static_cast<double>(l.rows) * static_cast<double>(l.steps);
}

__device__ float inverse(double x) { return x > 0 ? static_cast<float>(1.0 / x) : 0.0f; }

// Host: the layout of a [rows, steps] problem.
Layout layoutFor(int64_t rows, int64_t steps, bool hasMask, Aggregation aggregation, double normalizer) {
  Layout l{};
  l.rows = rows;
  l.steps = steps;
  l.aggregation = aggregation;
  l.normalizer = normalizer;
  l.packed = steps <= kTile;
  // With a given normalizer only seq-mean-token-mean needs counts, a row's:
  // a packed tile counts its rows itself (countRows), a row cut into
  // segments needs phase 1.
  l.counts = hasMask && aggregation != Aggregation::SeqMeanTokenSumNorm &&
             (normalizer == 0 || (aggregation == Aggregation::SeqMeanTokenMean && !l.packed));
  if (rows == 0 || steps == 0) {
    l.packed = false;
    return l;  // no tiles: the kernel writes zeros
  }
  if (l.packed) {
    l.rowsPerTile = static_cast<int32_t>(kTile / steps);
    l.bySteps = Divider::of(static_cast<uint32_t>(steps));
    l.segments = 1;
    l.tiles = (rows + l.rowsPerTile - 1) / l.rowsPerTile;
  } else {
    l.rowsPerTile = 1;
    l.segments = (steps + kTile - 1) / kTile;
    l.tiles = rows * l.segments;
    l.wholeSegments = steps % kTile == 0;
    // 2^31 segments hold more than 2^40 tokens: more than any device holds.
    if (l.tiles < (int64_t{1} << 31)) l.bySegments = Divider::of(static_cast<uint32_t>(l.segments));
  }
  return l;
}

}  // namespace
}  // namespace rk::cudaops
