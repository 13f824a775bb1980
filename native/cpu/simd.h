// A small float32 vector abstraction for the CPU ops, one definition per ISA
// (AVX-512: 16 lanes, AVX2: 8, NEON: 4, baseline: 1), with loads and stores
// of float32 / bfloat16 / float16 storage (partial, paired, non-temporal)
// and a fast 2^x.
//
// Include after isa.h: everything here lives in rk::cpu::RK_ISA_NS::simd,
// so each ISA's copy has its own symbols (see native/cpu/isa.h).
#pragma once

#include "simd_types.h"

#if defined(RK_ISA_AVX512)
#include "simd_avx512.h"
#elif defined(RK_ISA_AVX2)
#include "simd_avx2.h"
#elif defined(__aarch64__)
#include "simd_neon.h"
#else
#include "simd_scalar.h"
#endif

namespace rk::cpu::RK_ISA_NS::simd {

// What every ISA shares, or gets when it has nothing better.

// Scalar a * b + c, rounded once where the ISA has FMA (as fma(Vec...)),
// twice elsewhere. For loops whose every element must round alike: left to
// the compiler (-ffp-contract=fast), a vectorized body and its scalar tail
// may contract one expression differently, and an element's result would
// then depend on its place in the batch.
static inline float mulAdd(float a, float b, float c) {
  if constexpr (kHasFma) return __builtin_fmaf(a, b, c);
  return a * b + c;
}

#if !defined(RK_ISA_AVX512)
// Without masked loads and stores, partial vectors go through a lane buffer.
template <class E>
static inline Vec loadPartial(E tag, const typename E::Raw* p, int n, float fill) {
  typename E::Raw lanes[kWidth];
  for (int i = 0; i < kWidth; ++i) lanes[i] = i < n ? p[i] : fromFloat(tag, fill);
  return load(tag, lanes);
}
template <class E>
static inline void storePartial(E tag, typename E::Raw* p, int n, Vec v) {
  typename E::Raw lanes[kWidth];
  store(tag, lanes, v);
  for (int i = 0; i < n; ++i) p[i] = lanes[i];
}
#endif

#if !defined(RK_ISA_AVX512) && !defined(RK_ISA_AVX2)
// No streaming stores on NEON and the one-lane baseline: a plain store.
template <class E>
static inline void storeStream(E tag, typename E::Raw* p, Vec v) {
  store(tag, p, v);
}
#endif

// Two consecutive vectors, for the dtypes without a paired form (every
// dtype but AVX-512 bfloat16): lanes in memory order.
template <class E>
static inline void loadPair(E tag, const typename E::Raw* p, Vec& a, Vec& b) {
  a = load(tag, p);
  b = load(tag, p + kWidth);
}
template <class E>
static inline void storePair(E tag, typename E::Raw* p, Vec a, Vec b) {
  store(tag, p, a);
  store(tag, p + kWidth, b);
}
template <class E>
static inline void storePairStream(E tag, typename E::Raw* p, Vec a, Vec b) {
  storeStream(tag, p, a);
  storeStream(tag, p + kWidth, b);
}

// Outputs of this many bytes and more are written with non-temporal stores
// where the ISA has them: no read for ownership of lines about to be
// overwritten whole (a third of the traffic of a read-once, write-once
// kernel), at the price of leaving them out of cache, which past a few tens
// of MB they would have left anyway.
constexpr int64_t kStreamBytes = int64_t{32} << 20;

// Orders this thread's non-temporal stores before its later stores (x86
// streams are weakly ordered); nothing to do elsewhere.
static inline void streamFence() {
#if defined(RK_ISA_AVX512) || defined(RK_ISA_AVX2)
  _mm_sfence();
#endif
}

#if !defined(RK_ISA_AVX512)
// 2^f for |f| <= 1/2: degree-6 minimax polynomial (relative error 1.9e-9,
// 1.3 ulp after float32 Horner).
static inline Vec exp2Poly(Vec f) {
  Vec p = splat(1.53458124e-4f);
  p = fma(p, f, splat(1.33999309e-3f));
  p = fma(p, f, splat(9.61848907e-3f));
  p = fma(p, f, splat(5.55032864e-2f));
  p = fma(p, f, splat(2.40226462e-1f));
  p = fma(p, f, splat(6.93147182e-1f));
  return fma(p, f, splat(1.0f));
}

// 2^t for t = clampExp(t) in [-127, 127]; NaN gives NaN. Split t = n + f
// with n = round(t) by the 1.5 * 2^23 trick (the sum's low mantissa bits
// hold n), |f| <= 1/2, and build 2^n in the exponent field exactly.
// n = -127 gives the bit pattern of +0: results below 2^-126.5 flush to 0,
// so masked logits give exactly 0. A NaN t makes f and the polynomial NaN,
// and NaN * 2^n stays NaN.
static inline Vec exp2(Vec t) {
  const Vec round = splat(12582912.0f);  // 1.5 * 2^23
  Vec y = add(t, round);
  Vec f = sub(t, sub(y, round));
  return mul(exp2Poly(f), pow2FromRounded(y));
}
#endif

}  // namespace rk::cpu::RK_ISA_NS::simd
