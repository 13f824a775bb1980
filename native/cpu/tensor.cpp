// CPU backend of the tensor family: copyRegion, a memcpy on the cpu stream
// (so it sees what the ops queued before it wrote), split over the thread
// pool in 1 MiB pieces when it is large.
#include "isa.h"

namespace rk::cpu::RK_ISA_NS {

void copyRegion(const CopyRegionParams& p) {
  constexpr int64_t kPiece = int64_t{1} << 20;
  const int64_t pieces = (p.bytes + kPiece - 1) / kPiece;
  ThreadPool::global().parallelFor(pieces, 1, [&](int64_t b, int64_t e) {
    const int64_t lo = b * kPiece, hi = std::min(e * kPiece, p.bytes);
    std::memcpy(p.dst + lo, p.src + lo, static_cast<size_t>(hi - lo));
  });
}

}  // namespace rk::cpu::RK_ISA_NS
