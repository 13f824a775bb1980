// The emulator's CUDA runtime (include/cuda_runtime.h): one device whose
// memory is host memory, streams whose operations complete in the call.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace {

constexpr size_t kDeviceBytes = size_t{16} << 30;  // what the device reports, and the most it hands out
constexpr size_t kAlignment = 256;                 // as cudaMalloc's

thread_local cudaError_t lastError = cudaSuccess;
std::atomic<int> sticky{cudaSuccess};  // a failed kernel spoils the context, as on a GPU

std::mutex allocationsMutex;
std::unordered_map<void*, size_t> allocations;
size_t allocated = 0;

cudaError_t status() { return static_cast<cudaError_t>(sticky.load()); }

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) lastError = e;
  return e;
}

cudaError_t allocate(void** p, size_t bytes) {
  *p = nullptr;
  if (status() != cudaSuccess) return record(status());
  std::lock_guard<std::mutex> lock(allocationsMutex);
  if (bytes > kDeviceBytes - allocated) return record(cudaErrorMemoryAllocation);
  const size_t some = bytes == 0 ? 1 : bytes;
#ifdef RK_EMU_ASAN
  const size_t rounded = some;  // exact: AddressSanitizer guards the end
#else
  const size_t rounded = (some + kAlignment - 1) / kAlignment * kAlignment;
#endif
  void* q = nullptr;
  if (posix_memalign(&q, kAlignment, rounded) != 0) return record(cudaErrorMemoryAllocation);
  std::memset(q, 0xff, rounded);  // fresh device memory holds garbage: NaN here
  allocations[q] = bytes;
  allocated += bytes;
  *p = q;
  return cudaSuccess;
}

cudaError_t release(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(allocationsMutex);
  auto it = allocations.find(p);
  if (it == allocations.end()) return record(cudaErrorInvalidValue);
  allocated -= it->second;
  allocations.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t checkDevice(int device) { return record(device == 0 ? cudaSuccess : cudaErrorInvalidDevice); }

}  // namespace

namespace rk_emu {
cudaError_t launched(int error) {
  if (error == cudaErrorLaunchFailure) sticky.store(error);
  return record(static_cast<cudaError_t>(error));
}
}  // namespace rk_emu

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoKernelImageForDevice: return "cudaErrorNoKernelImageForDevice";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorCooperativeLaunchTooLarge: return "cudaErrorCooperativeLaunchTooLarge";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulator: see stderr)";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorCooperativeLaunchTooLarge: return "too many blocks in cooperative launch";
    default: return cudaGetErrorName(e);
  }
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = status() != cudaSuccess ? status() : lastError;
  lastError = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return status() != cudaSuccess ? status() : lastError; }

// One device, which CUDA_VISIBLE_DEVICES can hide as it hides a GPU.
cudaError_t cudaGetDeviceCount(int* count) {
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  const bool hidden = visible && !(visible[0] == '0' && (visible[1] == '\0' || visible[1] == ','));
  *count = hidden ? 0 : 1;
  return record(hidden ? cudaErrorNoDevice : cudaSuccess);
}
cudaError_t cudaSetDevice(int device) { return checkDevice(device); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (checkDevice(device) != cudaSuccess) return cudaErrorInvalidDevice;
  *prop = cudaDeviceProp{};
  std::strncpy(prop->name, "rlhf-kernels CUDA emulator (CPU fibers)", sizeof prop->name - 1);
  prop->totalGlobalMem = kDeviceBytes;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = rk_emu::multiprocessors();
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (checkDevice(device) != cudaSuccess) return cudaErrorInvalidDevice;
  if (attr != cudaDevAttrClusterLaunch) return record(cudaErrorInvalidValue);
  *value = 1;
  return cudaSuccess;
}

// Work completes when it is enqueued: waiting only reports a failed kernel.
cudaError_t cudaDeviceSynchronize() { return record(status()); }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return record(status()); }
cudaError_t cudaStreamQuery(cudaStream_t) { return record(status()); }

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  static char token;
  *s = reinterpret_cast<cudaStream_t>(&token);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaMalloc(void** p, size_t bytes) { return allocate(p, bytes); }
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return allocate(p, bytes); }
cudaError_t cudaFree(void* p) { return release(p); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return release(p); }

cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = std::malloc(bytes == 0 ? 1 : bytes);
  return record(*p ? cudaSuccess : cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (status() != cudaSuccess) return record(status());
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (status() != cudaSuccess) return record(status());
  if (bytes) std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) { return cudaMemset(dst, value, bytes); }

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  static char token;
  *pool = reinterpret_cast<cudaMemPool_t>(&token);
  return checkDevice(device);
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void*) { return cudaSuccess; }
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t, cudaMemPoolAttr attr, void* value) {
  if (attr != cudaMemPoolAttrReservedMemCurrent) return cudaSuccess;
  std::lock_guard<std::mutex> lock(allocationsMutex);
  *static_cast<uint64_t*>(value) = allocated;
  return cudaSuccess;
}
