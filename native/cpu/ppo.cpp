// CPU backend of the PPO family: ppoPolicyLoss and ppoValueLoss.
//
// One parallel pass over the tokens computes loss, gradient and statistics
// together. The gradient's scale depends on the aggregation's normalizer
// (sum(M), B' or per-row counts), which only the mask determines: a cheap
// count over the mask comes first (skipped without a mask), then the main
// pass writes final gradients directly.
//
// The per-token math (kernels/common/ppo.cuh) runs on kWidth tokens at once
// through GCC vector extensions, one register of this file's ISA wide.
//
// Determinism: the main pass reduces over fixed blocks of kBlock tokens
// (blockPartials); within a block, lane j sums tokens j, j + kWidth, ... of
// each run of equal weight, and blocks combine in order in double. Results
// are bit-identical whatever the thread count.
#include "isa.h"
// After isa.h, inside its ISA region: the math templates must be compiled
// for this file's ISA, whose vectors they run on (with internal linkage:
// every instantiation names VecLanes, from the anonymous namespace).
#include "../../kernels/common/ppo.cuh"

namespace rk::cpu::RK_ISA_NS {
namespace {

constexpr int64_t kBlock = 16384;  // tokens per reduction block: the fixed partition
// Tokens per vector: one register of this ISA.
#if defined(RK_ISA_AVX512)
constexpr int kWidth = 16;
#elif defined(RK_ISA_AVX2)
constexpr int kWidth = 8;
#else
constexpr int kWidth = 4;
#endif

typedef float VecF __attribute__((vector_size(4 * kWidth)));
typedef int32_t VecI __attribute__((vector_size(4 * kWidth)));  // masks: -1 (true) or 0
typedef uint32_t VecU __attribute__((vector_size(4 * kWidth)));
typedef uint8_t VecB __attribute__((vector_size(kWidth)));

struct VecLanes {
  using V = VecF;
  using Mask = VecI;
  using Bits = VecU;
  static VecF splat(float x) { return VecF{} + x; }
  static VecI none() { return VecI{}; }
  static VecF select(VecI m, VecF a, VecF b) { return m ? a : b; }
  static VecU bits(VecF x) { return reinterpret_cast<VecU>(x); }
  static VecF fromBits(VecU u) { return reinterpret_cast<VecF>(u); }
};

// Loads and stores of a full vector (Full) or of the first `count` tokens
// (the rest of a run; the other lanes read as 0 and are masked off).
template <bool Full>
VecF load(const float* p, int count) {
  VecF v{};
  std::memcpy(&v, p, sizeof(float) * (Full ? kWidth : count));
  return v;
}

template <bool Full>
void store(float* p, int count, VecF v) {
  std::memcpy(p, &v, sizeof(float) * (Full ? kWidth : count));
}

// A per-row value ([rows]) spread over the row's tokens [i, i + count), each
// lane its own row's where a vector spans rows. Lanes past the run read as
// 0, as load's do: the same vectors, so the same bits, as the values written
// out [rows, steps].
template <bool Full>
VecF perRowAt(const float* perRow, int64_t steps, int64_t i, int count) {
  const int n = Full ? kWidth : count;
  int64_t row = i / steps, next = (row + 1) * steps;  // next: the first token of the next row
  VecF v{};
  if (i + n <= next) {
    if (Full) return VecLanes::splat(perRow[row]);
    for (int j = 0; j < n; ++j) v[j] = perRow[row];
    return v;
  }
  for (int j = 0; j < n; ++j) {
    if (i + j == next) ++row, next += steps;
    v[j] = perRow[row];
  }
  return v;
}

// The advantages of tokens [i, i + count): from [rows, steps], or one per row (advantagePerRow).
template <bool Full>
VecF advantagesAt(const PpoPolicyLossParams& p, int64_t i, int count) {
  return p.advantagePerRow ? perRowAt<Full>(p.advantages, p.steps, i, count) : load<Full>(p.advantages + i, count);
}

typedef float F8 __attribute__((vector_size(32)));
typedef double D8 __attribute__((vector_size(64)));
typedef int32_t I8 __attribute__((vector_size(32)));
typedef int64_t L8 __attribute__((vector_size(64)));
typedef uint8_t B8 __attribute__((vector_size(8)));

// GSPO's first pass: each row's masked mean of logprobs - oldLogprobs (each
// difference in float, as the token pass forms it; summed in double in a
// fixed order), 0 for a row without a valid token. Rows are independent: the
// same bits for any thread count.
void sequenceLogRatios(const PpoPolicyLossParams& p) {
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(p.steps, 1));
  ThreadPool::global().parallelFor(p.rows, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* lp = p.logprobs + b * p.steps;
      const float* old = p.oldLogprobs + b * p.steps;
      const uint8_t* m = p.mask ? p.mask + b * p.steps : nullptr;
      // Step t into double lane t % 8 (GCC vector extensions: 8 independent
      // chains, the same on every ISA), the lanes combined pairwise.
      D8 acc{};
      L8 counts{};  // 64-bit lanes: no row is too long to count
      int64_t t = 0;
      for (; t + 8 <= p.steps; t += 8) {
        F8 a, o;
        std::memcpy(&a, lp + t, sizeof a);
        std::memcpy(&o, old + t, sizeof o);
        I8 valid = ~I8{};
        if (m) {
          B8 bytes;
          std::memcpy(&bytes, m + t, sizeof bytes);
          valid = __builtin_convertvector(bytes != 0, I8);  // compare as bytes, widen the signed 0 / -1
        }
        const F8 d = a - o;
        acc += __builtin_convertvector(valid ? d : F8{}, D8);  // a select: a NaN at a masked step stays out
        counts -= __builtin_convertvector(valid, L8);
      }
      for (int j = 0; t < p.steps; ++t, ++j) {
        const bool valid = !m || m[t] != 0;
        const float d = lp[t] - old[t];
        acc[j] += valid ? static_cast<double>(d) : 0.0;
        counts[j] += valid;
      }
      const double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      int64_t count = 0;
      for (int j = 0; j < 8; ++j) count += counts[j];
      p.sequenceLogRatio[b] = count > 0 ? static_cast<float>(sum / static_cast<double>(count)) : 0.0f;
    }
  });
}

// -1 for the lanes that hold a token of the run (and, with a mask, a valid one).
template <bool Full>
VecI validLanes(const uint8_t* mask, int count) {
  VecI lane;
  for (int j = 0; j < kWidth; ++j) lane[j] = j;
  VecI inRun = lane < (Full ? kWidth : count);
  if (!mask) return inRun;
  VecB bytes{};
  std::memcpy(&bytes, mask, Full ? kWidth : count);
  // Compare as bytes, then widen the signed 0 / -1: one sign extension
  // (widening unsigned bytes directly compiles to a byte-by-byte shuffle).
  return inRun & __builtin_convertvector(bytes != 0, VecI);
}

// How each valid token is weighted in the aggregate: uniformly, or per row.
struct Weights {
  float uniform = 0.0f;          // every valid token's weight, when rowWeight is empty
  std::vector<float> rowWeight;  // per row: 1 / (sum_t M * B') for seq-mean-token-mean
};

// `normalizer` > 0 replaces the aggregation's denominator (sum(M), B', B' or
// rows * steps); then only seq-mean-token-mean needs the mask's counts.
Weights aggregationWeights(const uint8_t* mask, int64_t rows, int64_t steps, Aggregation agg, double normalizer) {
  Weights w;
  double denominator = static_cast<double>(rows) * static_cast<double>(steps);  // sum-norm's
  if (!mask) {
    // Every row holds `steps` valid tokens: one weight for all.
    if (agg == Aggregation::SeqMeanTokenSum) denominator = static_cast<double>(rows);
    if (normalizer > 0)
      denominator = agg == Aggregation::SeqMeanTokenMean ? static_cast<double>(steps) * normalizer : normalizer;
    if (rows * steps > 0) w.uniform = static_cast<float>(1.0 / denominator);
    return w;
  }
  if (rows * steps == 0) return w;  // no token: no weight, and no count of a billion empty rows
  if (normalizer > 0 && agg != Aggregation::SeqMeanTokenMean) {
    // No count needed: a batch without a valid token gets 0 from the sums.
    w.uniform = static_cast<float>(1.0 / normalizer);
    return w;
  }
  std::vector<int64_t> count(static_cast<size_t>(rows));
  int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(steps, 1));
  ThreadPool::global().parallelFor(rows, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const uint8_t* m = mask + b * steps;
      int64_t c = 0;
      for (int64_t t = 0; t < steps; ++t) c += m[t] != 0;
      count[static_cast<size_t>(b)] = c;
    }
  });
  int64_t valid = 0, nonEmpty = 0;  // sum(M), B'
  for (int64_t c : count) {
    valid += c;
    nonEmpty += c > 0;
  }
  if (valid == 0) return w;  // no valid token: loss, gradients and statistics are 0
  if (agg == Aggregation::TokenMean) denominator = static_cast<double>(valid);
  if (agg == Aggregation::SeqMeanTokenSum || agg == Aggregation::SeqMeanTokenMean)
    denominator = static_cast<double>(nonEmpty);
  if (normalizer > 0) denominator = normalizer;
  if (agg != Aggregation::SeqMeanTokenMean) {
    w.uniform = static_cast<float>(1.0 / denominator);
    return w;
  }
  w.rowWeight.resize(count.size());
  for (size_t b = 0; b < count.size(); ++b)
    w.rowWeight[b] = count[b] > 0 ? static_cast<float>(1.0 / (static_cast<double>(count[b]) * denominator)) : 0.0f;
  return w;
}

// Lane sums of one reduction block.
struct Acc {
  VecF loss{}, approxKl{}, kl{};
  VecI valid{}, clipped{}, clippedLower{};
};

struct Partial {
  double loss = 0, approxKl = 0, kl = 0;
  int64_t valid = 0, clipped = 0, clippedLower = 0;
};

Partial collapse(const Acc& a) {
  Partial p;
  for (int j = 0; j < kWidth; ++j) {
    p.loss += a.loss[j];
    p.approxKl += a.approxKl[j];
    p.kl += a.kl[j];
    p.valid += a.valid[j];
    p.clipped += a.clipped[j];
    p.clippedLower += a.clippedLower[j];
  }
  return p;
}

// Runs chunk<Full>(acc, i, count, weight) over [lo, hi) in runs of equal
// weight (one run unless weights differ per row), then sums the lanes.
template <class Chunk>
Partial overBlock(const Weights& w, int64_t steps, int64_t lo, int64_t hi, Chunk&& chunk) {
  Acc acc;
  auto run = [&](int64_t begin, int64_t end, float weight) {
    int64_t i = begin;
    for (; i + kWidth <= end; i += kWidth) chunk(std::true_type{}, acc, i, kWidth, weight);
    if (i < end) chunk(std::false_type{}, acc, i, static_cast<int>(end - i), weight);
  };
  if (w.rowWeight.empty()) {
    run(lo, hi, w.uniform);
  } else {
    for (int64_t i = lo; i < hi;) {
      int64_t row = i / steps, end = std::min(hi, (row + 1) * steps);
      run(i, end, w.rowWeight[static_cast<size_t>(row)]);
      i = end;
    }
  }
  return collapse(acc);
}

// Runs the block function over the fixed partition and combines in order.
template <class Block>
Partial reduceBlocks(int64_t n, Block&& block) {
  Partial total;
  for (const Partial& p : blockPartials<Partial>(n, kBlock, block)) {
    total.loss += p.loss;
    total.approxKl += p.approxKl;
    total.kl += p.kl;
    total.valid += p.valid;
    total.clipped += p.clipped;
    total.clippedLower += p.clippedLower;
  }
  return total;
}

float meanOver(double sum, int64_t count) { return count > 0 ? static_cast<float>(sum / static_cast<double>(count)) : 0.0f; }

// flatten: the whole block, math included, compiles as one function, so
// vectors stay in registers.
template <bool HasMask, int Kl, bool HasEntropy>
[[gnu::flatten]] Partial policyBlock(const PpoPolicyLossParams& p, const Weights& w, int64_t lo, int64_t hi) {
  const ppo::PolicyConsts c{1.0f - p.clipLow, 1.0f + p.clipHigh, p.dualClip, p.klCoef, p.entropyCoef};
  return overBlock(w, p.steps, lo, hi, [&](auto full, Acc& acc, int64_t i, int count, float weight) {
    constexpr bool Full = decltype(full)::value;
    VecI valid = validLanes<Full>(HasMask ? p.mask + i : nullptr, count);
    ppo::PolicyToken<VecLanes> t = ppo::policyToken<Kl, HasEntropy, VecLanes>(
        load<Full>(p.logprobs + i, count), load<Full>(p.oldLogprobs + i, count),
        advantagesAt<Full>(p, i, count), Kl >= 0 ? load<Full>(p.refLogprobs + i, count) : VecF{},
        HasEntropy ? load<Full>(p.entropy + i, count) : VecF{}, c, p.sequenceRatio,
        p.sequenceRatio ? perRowAt<Full>(p.sequenceLogRatio, p.steps, i, count) : VecF{});
    store<Full>(p.gradLogprobs + i, count, valid ? weight * t.grad : VecF{});
    if (HasEntropy) store<Full>(p.gradEntropy + i, count, valid ? VecLanes::splat(-p.entropyCoef * weight) : VecF{});
    acc.loss += valid ? weight * t.loss : VecF{};
    acc.approxKl += valid ? t.approxKl : VecF{};
    if (Kl >= 0) acc.kl += valid ? t.kl : VecF{};
    acc.valid -= valid;
    acc.clipped -= valid & t.clipped;
    acc.clippedLower -= valid & t.clippedLower;
  });
}

template <bool HasMask, bool Clip>
[[gnu::flatten]] Partial valueBlock(const PpoValueLossParams& p, const Weights& w, int64_t lo, int64_t hi) {
  return overBlock(w, p.steps, lo, hi, [&](auto full, Acc& acc, int64_t i, int count, float weight) {
    constexpr bool Full = decltype(full)::value;
    VecI valid = validLanes<Full>(HasMask ? p.mask + i : nullptr, count);
    ppo::ValueToken<VecLanes> t = ppo::valueToken<Clip, VecLanes>(
        load<Full>(p.values + i, count), load<Full>(p.oldValues + i, count), load<Full>(p.returns + i, count), p.clip);
    store<Full>(p.gradValues + i, count, valid ? weight * t.grad : VecF{});
    acc.loss += valid ? weight * t.loss : VecF{};
    acc.valid -= valid;
    acc.clipped -= valid & t.clipped;
  });
}

using PolicyBlockFn = Partial (*)(const PpoPolicyLossParams&, const Weights&, int64_t, int64_t);

template <bool HasMask, bool HasEntropy>
PolicyBlockFn policyKernel(const PpoPolicyLossParams& p) {
  if (!p.refLogprobs) return &policyBlock<HasMask, -1, HasEntropy>;
  switch (p.klEstimator) {
    case KlEstimator::K1: return &policyBlock<HasMask, 0, HasEntropy>;
    case KlEstimator::K2: return &policyBlock<HasMask, 1, HasEntropy>;
    case KlEstimator::K3: break;
  }
  return &policyBlock<HasMask, 2, HasEntropy>;
}

PolicyBlockFn policyKernel(const PpoPolicyLossParams& p) {
  if (p.mask) return p.entropy ? policyKernel<true, true>(p) : policyKernel<true, false>(p);
  return p.entropy ? policyKernel<false, true>(p) : policyKernel<false, false>(p);
}

}  // namespace

void ppoPolicyLoss(const PpoPolicyLossParams& p) {
  if (p.sequenceRatio) sequenceLogRatios(p);
  const Weights w = aggregationWeights(p.mask, p.rows, p.steps, p.aggregation, p.normalizer);
  const PolicyBlockFn block = policyKernel(p);
  const Partial s = reduceBlocks(p.rows * p.steps, [&](int64_t lo, int64_t hi) { return block(p, w, lo, hi); });
  *p.loss = static_cast<float>(s.loss);
  *p.clipFraction = meanOver(static_cast<double>(s.clipped), s.valid);
  *p.clipFractionLower = meanOver(static_cast<double>(s.clippedLower), s.valid);
  *p.approxKl = meanOver(s.approxKl, s.valid);
  if (p.kl) *p.kl = meanOver(s.kl, s.valid);
}

void ppoValueLoss(const PpoValueLossParams& p) {
  const Weights w = aggregationWeights(p.mask, p.rows, p.steps, p.aggregation, p.normalizer);
  using Fn = Partial (*)(const PpoValueLossParams&, const Weights&, int64_t, int64_t);
  const bool clip = p.clip >= 0.0f;
  const Fn block = p.mask ? (clip ? &valueBlock<true, true> : &valueBlock<true, false>)
                          : (clip ? &valueBlock<false, true> : &valueBlock<false, false>);
  const Partial s = reduceBlocks(p.rows * p.steps, [&](int64_t lo, int64_t hi) { return block(p, w, lo, hi); });
  *p.loss = static_cast<float>(s.loss);
  *p.clipFraction = meanOver(static_cast<double>(s.clipped), s.valid);
}

}  // namespace rk::cpu::RK_ISA_NS
