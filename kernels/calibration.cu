// CUDA backend of the calibration family. readBandwidth sums the buffer in
// two passes: fixed chunks of kChunk floats, one per block, read with 16-byte
// loads, then one block adds the chunk sums in index order. The partition
// depends on n alone, so the checksum bits do not depend on the GPU.
#include <cuda_runtime.h>

#include <cstdint>

#include "../native/cuda/device.h"

namespace rk::cudaops {

namespace {

constexpr int kThreads = 256;
constexpr int kVectorsPerThread = 16;  // float4 loads in flight per thread
constexpr int64_t kChunk = int64_t{kThreads} * kVectorsPerThread * 4;  // 16 Ki floats
constexpr int kFinalThreads = 1024;

// Sum of one value per thread, as a fixed tree; every thread gets the total.
template <int Threads, typename T>
__device__ T blockSum(T v, T* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int width = Threads / 2; width > 0; width /= 2) {
    if (static_cast<int>(threadIdx.x) < width) shared[threadIdx.x] += shared[threadIdx.x + width];
    __syncthreads();
  }
  return shared[0];
}

// partials[b] = sum of x[b * kChunk, min((b + 1) * kChunk, n)).
__global__ void __launch_bounds__(kThreads)
    chunkSums(const float* __restrict__ x, int64_t n, bool aligned, float* __restrict__ partials) {
  __shared__ float shared[kThreads];
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunk;
  const int64_t end = begin + kChunk < n ? begin + kChunk : n;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  if (aligned && end - begin == kChunk) {
    // Consecutive threads read consecutive float4s: each load instruction
    // of a warp covers 512 contiguous bytes.
    const float4* v = reinterpret_cast<const float4*>(x + begin);
#pragma unroll
    for (int k = 0; k < kVectorsPerThread; ++k) {
      const float4 q = __ldg(v + k * kThreads + threadIdx.x);
      acc[0] += q.x;
      acc[1] += q.y;
      acc[2] += q.z;
      acc[3] += q.w;
    }
  } else {
    // The last, partial chunk (or an unaligned buffer): one float at a time.
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) acc[0] += x[i];
  }
  const float total = blockSum<kThreads>((acc[0] + acc[1]) + (acc[2] + acc[3]), shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// out[0] = sum of partials[0, count) in a fixed order (double accumulators).
__global__ void __launch_bounds__(kFinalThreads)
    finalSum(const float* __restrict__ partials, int64_t count, float* __restrict__ out) {
  __shared__ double shared[kFinalThreads];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += kFinalThreads) acc += partials[i];
  const double total = blockSum<kFinalThreads>(acc, shared);
  if (threadIdx.x == 0) out[0] = static_cast<float>(total);
}

}  // namespace

int readBandwidth(const ReadBandwidthParams& p, const CudaLaunch& launch) {
  cudaStream_t stream = static_cast<cudaStream_t>(launch.stream);
  const int64_t chunks = (p.n + kChunk - 1) / kChunk;
  if (chunks > INT32_MAX) return cudaErrorInvalidConfiguration;  // grid.x limit: n > 35e12
  float* partials = nullptr;
  if (chunks > 0) {
    partials = static_cast<float*>(launch.scratch(launch.owner, static_cast<size_t>(chunks) * sizeof(float)));
    if (!partials) {
      cudaError_t e = cudaGetLastError();
      return e != cudaSuccess ? e : cudaErrorMemoryAllocation;
    }
    const bool aligned = reinterpret_cast<uintptr_t>(p.data) % sizeof(float4) == 0;
    chunkSums<<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(p.data, p.n, aligned, partials);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  // With n = 0 this writes 0 without reading partials.
  finalSum<<<1, kFinalThreads, 0, stream>>>(partials, chunks, p.checksum);
  return cudaGetLastError();
}

}  // namespace rk::cudaops
