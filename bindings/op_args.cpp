// OpArgs and the generated per-op dispatch (cpu stream or cuda launch).
#include <cmath>

#include "../native/cpu/dispatch.h"
#include "common.h"

namespace rk::bind {

OpArgs::OpArgs(const Napi::CallbackInfo& info, OpId id) : env(info.Env()), device(-1), op(id) {
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, std::string(opName(static_cast<int32_t>(op))) +
                                        ": binding expects one arguments object");
  args_ = info[0].As<Napi::Object>();
  device = static_cast<int>(integer("device"));
}

void OpArgs::fail(const std::string& what) {
  throw Napi::TypeError::New(env, std::string(opName(static_cast<int32_t>(op))) + ": " + what);
}

void* OpArgs::storage(const char* name, size_t bytes, bool optional) {
  Napi::Value v = args_.Get(name);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return nullptr;
    fail(std::string("missing tensor '") + name + "'");
  }
  if (device < 0) {
    if (!v.IsTypedArray()) fail(std::string("'") + name + "' must be host memory (a TypedArray) on cpu");
    Napi::TypedArray a = v.As<Napi::TypedArray>();
    if (a.ByteLength() < bytes)
      fail(std::string("'") + name + "' holds " + std::to_string(a.ByteLength()) +
           " bytes, the op needs " + std::to_string(bytes));
    Napi::ArrayBuffer buf = a.ArrayBuffer();
    if (buf.ByteLength() == 0 && bytes > 0) fail(std::string("'") + name + "' is detached");
    // An empty ArrayBuffer may have no data at all: a present input must not
    // read as a missing optional one (ppoPolicyLoss writes kl only when it
    // sees refLogprobs), so it gets an address that is never read.
    alignas(64) static uint8_t nothing[64];
    if (!buf.Data()) return nothing;
    return static_cast<uint8_t*>(buf.Data()) + a.ByteOffset();
  }
  DeviceBuffer* b = DeviceBuffer::from(env, v);
  if (!b) fail(std::string("'") + name + "' must be device memory on cuda:" + std::to_string(device));
  if (b->device() != device)
    fail(std::string("'") + name + "' lives on cuda:" + std::to_string(b->device()) +
         ", the op runs on cuda:" + std::to_string(device));
  if (!b->data()) fail(std::string("'") + name + "' was disposed");
  if (b->bytes() < bytes)
    fail(std::string("'") + name + "' holds " + std::to_string(b->bytes()) + " bytes, the op needs " +
         std::to_string(bytes));
  return b->data();
}

double OpArgs::number(const char* name) {
  Napi::Value v = args_.Get(name);
  if (!v.IsNumber()) fail(std::string("'") + name + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// An integer a JS number holds exactly (|d| <= 2^53 - 1).
static bool safeInteger(double d) {
  return d >= -9007199254740991.0 && d <= 9007199254740991.0 && d == static_cast<double>(static_cast<int64_t>(d));
}

int64_t OpArgs::integer(const char* name) {
  double d = number(name);
  if (!safeInteger(d)) fail(std::string("'") + name + "' must be an integer");
  return static_cast<int64_t>(d);
}

int64_t OpArgs::count(const char* name, int64_t min) {
  const int64_t v = integer(name);
  if (v < min) refuse(std::string(name) + " expected >= " + std::to_string(min) + ", got " + std::to_string(v));
  return v;
}

float OpArgs::finite(const char* name) {
  const double v = number(name);
  if (!std::isfinite(static_cast<float>(v)))
    refuse(std::string(name) + " expected a finite float32, got " + std::to_string(v));
  return static_cast<float>(v);
}

double OpArgs::nonNegative(const char* name) {
  const double v = number(name);
  if (!(std::isfinite(v) && v >= 0)) refuse(std::string(name) + " expected a finite number >= 0, got " + std::to_string(v));
  return v;
}

int32_t OpArgs::code(const char* name, int32_t last) {
  const int64_t v = integer(name);
  if (v < 0 || v > last) refuse(std::string(name) + " code " + std::to_string(v) + " is unknown");
  return static_cast<int32_t>(v);
}

int64_t OpArgs::elements(int64_t a, int64_t b) {
  if (b != 0 && a > (int64_t{1} << 53) / b)
    refuse(std::to_string(a) + " x " + std::to_string(b) + " elements is too many");
  return a * b;
}

void OpArgs::refuse(const std::string& what) {
  throw Napi::RangeError::New(env, std::string(opName(static_cast<int32_t>(op))) + ": " + what);
}

std::vector<int64_t> OpArgs::dims(const char* name, const std::vector<int64_t>& absent) {
  Napi::Value v = args_.Get(name);
  if (v.IsUndefined()) return absent;
  if (!v.IsArray()) fail(std::string("'") + name + "' must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value d = a.Get(k);
    const double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0 && safeInteger(x)))
      fail(std::string("'") + name + "' must hold integers >= 0");
    out.push_back(static_cast<int64_t>(x));
  }
  return out;
}

bool OpArgs::flag(const char* name) {
  Napi::Value v = args_.Get(name);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

cuda::Context& OpArgs::cuda() { return state(env).cudaContext(device); }

ErrorSlot* OpArgs::errorSlot() {
  reports_ = true;
  return device < 0 ? state(env).cpuStream().errorSlot() : cuda().slot();
}

#define RK_OP(name, P)                                                          \
  uint64_t run(OpArgs& args, const P& params) {                                 \
    if (args.device < 0) {                                                      \
      auto fn = cpu::ops().name;                                                \
      CpuStream& stream = state(args.env).cpuStream();                          \
      stream.throttle();                                                        \
      return stream.enqueue([fn, params] {                                      \
        try {                                                                   \
          fn(params);                                                           \
        } catch (const std::bad_alloc&) {                                       \
          throw KernelFailure(ErrorCode::OutOfMemory,                           \
                              #name ": out of host memory for its working space"); \
        }                                                                       \
      });                                                                       \
    }                                                                           \
    cuda::Context& ctx = args.cuda();                                           \
    const int launched = cudaops::name(params, ctx.launch());                   \
    /* even if a later launch of the op failed: an earlier one may report */    \
    if (args.reports()) ctx.armSlot();                                          \
    ctx.check(launched, #name);                                                 \
    return 0;                                                                   \
  }
#include "../native/ops.def"
#undef RK_OP

}  // namespace rk::bind
