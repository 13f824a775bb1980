// RK_HD marks per-element math shared by both backends: compiled by nvcc as
// a device and host function, and by the host compiler (CPU backend) as a
// static inline function. `static` matters on the host: each CPU op source
// is compiled once per ISA, and internal linkage keeps the AVX-512 copy of a
// helper from being merged with the baseline copy at link time.
#pragma once

#if defined(__CUDACC__)
#define RK_HD static __host__ __device__ __forceinline__
#else
#define RK_HD static inline
#endif
