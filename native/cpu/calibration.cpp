// CPU backend of the calibration family. readBandwidth streams the buffer
// once over the thread pool and sums it: the benchmark runner times it as
// the machine's attainable read bandwidth.
#include "isa.h"

namespace rk::cpu::RK_ISA_NS {

namespace {

// 64 Ki floats (256 KiB) per block: a partition fixed by n alone, so the
// checksum has the same bits whatever the thread count.
constexpr int64_t kBlock = int64_t{1} << 16;

// Independent accumulators: 32 lanes are four AVX2 or two AVX-512 registers,
// enough additions in flight to keep up with memory. The lanes never mix
// until the end, so the compiler vectorizes the lane loop without having to
// reassociate a float sum.
constexpr int kLanes = 32;

double blockSum(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[i + l];
  for (int l = 0; i < n; ++i, ++l) acc[l] += x[i];
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
  return acc[0];
}

}  // namespace

void readBandwidth(const ReadBandwidthParams& p) {
  std::vector<double> partials =
      blockPartials<double>(p.n, kBlock, [&](int64_t lo, int64_t hi) { return blockSum(p.data + lo, hi - lo); });
  double total = 0;
  for (double s : partials) total += s;
  p.checksum[0] = static_cast<float>(total);
}

}  // namespace rk::cpu::RK_ISA_NS
