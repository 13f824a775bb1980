// Params of the token log-prob family. Plain data: the binding fills them
// once (after every check), both backends read them. The math they share is
// in kernels/common/token_logprobs.cuh.
#pragma once
#include <cstdint>

#include "../core/dtype.h"
#include "../core/errors.h"

namespace rk {

struct TokenLogProbsParams {
  const void* logits;      // [rows, vocab] in `dtype`, row-major, contiguous
  const int32_t* targets;  // [rows] token ids in [0, vocab) or ignoreIndex
  float* logprobs;         // [rows] out: z[y] - lse(z), 0 for ignored rows, NaN for a bad target
  float* lse;              // [rows] out: log-sum-exp of z = logits / T (also for ignored rows)
  float* entropy;          // [rows] out, or null: lse - sum p*z, 0 for ignored rows
  int64_t rows;
  int64_t vocab;
  DType dtype;             // Float32, BFloat16 or Float16
  float invTemperature;    // 1 / T, finite and > 0
  int32_t ignoreIndex;     // rows with this target are ignored (may lie in [0, vocab))
  ErrorSlot* error;        // where a target outside [0, vocab) is reported
  TargetsShape targetsShape;  // for that report's message
};

struct TokenLogProbsBackwardParams {
  const void* logits;         // [rows, vocab] in `dtype`
  const int32_t* targets;     // [rows]
  const float* lse;           // [rows] from the forward
  const float* gradLogprobs;  // [rows] or null (no log-prob term)
  const float* entropy;       // [rows] or null; required when gradEntropy is set
  const float* gradEntropy;   // [rows] or null (no entropy term)
  void* gradLogits;           // [rows, vocab] out in `dtype`; may equal logits (in place):
                              // every element is read before it is written, by one thread
  int64_t rows;
  int64_t vocab;
  DType dtype;
  float invTemperature;
  int32_t ignoreIndex;
  ErrorSlot* error;
  TargetsShape targetsShape;
};

}  // namespace rk
