// Device-side CUDA for the emulator: qualifiers, built-in variables, vector
// types and the intrinsics this package's kernels call, over fibers.h.
// Included by the emulator's cuda_runtime.h; never by a real CUDA build.
#pragma once
#include <math.h>
#include <sched.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../fibers.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
// One copy per block: a block's threads are fibers of one OS thread.
#define __shared__ static thread_local

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(const rk_emu::Dim3& d) : x(d.x), y(d.y), z(d.z) {}
  constexpr operator rk_emu::Dim3() const { return rk_emu::Dim3{x, y, z}; }
};
using uint3 = rk_emu::Dim3;

// threadIdx, blockIdx, blockDim, gridDim: objects whose coordinates read the
// running fiber's values when used as numbers.
namespace rk_emu {
enum class Builtin { ThreadIdx, BlockIdx, BlockDim, GridDim };
template <Builtin W, int Axis>
struct BuiltinCoord {
  operator unsigned() const {
    const ThreadIds& t = ids();
    const Dim3& d = W == Builtin::ThreadIdx  ? t.threadIdx
                    : W == Builtin::BlockIdx ? t.blockIdx
                    : W == Builtin::BlockDim ? t.blockDim
                                             : t.gridDim;
    return Axis == 0 ? d.x : Axis == 1 ? d.y : d.z;
  }
};
template <Builtin W>
struct BuiltinDim3 {
  BuiltinCoord<W, 0> x;
  BuiltinCoord<W, 1> y;
  BuiltinCoord<W, 2> z;
};
}  // namespace rk_emu
inline constexpr rk_emu::BuiltinDim3<rk_emu::Builtin::ThreadIdx> threadIdx{};
inline constexpr rk_emu::BuiltinDim3<rk_emu::Builtin::BlockIdx> blockIdx{};
inline constexpr rk_emu::BuiltinDim3<rk_emu::Builtin::BlockDim> blockDim{};
inline constexpr rk_emu::BuiltinDim3<rk_emu::Builtin::GridDim> gridDim{};
inline constexpr int warpSize = 32;

// Vector types with CUDA's alignment.
#define RK_EMU_VECTOR(name, T, align)                                                 \
  struct alignas(align) name##2 { T x, y; };                                          \
  struct alignas(align * 2) name##4 { T x, y, z, w; };                                \
  inline name##2 make_##name##2(T x, T y) { return name##2{x, y}; }                   \
  inline name##4 make_##name##4(T x, T y, T z, T w) { return name##4{x, y, z, w}; }
RK_EMU_VECTOR(float, float, 8)
RK_EMU_VECTOR(int, int, 8)
RK_EMU_VECTOR(uint, unsigned, 8)
RK_EMU_VECTOR(ushort, unsigned short, 4)
RK_EMU_VECTOR(uchar, unsigned char, 2)
RK_EMU_VECTOR(char, signed char, 2)
#undef RK_EMU_VECTOR
struct alignas(16) double2 { double x, y; };
struct alignas(16) longlong2 { long long x, y; };

// ------------------------------------------------------------- barriers

inline void __syncthreads() { rk_emu::syncThreads(); }
inline int __syncthreads_or(int p) { return rk_emu::syncThreadsOr(p); }

namespace rk_emu {
inline unsigned laneId() {
  const ThreadIds& t = ids();
  return (t.threadIdx.x + t.threadIdx.y * t.blockDim.x + t.threadIdx.z * t.blockDim.x * t.blockDim.y) % 32;
}
// Every lane named in `mask` must be live and reach the same intrinsic.
inline const unsigned char* exchange(unsigned mask, const void* v, size_t bytes) {
  const unsigned live = liveLaneMask();
  if ((mask & ~live) != 0) reportMaskMismatch(mask, live);
  return warpExchange(v, bytes);
}
template <class T>
T shuffleFrom(unsigned mask, T v, int source) {
  static_assert(sizeof(T) <= 16 && std::is_trivially_copyable_v<T>, "shuffled types are at most 16 bytes");
  const unsigned char* lanes = exchange(mask, &v, sizeof v);
  T out;
  std::memcpy(&out, lanes + 16 * static_cast<unsigned>(source), sizeof out);
  return out;
}
}  // namespace rk_emu

inline void __syncwarp(unsigned mask = 0xffffffffu) { rk_emu::exchange(mask, &mask, 0); }

template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  const int lane = static_cast<int>(rk_emu::laneId());
  return rk_emu::shuffleFrom(mask, v, (lane & ~(width - 1)) + (src & (width - 1)));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(rk_emu::laneId());
  const int src = lane + static_cast<int>(delta);
  return rk_emu::shuffleFrom(mask, v, (src & ~(width - 1)) == (lane & ~(width - 1)) ? src : lane);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(rk_emu::laneId());
  const int src = lane - static_cast<int>(delta);
  return rk_emu::shuffleFrom(mask, v, src >= (lane & ~(width - 1)) ? src : lane);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32) {
  const int lane = static_cast<int>(rk_emu::laneId());
  const int src = lane ^ laneMask;
  return rk_emu::shuffleFrom(mask, v, (src & ~(width - 1)) == (lane & ~(width - 1)) ? src : lane);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  const int p = predicate != 0;
  const unsigned char* lanes = rk_emu::exchange(mask, &p, sizeof p);
  unsigned out = 0;
  for (unsigned l = 0; l < 32; ++l) {
    int q;
    std::memcpy(&q, lanes + 16 * l, sizeof q);
    if ((mask >> l & 1u) && q) out |= 1u << l;
  }
  return out;
}
// sm_80's warp reduction of 32-bit integers (the sum wraps, as on the GPU).
inline unsigned __reduce_add_sync(unsigned mask, unsigned value) {
  const unsigned char* lanes = rk_emu::exchange(mask, &value, sizeof value);
  unsigned out = 0;
  for (unsigned l = 0; l < 32; ++l) {
    unsigned q;
    std::memcpy(&q, lanes + 16 * l, sizeof q);
    if (mask >> l & 1u) out += q;
  }
  return out;
}
inline int __reduce_add_sync(unsigned mask, int value) {
  return static_cast<int>(__reduce_add_sync(mask, static_cast<unsigned>(value)));
}
inline int __any_sync(unsigned mask, int p) { return __ballot_sync(mask, p) != 0; }
inline int __all_sync(unsigned mask, int p) { return __ballot_sync(mask, p) == mask; }
template <class T>
unsigned __match_any_sync(unsigned mask, T value) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "__match_any_sync takes 32- or 64-bit values");
  const unsigned char* lanes = rk_emu::exchange(mask, &value, sizeof value);
  unsigned out = 0;
  for (unsigned l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && std::memcmp(lanes + 16 * l, &value, sizeof value) == 0) out |= 1u << l;
  return out;
}

// ------------------------------------------------------ memory and atomics

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
inline void __nanosleep(unsigned) { sched_yield(); }

// Cache hints are plain loads; __ldcg (read through L2, for data other
// blocks write) must not be hoisted out of a loop.
template <class T>
T __ldg(const T* p) {
  return *p;
}
template <class T>
T __ldcg(const T* p) {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Streaming hints (evict first) are plain loads and stores.
template <class T>
T __ldcs(const T* p) {
  return *p;
}
template <class T>
void __stcs(T* p, T v) {
  *p = v;
}

template <class T>
T atomicAdd(T* p, T v) {
  if constexpr (std::is_integral_v<T>) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
  } else {
    T old = *p, sum;
    do sum = old + v;
    while (!__atomic_compare_exchange(p, &old, &sum, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    return old;
  }
}
template <class T>
T atomicExch(T* p, T v) {
  return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
template <class T>
T atomicCAS(T* p, T expected, T desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expected;
}

// ------------------------------------------------------------------ math

inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
