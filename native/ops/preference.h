// Params of the preference family: pairwise (reward model) and DPO losses,
// and the masked per-sequence sums of token log-probs that feed DPO.
#pragma once
#include <cstdint>

namespace rk {

enum class PreferenceKind : int32_t { Sigmoid = 0, Hinge = 1, Ipo = 2 };

// pairwiseLoss uses chosen/rejected only; dpoLoss also sets the two refs,
// and d = (chosen - refChosen) - (rejected - refRejected).
struct PreferenceLossParams {
  const float* chosen;       // [count]
  const float* rejected;     // [count]
  const float* refChosen;    // [count] or null
  const float* refRejected;  // [count] or null
  const float* margin;       // [count] or null
  float* gradChosen;         // [count] out
  float* gradRejected;       // [count] out
  float* stats;              // [3] out: loss, accuracy, meanMargin
  int64_t count;
  float beta;
  float labelSmoothing;
  float centerCoef;
  PreferenceKind kind;
};

enum class SequenceReduce : int32_t { Sum = 0, Mean = 1 };

struct SequenceLogProbsParams {
  const float* tokenLogprobs;  // [rows, steps]
  const uint8_t* mask;         // [rows, steps]
  float* out;                  // [rows]
  int64_t rows;
  int64_t steps;
  SequenceReduce reduce;
};

struct SequenceLogProbsBackwardParams {
  const float* gradSequence;  // [rows]
  const uint8_t* mask;        // [rows, steps]
  float* out;                 // [rows, steps]
  int64_t rows;
  int64_t steps;
  SequenceReduce reduce;
};

}  // namespace rk
