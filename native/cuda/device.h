// The cuda device as the bindings see it, with no CUDA header in sight:
// native/cuda/device.cpp implements it over the CUDA runtime, and
// native/no_cuda.cpp implements it for builds without a toolkit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../core/errors.h"
#include "../ops/all.h"

namespace rk::cuda {

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int major = 0, minor = 0;       // compute capability
  uint64_t totalMemory = 0;       // bytes
  int multiprocessors = 0;
};

struct Availability {
  bool compiled = false;          // built with a CUDA toolkit
  bool available = false;         // a usable device is here
  std::string reason;             // why not, when !available
  int driverVersion = 0;          // e.g. 13000 for CUDA 13.0, 0 when unknown
  int runtimeVersion = 0;         // the CUDA runtime compiled in
  std::string archs;              // the code compiled in, e.g. "sm_75 ... compute_120"
  std::vector<DeviceInfo> devices;
};

// Probed once per process on first call (never at load time); thread-safe.
const Availability& probe();

std::string errorString(int cudaError);

// One ordered stream with its memory on one device, per Node.js environment.
class Context {
 public:
  // Throws KernelFailure(NoDevice) when cuda is unavailable or `ordinal` is
  // not a device.
  static std::shared_ptr<Context> create(int ordinal);
  ~Context();

  int ordinal() const;
  void* alloc(size_t bytes);              // KernelFailure(OutOfMemory) on failure
  void free(void* ptr, size_t bytes);     // stream-ordered: after pending work
  void copyToDevice(void* dst, const void* src, size_t bytes);  // src reusable on return
  void copyToHost(void* dst, const void* src, size_t bytes);    // blocks until copied
  void copyOnDevice(void* dst, const void* src, size_t bytes);
  void fill(void* dst, int byte, size_t bytes);
  // Waits for every enqueued op; KernelFailure(Cuda) when the stream failed.
  void synchronize();
  // Polls the stream for at most the spin budget (core/spin.h); true when
  // its work is done (or failed: synchronize says how) by then.
  bool settleSoon();
  // The kernels' report about their inputs (code 0: none), taken off the
  // device: each report reaches exactly one take. Blocks until the stream
  // has run everything queued before it (a wait calls it after synchronize).
  ErrorSlot takeSlot();
  // takeSlot in two halves, for a wait that blocks on another thread: the
  // take queued now (on the JS thread, so it covers exactly the ops queued
  // before the wait), then read once a synchronize has passed it.
  struct SlotTake {
    int index = -1;  // which take buffer holds it; -1: no op could have reported
  };
  SlotTake queueTake(bool blocking = false);  // blocking: read before the caller returns (takeSlot)
  ErrorSlot finishTake(SlotTake take);
  ErrorSlot* slot();                      // device address for Params::error
  void armSlot();                         // after queueing a kernel that may report: the next take reads the slot
  CudaLaunch launch();
  // Throws KernelFailure(Cuda) naming `op` when a launch returned an error.
  void check(int cudaError, const char* op);
  uint64_t bytesInUse() const;
  uint64_t bytesPooled() const;

  struct Impl;  // opaque: defined by device.cpp or no_cuda.cpp

 private:
  explicit Context(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rk::cuda

// The CUDA entry of every op (kernels/<family>.cu), and the probe kernel's.
// Each returns a cudaError_t as int: 0 when the launch was accepted.
namespace rk::cudaops {
#define RK_OP(name, P) int name(const P& params, const CudaLaunch& launch);
#include "../ops.def"
#undef RK_OP
int probeKernelImage(int ordinal);
// Queues the move of `slot`'s report into `taken`, leaving `slot` clear.
int takeErrorSlot(ErrorSlot* slot, ErrorSlot* taken, void* stream);
}  // namespace rk::cudaops
