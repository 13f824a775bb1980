// CPU backend of the advantage family: gae, whiten, groupAdvantages.
//
// GAE is a backward recursion along each row. Rows run in parallel over the
// thread pool, eight at a time per thread: eight independent recursions hide
// the latency of the loop-carried multiply-add. On x86 with AVX2 the eight
// rows advance together in one vector (advantages_avx2.h); elsewhere, and for the
// rows and steps left over, they are interleaved scalar code. Every input is
// read once and every output written once.
#include "../../kernels/common/advantages.cuh"
#include "isa.h"

namespace rk::cpu::RK_ISA_NS {
namespace {

constexpr int kLanes = 8;  // rows advanced together

struct GaeRowGroup {
  const GaeParams& p;
  int64_t row0;
  int lanes;  // rows in this group, <= kLanes
  float gamma, gammaLambda;
  GaeCarry carry[kLanes];
};

constexpr int64_t kBlockSteps = 16;  // one 64-byte line of floats per row

// Steps [begin, end) of the group's rows, backward, in blocks of up to 16
// steps: a block's inputs are copied row by row into local arrays, the
// recursion runs on them lane by lane, and the outputs go back row by row.
// Rows are often a multiple of 4 KiB apart, so stepping through all rows at
// each step would map every access of a step to one cache set and evict
// lines before their next use; a line at a time per row does not.
void gaeScalarSteps(GaeRowGroup& g, int64_t begin, int64_t end) {
  const GaeParams& p = g.p;
  const int64_t T = p.steps;
  float r[kLanes][kBlockSteps], v[kLanes][kBlockSteps], tv[kLanes][kBlockSteps];
  uint32_t flags[kLanes][kBlockSteps];
  for (int64_t b1 = end; b1 > begin; b1 -= kBlockSteps) {
    const int64_t b0 = std::max(begin, b1 - kBlockSteps);
    const int n = static_cast<int>(b1 - b0);
    for (int l = 0; l < g.lanes; ++l) {
      const int64_t i0 = (g.row0 + l) * T + b0;
      for (int s = 0; s < n; ++s) {
        flags[l][s] = gaeFlags(p.mask, p.dones, p.truncated, i0 + s);
        tv[l][s] = p.truncatedValues ? p.truncatedValues[i0 + s] : 0.0f;
        r[l][s] = p.rewards[i0 + s];
        v[l][s] = p.values[i0 + s];
      }
    }
    for (int s = n - 1; s >= 0; --s)
      for (int l = 0; l < g.lanes; ++l) {
        float a;
        g.carry[l] = gaeStep(g.carry[l], r[l][s], v[l][s], tv[l][s], flags[l][s], g.gamma, g.gammaLambda, &a);
        v[l][s] = (flags[l][s] & kGaeValid) ? a + v[l][s] : 0.0f;
        r[l][s] = a;
      }
    for (int l = 0; l < g.lanes; ++l) {
      const int64_t i0 = (g.row0 + l) * T + b0;
      for (int s = 0; s < n; ++s) {
        p.advantages[i0 + s] = r[l][s];
        p.returns[i0 + s] = v[l][s];
      }
    }
  }
}

}  // namespace
}  // namespace rk::cpu::RK_ISA_NS

#if defined(RK_ISA_AVX2) || defined(RK_ISA_AVX512)
#include "advantages_avx2.h"
#endif

namespace rk::cpu::RK_ISA_NS {
namespace {

void gaeGroup(const GaeParams& p, int64_t row0, int lanes) {
  GaeRowGroup g{p, row0, lanes, p.gamma, p.gamma * p.lambda, {}};
  for (int l = 0; l < lanes; ++l) g.carry[l] = GaeCarry{p.lastValues ? p.lastValues[row0 + l] : 0.0f, 0.0f};
#if defined(RK_ISA_AVX2) || defined(RK_ISA_AVX512)
  if (lanes == kLanes) {
    // The last T % 16 steps in scalar code, then blocks of 16 steps in vectors.
    const int64_t vectorEnd = p.steps - p.steps % kBlockSteps;
    gaeScalarSteps(g, vectorEnd, p.steps);
    gaeSimdSteps(g, vectorEnd);
    return;
  }
#endif
  gaeScalarSteps(g, 0, p.steps);
}

// ------------------------------------------------------------------ whiten

// Two passes over one block (the second from cache): its count, mean and
// sum of squared deviations in double. Eight partial sums per pass, added
// in a fixed order, let the compiler vectorize without reassociating.
Moments blockMoments(const float* x, const uint8_t* mask, int64_t begin, int64_t end) {
  double count[8] = {}, sum[8] = {};
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    for (int l = 0; l < 8; ++l) {
      const bool valid = !mask || mask[i + l];
      count[l] += valid ? 1.0 : 0.0;
      sum[l] += valid ? static_cast<double>(x[i + l]) : 0.0;
    }
  for (int l = 0; i < end; ++i, ++l) {
    const bool valid = !mask || mask[i];
    count[l] += valid ? 1.0 : 0.0;
    sum[l] += valid ? static_cast<double>(x[i]) : 0.0;
  }
  double n = 0, s = 0;
  for (int l = 0; l < 8; ++l) {
    n += count[l];
    s += sum[l];
  }
  if (n == 0) return Moments{0, 0, 0};
  const double mean = s / n;
  double m2[8] = {};
  for (i = begin; i + 8 <= end; i += 8)
    for (int l = 0; l < 8; ++l) {
      const double d = (!mask || mask[i + l]) ? static_cast<double>(x[i + l]) - mean : 0.0;
      m2[l] += d * d;
    }
  for (int l = 0; i < end; ++i, ++l) {
    const double d = (!mask || mask[i]) ? static_cast<double>(x[i]) - mean : 0.0;
    m2[l] += d * d;
  }
  double m = 0;
  for (int l = 0; l < 8; ++l) m += m2[l];
  return Moments{n, mean, m};
}

}  // namespace

void gae(const GaeParams& p) {
  if (p.rows <= 0 || p.steps <= 0) return;
  const int64_t groups = (p.rows + kLanes - 1) / kLanes;
  // About 64K elements per task: small batches stay on one thread.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / (kLanes * p.steps));
  ThreadPool::global().parallelFor(groups, grain, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t row0 = k * kLanes;
      gaeGroup(p, row0, static_cast<int>(std::min<int64_t>(kLanes, p.rows - row0)));
    }
  });
}

void whiten(const WhitenParams& p) {
  if (p.count <= 0) return;
  // The partition depends on the count only: the same bits on any thread count.
  constexpr int64_t kBlock = int64_t{1} << 14;
  const std::vector<Moments> parts = blockPartials<Moments>(
      p.count, kBlock, [&](int64_t b, int64_t e) { return blockMoments(p.x, p.mask, b, e); });
  Moments m{0, 0, 0};
  for (const Moments& part : parts) m = mergeMoments(m, part);
  const WhitenAffine a = whitenAffine(m, p.eps, p.shiftMean);
  ThreadPool::global().parallelFor(p.count, kBlock, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) p.out[i] = whitenValue(p.x[i], !p.mask || p.mask[i], a);
  });
}

void groupAdvantages(const GroupAdvantagesParams& p) {
  if (p.groups <= 0) return;
  const int64_t k = p.groupSize;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / k);
  ThreadPool::global().parallelFor(p.groups, grain, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      const float* s = p.scores + g * k;
      float* out = p.out + g * k;
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += s[j];
      const double mean = sum / static_cast<double>(k);
      double m2 = 0;
      for (int64_t j = 0; j < k; ++j) m2 += (s[j] - mean) * (s[j] - mean);
      for (int64_t j = 0; j < k; ++j) out[j] = groupAdvantage(s[j], mean, m2, k, p.estimator, p.eps);
    }
  });
}

}  // namespace rk::cpu::RK_ISA_NS
