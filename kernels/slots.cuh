// 16-byte "slots" of float32 / bfloat16 / float16 logits for the CUDA
// kernels: raw bits in a uint4, their float values, vector loads and stores
// with a scalar path for partial or unaligned slots, and the SFU's 2^x.
// Every element index is a compile-time constant once the caller's loops
// are unrolled, so slot arrays stay in registers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace rk::cudaops {

// Element types: raw bits in 16-byte slots, and their float value.
struct F32 {
  using Raw = uint32_t;
  static constexpr int kPerSlot = 4;
  static constexpr uint32_t kNegInf = 0xff800000u;
  static __device__ __forceinline__ float value(uint32_t b) { return __uint_as_float(b); }
  static __device__ __forceinline__ uint32_t bits(float v) { return __float_as_uint(v); }
};
struct BF16 {
  using Raw = uint16_t;
  static constexpr int kPerSlot = 8;
  static constexpr uint32_t kNegInf = 0xff80u;
  static __device__ __forceinline__ float value(uint32_t b) { return __uint_as_float(b << 16); }
  static __device__ __forceinline__ uint32_t bits(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
};
struct F16 {
  using Raw = uint16_t;
  static constexpr int kPerSlot = 8;
  static constexpr uint32_t kNegInf = 0xfc00u;
  static __device__ __forceinline__ float value(uint32_t b) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(b)));
  }
  static __device__ __forceinline__ uint32_t bits(float v) { return __half_as_ushort(__float2half_rn(v)); }
};

// 2^x by the SFU (relative error ~2^-22): -inf -> 0, NaN -> NaN, results
// below 2^-126 flush to 0.
__device__ __forceinline__ float ex2(float x) {
#ifdef RK_CUDA_EMU
  const float y = exp2f(x);  // correctly rounded, where the SFU is within 2^-22
  return y < 0x1p-126f ? 0.0f : y;
#else
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}

__device__ __forceinline__ uint32_t word(const uint4& r, int i) {
  return i == 0 ? r.x : i == 1 ? r.y : i == 2 ? r.z : r.w;
}
__device__ __forceinline__ void setWord(uint4& r, int i, uint32_t v) {
  if (i == 0) r.x = v;
  else if (i == 1) r.y = v;
  else if (i == 2) r.z = v;
  else r.w = v;
}
template <class E>
__device__ __forceinline__ uint32_t rawGet(const uint4& r, int j) {
  if constexpr (sizeof(typename E::Raw) == 4) return word(r, j);
  uint32_t w = word(r, j >> 1);
  return (j & 1) ? (w >> 16) : (w & 0xffffu);
}
template <class E>
__device__ __forceinline__ void rawSet(uint4& r, int j, uint32_t b) {
  if constexpr (sizeof(typename E::Raw) == 4) {
    setWord(r, j, b);
  } else {
    uint32_t w = word(r, j >> 1);
    setWord(r, j >> 1, (j & 1) ? ((w & 0xffffu) | (b << 16)) : ((w & 0xffff0000u) | b));
  }
}
template <class E>
__device__ __forceinline__ uint4 splatSlot(uint32_t b) {
  uint32_t w = sizeof(typename E::Raw) == 4 ? b : (b | (b << 16));
  return make_uint4(w, w, w, w);
}
template <class E>
__device__ __forceinline__ float elem(const uint4& r, int j) {
  return E::value(rawGet<E>(r, j));
}

// The slot of `valid` (1..E) elements at p; missing elements read as -inf.
// kReadOnly: the data are not written by this kernel (read-only cache path).
template <class E, bool kReadOnly>
__device__ __forceinline__ uint4 loadSlot(const typename E::Raw* p, int valid, bool aligned) {
  constexpr int kE = E::kPerSlot;
  if (aligned && valid == kE) {
    const uint4* v = reinterpret_cast<const uint4*>(p);
    return kReadOnly ? __ldg(v) : *v;
  }
  uint4 r = splatSlot<E>(E::kNegInf);
#pragma unroll
  for (int j = 0; j < kE; ++j)
    if (j < valid) rawSet<E>(r, j, kReadOnly ? static_cast<uint32_t>(__ldg(p + j)) : static_cast<uint32_t>(p[j]));
  return r;
}

template <class E>
__device__ __forceinline__ void storeSlot(typename E::Raw* p, const uint4& r, int valid, bool aligned) {
  constexpr int kE = E::kPerSlot;
  if (aligned && valid == kE) {
    *reinterpret_cast<uint4*>(p) = r;
    return;
  }
#pragma unroll
  for (int j = 0; j < kE; ++j)
    if (j < valid) p[j] = static_cast<typename E::Raw>(rawGet<E>(r, j));
}

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace rk::cudaops
