// Module entry, per-environment state and the error mapping. The addon is
// context-aware: each worker_thread gets its own EnvState (its own cpu
// stream and cuda streams); the CPU thread pool is shared by the process.
#include <algorithm>
#include <napi.h>

#include "common.h"

namespace rk::bind {

CpuStream& EnvState::cpuStream() { return *cpuStreamShared(); }

std::shared_ptr<CpuStream> EnvState::cpuStreamShared() {
  if (!cpu) cpu = std::make_shared<CpuStream>();
  return cpu;
}

std::shared_ptr<cuda::Context> EnvState::cudaShared(int ordinal) {
  if (ordinal < 0 || ordinal > 1023)
    throw KernelFailure(ErrorCode::NoDevice, "cuda:" + std::to_string(ordinal) + " is not a device");
  if (static_cast<size_t>(ordinal) >= cuda.size()) cuda.resize(ordinal + 1);
  if (!cuda[ordinal]) cuda[ordinal] = cuda::Context::create(ordinal);
  return cuda[ordinal];
}

cuda::Context& EnvState::cudaContext(int ordinal) { return *cudaShared(ordinal); }

EnvState::~EnvState() {
  // Finish what is queued before the environment frees the memory it uses.
  if (cpu) cpu->synchronize();
  for (auto& c : cuda)
    if (c) {
      try {
        c->synchronize();
      } catch (...) {
      }
    }
}

EnvState& state(Napi::Env env) { return *env.GetInstanceData<EnvState>(); }

Napi::Error kernelError(Napi::Env env, ErrorCode code, const std::string& message) {
  EnvState& s = state(env);
  if (s.kernelError.IsEmpty()) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, errorCodeName(code)));
    return e;
  }
  Napi::Object obj =
      s.kernelError.New({Napi::String::New(env, message), Napi::String::New(env, errorCodeName(code))});
  return Napi::Error(env, obj);
}

Napi::Error failureError(Napi::Env env, const StreamFailure& f) {
  if (f.slot.code == kSlotBadTarget) {
    // As the cpu check at the call words it (lib/ops/token_logprobs.ts):
    // the row as an index into the targets' shape.
    const TargetsShape& t = f.slot.targets;
    std::string at;
    if (t.rank < 0) {
      at = " at row " + std::to_string(f.slot.index);
    } else {
      std::vector<int64_t> index(static_cast<size_t>(t.rank));
      for (int64_t k = t.rank - 1, rest = f.slot.index; k >= 0; --k) {
        const int64_t d = t.dims[k] > 0 ? t.dims[k] : 1;
        index[static_cast<size_t>(k)] = rest % d;
        rest /= d;
      }
      at = "[";
      for (size_t k = 0; k < index.size(); ++k) at += (k ? ", " : "") + std::to_string(index[k]);
      at += "]";
    }
    std::string msg = std::string(opName(f.slot.op)) + ": targets" + at + " is " + std::to_string(f.slot.value) +
                      ", expected a token id in [0, " + std::to_string(f.slot.bound) + ") or ignoreIndex (" +
                      std::to_string(t.ignoreIndex) + ")";
    // A RangeError that lib/errors.ts's KernelError also claims (instanceof),
    // by this code: an input error that the stream, not the call, found.
    Napi::Error e = Napi::RangeError::New(env, msg);
    e.Set("code", Napi::String::New(env, "EBADINPUT"));
    return e;
  }
  if (f.slot.code != kSlotClear)
    return kernelError(env, ErrorCode::Internal,
                       std::string(opName(f.slot.op)) + ": unknown report " + std::to_string(f.slot.code));
  return kernelError(env, f.code, f.message);
}

void synchronizeDevice(Napi::Env env, int device, uint64_t covers) {
  EnvState& s = state(env);
  StreamFailure f;
  if (device < 0) {
    CpuStream& stream = s.cpuStream();
    stream.synchronize(std::min(covers, stream.submitted()));
    f = stream.takeFailure(covers);
  } else {
    cuda::Context& ctx = s.cudaContext(device);
    ctx.synchronize();
    f.slot = ctx.takeSlot();
  }
  if (f.failed || f.slot.code != kSlotClear) throw failureError(env, f);
}

// init({ KernelError }): lib/errors.ts hands over the class the addon throws.
static Napi::Value init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "init: expected { KernelError }");
  Napi::Value ctor = info[0].As<Napi::Object>().Get("KernelError");
  if (!ctor.IsFunction()) throw Napi::TypeError::New(env, "init: KernelError must be a class");
  state(env).kernelError = Napi::Persistent(ctor.As<Napi::Function>());
  return env.Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new EnvState());
  exports.Set("init", Napi::Function::New(env, guarded<init>, "init"));
  registerRuntime(env, exports);
  registerHostMemory(env, exports);
  registerPreference(env, exports);
  registerCalibration(env, exports);
  registerTensor(env, exports);
  registerAdvantages(env, exports);
  registerPpo(env, exports);
  registerTokenLogProbs(env, exports);
  return exports;
}

NODE_API_MODULE(rlhf_kernels, Init)

}  // namespace rk::bind
