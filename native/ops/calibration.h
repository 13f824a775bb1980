// Params of the calibration family: a streaming read that the benchmark
// runner times to learn what fraction of the memory bandwidth a kernel uses.
#pragma once
#include <cstdint>

namespace rk {

struct ReadBandwidthParams {
  const float* data;  // [n] read once, front to back
  float* checksum;    // [1] out: the sum of data, so no compiler can skip the read
  int64_t n;
};

}  // namespace rk
