// CPU backend of the token log-prob family (compiled once per ISA).
//
// Forward: each row is read once from memory. It is cut into chunks of
// kChunk elements that stay in L1/L2; per chunk a max pass, then an
// exp-sum pass over the cached chunk with t = fma(x, c, -m) and a
// polynomial 2^t (simd.h), giving an LsePartial. The exp-sum pass
// prefetches into L2, kPrefetchAhead bytes ahead, so that DRAM streams
// while the FMA units work (see prefetchStep). The partials of a row are
// folded left to right (kernels/common/token_logprobs.cuh), so the result
// depends on V only:
// rows are spread over threads when there are many, and the chunks of a
// row when rows are few, with the same bits either way.
//
// Backward: one read and one write per element, g = p (a + b t) with
// p = 2^t, t = fma(x, c, -lse * c / invT), the target element fixed up
// after the vector pass from its value read before (in-place safe).
#include "../../kernels/common/token_logprobs.cuh"
#include "isa.h"
#include "simd.h"

namespace rk::cpu::RK_ISA_NS {
namespace {

namespace tlp = rk::tlp;
using simd::Vec;

constexpr int64_t kChunk = 8192;                     // forward: 32 KB of float32, two passes in L1/L2
constexpr int64_t kGradChunk = 16384;                // backward work item (no reduction)
constexpr int kUnroll = 4;                           // vectors per step: independent accumulators
constexpr int64_t kRowGrain = 65536;                 // elements per parallelFor grain, at least
constexpr int64_t kGrainsPerThread = 4;              // work split into about this many runs per thread
constexpr int64_t kPrefetchAhead = 65536;            // bytes: two float32 chunks
constexpr uintptr_t kLine = 64;                      // bytes: streamed stores start on a line

// Prefetch into L2 (prefetcht1), one request per cache line of the bytes
// that one unrolled step of the exp-sum pass reads, kPrefetchAhead later.
// Into L2, not L1: an L1 prefetch holds a line-fill buffer until its line
// arrives, and with the buffers full the FMA work stalls behind DRAM. On
// the 2-core Xeon VM (fp32, N=2048 V=32000) this, with the long runs of
// rows per thread, took the forward from 4.2 to 5.2-5.5 G elements/s, and
// the host pool's huge pages to 6.0-6.5 (94-99% of the read bandwidth).
// Ahead by less than one chunk the prefetches arrive too late to help.
template <class Raw>
inline void prefetchStep(const Raw* at) {
  constexpr int64_t kBytes = int64_t{simd::kWidth} * kUnroll * static_cast<int64_t>(sizeof(Raw));
  const char* line = reinterpret_cast<const char*>(at) + kPrefetchAhead;
  for (int64_t b = 0; b < kBytes; b += 64) __builtin_prefetch(line + b, 0, 2);
}

// The exponent of x against a shift, in log2 units: one FMA where the ISA
// has one (x * c exact inside it). Without FMA, subtract first so that a
// large common offset cancels exactly: (x - shiftRaw) * c, the raw shift
// being the shift / c. kLow: the shift is hi + lo (the backward's, see
// tlp::gradRow), and the low part is subtracted too.
template <bool kLow>
struct Exponent {
  float c, shiftHi, rawHi, shiftLo = 0.0f, rawLo = 0.0f;
  static Exponent backward(const tlp::GradRow& r, float c, float lse, float invT) {
    const double raw = static_cast<double>(lse) / invT;
    const float rawHi = static_cast<float>(raw);
    return {c, r.shift, rawHi, r.shiftLo, static_cast<float>(raw - rawHi)};
  }
  Vec operator()(Vec x) const {
    if constexpr (simd::kHasFma) {
      const Vec t = simd::fma(x, simd::splat(c), simd::splat(-shiftHi));
      return kLow ? simd::sub(t, simd::splat(shiftLo)) : t;
    }
    const Vec d = simd::sub(x, simd::splat(rawHi));
    return simd::mul(kLow ? simd::sub(d, simd::splat(rawLo)) : d, simd::splat(c));
  }
  float scalar(float x) const {
    if constexpr (simd::kHasFma) return kLow ? std::fma(x, c, -shiftHi) - shiftLo : std::fma(x, c, -shiftHi);
    return (kLow ? x - rawHi - rawLo : x - rawHi) * c;
  }
};

// The kUnroll vectors of one step at x, as pairs (simd::loadPair: lanes
// possibly permuted within the step; storeStep puts them back).
template <class E>
inline void loadStep(E tag, const typename E::Raw* x, Vec (&v)[kUnroll]) {
  static_assert(kUnroll % 2 == 0, "steps are whole pairs");
  for (int u = 0; u < kUnroll; u += 2) simd::loadPair(tag, x + u * simd::kWidth, v[u], v[u + 1]);
}
template <bool kStream, class E>
inline void storeStep(E tag, typename E::Raw* g, const Vec (&v)[kUnroll]) {
  for (int u = 0; u < kUnroll; u += 2) {
    if constexpr (kStream) simd::storePairStream(tag, g + u * simd::kWidth, v[u], v[u + 1]);
    else simd::storePair(tag, g + u * simd::kWidth, v[u], v[u + 1]);
  }
}

// The LsePartial of n elements (n > 0) at x. Out of line, so that both
// forward paths run the very same code (GCC's FMA contraction is per copy).
template <class E, bool kEntropy>
__attribute__((noinline)) tlp::LsePartial chunkPartial(const typename E::Raw* x, int64_t n, float c) {
  constexpr E tag{};
  constexpr int W = simd::kWidth;
  constexpr int64_t kStep = int64_t{W} * kUnroll;
  const int64_t unrolled = n / kStep * kStep, whole = n / W * W;
  const int rest = static_cast<int>(n - whole);

  // Pass 1: the max. x86 max drops a NaN operand, so an all -inf result is
  // checked for NaN below; any other NaN reaches s through 2^NaN in pass 2.
  const Vec ninf = simd::splat(-INFINITY);
  Vec m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
  for (int64_t i = 0; i < unrolled; i += kStep) {
    Vec v[kUnroll];
    loadStep(tag, x + i, v);
    m0 = simd::max(m0, v[0]);
    m1 = simd::max(m1, v[1]);
    m2 = simd::max(m2, v[2]);
    m3 = simd::max(m3, v[3]);
  }
  for (int64_t i = unrolled; i < whole; i += W) m0 = simd::max(m0, simd::load(tag, x + i));
  if (rest) m0 = simd::max(m0, simd::loadPartial(tag, x + whole, rest, -INFINITY));
  const float xmax = simd::reduceMax(simd::max(simd::max(m0, m1), simd::max(m2, m3)));
  if (xmax != xmax) return tlp::lseNaN();
  if (xmax == -INFINITY) {
    for (int64_t i = 0; i < n; ++i) {
      float v = simd::toFloat(tag, x[i]);
      if (v != v) return tlp::lseNaN();
    }
    return tlp::lseEmpty();
  }

  // Pass 2: s = sum 2^t, w = sum 2^t t with t = x c - shift <= 0, clamped
  // where exp2 needs it or t multiplies, so that masked logits give 2^t = 0
  // and 0 * t = 0. The shift is m, or m + mLo in a wide chunk and without
  // FMA (kernels/common/token_logprobs.cuh, "The shift").
  tlp::LsePartial out;
  out.m = xmax * c;
  const bool wide = !simd::kHasFma || tlp::wideShift(out.m);
  out.mLo = wide ? std::fma(xmax, c, -out.m) : 0.0f;
  Vec s[kUnroll], w[kUnroll];
  for (int u = 0; u < kUnroll; ++u) s[u] = w[u] = simd::splat(0.0f);
  auto pass2 = [&](const auto& exponent) {
    auto accumulate = [&](Vec xv, int u) {
      Vec t = exponent(xv);
      if constexpr (kEntropy || !simd::kExp2AnyInput) t = simd::clampExp(t);
      Vec e = simd::exp2(t);
      s[u] = simd::add(s[u], e);
      if constexpr (kEntropy) w[u] = simd::fma(e, t, w[u]);
    };
    // While pass 2 computes on the cached chunk, a later one (the rest of the
    // row, or the next rows) streams in: DRAM and the FMA units overlap.
    for (int64_t i = 0; i < unrolled; i += kStep) {
      prefetchStep(x + i);
      Vec v[kUnroll];
      loadStep(tag, x + i, v);
      for (int u = 0; u < kUnroll; ++u) accumulate(v[u], u);
    }
    for (int64_t i = unrolled; i < whole; i += W) accumulate(simd::load(tag, x + i), 0);
    if (rest) accumulate(simd::loadPartial(tag, x + whole, rest, -INFINITY), 0);
  };
  // Without FMA the plain exponents (x - xmax) c already have the exact shift.
  if (simd::kHasFma && wide)
    pass2(Exponent<true>{c, out.m, xmax, out.mLo, 0.0f});
  else
    pass2(Exponent<false>{c, out.m, xmax});

  out.s = simd::reduceAdd(simd::add(simd::add(s[0], s[1]), simd::add(s[2], s[3])));
  out.w = kEntropy ? simd::reduceAdd(simd::add(simd::add(w[0], w[1]), simd::add(w[2], w[3]))) : 0.0f;
  return out;
}

template <class E, bool kEntropy>
void forward(const TokenLogProbsParams& p) {
  using Raw = typename E::Raw;
  constexpr E tag{};
  const Raw* logits = static_cast<const Raw*>(p.logits);
  const int64_t V = p.vocab, chunks = (V + kChunk - 1) / kChunk;
  const float c = tlp::log2Scale(p.invTemperature);
  const int32_t opId = static_cast<int32_t>(OpId::tokenLogProbs);

  auto chunkAt = [&](int64_t row, int64_t k) {
    int64_t lo = k * kChunk, n = std::min(kChunk, V - lo);
    return chunkPartial<E, kEntropy>(logits + row * V + lo, n, c);
  };
  auto finish = [&](int64_t row, const tlp::LsePartial& acc) {
    const int32_t y = p.targets[row];
    const bool ignored = y == p.ignoreIndex, valid = tlp::targetInVocab(y, V);
    float tTarget = NAN;
    if (!ignored && valid) tTarget = tlp::targetExponent(simd::toFloat(tag, logits[row * V + y]), c, acc);
    tlp::RowResult r = tlp::lseFinish(acc, tTarget, ignored);
    if (!ignored && !valid) {
      tlp::reportBadTarget(p.error, opId, row, y, V, p.targetsShape);
      r.logprob = NAN;
    }
    p.logprobs[row] = r.logprob;
    p.lse[row] = r.lse;
    if (kEntropy) p.entropy[row] = r.entropy;
  };

  ThreadPool& pool = ThreadPool::global();
  if (chunks > 1 && p.rows < 2 * pool.threads()) {
    // Few long rows: the chunks go to the threads, then each row folds its
    // partials in chunk order, as the row-per-thread path below does.
    std::vector<tlp::LsePartial> parts(static_cast<size_t>(p.rows * chunks));
    pool.parallelFor(p.rows * chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) parts[static_cast<size_t>(i)] = chunkAt(i / chunks, i % chunks);
    });
    for (int64_t row = 0; row < p.rows; ++row) {
      tlp::LsePartial acc = parts[static_cast<size_t>(row * chunks)];
      for (int64_t k = 1; k < chunks; ++k) acc = tlp::lseCombine(acc, parts[static_cast<size_t>(row * chunks + k)]);
      finish(row, acc);
    }
    return;
  }
  // Long runs of consecutive rows per grain (about kGrainsPerThread per
  // thread): each thread then streams one long range, which is what the
  // prefetchers (hardware and prefetchStep) follow.
  const int64_t grain = std::max({int64_t{1}, kRowGrain / V, p.rows / (kGrainsPerThread * pool.threads())});
  pool.parallelFor(p.rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      tlp::LsePartial acc = chunkAt(row, 0);
      for (int64_t k = 1; k < chunks; ++k) acc = tlp::lseCombine(acc, chunkAt(row, k));
      finish(row, acc);
    }
  });
}

// One work item of the backward: elements [lo, lo + n) of one row.
template <class E, bool kEntropyTerm, bool kStream>
void gradChunk(const TokenLogProbsBackwardParams& p, int64_t row, int64_t lo, int64_t n) {
  using Raw = typename E::Raw;
  constexpr E tag{};
  constexpr int W = simd::kWidth;
  const int64_t V = p.vocab;
  const Raw* x = static_cast<const Raw*>(p.logits) + row * V + lo;
  Raw* g = static_cast<Raw*>(p.gradLogits) + row * V + lo;
  const int32_t y = p.targets[row];
  const bool ignored = y == p.ignoreIndex, valid = tlp::targetInVocab(y, V);
  const float lse = p.lse[row];
  if (!ignored && !valid) {
    tlp::reportBadTarget(p.error, static_cast<int32_t>(OpId::tokenLogProbsBackward), row, y, V, p.targetsShape);
    std::fill(g, g + n, simd::fromFloat(tag, NAN));
    return;
  }
  if (ignored || lse == -INFINITY) {
    // Ignored rows, and rows of only -inf logits (every p is 0): gradient 0.
    std::fill(g, g + n, simd::fromFloat(tag, 0.0f));
    return;
  }
  const float gLp = p.gradLogprobs ? p.gradLogprobs[row] : 0.0f;
  const float gH = kEntropyTerm ? p.gradEntropy[row] : 0.0f;
  const float h = kEntropyTerm ? p.entropy[row] : 0.0f;
  const float invT = p.invTemperature, c = tlp::log2Scale(invT);
  const tlp::GradRow r = tlp::gradRow(lse, gLp, h, gH, invT, tlp::lseScale(invT));
  const auto exponent = Exponent<true>::backward(r, c, lse, invT);

  // Read the target's logit before the vector pass may overwrite it (in place).
  const bool hasTarget = y >= lo && y < lo + n;
  const float xTarget = hasTarget ? simd::toFloat(tag, x[y - lo]) : 0.0f;

  const Vec a = simd::splat(r.a), b = simd::splat(r.b);
  auto grad = [&](Vec xv) {
    Vec t = exponent(xv);
    if constexpr (kEntropyTerm || !simd::kExp2AnyInput) t = simd::clampExp(t);
    Vec pv = simd::exp2(t);
    return simd::mul(pv, kEntropyTerm ? simd::fma(b, t, a) : a);
  };
  // Streamed: a head of partial vectors up to the first cache-line aligned
  // output element, then aligned non-temporal stores.
  int64_t head = 0;
  if constexpr (kStream) {
    const uintptr_t misalign = reinterpret_cast<uintptr_t>(g) % kLine;
    head = std::min<int64_t>(n, misalign ? static_cast<int64_t>((kLine - misalign) / sizeof(Raw)) : 0);
    for (int64_t i = 0; i < head; i += W) {
      const int k = static_cast<int>(std::min<int64_t>(W, head - i));
      simd::storePartial(tag, g + i, k, grad(simd::loadPartial(tag, x + i, k, 0.0f)));
    }
  }
  constexpr int64_t kStep = int64_t{W} * kUnroll;
  const int64_t unrolled = head + (n - head) / kStep * kStep, whole = head + (n - head) / W * W;
  for (int64_t i = head; i < unrolled; i += kStep) {
    prefetchStep(x + i);
    Vec v[kUnroll];
    loadStep(tag, x + i, v);
    for (int u = 0; u < kUnroll; ++u) v[u] = grad(v[u]);
    storeStep<kStream>(tag, g + i, v);
  }
  for (int64_t i = unrolled; i < whole; i += W) {
    if constexpr (kStream) simd::storeStream(tag, g + i, grad(simd::load(tag, x + i)));
    else simd::store(tag, g + i, grad(simd::load(tag, x + i)));
  }
  if (const int rest = static_cast<int>(n - whole))
    simd::storePartial(tag, g + whole, rest, grad(simd::loadPartial(tag, x + whole, rest, 0.0f)));
  if constexpr (kStream) simd::streamFence();  // before the target's store below and the pool's completion

  if (hasTarget) {
    float t = exponent.scalar(xTarget);
    t = t < tlp::kMinExp ? tlp::kMinExp : (t > tlp::kMaxExp ? tlp::kMaxExp : t);
    g[y - lo] = simd::fromFloat(tag, tlp::gradTarget(r, xTarget, t, std::exp2(t)));
  }
}

template <class E, bool kEntropyTerm>
void backward(const TokenLogProbsBackwardParams& p) {
  const int64_t V = p.vocab, chunks = (V + kGradChunk - 1) / kGradChunk;
  const int64_t items = p.rows * chunks;
  // A large gradient out of place is streamed (simd::kStreamBytes); in
  // place, its lines are in cache already.
  const bool stream = p.gradLogits != p.logits &&
                      p.rows * V * static_cast<int64_t>(dtypeSize(p.dtype)) >= simd::kStreamBytes;
  ThreadPool& pool = ThreadPool::global();
  const int64_t grain =
      std::max({int64_t{1}, kRowGrain / std::min(V, kGradChunk), items / (kGrainsPerThread * pool.threads())});
  pool.parallelFor(items, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      int64_t row = i / chunks, lo = (i % chunks) * kGradChunk, n = std::min(kGradChunk, V - lo);
      if (stream) gradChunk<E, kEntropyTerm, true>(p, row, lo, n);
      else gradChunk<E, kEntropyTerm, false>(p, row, lo, n);
    }
  });
}

[[noreturn]] void badDtype(const char* op, DType t) {
  throw KernelFailure(ErrorCode::Internal, std::string(op) + ": unsupported logits dtype " + dtypeName(t));
}

template <bool kEntropy>
void forwardTyped(const TokenLogProbsParams& p) {
  switch (p.dtype) {
    case DType::Float32: return forward<simd::Fp32, kEntropy>(p);
    case DType::BFloat16: return forward<simd::Bf16, kEntropy>(p);
    case DType::Float16: return forward<simd::Fp16, kEntropy>(p);
    default: badDtype("tokenLogProbs", p.dtype);
  }
}

template <bool kEntropyTerm>
void backwardTyped(const TokenLogProbsBackwardParams& p) {
  switch (p.dtype) {
    case DType::Float32: return backward<simd::Fp32, kEntropyTerm>(p);
    case DType::BFloat16: return backward<simd::Bf16, kEntropyTerm>(p);
    case DType::Float16: return backward<simd::Fp16, kEntropyTerm>(p);
    default: badDtype("tokenLogProbsBackward", p.dtype);
  }
}

}  // namespace

void tokenLogProbs(const TokenLogProbsParams& p) {
  if (p.entropy) forwardTyped<true>(p);
  else forwardTyped<false>(p);
}

void tokenLogProbsBackward(const TokenLogProbsBackwardParams& p) {
  if (p.gradEntropy) backwardTyped<true>(p);
  else backwardTyped<false>(p);
}

}  // namespace rk::cpu::RK_ISA_NS
