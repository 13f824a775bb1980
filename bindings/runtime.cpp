// Runtime functions: info, threads, device memory, copies, synchronize.
#include <algorithm>
#include <cstdint>

#include "../native/core/isa.h"
#include "../native/core/thread_pool.h"
#include "common.h"

#ifndef RK_VERSION
#define RK_VERSION "0.0.0"
#endif

namespace rk::bind {

// ---------------------------------------------------------------- DeviceBuffer

Napi::Function DeviceBuffer::define(Napi::Env env) {
  return DefineClass(env, "DeviceBuffer",
                     {InstanceMethod<&DeviceBuffer::free>("free"),
                      InstanceAccessor<&DeviceBuffer::getBytes>("bytes"),
                      InstanceAccessor<&DeviceBuffer::getDevice>("device")});
}

DeviceBuffer* DeviceBuffer::from(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) return nullptr;
  EnvState& s = state(env);
  if (!value.As<Napi::Object>().InstanceOf(s.deviceBuffer.Value())) return nullptr;
  return DeviceBuffer::Unwrap(value.As<Napi::Object>());
}

DeviceBuffer::DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "DeviceBuffer: expected (device, bytes)");
  device_ = info[0].As<Napi::Number>().Int32Value();
  double bytes = info[1].As<Napi::Number>().DoubleValue();
  if (!(bytes >= 0) || bytes > 9.0e15) throw Napi::RangeError::New(env, "DeviceBuffer: bad byte count");
  try {
    ctx_ = state(env).cudaShared(device_);
    bytes_ = static_cast<size_t>(bytes);
    data_ = ctx_->alloc(bytes_);
  } catch (const KernelFailure& e) {
    throw kernelError(env, e.code(), e.what());
  }
}

DeviceBuffer::~DeviceBuffer() { freeNow(); }

void DeviceBuffer::freeNow() {
  if (data_ && ctx_) ctx_->free(data_, bytes_);
  data_ = nullptr;
}

Napi::Value DeviceBuffer::free(const Napi::CallbackInfo& info) {
  freeNow();
  return info.Env().Undefined();
}

Napi::Value DeviceBuffer::getBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(bytes_));
}

Napi::Value DeviceBuffer::getDevice(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), device_);
}

// -------------------------------------------------------------------- helpers

namespace {

int deviceArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "device must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

DeviceBuffer* bufferArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  DeviceBuffer* b = DeviceBuffer::from(info.Env(), info[i]);
  if (!b) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a DeviceBuffer");
  if (!b->data()) throw Napi::Error::New(info.Env(), std::string(what) + " was disposed");
  return b;
}

Napi::TypedArray hostArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a TypedArray");
  return info[i].As<Napi::TypedArray>();
}

void* hostData(Napi::TypedArray a) {
  return static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
}

// ------------------------------------------------------------------ functions

Napi::Value info(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", RK_VERSION);

  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("threads", ThreadPool::global().threads());
  cpu.Set("isa", isaName(activeIsa()));
  Napi::Array isas = Napi::Array::New(env);
  uint32_t k = 0;
  for (Isa i : supportedIsas()) isas.Set(k++, isaName(i));
  cpu.Set("supportedIsas", isas);
  std::string note = isaNote();
  const std::string threadNote = threadCountNote();
  if (!threadNote.empty()) note += (note.empty() ? "" : "; ") + threadNote;
  if (!note.empty()) cpu.Set("note", note);
  out.Set("cpu", cpu);

  const cuda::Availability& a = cuda::probe();
  Napi::Object c = Napi::Object::New(env);
  c.Set("compiled", a.compiled);
  c.Set("available", a.available);
  if (!a.available) c.Set("reason", a.reason);
  c.Set("driverVersion", a.driverVersion);
  c.Set("runtimeVersion", a.runtimeVersion);
  c.Set("archs", a.archs);
  Napi::Array devs = Napi::Array::New(env);
  for (size_t i = 0; i < a.devices.size(); ++i) {
    const cuda::DeviceInfo& d = a.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("ordinal", d.ordinal);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("totalMemory", static_cast<double>(d.totalMemory));
    o.Set("multiprocessors", d.multiprocessors);
    devs.Set(static_cast<uint32_t>(i), o);
  }
  c.Set("devices", devs);
  out.Set("cuda", c);
  return out;
}

Napi::Value setThreads(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  if (!cb[0].IsNumber()) throw Napi::TypeError::New(env, "setNumThreads: expected a number");
  state(env).cpuStream().synchronize();
  ThreadPool::global().setThreads(cb[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

// memory(): [{ device, inUse, pooled }] for every cuda device used here.
Napi::Value memory(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t k = 0;
  for (auto& c : state(env).cuda) {
    if (!c) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", c->ordinal());
    o.Set("inUse", static_cast<double>(c->bytesInUse()));
    o.Set("pooled", static_cast<double>(c->bytesPooled()));
    out.Set(k++, o);
  }
  return out;
}

// On cpu, the last ticket a wait is for: argument `at` when given (at most
// what is queued: lib/stream.ts's callers' tickets), else everything queued
// now. Unused on cuda.
uint64_t coversArg(const Napi::CallbackInfo& cb, size_t at, int device) {
  if (device >= 0) return 0;
  const uint64_t queued = state(cb.Env()).cpuStream().submitted();
  if (cb.Length() <= at || !cb[at].IsNumber()) return queued;
  return std::min<uint64_t>(static_cast<uint64_t>(std::max(0.0, cb[at].As<Napi::Number>().DoubleValue())), queued);
}

// synchronize(device, covers?): on cpu, `covers` as coversArg reads it.
Napi::Value synchronize(const Napi::CallbackInfo& cb) {
  const int device = deviceArg(cb, 0);
  synchronizeDevice(cb.Env(), device, coversArg(cb, 1, device));
  return cb.Env().Undefined();
}

// Highest cpu ticket finished: lib/ releases the inputs of older ops.
Napi::Value completed(const Napi::CallbackInfo& cb) {
  return Napi::Number::New(cb.Env(), static_cast<double>(state(cb.Env()).cpuStream().completed()));
}

// Highest cpu ticket queued (ops, and the host pool's stream-ordered frees):
// what a wait begun now covers.
Napi::Value submitted(const Napi::CallbackInfo& cb) {
  return Napi::Number::New(cb.Env(), static_cast<double>(state(cb.Env()).cpuStream().submitted()));
}

// One snapshot into host memory: the snapshot owned, the bytes to copy.
struct HostCopy {
  Snapshot src;
  void* dst = nullptr;
  size_t bytes = 0;

  // Blocks until copied, then frees the snapshot (stream-ordered).
  void run(cuda::Context& ctx) {
    ctx.copyToHost(dst, src.data, bytes);
    src.release();
  }
};

// Waits off the JS thread (on libuv's pool); on cuda, first copies snapshots
// (taken in stream order at each read()) into host arrays and frees them.
// One worker serves every read and synchronize() that lib/stream.ts batched
// together, so they hold one pool thread between them.
class SyncWorker : public Napi::AsyncWorker {
 public:
  // cpu: `covers`, the last ticket the wait is for (at most the stream's
  // submitted(): lib/stream.ts's callers' tickets); later ops' failures are
  // not its own.
  SyncWorker(Napi::Env env, int device, uint64_t covers = 0)
      : Napi::AsyncWorker(env, "rlhf-kernels:sync"), deferred_(env), device_(device), covers_(covers) {
    EnvState& s = state(env);
    if (device < 0) {
      cpu_ = s.cpuStreamShared();
    } else {
      cuda_ = s.cudaShared(device);
      take_ = cuda_->queueTake();  // on the JS thread: the ops queued before this wait, no later one
    }
  }
  // The worker owns the copies; their host arrays stay referenced (so alive) until it is done.
  void addCopies(std::vector<HostCopy>&& copies, const std::vector<Napi::TypedArray>& dsts) {
    copies_ = std::move(copies);
    for (const Napi::TypedArray& dst : dsts) refs_.push_back(Napi::Persistent(dst.As<Napi::Object>()));
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      if (cpu_) {
        cpu_->synchronize(covers_);
        failure_ = cpu_->takeFailure(covers_);
      } else {
        for (HostCopy& c : copies_) c.run(*cuda_);
        cuda_->synchronize();
        failure_.slot = cuda_->finishTake(take_);
      }
    } catch (const KernelFailure& e) {
      failure_.failed = true;
      failure_.code = e.code();
      failure_.message = e.what();
    } catch (const std::exception& e) {
      failure_.failed = true;
      failure_.code = ErrorCode::Internal;
      failure_.message = e.what();
    }
  }
  // Settling can fail while a worker_thread shuts down: nothing is waiting
  // then, and nothing may unwind into Node.
  void OnOK() override {
    try {
      if (failure_.failed || failure_.slot.code != kSlotClear)
        deferred_.Reject(failureError(Env(), failure_).Value());
      else
        deferred_.Resolve(Env().Undefined());
    } catch (...) {
    }
  }
  void OnError(const Napi::Error& e) override {
    try {
      deferred_.Reject(e.Value());
    } catch (...) {
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  int device_;
  std::shared_ptr<CpuStream> cpu_;
  std::shared_ptr<cuda::Context> cuda_;
  std::vector<HostCopy> copies_;
  std::vector<Napi::ObjectReference> refs_;
  StreamFailure failure_;
  uint64_t covers_ = 0;  // cpu: the last ticket this wait covers
  cuda::Context::SlotTake take_;  // cuda: its take of the error slot, queued at the call
};

// Work that finishes within the spin budget (core/spin.h) settles here, on
// the JS thread: the hop through libuv's pool and back costs about 35 us on
// a VM, several times a small op. Longer work waits on the pool, and the
// JS thread has spun at most the budget.
// On cpu, the tasks up to ticket `covers`.
bool settlesSoon(Napi::Env env, int device, uint64_t covers) {
  EnvState& s = state(env);
  return device < 0 ? s.cpuStream().settleSoon(covers) : s.cudaContext(device).settleSoon();
}

// synchronizeAsync(device, covers?): on cpu, `covers` as coversArg reads it.
Napi::Value synchronizeAsync(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  const int device = deviceArg(cb, 0);
  const uint64_t covers = coversArg(cb, 1, device);
  if (settlesSoon(env, device, covers)) {
    auto deferred = Napi::Promise::Deferred::New(env);
    try {
      guarded<synchronize>(cb);  // the same covers: nothing was queued since
      deferred.Resolve(env.Undefined());
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
    }
    return deferred.Promise();
  }
  auto* w = new SyncWorker(env, device, covers);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// copyToDevice(dst: DeviceBuffer, src: TypedArray)
Napi::Value copyToDevice(const Napi::CallbackInfo& cb) {
  DeviceBuffer* dst = bufferArg(cb, 0, "destination");
  Napi::TypedArray src = hostArg(cb, 1, "source");
  if (src.ByteLength() > dst->bytes()) throw Napi::RangeError::New(cb.Env(), "copyToDevice: source larger than destination");
  dst->context().copyToDevice(dst->data(), hostData(src), src.ByteLength());
  return cb.Env().Undefined();
}

// copyToHost(src: DeviceBuffer, dst: TypedArray): blocks; throws what the
// queued work found, like synchronize.
Napi::Value copyToHost(const Napi::CallbackInfo& cb) {
  DeviceBuffer* src = bufferArg(cb, 0, "source");
  Napi::TypedArray dst = hostArg(cb, 1, "destination");
  size_t bytes = dst.ByteLength() < src->bytes() ? dst.ByteLength() : src->bytes();
  src->context().copyToHost(hostData(dst), src->data(), bytes);
  synchronizeDevice(cb.Env(), src->device());
  return cb.Env().Undefined();
}

// Copies this small are done on the JS thread when the stream settles within
// the spin budget (a D2H copy of 1 MiB takes tens of microseconds; the hop
// through libuv's pool costs about 35); larger ones always go to the pool.
constexpr size_t kInlineCopyBytes = size_t{1} << 20;

// snapshot(src: DeviceBuffer): an id. A copy of src now, in stream order, so
// that later ops (in-place ones too) cannot change what a read returns.
Napi::Value snapshot(const Napi::CallbackInfo& cb) {
  DeviceBuffer* src = bufferArg(cb, 0, "source");
  EnvState& s = state(cb.Env());
  Snapshot snap;
  snap.ctx = s.cudaShared(src->device());
  snap.bytes = src->bytes();
  snap.data = snap.ctx->alloc(snap.bytes);
  snap.ctx->copyOnDevice(snap.data, src->data(), snap.bytes);
  const uint32_t id = s.nextSnapshot++;
  s.snapshots[id] = std::move(snap);
  return Napi::Number::New(cb.Env(), id);
}

// copyToHostManyAsync(device, snapshots: number[], dsts: TypedArray[]):
// takes the snapshots; a promise settled once each is copied into its dst
// (and freed) and the device's stream has drained; rejects with what the
// queued work found.
Napi::Value copyToHostManyAsync(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  EnvState& s = state(env);
  const int device = deviceArg(cb, 0);
  if (device < 0) throw Napi::RangeError::New(env, "copyToHostManyAsync: expected a cuda device");
  if (!cb[1].IsArray() || !cb[2].IsArray()) throw Napi::TypeError::New(env, "copyToHostManyAsync: expected (device, snapshots[], dsts[])");
  Napi::Array ids = cb[1].As<Napi::Array>(), dsts = cb[2].As<Napi::Array>();
  if (ids.Length() != dsts.Length()) throw Napi::RangeError::New(env, "copyToHostManyAsync: snapshots and dsts differ in length");
  // Everything is checked before a promise exists: an AsyncWorker's promise
  // that is never settled keeps its handle (and the promise) alive forever.
  // A snapshot leaves the table as it is checked: on a throw, `copies` frees it.
  const uint32_t n = ids.Length();
  std::vector<HostCopy> copies(n);
  std::vector<Napi::TypedArray> to(n);
  size_t bytes = 0;
  for (uint32_t i = 0; i < n; ++i) {
    Napi::Value id = ids.Get(i), dst = dsts.Get(i);
    auto it = id.IsNumber() ? s.snapshots.find(id.As<Napi::Number>().Uint32Value()) : s.snapshots.end();
    if (it == s.snapshots.end() || it->second.ctx->ordinal() != device || !dst.IsTypedArray())
      throw Napi::TypeError::New(env, "copyToHostManyAsync: expected pending snapshots of the device (each once) and typed arrays");
    to[i] = dst.As<Napi::TypedArray>();
    copies[i].bytes = std::min(it->second.bytes, static_cast<size_t>(to[i].ByteLength()));
    copies[i].dst = hostData(to[i]);
    copies[i].src = std::move(it->second);
    s.snapshots.erase(it);
    bytes += copies[i].bytes;
  }
  cuda::Context& ctx = s.cudaContext(device);  // throws for a device that is not here, before any promise
  if (bytes <= kInlineCopyBytes && settlesSoon(env, device, 0)) {
    auto deferred = Napi::Promise::Deferred::New(env);
    try {
      for (HostCopy& c : copies) c.run(ctx);
      synchronizeDevice(env, device);
      deferred.Resolve(env.Undefined());
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
    } catch (const KernelFailure& e) {
      deferred.Reject(kernelError(env, e.code(), e.what()).Value());
    }
    return deferred.Promise();
  }
  auto* w = new SyncWorker(env, device);
  w->addCopies(std::move(copies), to);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// copyOnDevice(src: DeviceBuffer, dst: DeviceBuffer, bytes)
Napi::Value copyOnDevice(const Napi::CallbackInfo& cb) {
  DeviceBuffer* src = bufferArg(cb, 0, "source");
  DeviceBuffer* dst = bufferArg(cb, 1, "destination");
  double bytes = cb[2].IsNumber() ? cb[2].As<Napi::Number>().DoubleValue() : static_cast<double>(src->bytes());
  if (src->device() != dst->device()) throw Napi::RangeError::New(cb.Env(), "copyOnDevice: buffers on different devices");
  if (!(bytes >= 0) || bytes > src->bytes() || bytes > dst->bytes())
    throw Napi::RangeError::New(cb.Env(), "copyOnDevice: byte count exceeds a buffer");
  src->context().copyOnDevice(dst->data(), src->data(), static_cast<size_t>(bytes));
  return cb.Env().Undefined();
}

// fillDevice(dst: DeviceBuffer, byte): every byte set (tests poison outputs).
Napi::Value fillDevice(const Napi::CallbackInfo& cb) {
  DeviceBuffer* dst = bufferArg(cb, 0, "destination");
  int byte = cb[1].IsNumber() ? cb[1].As<Napi::Number>().Int32Value() : 0;
  dst->context().fill(dst->data(), byte & 0xff, dst->bytes());
  return cb.Env().Undefined();
}

}  // namespace

void registerRuntime(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DeviceBuffer::define(env);
  state(env).deviceBuffer = Napi::Persistent(ctor);
  exports.Set("DeviceBuffer", ctor);
  exports.Set("info", Napi::Function::New(env, guarded<info>, "info"));
  exports.Set("setThreads", Napi::Function::New(env, guarded<setThreads>, "setThreads"));
  exports.Set("memory", Napi::Function::New(env, guarded<memory>, "memory"));
  exports.Set("synchronize", Napi::Function::New(env, guarded<synchronize>, "synchronize"));
  exports.Set("synchronizeAsync", Napi::Function::New(env, guarded<synchronizeAsync>, "synchronizeAsync"));
  exports.Set("completed", Napi::Function::New(env, guarded<completed>, "completed"));
  exports.Set("submitted", Napi::Function::New(env, guarded<submitted>, "submitted"));
  exports.Set("copyToDevice", Napi::Function::New(env, guarded<copyToDevice>, "copyToDevice"));
  exports.Set("copyToHost", Napi::Function::New(env, guarded<copyToHost>, "copyToHost"));
  exports.Set("snapshot", Napi::Function::New(env, guarded<snapshot>, "snapshot"));
  exports.Set("copyToHostManyAsync", Napi::Function::New(env, guarded<copyToHostManyAsync>, "copyToHostManyAsync"));
  exports.Set("copyOnDevice", Napi::Function::New(env, guarded<copyOnDevice>, "copyOnDevice"));
  exports.Set("fillDevice", Napi::Function::New(env, guarded<fillDevice>, "fillDevice"));
}

}  // namespace rk::bind
