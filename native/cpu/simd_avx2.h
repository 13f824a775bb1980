// The float32 vector of simd.h for AVX2 + FMA: 8 lanes.
// Included by simd.h only, after simd_types.h and isa.h.
#pragma once

#include "simd_types.h"

namespace rk::cpu::RK_ISA_NS::simd {

constexpr int kWidth = 8;
constexpr bool kHasFma = true;
constexpr bool kExp2AnyInput = false;  // exp2 wants clampExp(t)
struct Vec {
  __m256 v;
};
static inline Vec splat(float x) { return {_mm256_set1_ps(x)}; }
static inline Vec add(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
static inline Vec sub(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
static inline Vec mul(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
static inline Vec fma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
static inline Vec max(Vec a, Vec b) { return {_mm256_max_ps(a.v, b.v)}; }
// exp2's domain: -127 <= t <= 127, keeping NaN (max/min return their
// second operand on NaN).
static inline Vec clampExp(Vec t) {
  return {_mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-127.0f), t.v))};
}
static inline Vec pow2FromRounded(Vec y) {
  __m256i e = _mm256_slli_epi32(_mm256_castps_si256(y.v), 23);
  return {_mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_set1_epi32(127 << 23)))};
}
static inline float reduceAdd(Vec a) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}
static inline float reduceMax(Vec a) {
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  q = _mm_max_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

static inline Vec load(Fp32, const float* p) { return {_mm256_loadu_ps(p)}; }
static inline Vec load(Bf16, const uint16_t* p) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(w, 16))};
}
static inline Vec load(Fp16, const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
static inline void store(Fp32, float* p, Vec v) { _mm256_storeu_ps(p, v.v); }
// The eight bfloat16 of v (round to nearest even, NaN kept quiet).
static inline __m128i toBf16Bits(__m256 v) {
  __m256i b = _mm256_castps_si256(v);
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb), 16);
  __m256i nan = _mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40));
  __m256i isNan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, nan, isNan);
  // Pack the low halves of the eight 32-bit lanes (all < 2^16, so no saturation).
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}
static inline void store(Bf16, uint16_t* p, Vec v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), toBf16Bits(v.v));
}
static inline void store(Fp16, uint16_t* p, Vec v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT));
}
// Non-temporal stores of one vector to an address aligned to its size.
static inline void storeStream(Fp32, float* p, Vec v) { _mm256_stream_ps(p, v.v); }
static inline void storeStream(Bf16, uint16_t* p, Vec v) {
  _mm_stream_si128(reinterpret_cast<__m128i*>(p), toBf16Bits(v.v));
}
static inline void storeStream(Fp16, uint16_t* p, Vec v) {
  _mm_stream_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT));
}

}  // namespace rk::cpu::RK_ISA_NS::simd
