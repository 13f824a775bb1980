// Params of the advantage family: GAE, whitening, group estimators. Plain
// data: the binding fills them once (after every check), both backends read
// them. uint8 flags are true when nonzero.
#pragma once
#include <cstdint>

namespace rk {

struct GaeParams {
  const float* rewards;          // [rows, steps]
  const float* values;           // [rows, steps]
  const uint8_t* mask;           // [rows, steps] or null (every step valid)
  const uint8_t* dones;          // [rows, steps] or null (no step ends an episode)
  const uint8_t* truncated;      // [rows, steps] or null (no step is cut)
  const float* truncatedValues;  // [rows, steps], set exactly when truncated is
  const float* lastValues;       // [rows] or null (0): value after the last step
  float* advantages;             // [rows, steps] out, 0 where mask is 0
  float* returns;                // [rows, steps] out: advantages + values, 0 where mask is 0
  int64_t rows;
  int64_t steps;
  float gamma;                   // in [0, 1]
  float lambda;                  // in [0, 1]
};

struct WhitenParams {
  const float* x;        // [count], any shape flattened
  const uint8_t* mask;   // [count] or null (every element counts)
  float* out;            // [count] out, 0 where mask is 0
  int64_t count;
  float eps;             // > 0, added to the variance
  bool shiftMean;        // false: add the mean back after scaling
};

enum class GroupEstimator : int32_t { Grpo = 0, DrGrpo = 1, Rloo = 2 };

struct GroupAdvantagesParams {
  const float* scores;   // [groups * groupSize], groups of consecutive scores
  float* out;            // [groups * groupSize] out
  int64_t groups;
  int64_t groupSize;     // >= 1
  GroupEstimator estimator;
  float eps;             // > 0, added to the std (Grpo only)
};

}  // namespace rk
