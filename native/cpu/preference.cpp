// CPU backend of the preference family: the pairwise / DPO loss with its
// gradients and statistics in one pass, and the masked per-sequence sums of
// token log-probs with their backward.
#include "../../kernels/common/preference.cuh"
#include "isa.h"

namespace rk::cpu::RK_ISA_NS {
namespace {

using preference::PairTerms;

// Pairs per block of the batch reduction: the partition depends on the pair
// count only, and blocks combine in order, so the statistics are the same
// bits for any thread count.
constexpr int64_t kPairBlock = 4096;

struct LossPartial {
  double loss = 0;    // sum of l
  double margin = 0;  // sum of d
  double center = 0;  // sum of (chosen + rejected)^2
  int64_t correct = 0;
};

// Gradients of pairs [lo, hi) and their partial sums. The gradient of a mean
// over B pairs needs no reduction: it is dl/dd / B.
template <PreferenceKind Kind>
LossPartial lossBlock(const PreferenceLossParams& p, int64_t lo, int64_t hi) {
  const float invCount = 1.0f / static_cast<float>(p.count);
  const float halfInvBeta = 0.5f / p.beta;
  const bool centered = p.centerCoef > 0.0f;
  const float centerScale = 2.0f * p.centerCoef * invCount;  // d/dc of coef * mean((c + r)^2) is this * (c + r)
  LossPartial acc;
  for (int64_t i = lo; i < hi; ++i) {
    float c = p.chosen[i], r = p.rejected[i];
    float d = p.refChosen ? preference::pairDifference(c, r, p.refChosen[i], p.refRejected[i])
                          : preference::pairDifference(c, r);
    float m = p.margin ? p.margin[i] : 0.0f;
    PairTerms t = preference::pairTerms(Kind, d, m, p.beta, halfInvBeta, p.labelSmoothing);
    float g = t.slope * invCount;
    float sum = c + r;
    float center = centered ? centerScale * sum : 0.0f;
    p.gradChosen[i] = g + center;
    p.gradRejected[i] = center - g;
    acc.loss += t.loss;
    acc.margin += d;
    acc.center += centered ? static_cast<double>(sum) * sum : 0.0;
    acc.correct += d > 0.0f;
  }
  return acc;
}

template <PreferenceKind Kind>
void lossAll(const PreferenceLossParams& p) {
  std::vector<LossPartial> parts = blockPartials<LossPartial>(
      p.count, kPairBlock, [&](int64_t lo, int64_t hi) { return lossBlock<Kind>(p, lo, hi); });
  LossPartial total;
  for (const LossPartial& part : parts) {
    total.loss += part.loss;
    total.margin += part.margin;
    total.center += part.center;
    total.correct += part.correct;
  }
  const double n = static_cast<double>(p.count);
  double loss = total.loss / n;
  if (p.centerCoef > 0.0f) loss += p.centerCoef * (total.center / n);
  *p.loss = static_cast<float>(loss);
  *p.accuracy = static_cast<float>(static_cast<double>(total.correct) / n);
  *p.meanMargin = static_cast<float>(total.margin / n);
}

// Row sums in kLanes float lanes, combined pairwise at the end: the same
// order of additions on every ISA (the lane loop vectorizes to whatever
// width is there), so each row's sum is the same bits on any CPU and does
// not depend on the other rows.
constexpr int kLanes = 16;

float maskedRowSum(const float* x, const uint8_t* m, int64_t n, int64_t* count) {
  float acc[kLanes] = {};
  int32_t cnt[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      bool valid = m[i + j] != 0;
      acc[j] += valid ? x[i + j] : 0.0f;  // a select: NaN in masked-out positions stays out
      cnt[j] += valid;
    }
  for (int j = 0; i + j < n; ++j) {
    bool valid = m[i + j] != 0;
    acc[j] += valid ? x[i + j] : 0.0f;
    cnt[j] += valid;
  }
  int64_t total = 0;
  for (int j = 0; j < kLanes; ++j) total += cnt[j];
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int j = 0; j < width; ++j) acc[j] += acc[j + width];
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
    case PreferenceKind::Hinge: lossAll<PreferenceKind::Hinge>(p); break;
    case PreferenceKind::Ipo: lossAll<PreferenceKind::Ipo>(p); break;
    default: lossAll<PreferenceKind::Sigmoid>(p); break;
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
