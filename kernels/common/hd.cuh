// RK_HD marks per-element math shared by both backends: compiled by nvcc as
// a device and host function, and by the host compiler (CPU backend) as a
// static inline function. `static` matters on the host: each CPU op source
// is compiled once per ISA, and internal linkage keeps the AVX-512 copy of a
// helper from being merged with the baseline copy at link time.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define RK_HD static __host__ __device__ __forceinline__
#else
#define RK_HD static inline
#endif

namespace rk {

// The bits of a float and back (exponent tricks in the shared math).
RK_HD uint32_t floatBits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

RK_HD float bitsFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

}  // namespace rk
