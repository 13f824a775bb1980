// Shared glue for the bindings: per-environment state, error mapping, and
// OpArgs, which turns the one JS object an op receives into raw pointers and
// scalars, checking every byte length so no kernel can read past a buffer
// even if lib/ had a bug. The only files that include napi.h are here.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "../native/core/cpu_stream.h"
#include "../native/core/errors.h"
#include "../native/cuda/device.h"
#include "../native/ops/all.h"

namespace rk::bind {

struct HostLedger;  // bindings/host_memory.cpp

// A read()'s copy of a device buffer, taken in stream order at the call
// (lib/tensor.ts). Owned here; freed (stream-ordered) when dropped.
struct Snapshot {
  std::shared_ptr<cuda::Context> ctx;
  void* data = nullptr;
  size_t bytes = 0;

  Snapshot() = default;
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  Snapshot(Snapshot&& o) noexcept : ctx(std::move(o.ctx)), data(o.data), bytes(o.bytes) { o.data = nullptr; }
  Snapshot& operator=(Snapshot&& o) noexcept {
    if (this != &o) {
      release();
      ctx = std::move(o.ctx), data = o.data, bytes = o.bytes;
      o.data = nullptr;
    }
    return *this;
  }
  ~Snapshot() { release(); }
  void release() noexcept {
    if (data && ctx) {
      try {
        ctx->free(data, bytes);
      } catch (...) {
      }
    }
    data = nullptr;
  }
};

struct EnvState {
  Napi::FunctionReference kernelError;   // lib/errors.ts KernelError, set by init()
  Napi::FunctionReference deviceBuffer;  // the DeviceBuffer class
  std::shared_ptr<CpuStream> cpu;        // created on first use
  std::vector<std::shared_ptr<cuda::Context>> cuda;  // by ordinal, on first use
  std::shared_ptr<HostLedger> host;      // pooled host blocks held here, on first use
  // Snapshots by id, from snapshot() until copyToHostManyAsync takes them:
  // plain numbers in JS, so no object per read waits for the garbage collector.
  std::unordered_map<uint32_t, Snapshot> snapshots;
  uint32_t nextSnapshot = 0;

  CpuStream& cpuStream();
  std::shared_ptr<CpuStream> cpuStreamShared();
  cuda::Context& cudaContext(int ordinal);  // throws KernelFailure(NoDevice)
  std::shared_ptr<cuda::Context> cudaShared(int ordinal);
  ~EnvState();
};

EnvState& state(Napi::Env env);

Napi::Error kernelError(Napi::Env env, ErrorCode code, const std::string& message);
// The JS error for what a synchronize found: a RangeError with code EBADINPUT
// (also instanceof KernelError, lib/errors.ts) for a kernel's report
// about its inputs, KernelError for a failed stream.
Napi::Error failureError(Napi::Env env, const StreamFailure& failure);
// Waits for every op queued on `device` (-1 = cpu) and throws what they
// found; on cpu only for the tasks up to ticket `covers`.
void synchronizeDevice(Napi::Env env, int device, uint64_t covers = UINT64_MAX);

// Catches every C++ exception at the boundary: nothing may unwind into Node.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const KernelFailure& e) {
    throw kernelError(info.Env(), e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw kernelError(info.Env(), ErrorCode::OutOfMemory, "out of host memory");
  } catch (const std::exception& e) {
    throw kernelError(info.Env(), ErrorCode::Internal, e.what());
  }
}

// Memory on a cuda device owned by a JS object. Freed by free() or, as a
// safety net, by the garbage collector; both are stream-ordered, so work
// already queued on the buffer finishes first.
class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function define(Napi::Env env);
  static DeviceBuffer* from(Napi::Env env, const Napi::Value& value);  // null if not one
  explicit DeviceBuffer(const Napi::CallbackInfo& info);  // new DeviceBuffer(ordinal, bytes)
  ~DeviceBuffer() override;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  int device() const { return device_; }
  cuda::Context& context() { return *ctx_; }

 private:
  Napi::Value free(const Napi::CallbackInfo& info);
  Napi::Value getBytes(const Napi::CallbackInfo& info);
  Napi::Value getDevice(const Napi::CallbackInfo& info);
  void freeNow();

  std::shared_ptr<cuda::Context> ctx_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  int device_ = 0;
};

// The arguments of one op call: info[0] is { device, <tensors>, <scalars> }.
class OpArgs {
 public:
  OpArgs(const Napi::CallbackInfo& info, OpId op);

  Napi::Env env;
  int device;  // -1 = cpu, else the cuda ordinal
  OpId op;

  // The storage of tensor field `name`, holding at least `bytes` bytes: a
  // TypedArray on cpu, a DeviceBuffer of `device` on cuda. Optional fields
  // may be missing, undefined or null (then null is returned).
  void* storage(const char* name, size_t bytes, bool optional = false);
  template <class T>
  T* tensor(const char* name, int64_t count, bool optional = false) {
    return static_cast<T*>(storage(name, static_cast<size_t>(count) * sizeof(T), optional));
  }
  double number(const char* name);
  int64_t integer(const char* name);
  bool flag(const char* name);
  // An array of integers >= 0 (a shape); `absent` when the field is missing.
  std::vector<int64_t> dims(const char* name, const std::vector<int64_t>& absent);
  // Checked scalars: a RangeError naming the op and the field otherwise.
  int64_t count(const char* name, int64_t min = 0);  // an integer >= min
  float finite(const char* name);                    // a finite float32
  double nonNegative(const char* name);              // a finite double >= 0
  int32_t code(const char* name, int32_t last);      // an enum code in [0, last]
  // a * b elements, refused past 2^53 (no JS array is that long).
  int64_t elements(int64_t a, int64_t b);
  [[noreturn]] void refuse(const std::string& what);
  // Where the kernel reports bad input values (cpu stream or device slot).
  ErrorSlot* errorSlot();
  // errorSlot() was asked for: run() arms the device slot once the launch is queued.
  bool reports() const { return reports_; }
  cuda::Context& cuda();

 private:
  Napi::Object args_;
  bool reports_ = false;
  [[noreturn]] void fail(const std::string& what);
};

// Runs an op on the device in `args`: enqueued on the cpu stream or launched
// on the cuda stream. Returns the cpu ticket (0 on cuda). One overload per op.
#define RK_OP(name, P) uint64_t run(OpArgs& args, const P& params);
#include "../native/ops.def"
#undef RK_OP

// Each op family's file registers its functions on the exports object.
void registerRuntime(Napi::Env env, Napi::Object exports);
void registerHostMemory(Napi::Env env, Napi::Object exports);
void registerPreference(Napi::Env env, Napi::Object exports);
void registerCalibration(Napi::Env env, Napi::Object exports);
void registerAdvantages(Napi::Env env, Napi::Object exports);
void registerPpo(Napi::Env env, Napi::Object exports);
void registerTokenLogProbs(Napi::Env env, Napi::Object exports);
void registerTensor(Napi::Env env, Napi::Object exports);

}  // namespace rk::bind
