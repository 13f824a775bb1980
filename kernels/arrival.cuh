// Blocks counting their arrivals on a launch's counter
// (CudaLaunch::blockCounter): the "last block combines the partials" of
// kernels/preference.cu and kernels/ppo.cu, and the grid barrier of
// kernels/ppo.cu's cooperative launch.
//
// The ordering is release/acquire: a block's writes before its arrival
// (other threads' ordered by a __syncthreads first) are visible to a block
// that has seen the count include it, once that block has acquired. As
// shipped (RK_ARRIVE_ACQ_REL 1, kernels/tuning.cuh) the count itself is an
// acquire-release atomic and the waiters' polls acquire loads (on an H200,
// 4 to 8 % off the preference loss); 0 puts a __threadfence, a sequentially
// consistent fence, on both sides instead. The CUDA emulator runs the
// fences either way.
#pragma once
#include <cuda_runtime.h>

#include "tuning.cuh"

namespace rk::cudaops {

#if RK_ARRIVE_ACQ_REL && defined(__CUDA_ARCH__) && !defined(RK_CUDA_EMU)
#define RK_ARRIVAL_PTX 1
#else
#define RK_ARRIVAL_PTX 0
#endif

// One thread per block: adds its arrival, returns the count before it.
__device__ __forceinline__ unsigned arriveRelease(unsigned* counter) {
#if RK_ARRIVAL_PTX
  unsigned before;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(before) : "l"(counter) : "memory");
  return before;
#else
  __threadfence();
  return atomicAdd(counter, 1u);
#endif
}

// The count as it is now (a poll of a waiter).
__device__ __forceinline__ unsigned arrivalsSeen(const unsigned* counter) {
#if RK_ARRIVAL_PTX
  unsigned seen;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(counter) : "memory");
  return seen;
#else
  return *reinterpret_cast<const volatile unsigned*>(counter);
#endif
}

// After arriveRelease or arrivalsSeen saw the other blocks' arrivals, in
// the thread that called it: their writes before arriving are visible from
// here on (to the whole block after a __syncthreads).
__device__ __forceinline__ void acquireArrivals() {
#if !RK_ARRIVAL_PTX
  __threadfence();
#endif
}

}  // namespace rk::cudaops
