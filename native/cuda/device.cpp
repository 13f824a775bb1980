// cuda device over the CUDA runtime (static). Compiled only when CMake found
// a toolkit. Nothing here runs at load time: the first info() or cuda call
// probes, so CPU-only hosts never touch the driver unless asked.
#include "device.h"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "../core/spin.h"

#ifndef RK_CUDA_ARCHS
#define RK_CUDA_ARCHS "unknown"
#endif

namespace rk::cuda {

std::string errorString(int e) {
  auto err = static_cast<cudaError_t>(e);
  return std::string(cudaGetErrorName(err)) + " (" + cudaGetErrorString(err) + ")";
}

namespace {

std::string versionText(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// The oldest driver of the runtime's major version (minor version
// compatibility): what a "driver too old" message asks for.
std::string driverFloor() {
  const int major = CUDART_VERSION / 1000;
  if (major >= 13) return " (driver 580 or newer)";
  if (major == 12) return " (driver 525 or newer)";
  return "";
}

Availability doProbe() {
  Availability a;
  a.compiled = true;
  a.runtimeVersion = CUDART_VERSION;
  a.archs = RK_CUDA_ARCHS;

#ifdef RK_CUDA_EMU
  // The emulator (native/cuda_emu) is its own driver.
  a.driverVersion = CUDART_VERSION;
#else
  // The runtime loads libcuda itself; asking first lets the reason say which
  // of "no driver" and "driver too old" it is.
  void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!libcuda) {
    const char* why = dlerror();
    a.reason = std::string("no NVIDIA driver: libcuda.so.1 could not be loaded (") +
               (why ? why : "not found") + ")";
    return a;
  }
  using DriverVersionFn = int (*)(int*);
  auto getVersion = reinterpret_cast<DriverVersionFn>(dlsym(libcuda, "cuDriverGetVersion"));
  if (getVersion) getVersion(&a.driverVersion);
  if (a.driverVersion > 0 && a.driverVersion / 1000 < CUDART_VERSION / 1000) {
    a.reason = "NVIDIA driver too old: it supports CUDA " + versionText(a.driverVersion) +
               ", this build needs CUDA " + versionText(CUDART_VERSION) +
               driverFloor();
    return a;
  }
#endif

  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) {
    if (visible)
      a.reason = std::string("no CUDA device visible: hidden by CUDA_VISIBLE_DEVICES=\"") +
                 visible + "\"";
    else
      a.reason = "no CUDA device found (driver for CUDA " + versionText(a.driverVersion) +
                 " is loaded)";
    cudaGetLastError();
    return a;
  }
  if (err == cudaErrorInsufficientDriver) {
    a.reason = "NVIDIA driver too old for CUDA " + versionText(CUDART_VERSION) + driverFloor() + ": " +
               errorString(err);
    cudaGetLastError();
    return a;
  }
  if (err != cudaSuccess) {
    a.reason = "CUDA initialisation failed: " + errorString(err);
    cudaGetLastError();
    return a;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    DeviceInfo d;
    d.ordinal = i;
    d.name = prop.name;
    d.major = prop.major;
    d.minor = prop.minor;
    d.totalMemory = prop.totalGlobalMem;
    d.multiprocessors = prop.multiProcessorCount;
    a.devices.push_back(d);
  }
  // A device with no matching machine code nor PTX in this binary cannot
  // run any kernel: say so now rather than at the first op.
  int probe = cudaops::probeKernelImage(0);
  if (probe != cudaSuccess) {
    const DeviceInfo& d = a.devices.at(0);
    a.reason = "the GPU (" + d.name + ", compute capability " + std::to_string(d.major) + "." +
               std::to_string(d.minor) + ") cannot run this binary's kernels: " +
               errorString(probe) + "; built for " + a.archs;
    cudaGetLastError();
    return a;
  }
  a.available = !a.devices.empty();
  if (!a.available) a.reason = "no CUDA device could be queried";
  return a;
}

}  // namespace

const Availability& probe() {
  static const Availability a = doProbe();
  return a;
}

struct Context::Impl {
  int ordinal = 0;
  int multiprocessors = 0;
  cudaStream_t stream = nullptr;
  // [1 + kTakes]: the slot kernels report into, then take buffers, each
  // copied to its pinned host twin. Take 0 is the blocking takes' (on the JS
  // thread, read before it returns); the others, in turn, the waits on pool
  // threads (lib/stream.ts runs one per stream at a time, so a buffer is
  // read before its turn comes again).
  static constexpr int kTakes = 4;
  ErrorSlot* deviceSlot = nullptr;
  ErrorSlot* hostSlot = nullptr;  // pinned, [kTakes]
  unsigned nextTake = 0;
  unsigned* blockCounter = nullptr;      // CudaLaunch::blockCounter, then
  unsigned long long* gridTally = nullptr;  // CudaLaunch::gridTally, 8 bytes on: one allocation
  void* scratch = nullptr;
  size_t scratchBytes = 0;
  std::atomic<uint64_t> inUse{0};
  // Set after queueing an op that may report (armSlot), cleared by the take
  // that will read what it reported: a take that sees it queues its copy
  // after that op's kernel.
  std::atomic<bool> slotArmed{false};
  std::mutex slotMutex;
};

namespace {

void setDevice(int ordinal) {
  cudaError_t e = cudaSetDevice(ordinal);
  if (e != cudaSuccess)
    throw KernelFailure(ErrorCode::Cuda, "cuda:" + std::to_string(ordinal) +
                                             ": cudaSetDevice failed: " + errorString(e));
}

void checkCall(cudaError_t e, int ordinal, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  ErrorCode code = e == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Cuda;
  throw KernelFailure(code, "cuda:" + std::to_string(ordinal) + ": " + what + " failed: " +
                                errorString(e));
}

void* scratchFor(void* owner, size_t bytes) {
  auto* impl = static_cast<Context::Impl*>(owner);
  if (bytes <= impl->scratchBytes) return impl->scratch;
  if (impl->scratch) cudaFreeAsync(impl->scratch, impl->stream);
  impl->scratch = nullptr;
  impl->scratchBytes = 0;
  size_t want = bytes < (1u << 20) ? (1u << 20) : bytes;
  if (cudaMallocAsync(&impl->scratch, want, impl->stream) != cudaSuccess) return nullptr;
  impl->scratchBytes = want;
  return impl->scratch;
}

}  // namespace

std::shared_ptr<Context> Context::create(int ordinal) {
  const Availability& a = probe();
  if (!a.available) throw KernelFailure(ErrorCode::NoDevice, "cuda is unavailable: " + a.reason);
  if (ordinal < 0 || ordinal >= static_cast<int>(a.devices.size()))
    throw KernelFailure(ErrorCode::NoDevice,
                        "cuda:" + std::to_string(ordinal) + " does not exist: this host has " +
                            std::to_string(a.devices.size()) + " CUDA device(s)");
  auto impl = std::make_unique<Impl>();
  impl->ordinal = ordinal;
  impl->multiprocessors = a.devices[ordinal].multiprocessors;
  setDevice(ordinal);
  checkCall(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking), ordinal,
            "cudaStreamCreate");
  // Keep freed blocks in the pool (as PyTorch's caching allocator does):
  // training loops allocate the same sizes every step.
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, ordinal) == cudaSuccess) {
    uint64_t keep = UINT64_MAX;
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
  }
  checkCall(cudaMalloc(&impl->deviceSlot, (1 + Impl::kTakes) * sizeof(ErrorSlot)), ordinal, "cudaMalloc(error slot)");
  checkCall(cudaMallocHost(&impl->hostSlot, Impl::kTakes * sizeof(ErrorSlot)), ordinal,
            "cudaMallocHost(error slot)");
  void* counters = nullptr;
  checkCall(cudaMalloc(&counters, 2 * sizeof(unsigned long long)), ordinal, "cudaMalloc(block counters)");
  impl->blockCounter = static_cast<unsigned*>(counters);
  impl->gridTally = static_cast<unsigned long long*>(counters) + 1;
  checkCall(cudaMemsetAsync(impl->deviceSlot, 0, (1 + Impl::kTakes) * sizeof(ErrorSlot), impl->stream), ordinal,
            "cudaMemset(error slot)");
  checkCall(cudaMemsetAsync(counters, 0, 2 * sizeof(unsigned long long), impl->stream), ordinal,
            "cudaMemset(block counters)");
  checkCall(cudaStreamSynchronize(impl->stream), ordinal, "cudaStreamSynchronize");
  return std::shared_ptr<Context>(new Context(std::move(impl)));
}

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Context::~Context() {
  // Errors are ignored: at process exit the runtime may be unloading.
  cudaSetDevice(impl_->ordinal);
  cudaStreamSynchronize(impl_->stream);
  if (impl_->scratch) cudaFreeAsync(impl_->scratch, impl_->stream);
  cudaStreamSynchronize(impl_->stream);
  cudaFree(impl_->deviceSlot);
  cudaFree(impl_->blockCounter);
  cudaFreeHost(impl_->hostSlot);
  cudaStreamDestroy(impl_->stream);
}

int Context::ordinal() const { return impl_->ordinal; }

void* Context::alloc(size_t bytes) {
  setDevice(impl_->ordinal);
  void* p = nullptr;
  cudaError_t e = cudaMallocAsync(&p, bytes == 0 ? 1 : bytes, impl_->stream);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw KernelFailure(ErrorCode::OutOfMemory,
                        "cuda:" + std::to_string(impl_->ordinal) + ": out of device memory: " +
                            std::to_string(bytes) + " bytes requested, " +
                            std::to_string(impl_->inUse.load()) + " in use by rlhf-kernels");
  }
  checkCall(e, impl_->ordinal, "cudaMallocAsync");
  impl_->inUse += bytes;
  return p;
}

void Context::free(void* ptr, size_t bytes) {
  if (!ptr) return;
  cudaSetDevice(impl_->ordinal);
  cudaFreeAsync(ptr, impl_->stream);
  impl_->inUse -= bytes;
}

void Context::copyToDevice(void* dst, const void* src, size_t bytes) {
  setDevice(impl_->ordinal);
  // From pageable memory the call returns once `src` is staged: the caller
  // may reuse it at once.
  checkCall(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, impl_->stream),
            impl_->ordinal, "copy to device");
}

void Context::copyToHost(void* dst, const void* src, size_t bytes) {
  setDevice(impl_->ordinal);
  checkCall(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, impl_->stream),
            impl_->ordinal, "copy to host");
  synchronize();
}

void Context::copyOnDevice(void* dst, const void* src, size_t bytes) {
  setDevice(impl_->ordinal);
  checkCall(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_->stream),
            impl_->ordinal, "copy on device");
}

void Context::fill(void* dst, int byte, size_t bytes) {
  setDevice(impl_->ordinal);
  checkCall(cudaMemsetAsync(dst, byte, bytes, impl_->stream), impl_->ordinal, "cudaMemsetAsync");
}

bool Context::settleSoon() {
  setDevice(impl_->ordinal);
  return spinUntil([&] { return cudaStreamQuery(impl_->stream) != cudaErrorNotReady; });
}

void Context::synchronize() {
  setDevice(impl_->ordinal);
  checkCall(cudaStreamSynchronize(impl_->stream), impl_->ordinal, "a queued operation");
}

ErrorSlot Context::takeSlot() {
  const SlotTake take = queueTake(true);
  if (take.index < 0) return ErrorSlot{};
  setDevice(impl_->ordinal);
  checkCall(cudaStreamSynchronize(impl_->stream), impl_->ordinal, "reading the error slot");
  return finishTake(take);
}

Context::SlotTake Context::queueTake(bool blocking) {
  std::lock_guard<std::mutex> lock(impl_->slotMutex);
  // Reading the slot costs a round trip: skip it when no op could have written it.
  if (!impl_->slotArmed.exchange(false)) return {};
  const int index = blocking ? 0 : 1 + static_cast<int>(impl_->nextTake++ % (Impl::kTakes - 1));
  try {
    setDevice(impl_->ordinal);
    ErrorSlot* taken = impl_->deviceSlot + 1 + index;
    checkCall(static_cast<cudaError_t>(cudaops::takeErrorSlot(impl_->deviceSlot, taken, impl_->stream)),
              impl_->ordinal, "taking the error slot");
    checkCall(cudaMemcpyAsync(impl_->hostSlot + index, taken, sizeof(ErrorSlot), cudaMemcpyDeviceToHost, impl_->stream),
              impl_->ordinal, "reading the error slot");
  } catch (...) {
    impl_->slotArmed = true;  // what the slot may hold is still there for the next take
    throw;
  }
  return {index};
}

ErrorSlot Context::finishTake(SlotTake take) {
  if (take.index < 0) return ErrorSlot{};
  return impl_->hostSlot[take.index];  // after a synchronize: the copy has landed
}

ErrorSlot* Context::slot() { return impl_->deviceSlot; }

// Only once the kernel is queued: armed earlier (as the address was handed
// out), a take on another thread could clear the flag and read the slot
// before the kernel reported, and the report would wait for another op.
void Context::armSlot() { impl_->slotArmed = true; }

CudaLaunch Context::launch() {
  setDevice(impl_->ordinal);
  return CudaLaunch{impl_->stream, impl_->ordinal, impl_->multiprocessors, &scratchFor,
                    impl_.get(), impl_->blockCounter, impl_->gridTally};
}

void Context::check(int e, const char* op) {
  if (e == 0) e = static_cast<int>(cudaGetLastError());
  if (e == 0) return;
  checkCall(static_cast<cudaError_t>(e), impl_->ordinal, op);
}

uint64_t Context::bytesInUse() const { return impl_->inUse.load(); }

uint64_t Context::bytesPooled() const {
  cudaMemPool_t pool;
  uint64_t reserved = 0;
  if (cudaDeviceGetDefaultMemPool(&pool, impl_->ordinal) == cudaSuccess)
    cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved);
  return reserved;
}

}  // namespace rk::cuda
