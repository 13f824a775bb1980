// What a launch needs to know: how many blocks of a kernel fit on the
// device at once (for persistent and cooperative grids; the occupancy query
// is cached per device and per call site, each passing its own cache),
// whether the device launches thread block clusters (asked once per device),
// and whether a pointer allows vector access.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

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

// Whether the device launches thread block clusters (compute capability 9.0
// and newer); false when it cannot say, or when RLHF_KERNELS_CUDA_CLUSTERS=0
// turns the cluster paths off (a switch to compare or to bypass them).
inline bool hasClusters(const CudaLaunch& launch) {
  static const bool allowed = [] {
    const char* v = std::getenv("RLHF_KERNELS_CUDA_CLUSTERS");
    return !(v && v[0] == '0' && v[1] == '\0');
  }();
  if (!allowed) return false;
  static std::atomic<int> known[kMaxDevices];  // 0: not asked, 1: no, 2: yes
  const bool cached = launch.device >= 0 && launch.device < kMaxDevices;
  int v = cached ? known[launch.device].load() : 0;
  if (v == 0) {
    int yes = 0;
    if (cudaDeviceGetAttribute(&yes, cudaDevAttrClusterLaunch, launch.device) != cudaSuccess) {
      cudaGetLastError();
      yes = 0;
    }
    v = yes ? 2 : 1;
    if (cached) known[launch.device].store(v);
  }
  return v == 2;
}

}  // namespace rk::cudaops
