// Params of the advantage family: GAE, whitening, group estimators.
#pragma once
#include <cstdint>

namespace rk {

struct GaeParams {
  const float* rewards;          // [rows, steps]
  const float* values;           // [rows, steps]
  const uint8_t* mask;           // [rows, steps] or null (all valid)
  const uint8_t* dones;          // [rows, steps] or null
  const uint8_t* truncated;      // [rows, steps] or null
  const float* truncatedValues;  // [rows, steps], set when truncated is
  const float* lastValues;       // [rows] or null (0)
  float* advantages;             // [rows, steps] out
  float* returns;                // [rows, steps] out
  int64_t rows;
  int64_t steps;
  float gamma;
  float lambda;
};

struct WhitenParams {
  const float* x;        // [count]
  const uint8_t* mask;   // [count] or null
  float* out;            // [count]
  int64_t count;
  float eps;
  bool shiftMean;        // false: add the mean back after scaling
};

enum class GroupEstimator : int32_t { Grpo = 0, DrGrpo = 1, Rloo = 2 };

struct GroupAdvantagesParams {
  const float* scores;   // [groups * groupSize]
  float* out;            // [groups * groupSize]
  int64_t groups;
  int64_t groupSize;
  GroupEstimator estimator;
  float eps;
};

}  // namespace rk
