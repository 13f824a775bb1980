// The float32 vector of simd.h for arm64 NEON: 4 lanes.
// Included by simd.h only, after simd_types.h and isa.h.
#pragma once

#include "simd_types.h"

namespace rk::cpu::RK_ISA_NS::simd {

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

}  // namespace rk::cpu::RK_ISA_NS::simd
