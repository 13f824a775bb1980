// The float32 vector of simd.h for AVX-512: 16 lanes, masked partial loads
// and stores, vreduceps/vscalefps 2^x, paired bfloat16 loads and stores.
// Included by simd.h only, after simd_types.h and isa.h.
#pragma once

#include "simd_types.h"

namespace rk::cpu::RK_ISA_NS::simd {

// GCC 12 warns about the deliberately undefined vectors inside its own
// AVX-512 intrinsics (_mm512_undefined_*, GCC bug 105593) once inlined here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

constexpr int kWidth = 16;
constexpr bool kHasFma = true;
struct Vec {
  __m512 v;
};
static inline Vec splat(float x) { return {_mm512_set1_ps(x)}; }
static inline Vec add(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
static inline Vec sub(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
static inline Vec mul(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
static inline Vec fma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
static inline Vec max(Vec a, Vec b) { return {_mm512_max_ps(a.v, b.v)}; }
// exp2 below takes any t (kExp2AnyInput); clampExp still maps -inf to
// -152 (2^-152 rounds to 0) for callers that multiply by t, keeping NaN
// (max returns its second operand on NaN).
constexpr bool kExp2AnyInput = true;
static inline Vec clampExp(Vec t) { return {_mm512_max_ps(_mm512_set1_ps(-152.0f), t.v)}; }
// 2^f for 0 <= f < 1: degree-6 polynomial, near minimax for the relative
// error (2.0e-9 with these coefficients in float64; at most 0.55 ulp after
// float32 FMA Horner, measured over 2M points against float64 2^f).
static inline Vec exp2Poly01(Vec f) {
  __m512 p = _mm512_set1_ps(2.161285229e-4f);
  p = _mm512_fmadd_ps(p, f.v, _mm512_set1_ps(1.246786327e-3f));
  p = _mm512_fmadd_ps(p, f.v, _mm512_set1_ps(9.675449692e-3f));
  p = _mm512_fmadd_ps(p, f.v, _mm512_set1_ps(5.548528209e-2f));
  p = _mm512_fmadd_ps(p, f.v, _mm512_set1_ps(2.402293086e-1f));
  p = _mm512_fmadd_ps(p, f.v, _mm512_set1_ps(6.931470633e-1f));
  return {_mm512_fmadd_ps(p, f.v, _mm512_set1_ps(1.0f))};
}
// 2^t = 2^f 2^floor(t): vreduceps gives f = t - floor(t) exactly, and
// vscalefps multiplies by 2^floor(t) itself, for any exponent. Two
// instructions besides the polynomial (vrndscaleps, vsubps and vscalefps
// took three; the in-cache forward went from 6.1 to 7.0 G elements/s per
// thread). t = -inf gives f = 0 and 2^-inf = 0; NaN stays NaN; results
// below the smallest subnormal round to 0.
static inline Vec exp2(Vec t) {
  const __m512 f = _mm512_reduce_ps(t.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  return {_mm512_scalef_ps(exp2Poly01({f}).v, t.v)};
}
static inline float reduceAdd(Vec a) {
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a.v), _mm512_extractf32x8_ps(a.v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}
static inline float reduceMax(Vec a) {
  __m256 h = _mm256_max_ps(_mm512_castps512_ps256(a.v), _mm512_extractf32x8_ps(a.v, 1));
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  q = _mm_max_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

static inline Vec load(Fp32, const float* p) { return {_mm512_loadu_ps(p)}; }
static inline Vec load(Bf16, const uint16_t* p) {
  __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
}
static inline Vec load(Fp16, const uint16_t* p) {
  return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
// The first n (< kWidth) elements, the other lanes set to `fill`.
static inline Vec loadPartial(Fp32, const float* p, int n, float fill) {
  __mmask16 k = static_cast<__mmask16>((1u << n) - 1);
  return {_mm512_mask_loadu_ps(_mm512_set1_ps(fill), k, p)};
}
static inline Vec loadPartial(Bf16, const uint16_t* p, int n, float fill) {
  __mmask16 k = static_cast<__mmask16>((1u << n) - 1);
  __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p));
  return {_mm512_mask_blend_ps(k, _mm512_set1_ps(fill), _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)))};
}
static inline Vec loadPartial(Fp16, const uint16_t* p, int n, float fill) {
  __mmask16 k = static_cast<__mmask16>((1u << n) - 1);
  __m512 v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p));
  return {_mm512_mask_blend_ps(k, _mm512_set1_ps(fill), v)};
}

// Rounded bfloat16 bits of each lane (to nearest even, NaN kept quiet), in
// the low half of its 32 bits.
static inline __m512i bf16Rounded(__m512 v) {
  const __m512i b = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __m512i nan = _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
  return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, nan);
}
static inline __m256i toBf16Bits(__m512 v) { return _mm512_cvtepi32_epi16(bf16Rounded(v)); }
static inline void store(Fp32, float* p, Vec v) { _mm512_storeu_ps(p, v.v); }
static inline void store(Bf16, uint16_t* p, Vec v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), toBf16Bits(v.v));
}
static inline void store(Fp16, uint16_t* p, Vec v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT));
}
static inline void storePartial(Fp32, float* p, int n, Vec v) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v.v);
}
static inline void storePartial(Bf16, uint16_t* p, int n, Vec v) {
  _mm256_mask_storeu_epi16(p, static_cast<__mmask16>((1u << n) - 1), toBf16Bits(v.v));
}
static inline void storePartial(Fp16, uint16_t* p, int n, Vec v) {
  _mm256_mask_storeu_epi16(p, static_cast<__mmask16>((1u << n) - 1),
                           _mm512_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT));
}
// Non-temporal stores of one vector to an address aligned to its size.
static inline void storeStream(Fp32, float* p, Vec v) { _mm512_stream_ps(p, v.v); }
static inline void storeStream(Bf16, uint16_t* p, Vec v) {
  _mm256_stream_si256(reinterpret_cast<__m256i*>(p), toBf16Bits(v.v));
}
static inline void storeStream(Fp16, uint16_t* p, Vec v) {
  _mm256_stream_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT));
}

// 32 bfloat16 as two vectors in one 64-byte load and one unpack each: a
// bfloat16 is the high half of its float32, so interleaving zero words
// below the data words widens it (vpmovzxwd + vpslld took two
// instructions per vector). The lanes come in unpack order (per 128-bit
// block: elements 0-3 in a, 4-7 in b); sums and maxima do not care, and
// storePair's vpackusdw puts them back in place.
static inline void loadPair(Bf16, const uint16_t* p, Vec& a, Vec& b) {
  const __m512i x = _mm512_loadu_si512(p), zero = _mm512_setzero_si512();
  a.v = _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, x));
  b.v = _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, x));
}
static inline __m512i packPair(Vec a, Vec b) { return _mm512_packus_epi32(bf16Rounded(a.v), bf16Rounded(b.v)); }
static inline void storePair(Bf16, uint16_t* p, Vec a, Vec b) { _mm512_storeu_si512(p, packPair(a, b)); }
static inline void storePairStream(Bf16, uint16_t* p, Vec a, Vec b) {
  _mm512_stream_si512(reinterpret_cast<__m512i*>(p), packPair(a, b));
}

}  // namespace rk::cpu::RK_ISA_NS::simd
