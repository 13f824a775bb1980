// Params of the PPO family: clipped policy loss and clipped value loss, each
// computing its loss, gradient and statistics in one pass. The binding fills
// them after every check; both backends read them.
#pragma once
#include <cstdint>

namespace rk {

// How per-token losses L (mask M, B' = rows with a valid token) become one
// (a given normalizer replaces the denominator):
enum class Aggregation : int32_t {
  TokenMean = 0,            // sum(M L) / sum(M)
  SeqMeanTokenSum = 1,      // sum_b(sum_t M L) / B'
  SeqMeanTokenMean = 2,     // sum_b(sum_t M L / sum_t M) / B'
  SeqMeanTokenSumNorm = 3,  // sum(M L) / (rows * steps)
};

// KL estimators of d = logprob - refLogprob.
enum class KlEstimator : int32_t {
  K1 = 0,  // d
  K2 = 1,  // d^2 / 2
  K3 = 2,  // exp(-d) + d - 1
};

struct PpoPolicyLossParams {
  const float* logprobs;     // [rows, steps]
  const float* oldLogprobs;  // [rows, steps]
  const float* advantages;   // [rows, steps], or [rows] when advantagePerRow
  const uint8_t* mask;       // [rows, steps] or null (every token valid)
  const float* refLogprobs;  // [rows, steps] or null (no KL term, no kl statistic)
  const float* entropy;      // [rows, steps] or null (no entropy term)
  float* gradLogprobs;       // [rows, steps] out: d loss / d logprobs (0 where masked)
  float* gradEntropy;        // [rows, steps] out, or null: d loss / d entropy
  float* loss;               // [1] out
  float* clipFraction;       // [1] out
  float* clipFractionLower;  // [1] out
  float* approxKl;           // [1] out
  float* kl;                 // [1] out, or null; set when refLogprobs is
  int64_t rows;
  int64_t steps;
  float clipLow;             // ratio clipped to [1 - clipLow, 1 + clipHigh]
  float clipHigh;
  float dualClip;            // > 1, or NaN when off: loss <= -A * dualClip for A < 0
  float klCoef;              // >= 0; 0 when refLogprobs is null
  float entropyCoef;         // 0 when entropy is null
  Aggregation aggregation;
  KlEstimator klEstimator;   // used when refLogprobs is set
  double normalizer;         // > 0: the aggregation's denominator, given; 0: this batch's
  bool advantagePerRow;      // one advantage per row (GRPO's), the same for each of its tokens
  // GSPO: each token's log-ratio is its row's masked mean of logprobs -
  // oldLogprobs, written to sequenceLogRatio ([rows] scratch; 0 for an empty
  // row) by a first pass and read by the second. The gradient reaches each
  // token through its own term (GSPO-token: exact when advantages are equal
  // along a row).
  bool sequenceRatio;
  float* sequenceLogRatio;
};

struct PpoValueLossParams {
  const float* values;     // [rows, steps]
  const float* oldValues;  // [rows, steps]
  const float* returns;    // [rows, steps]
  const uint8_t* mask;     // [rows, steps] or null (every token valid)
  float* gradValues;       // [rows, steps] out: d loss / d values (0 where masked)
  float* loss;             // [1] out
  float* clipFraction;     // [1] out
  int64_t rows;
  int64_t steps;
  float clip;              // >= 0: values clipped to oldValues +- clip; < 0: no clipping
  Aggregation aggregation;
  double normalizer;       // > 0: the aggregation's denominator, given; 0: this batch's
};

}  // namespace rk
