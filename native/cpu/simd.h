// A small float32 vector abstraction for the CPU ops, one definition per ISA
// (AVX-512: 16 lanes, AVX2: 8, NEON: 4, baseline: 1), with loads and stores
// of float32 / bfloat16 / float16 storage (partial, paired, non-temporal)
// and a fast 2^x.
//
// Include after isa.h: everything here lives in rk::cpu::RK_ISA_NS::simd,
// so each ISA's copy has its own symbols (see native/cpu/isa.h).
#pragma once

#include <cstdint>
#include <cstring>

namespace rk::cpu::RK_ISA_NS::simd {

// Storage tags: what one element of a tensor is in memory.
struct Fp32 {
  using Raw = float;
};
struct Bf16 {
  using Raw = uint16_t;
};
struct Fp16 {
  using Raw = uint16_t;
};

// ------------------------------------------------------- scalar conversions

static inline float bitsToFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
static inline uint32_t floatToBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

static inline float toFloat(Fp32, float x) { return x; }
static inline float toFloat(Bf16, uint16_t x) { return bitsToFloat(static_cast<uint32_t>(x) << 16); }
static inline float toFloat(Fp16, uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return bitsToFloat(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    // Subnormal or zero: mant * 2^-24, exact in float32.
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bitsToFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

static inline float fromFloat(Fp32, float x) { return x; }
// Round to nearest even; NaN stays a quiet NaN.
static inline uint16_t fromFloat(Bf16, float x) {
  uint32_t b = floatToBits(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((b >> 16) | 0x40u);
  return static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
// IEEE half, round to nearest even, overflow to inf.
static inline uint16_t fromFloat(Fp16, float x) {
  uint32_t b = floatToBits(x);
  uint32_t sign = (b >> 16) & 0x8000u;
  uint32_t exp = (b >> 23) & 0xffu, mant = b & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = 1u << (shift - 1), rest = mant & ((1u << shift) - 1);
    uint32_t out = mant >> shift;
    if (rest > half || (rest == half && (out & 1u))) ++out;
    return static_cast<uint16_t>(sign | out);
  }
  uint32_t out = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (out & 1u))) ++out;  // may carry into the exponent: right
  return static_cast<uint16_t>(sign | out);
}

// ------------------------------------------------------------- the vectors

#if defined(RK_ISA_AVX512)

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
constexpr bool kPairedBf16 = true;
static inline void loadPair(Bf16, const uint16_t* p, Vec& a, Vec& b) {
  const __m512i x = _mm512_loadu_si512(p), zero = _mm512_setzero_si512();
  a.v = _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, x));
  b.v = _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, x));
}
static inline __m512i packPair(Vec a, Vec b) { return _mm512_packus_epi32(bf16Rounded(a.v), bf16Rounded(b.v)); }
static inline void storePair(Bf16, uint16_t* p, Vec a, Vec b) { _mm512_storeu_si512(p, packPair(a, b)); }
static inline void storePairStream(Bf16, uint16_t* p, Vec a, Vec b) { _mm512_stream_si512(reinterpret_cast<__m512i*>(p), packPair(a, b)); }
static inline void storePartial(Bf16, uint16_t* p, int n, Vec v) {
  _mm256_mask_storeu_epi16(p, static_cast<__mmask16>((1u << n) - 1), toBf16Bits(v.v));
}
static inline void storePartial(Fp16, uint16_t* p, int n, Vec v) {
  _mm256_mask_storeu_epi16(p, static_cast<__mmask16>((1u << n) - 1),
                           _mm512_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT));
}

#elif defined(RK_ISA_AVX2)

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

#elif defined(__aarch64__)

constexpr int kWidth = 4;
constexpr bool kHasFma = true;
constexpr bool kExp2AnyInput = false;  // exp2 wants clampExp(t)
struct Vec {
  float32x4_t v;
};
static inline Vec splat(float x) { return {vdupq_n_f32(x)}; }
static inline Vec add(Vec a, Vec b) { return {vaddq_f32(a.v, b.v)}; }
static inline Vec sub(Vec a, Vec b) { return {vsubq_f32(a.v, b.v)}; }
static inline Vec mul(Vec a, Vec b) { return {vmulq_f32(a.v, b.v)}; }
static inline Vec fma(Vec a, Vec b, Vec c) { return {vfmaq_f32(c.v, a.v, b.v)}; }
static inline Vec max(Vec a, Vec b) { return {vmaxq_f32(a.v, b.v)}; }
// exp2's domain: -127 <= t <= 127 (vmaxq/vminq return NaN when either
// operand is NaN).
static inline Vec clampExp(Vec t) { return {vminq_f32(vdupq_n_f32(127.0f), vmaxq_f32(vdupq_n_f32(-127.0f), t.v))}; }
static inline Vec pow2FromRounded(Vec y) {
  uint32x4_t e = vshlq_n_u32(vreinterpretq_u32_f32(y.v), 23);
  return {vreinterpretq_f32_u32(vaddq_u32(e, vdupq_n_u32(127u << 23)))};
}
static inline float reduceAdd(Vec a) {
  float32x2_t h = vadd_f32(vget_low_f32(a.v), vget_high_f32(a.v));
  return vget_lane_f32(vpadd_f32(h, h), 0);
}
static inline float reduceMax(Vec a) { return vmaxvq_f32(a.v); }

static inline Vec load(Fp32, const float* p) { return {vld1q_f32(p)}; }
static inline Vec load(Bf16, const uint16_t* p) { return {vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))}; }
static inline Vec load(Fp16, const uint16_t* p) { return {vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))}; }
static inline void store(Fp32, float* p, Vec v) { vst1q_f32(p, v.v); }
static inline void store(Bf16, uint16_t* p, Vec v) {
  float lanes[4];
  vst1q_f32(lanes, v.v);
  for (int i = 0; i < 4; ++i) p[i] = fromFloat(Bf16{}, lanes[i]);
}
static inline void store(Fp16, uint16_t* p, Vec v) { vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v.v))); }

#else  // baseline: one lane of plain C++ (no FMA: a * b + c rounds twice)

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

#endif

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
#if !defined(RK_ISA_AVX512)
constexpr bool kPairedBf16 = false;
#endif
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
