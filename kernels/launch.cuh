// What a launch needs to know: how many blocks of a kernel fit on the
// device at once (for cooperative and capped grids; the occupancy query is
// cached per device and per call site, each passing its own cache), and
// whether a pointer allows vector access.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../native/ops/all.h"

namespace rk::cudaops {

constexpr int kMaxDevices = 64;

// Whether `ptr` is a multiple of `bytes` (null is).
inline bool aligned(const void* ptr, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; }
using ResidentCache = std::atomic<int>[kMaxDevices];

// Blocks of `kernel` (`threads` threads, `smem` bytes of dynamic shared
// memory) resident on the whole device; 0 with `*error` set when the query
// fails or not even one block fits.
template <class Kernel>
int residentBlocks(Kernel kernel, int threads, size_t smem, const CudaLaunch& launch, ResidentCache& cache,
                   cudaError_t* error) {
  const bool cached = launch.device >= 0 && launch.device < kMaxDevices;
  int perSm = cached ? cache[launch.device].load() : 0;
  if (perSm == 0) {
    *error = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, threads, smem);
    if (*error != cudaSuccess) return 0;
    if (perSm < 1) {
      *error = cudaErrorCooperativeLaunchTooLarge;
      return 0;
    }
    if (cached) cache[launch.device].store(perSm);
  }
  *error = cudaSuccess;
  return perSm * (launch.multiprocessors > 0 ? launch.multiprocessors : 1);
}

}  // namespace rk::cudaops
