// CPU backend of the preference family: the pairwise / DPO loss with its
// gradients and statistics in one pass, and the masked per-sequence sums of
// token log-probs with their backward.
#include "../../kernels/common/preference.cuh"
#include "isa.h"
#include "simd.h"

namespace rk::cpu::RK_ISA_NS {
namespace {

using preference::PairTerms;

// Pairs per block of the batch reduction: the partition depends on the pair
// count only, and blocks combine in order, so the statistics are the same
// bits for any thread count.
constexpr int64_t kPairBlock = 4096;
// Pairs per chunk inside a block: the per-pair values wait in L1 for the sums.
constexpr int64_t kPairChunk = 256;

struct LossPartial {
  double loss = 0;    // sum of l
  double margin = 0;  // sum of d
  double center = 0;  // sum of (chosen + rejected)^2
  double chosen = 0;  // sum of the chosen side: chosen, or chosen - refChosen
  double rejected = 0;
  int64_t correct = 0;
};

struct LossScalars {
  float beta, halfInvBeta, labelSmoothing;
  float invCount;     // 1 / B (or 1 / normalizer): the gradient of a mean over B pairs is dl/dd / B, no reduction needed
  float centerScale;  // 2 coef / B: d/dc of coef * mean((c + r)^2) is this * (c + r)
};

// Per pair: both gradients, and l, d and c + r for the sums. Restrict
// pointers, no calls and selects instead of branches: GCC vectorizes this
// loop at the ISA's width (the templates take the option branches out). Out
// of line because GCC 12 stopped vectorizing it once inlined into lossBlock.
template <PreferenceKind Kind, bool Dpo, bool HasMargin>
__attribute__((noinline)) void pairChunk(int64_t n, const float* __restrict chosen,
                                         const float* __restrict rejected, const float* __restrict refChosen,
                                         const float* __restrict refRejected, const float* __restrict margin,
                                         float* __restrict gradChosen, float* __restrict gradRejected,
                                         float* __restrict loss, float* __restrict diff,
                                         float* __restrict pairSum, LossScalars k) {
  for (int64_t i = 0; i < n; ++i) {
    const float c = chosen[i], r = rejected[i];
    const float d = Dpo ? preference::pairDifference(c, r, refChosen[i], refRejected[i])
                        : preference::pairDifference(c, r);
    const float m = HasMargin ? margin[i] : 0.0f;
    const PairTerms t = preference::pairTerms(Kind, d, m, k.beta, k.halfInvBeta, k.labelSmoothing);
    const float sum = c + r;
    // With no centering centerScale is 0, and 0 * inf must stay out of the
    // gradients (a per-element test: a loop-invariant one stops GCC vectorizing).
    const float centerRaw = k.centerScale * sum;
    const float center = centerRaw == centerRaw ? centerRaw : 0.0f;
    // dl/dd / B + center, fused explicitly: a pair's gradients are the same
    // bits wherever it sits in the batch (micro-batches with a normalizer
    // reproduce the whole batch's).
    gradChosen[i] = simd::mulAdd(t.slope, k.invCount, center);
    gradRejected[i] = simd::mulAdd(-t.slope, k.invCount, center);
    loss[i] = t.loss;
    diff[i] = d;
    pairSum[i] = sum;
  }
}

// The sums of a block in 8 double lanes (GCC vector extensions: the same
// lanes and order on every ISA), pair j going to lane j % 8.
typedef float F8 __attribute__((vector_size(32)));
typedef double D8 __attribute__((vector_size(64)));
typedef int64_t L8 __attribute__((vector_size(64)));

struct LossLanes {
  D8 loss = {}, margin = {}, center = {}, chosen = {}, rejected = {};
  L8 correct = {};

  // l, d, sum: the chunk's per-pair values; c, r (rc, rr: the refs, when
  // Dpo) its inputs, whose sides c - rc and r - rr are formed here in float,
  // as pairDifference forms them, for the reward sums.
  template <bool Dpo>
  void add(const float* l, const float* d, const float* sum, const float* c, const float* r, const float* rc,
           const float* rr, int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      // (Loads by memcpy into locals: a helper returning a vector would change its ABI per ISA.)
      F8 lv, dv, sv, cv, rv, rcv{}, rrv{};
      std::memcpy(&lv, l + j, sizeof lv);
      std::memcpy(&dv, d + j, sizeof dv);
      std::memcpy(&sv, sum + j, sizeof sv);
      std::memcpy(&cv, c + j, sizeof cv);
      std::memcpy(&rv, r + j, sizeof rv);
      if (Dpo) {
        std::memcpy(&rcv, rc + j, sizeof rcv);
        std::memcpy(&rrv, rr + j, sizeof rrv);
      }
      const D8 s = __builtin_convertvector(sv, D8);
      loss += __builtin_convertvector(lv, D8);
      margin += __builtin_convertvector(dv, D8);
      center += s * s;
      chosen += __builtin_convertvector(Dpo ? cv - rcv : cv, D8);
      rejected += __builtin_convertvector(Dpo ? rv - rrv : rv, D8);
      correct -= __builtin_convertvector(dv > 0.0f, L8);  // true is -1
    }
    for (int lane = 0; j < n; ++j, ++lane) {
      loss[lane] += l[j];
      margin[lane] += d[j];
      center[lane] += static_cast<double>(sum[j]) * sum[j];
      chosen[lane] += Dpo ? c[j] - rc[j] : c[j];
      rejected[lane] += Dpo ? r[j] - rr[j] : r[j];
      correct[lane] += d[j] > 0.0f;
    }
  }

  LossPartial total() const {
    LossPartial out;
    for (int lane = 0; lane < 8; ++lane) {
      out.loss += loss[lane];
      out.margin += margin[lane];
      out.center += center[lane];
      out.chosen += chosen[lane];
      out.rejected += rejected[lane];
      out.correct += correct[lane];
    }
    return out;
  }
};

template <PreferenceKind Kind, bool Dpo, bool HasMargin>
LossPartial lossBlock(const PreferenceLossParams& p, int64_t lo, int64_t hi, const LossScalars& k) {
  alignas(64) float loss[kPairChunk], diff[kPairChunk], pairSum[kPairChunk];
  LossLanes lanes;
  for (int64_t a = lo; a < hi; a += kPairChunk) {
    const int64_t n = std::min(kPairChunk, hi - a);
    pairChunk<Kind, Dpo, HasMargin>(n, p.chosen + a, p.rejected + a, Dpo ? p.refChosen + a : nullptr,
                                    Dpo ? p.refRejected + a : nullptr, HasMargin ? p.margin + a : nullptr,
                                    p.gradChosen + a, p.gradRejected + a, loss, diff, pairSum, k);
    lanes.add<Dpo>(loss, diff, pairSum, p.chosen + a, p.rejected + a, Dpo ? p.refChosen + a : nullptr,
                   Dpo ? p.refRejected + a : nullptr, n);
  }
  return lanes.total();
}

template <PreferenceKind Kind, bool Dpo, bool HasMargin>
void lossAll(const PreferenceLossParams& p) {
  LossScalars k;
  k.beta = p.beta;
  k.halfInvBeta = 0.5f / p.beta;
  k.labelSmoothing = p.labelSmoothing;
  const double denominator = p.normalizer > 0 ? p.normalizer : static_cast<double>(p.count);
  k.invCount = 1.0f / static_cast<float>(denominator);
  k.centerScale = 2.0f * p.centerCoef * k.invCount;
  std::vector<LossPartial> parts = blockPartials<LossPartial>(
      p.count, kPairBlock, [&](int64_t lo, int64_t hi) { return lossBlock<Kind, Dpo, HasMargin>(p, lo, hi, k); });
  LossPartial total;
  for (const LossPartial& part : parts) {
    total.loss += part.loss;
    total.margin += part.margin;
    total.center += part.center;
    total.chosen += part.chosen;
    total.rejected += part.rejected;
    total.correct += part.correct;
  }
  const double n = static_cast<double>(p.count);
  double loss = total.loss / denominator;
  if (p.centerCoef > 0.0f) loss += p.centerCoef * (total.center / denominator);
  *p.loss = static_cast<float>(loss);
  *p.accuracy = static_cast<float>(static_cast<double>(total.correct) / n);
  *p.meanMargin = static_cast<float>(total.margin / n);
  const double rewardScale = Dpo ? p.beta : 1.0;  // DPO's implicit reward is beta * (log pi - log ref)
  *p.chosenReward = static_cast<float>(rewardScale * (total.chosen / n));
  *p.rejectedReward = static_cast<float>(rewardScale * (total.rejected / n));
}

template <PreferenceKind Kind>
void lossForKind(const PreferenceLossParams& p) {
  if (p.refChosen) lossAll<Kind, true, false>(p);  // dpoLoss has no margin
  else if (p.margin) lossAll<Kind, false, true>(p);
  else lossAll<Kind, false, false>(p);
}

// Row sums in 16 float lanes (GCC vector extensions: position t goes to
// lane t % 16 on every ISA, at whatever width it has), the lanes combined
// pairwise at the end: each row's sum is the same bits on any CPU and does
// not depend on the other rows. The row is first masked chunk by chunk into
// an L1 buffer by a plain elementwise loop, which GCC vectorizes well (a
// byte-to-lane widening inside the vector loop it does not).
typedef float F16 __attribute__((vector_size(64)));
constexpr int64_t kRowChunk = 1024;  // a multiple of 16, so lanes line up across chunks

// out[j] = m[j] != 0 ? x[j] : 0 (a select: a NaN in a masked-out position
// stays out); returns the count of valid positions.
int64_t maskedCopy(const float* __restrict x, const uint8_t* __restrict m, int64_t n, float* __restrict out) {
  int32_t count = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float v = x[j];
    const bool on = m[j] != 0;
    out[j] = on ? v : 0.0f;
    count += on;
  }
  return count;
}

float maskedRowSum(const float* x, const uint8_t* m, int64_t n, int64_t* count) {
  alignas(64) float buf[kRowChunk];
  F16 acc = {};
  int64_t total = 0;
  for (int64_t a = 0; a < n; a += kRowChunk) {
    const int64_t len = std::min(kRowChunk, n - a);
    total += maskedCopy(x + a, m + a, len, buf);
    const int64_t full = len & ~int64_t{15};
    for (int64_t j = 0; j < full; j += 16) {
      F16 v;
      std::memcpy(&v, buf + j, sizeof v);
      acc += v;
    }
    for (int64_t j = full; j < len; ++j) acc[j & 15] += buf[j];
  }
  for (int width = 8; width > 0; width /= 2)
    for (int lane = 0; lane < width; ++lane) acc[lane] += acc[lane + width];
  *count = total;
  return acc[0];
}

int64_t maskCount(const uint8_t* m, int64_t n) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += m[i] != 0;
  return count;
}

// Rows per parallel chunk: about 32K elements, at least one row.
int64_t rowGrain(int64_t steps) { return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, steps)); }

}  // namespace

void preferenceLoss(const PreferenceLossParams& p) {
  switch (p.kind) {
    case PreferenceKind::Hinge: lossForKind<PreferenceKind::Hinge>(p); break;
    case PreferenceKind::Ipo: lossForKind<PreferenceKind::Ipo>(p); break;
    default: lossForKind<PreferenceKind::Sigmoid>(p); break;
  }
}

void sequenceLogProbs(const SequenceLogProbsParams& p) {
  const bool mean = p.reduce == SequenceReduce::Mean;
  ThreadPool::global().parallelFor(p.rows, rowGrain(p.steps), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const int64_t offset = b * p.steps;
      int64_t count = 0;
      float sum = maskedRowSum(p.tokenLogprobs + offset, p.mask + offset, p.steps, &count);
      p.out[b] = !mean ? sum : count > 0 ? sum / static_cast<float>(count) : 0.0f;
    }
  });
}

void sequenceLogProbsBackward(const SequenceLogProbsBackwardParams& p) {
  const bool mean = p.reduce == SequenceReduce::Mean;
  ThreadPool::global().parallelFor(p.rows, rowGrain(p.steps), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const int64_t offset = b * p.steps;
      const uint8_t* m = p.mask + offset;
      float* out = p.out + offset;
      float scale = p.gradSequence[b];
      if (mean) {
        int64_t count = maskCount(m, p.steps);
        scale = count > 0 ? scale / static_cast<float>(count) : 0.0f;
      }
      for (int64_t t = 0; t < p.steps; ++t) out[t] = m[t] != 0 ? scale : 0.0f;
    }
  });
}

}  // namespace rk::cpu::RK_ISA_NS
