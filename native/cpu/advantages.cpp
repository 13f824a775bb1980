// CPU backend of the advantage family: gae, whiten, groupAdvantages.
//
// GAE is a backward recursion along each row. Rows run in parallel over the
// thread pool in groups of eight: eight independent recursions hide the
// latency of the loop-carried multiply-add. A group moves backward in blocks
// of 16 steps (a cache line of each row); with AVX2 the eight rows of a
// block advance together in vectors (advantages_avx2.h), otherwise (and for
// the steps and rows left over) lane by lane in scalar code. Every input is
// read once and every output written once.
#include "../../kernels/common/advantages.cuh"
#include "isa.h"
#include "simd.h"

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

void gaeGroup(const GaeParams& p, int64_t row0, int lanes, bool stream) {
  GaeRowGroup g{p, row0, lanes, p.gamma, p.gamma * p.lambda, {}};
  for (int l = 0; l < lanes; ++l) g.carry[l] = GaeCarry{p.lastValues ? p.lastValues[row0 + l] : 0.0f, 0.0f};
#if defined(RK_ISA_AVX2) || defined(RK_ISA_AVX512)
  if (lanes == kLanes) {
    // The last T % 16 steps in scalar code, then blocks of 16 steps in vectors.
    const int64_t vectorEnd = p.steps - p.steps % kBlockSteps;
    gaeScalarSteps(g, vectorEnd, p.steps);
    gaeSimdSteps(g, vectorEnd, stream);
    return;
  }
#endif
  gaeScalarSteps(g, 0, p.steps);
}

// ------------------------------------------------------------------ whiten

// x where keep is true, else +0, by masking bits: a dropped element (maybe
// NaN) never enters a floating-point operation, and the loops stay free of
// branches that the compiler would not turn into vector selects.
template <class F, class U>
inline F keepOrZero(F x, bool keep) {
  U u;
  std::memcpy(&u, &x, sizeof u);
  u &= U{0} - static_cast<U>(keep);
  std::memcpy(&x, &u, sizeof u);
  return x;
}

// Two passes over one block (the second from cache): its count, mean and
// sum of squared deviations in double. Eight partial sums per pass, added
// in a fixed order, let the compiler vectorize without reassociating.
template <bool kMask>
Moments blockMoments(const float* x, const uint8_t* mask, int64_t begin, int64_t end) {
  const auto valid = [&](int64_t i) { return !kMask || mask[i] != 0; };
  const int64_t body = begin + (end - begin) / 8 * 8;
  int64_t count[8] = {};
  double sum[8] = {};
  for (int64_t i = begin; i < body; i += 8)
    for (int l = 0; l < 8; ++l) {
      count[l] += valid(i + l);
      sum[l] += keepOrZero<float, uint32_t>(x[i + l], valid(i + l));
    }
  for (int64_t i = body; i < end; ++i) {
    count[i - body] += valid(i);
    sum[i - body] += keepOrZero<float, uint32_t>(x[i], valid(i));
  }
  int64_t n = 0;
  double s = 0;
  for (int l = 0; l < 8; ++l) {
    n += count[l];
    s += sum[l];
  }
  if (n == 0) return Moments{0, 0, 0};
  const double mean = s / static_cast<double>(n);
  double m2[8] = {};
  for (int64_t i = begin; i < body; i += 8)
    for (int l = 0; l < 8; ++l) {
      const double d = keepOrZero<double, uint64_t>(keepOrZero<float, uint32_t>(x[i + l], valid(i + l)) - mean, valid(i + l));
      m2[l] += d * d;
    }
  for (int64_t i = body; i < end; ++i) {
    const double d = keepOrZero<double, uint64_t>(keepOrZero<float, uint32_t>(x[i], valid(i)) - mean, valid(i));
    m2[i - body] += d * d;
  }
  double m = 0;
  for (int l = 0; l < 8; ++l) m += m2[l];
  return Moments{static_cast<double>(n), mean, m};
}

template <bool kMask, bool kWide>
void whitenBlock(const WhitenParams& p, const WhitenAffine& a, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const bool valid = !kMask || p.mask[i] != 0;
    p.out[i] = kWide ? whitenWide(p.x[i], valid, a) : whitenNarrow(p.x[i], valid, a);
  }
}

}  // namespace

void gae(const GaeParams& p) {
  if (p.rows <= 0 || p.steps <= 0) return;
  const int64_t groups = (p.rows + kLanes - 1) / kLanes;
  // About 64K elements per task: small batches stay on one thread.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / (kLanes * p.steps));
  // Large outputs are streamed (simd::kStreamBytes; at 2048 x 8192 on the
  // 2-core VM, 12.4 ms instead of 17.5); smaller ones stay in cache for
  // whiten, which reads the advantages next.
  const bool stream = p.rows * p.steps * int64_t{4} >= simd::kStreamBytes && p.steps % 8 == 0 &&
                      reinterpret_cast<uintptr_t>(p.advantages) % 32 == 0 &&
                      reinterpret_cast<uintptr_t>(p.returns) % 32 == 0;
  ThreadPool::global().parallelFor(groups, grain, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t row0 = k * kLanes;
      gaeGroup(p, row0, static_cast<int>(std::min<int64_t>(kLanes, p.rows - row0)), stream);
    }
  });
}

void whiten(const WhitenParams& p) {
  if (p.count <= 0) return;
  // The partition depends on the count only: the same bits on any thread count.
  constexpr int64_t kBlock = int64_t{1} << 14;
  const std::vector<Moments> parts = blockPartials<Moments>(p.count, kBlock, [&](int64_t b, int64_t e) {
    return p.mask ? blockMoments<true>(p.x, p.mask, b, e) : blockMoments<false>(p.x, nullptr, b, e);
  });
  Moments m{0, 0, 0};
  for (const Moments& part : parts) m = mergeMoments(m, part);
  const WhitenAffine a = whitenAffine(m, p.eps, p.shiftMean);
  ThreadPool::global().parallelFor(p.count, kBlock, [&](int64_t b, int64_t e) {
    if (a.wide)
      p.mask ? whitenBlock<true, true>(p, a, b, e) : whitenBlock<false, true>(p, a, b, e);
    else
      p.mask ? whitenBlock<true, false>(p, a, b, e) : whitenBlock<false, false>(p, a, b, e);
  });
}

void groupAdvantages(const GroupAdvantagesParams& p) {
  if (p.groups <= 0) return;
  const int64_t k = p.groupSize;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / k);
  ThreadPool::global().parallelFor(p.groups, grain, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      const float* s = p.scores + g * k;
      // Four partial sums (sum[l] adds s[l], s[l + 4], ... in order) shorten
      // the chain of dependent adds; written as whole quads first, so the
      // compiler keeps the four in one vector register.
      double sum[4] = {}, m2[4] = {};
      int64_t q = 0;
      for (; q + 4 <= k; q += 4)
        for (int l = 0; l < 4; ++l) sum[l] += s[q + l];
      for (int64_t j = q; j < k; ++j) sum[j % 4] += s[j];
      const double mean = ((sum[0] + sum[1]) + (sum[2] + sum[3])) / static_cast<double>(k);
      for (q = 0; q + 4 <= k; q += 4)
        for (int l = 0; l < 4; ++l) m2[l] += (s[q + l] - mean) * (s[q + l] - mean);
      for (int64_t j = q; j < k; ++j) m2[j % 4] += (s[j] - mean) * (s[j] - mean);
      const double factor = groupFactor((m2[0] + m2[1]) + (m2[2] + m2[3]), k, p.estimator, p.eps);
      for (int64_t j = 0; j < k; ++j) p.out[g * k + j] = groupAdvantage(s[j], mean, factor);
    }
  });
}

}  // namespace rk::cpu::RK_ISA_NS
