// Params of the preference family: pairwise (reward model) and DPO losses,
// and the masked per-sequence sums of token log-probs that feed DPO.
#pragma once
#include <cstdint>

namespace rk {

// The numeric values are part of the binding contract (lib/ops/preference.ts).
enum class PreferenceKind : int32_t { Sigmoid = 0, Hinge = 1, Ipo = 2 };

// One op serves pairwiseLoss and dpoLoss. Per pair i:
//   d = chosen - rejected                                (pairwiseLoss)
//   d = (chosen - refChosen) - (rejected - refRejected)  (dpoLoss: both refs set)
//   x = beta * d - margin
// loss = mean_i l(x_i) + centerCoef * mean_i (chosen + rejected)^2, with l
// given by `kind` (kernels/common/preference.cuh); the means divide by
// `normalizer` when it is set (the statistics' by count always). The
// rewards are each side's mean: chosen and rejected (pairwiseLoss), or
// beta * (chosen - refChosen) and beta * (rejected - refRejected) (dpoLoss:
// DPO's implicit rewards, TRL's rewards/chosen and rewards/rejected).
struct PreferenceLossParams {
  const float* chosen;       // [count]
  const float* rejected;     // [count]
  const float* refChosen;    // [count] or null (then refRejected is null too)
  const float* refRejected;  // [count] or null
  const float* margin;       // [count] or null (margin 0)
  float* gradChosen;         // [count] out: d loss / d chosen
  float* gradRejected;       // [count] out: d loss / d rejected
  float* loss;               // [1] out
  float* accuracy;           // [1] out: share of pairs with d > 0
  float* meanMargin;         // [1] out: mean of d
  float* chosenReward;       // [1] out: mean reward of the chosen side
  float* rejectedReward;     // [1] out: mean reward of the rejected side
  int64_t count;             // pairs, >= 1
  float beta;                // > 0
  float labelSmoothing;      // in [0, 0.5); used by Sigmoid only
  float centerCoef;          // >= 0
  PreferenceKind kind;
  double normalizer;         // > 0: the loss's denominator, given (a global batch's pairs); 0: count
};

// The numeric values are part of the binding contract (lib/ops/preference.ts).
enum class SequenceReduce : int32_t { Sum = 0, Mean = 1 };

// out[b] = sum_t [mask[b,t] != 0] * tokenLogprobs[b,t], divided by the row's
// count of valid tokens for Mean; 0 for a row with none.
struct SequenceLogProbsParams {
  const float* tokenLogprobs;  // [rows, steps]
  const uint8_t* mask;         // [rows, steps], nonzero = valid
  float* out;                  // [rows]
  int64_t rows;
  int64_t steps;
  SequenceReduce reduce;
};

// out[b,t] = [mask[b,t] != 0] * gradSequence[b] (divided by the row's count
// for Mean); exactly 0 where the mask is 0, whatever gradSequence holds.
struct SequenceLogProbsBackwardParams {
  const float* gradSequence;  // [rows]
  const uint8_t* mask;        // [rows, steps]
  float* out;                 // [rows, steps]
  int64_t rows;
  int64_t steps;
  SequenceReduce reduce;
};

}  // namespace rk
