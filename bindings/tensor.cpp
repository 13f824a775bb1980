// Binding of the tensor family: copyRegion({ device, src, srcOffset, dst,
// dstOffset, bytes }), offsets in bytes (lib/ops/tensor.ts checks shapes;
// here every range is checked against its storage).
#include "common.h"

namespace rk::bind {

static Napi::Value copyRegion(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::copyRegion);
  CopyRegionParams p{};
  p.bytes = args.count("bytes");
  const int64_t srcOffset = args.count("srcOffset"), dstOffset = args.count("dstOffset");
  p.src = static_cast<const uint8_t*>(args.storage("src", static_cast<size_t>(srcOffset + p.bytes))) + srcOffset;
  p.dst = static_cast<uint8_t*>(args.storage("dst", static_cast<size_t>(dstOffset + p.bytes))) + dstOffset;
  if (p.bytes > 0 && p.src < p.dst + p.bytes && p.dst < p.src + p.bytes) args.refuse("source and destination overlap");
  return Napi::Number::New(info.Env(), static_cast<double>(run(args, p)));
}

void registerTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("copyRegion", Napi::Function::New(env, guarded<copyRegion>, "copyRegion"));
}

}  // namespace rk::bind
