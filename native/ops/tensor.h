// Params of the tensor family: stream-ordered copies between tensors, what
// slice() and concat() are made of (lib/ops/tensor.ts).
#pragma once
#include <cstdint>

namespace rk {

struct CopyRegionParams {
  const uint8_t* src;  // [bytes], from the source tensor's byte offset
  uint8_t* dst;        // [bytes], from the destination's; never overlapping src
  int64_t bytes;
};

}  // namespace rk
