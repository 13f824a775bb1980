// Params of the PPO family: clipped policy loss and clipped value loss.
#pragma once
#include <cstdint>

namespace rk {

enum class Aggregation : int32_t {
  TokenMean = 0,
  SeqMeanTokenSum = 1,
  SeqMeanTokenMean = 2,
  SeqMeanTokenSumNorm = 3,
};

enum class KlEstimator : int32_t { K1 = 0, K2 = 1, K3 = 2 };

struct PpoPolicyLossParams {
  const float* logprobs;     // [rows, steps]
  const float* oldLogprobs;  // [rows, steps]
  const float* advantages;   // [rows, steps]
  const uint8_t* mask;       // [rows, steps] or null
  const float* refLogprobs;  // [rows, steps] or null (no KL term)
  const float* entropy;      // [rows, steps] or null (no entropy term)
  float* gradLogprobs;       // [rows, steps] out
  float* gradEntropy;        // [rows, steps] out, or null
  float* stats;              // [5] out: loss, clipFraction, clipFractionLower, approxKl, kl
  int64_t rows;
  int64_t steps;
  float clipLow;
  float clipHigh;
  float dualClip;            // 0 = off, else > 1
  float klCoef;
  float entropyCoef;
  Aggregation aggregation;
  KlEstimator klEstimator;
};

struct PpoValueLossParams {
  const float* values;     // [rows, steps]
  const float* oldValues;  // [rows, steps]
  const float* returns;    // [rows, steps]
  const uint8_t* mask;     // [rows, steps] or null
  float* gradValues;       // [rows, steps] out
  float* stats;            // [2] out: loss, clipFraction
  int64_t rows;
  int64_t steps;
  float clip;              // < 0 = no clipping
  Aggregation aggregation;
};

}  // namespace rk
