// The float32 "vector" of simd.h for the baseline build: one lane of plain
// C++, no FMA (a * b + c rounds twice).
// Included by simd.h only, after simd_types.h and isa.h.
#pragma once

#include "simd_types.h"

namespace rk::cpu::RK_ISA_NS::simd {

constexpr int kWidth = 1;
constexpr bool kHasFma = false;
constexpr bool kExp2AnyInput = false;  // exp2 wants clampExp(t)
struct Vec {
  float v;
};
static inline Vec splat(float x) { return {x}; }
static inline Vec add(Vec a, Vec b) { return {a.v + b.v}; }
static inline Vec sub(Vec a, Vec b) { return {a.v - b.v}; }
static inline Vec mul(Vec a, Vec b) { return {a.v * b.v}; }
static inline Vec fma(Vec a, Vec b, Vec c) { return {a.v * b.v + c.v}; }
static inline Vec max(Vec a, Vec b) { return {a.v > b.v ? a.v : b.v}; }
// exp2's domain: -127 <= t <= 127 (NaN compares false: stays NaN).
static inline Vec clampExp(Vec t) {
  float x = t.v < -127.0f ? -127.0f : t.v;
  return {x > 127.0f ? 127.0f : x};
}
static inline Vec pow2FromRounded(Vec y) { return {bitsToFloat((floatToBits(y.v) << 23) + (127u << 23))}; }
static inline float reduceAdd(Vec a) { return a.v; }
static inline float reduceMax(Vec a) { return a.v; }
template <class E>
static inline Vec load(E tag, const typename E::Raw* p) {
  return {toFloat(tag, *p)};
}
template <class E>
static inline void store(E tag, typename E::Raw* p, Vec v) {
  *p = fromFloat(tag, v.v);
}

}  // namespace rk::cpu::RK_ISA_NS::simd
