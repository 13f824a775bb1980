// L2 prefetch for kernels whose blocks stream several tiles each.
//
// Blocks with equal work run in lockstep: they all load, then they all
// compute while HBM idles, then they all load again. A block that asks L2
// for its next tile's lines before it computes the current one keeps HBM
// busy through the compute; the next tile's loads then wait for L2, not HBM.
// The hint costs no register and never waits (PTX prefetch.global.L2, every
// architecture this package builds for).
#pragma once
#include <cuda_runtime.h>

#include "tuning.cuh"

namespace rk::cudaops {

// Asks L2 to fetch the 128-byte line that holds p (a no-op when a variant
// build sets RK_PREFETCH=0, and on the emulator: a hint, nothing to emulate).
#if defined(RK_CUDA_EMU) || !RK_PREFETCH
__device__ __forceinline__ void prefetchL2(const void*) {}
#else
__device__ __forceinline__ void prefetchL2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }
#endif

}  // namespace rk::cudaops
