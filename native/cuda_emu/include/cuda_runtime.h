// The emulator's CUDA runtime API: the subset this package calls, over host
// memory, with kernels run by fibers.h. Device memory is host memory, every
// stream operation completes before its call returns, and there is one
// device (compute capability 9.0, RK_EMU_SMS multiprocessors).
// Only native/cuda_emu builds see this header (RLHF_KERNELS_CUDA=emu).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "rk_emu_device.h"

#define CUDART_VERSION 13000

enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInsufficientDriver = 35,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
  cudaErrorCooperativeLaunchTooLarge = 720,
};
using cudaError_t = cudaError;

using cudaStream_t = struct CUstream_st*;
using cudaMemPool_t = struct CUmemPoolHandle_st*;
constexpr unsigned cudaStreamNonBlocking = 1;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaMemPoolAttr { cudaMemPoolAttrReleaseThreshold = 4, cudaMemPoolAttrReservedMemCurrent = 5 };
enum cudaDeviceAttr { cudaDevAttrClusterLaunch = 120 };

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor;
  int multiProcessorCount;
};
struct cudaFuncAttributes {
  int maxThreadsPerBlock;
  int numRegs;
  size_t sharedSizeBytes;
};

enum cudaLaunchAttributeID { cudaLaunchAttributeCooperative = 2, cudaLaunchAttributeClusterDimension = 4 };
union cudaLaunchAttributeValue {
  struct {
    unsigned x, y, z;
  } clusterDim;
  int cooperative;
};
struct cudaLaunchAttribute {
  cudaLaunchAttributeID id;
  cudaLaunchAttributeValue val;
};
struct cudaLaunchConfig_t {
  dim3 gridDim, blockDim;
  size_t dynamicSmemBytes;
  cudaStream_t stream;
  cudaLaunchAttribute* attrs;
  unsigned numAttrs;
};

const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s);
cudaError_t cudaFree(void* p);
cudaError_t cudaFreeAsync(void* p, cudaStream_t s);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);

template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
template <class T>
cudaError_t cudaMallocHost(T** p, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(p), bytes);
}
template <class T>
cudaError_t cudaMallocAsync(T** p, size_t bytes, cudaStream_t s) {
  return cudaMallocAsync(reinterpret_cast<void**>(p), bytes, s);
}

// ---------------------------------------------------------------- launches

namespace rk_emu {
// Records a launch's result for cudaGetLastError (a failed kernel's error
// sticks, as a GPU's does).
cudaError_t launched(int error);

template <class... P, class... A>
Grid gridOf(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A&&... args) {
  // Arguments convert to the parameter types, as a real launch copies them.
  auto bound = std::make_shared<std::tuple<std::decay_t<P>...>>(std::forward<A>(args)...);
  Grid g;
  g.grid = grid;
  g.block = block;
  g.dynamicShared = smem;
  g.body = [kernel, bound] { std::apply(kernel, *bound); };
  return g;
}

// kernel<<<grid, block, smem, stream>>>(args): native/cuda_emu/translate.mjs
// writes it as Launch(grid, block, smem, stream).run(kernel, args).
struct Launch {
  dim3 grid, block;
  size_t smem;
  Launch(dim3 g, dim3 b, size_t s = 0, cudaStream_t = nullptr) : grid(g), block(b), smem(s) {}
  template <class... P, class... A>
  void run(void (*kernel)(P...), A&&... args) const {
    launched(rk_emu::run(gridOf(kernel, grid, block, smem, std::forward<A>(args)...)));
  }
};

// cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), ...),
// written by translate.mjs without the cast, so that the arguments' types
// are known.
template <class... P, size_t... I>
Grid gridOfPointers(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, void** args, std::index_sequence<I...>) {
  return gridOf(kernel, grid, block, smem, *static_cast<std::decay_t<P>*>(args[I])...);
}
template <class... P>
cudaError_t launchCooperative(void (*kernel)(P...), dim3 grid, dim3 block, void** args, size_t smem, cudaStream_t) {
  Grid g = gridOfPointers(kernel, grid, block, smem, args, std::index_sequence_for<P...>{});
  g.mode = Grid::Mode::Cooperative;
  return launched(rk_emu::run(g));
}
}  // namespace rk_emu

template <class... P, class... A>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* config, void (*kernel)(P...), A&&... args) {
  rk_emu::Grid g = rk_emu::gridOf(kernel, config->gridDim, config->blockDim, config->dynamicSmemBytes,
                                  std::forward<A>(args)...);
  for (unsigned i = 0; i < config->numAttrs; ++i) {
    const cudaLaunchAttribute& a = config->attrs[i];
    if (a.id == cudaLaunchAttributeClusterDimension) {
      if (a.val.clusterDim.y != 1 || a.val.clusterDim.z != 1) return rk_emu::launched(cudaErrorInvalidValue);
      g.mode = rk_emu::Grid::Mode::Cluster;
      g.clusterBlocks = a.val.clusterDim.x;
    } else if (a.id == cudaLaunchAttributeCooperative && a.val.cooperative) {
      g.mode = rk_emu::Grid::Mode::Cooperative;
    }
  }
  return rk_emu::launched(rk_emu::run(g));
}

template <class... P>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void (*)(P...), int threads, size_t smem) {
  *blocks = rk_emu::blocksPerMultiprocessor(threads, smem);
  return cudaSuccess;
}

template <class... P>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, void (*)(P...)) {
  *a = cudaFuncAttributes{1024, 32, 0};
  return cudaSuccess;
}
