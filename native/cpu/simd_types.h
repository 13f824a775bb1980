// Storage tags and scalar conversions of the CPU vector layer (simd.h):
// what one element of a tensor is in memory, and float32 from and to it.
// Include after isa.h (everything lives in rk::cpu::RK_ISA_NS::simd).
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

}  // namespace rk::cpu::RK_ISA_NS::simd
