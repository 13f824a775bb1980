// Binding of the tensor family: copyRegion({ device, src, srcOffset, dst,
// dstOffset, bytes }), offsets in bytes (lib/tensor.ts checks shapes; here
// every range is checked against its storage), and maskRowCounts.
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

// maskRowCounts(data: Uint8Array, rows, rowLength): Int32Array, each row's
// nonzero bytes (lib/tensor.ts counts a uint8 tensor as it goes to a GPU).
static Napi::Value maskRowCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "maskRowCounts: expected (Uint8Array, rows, rowLength)");
  Napi::Uint8Array data = info[0].As<Napi::Uint8Array>();
  const int64_t rows = info[1].As<Napi::Number>().Int64Value(), rowLength = info[2].As<Napi::Number>().Int64Value();
  if (rows < 0 || rowLength < 0 || rowLength > INT32_MAX || rows * rowLength != static_cast<int64_t>(data.ElementLength()))
    throw Napi::RangeError::New(env, "maskRowCounts: rows x rowLength must be the array's length");
  if (rows > INT32_MAX)  // no Int32Array of counts that long (lib/tensor.ts asks for none)
    throw Napi::RangeError::New(env, "maskRowCounts: rows expected at most 2^31 - 1, got " + std::to_string(rows));
  Napi::Int32Array out = Napi::Int32Array::New(env, static_cast<size_t>(rows));
  const uint8_t* p = data.Data();
  for (int64_t r = 0; r < rows; ++r) {
    int32_t n = 0;
    for (int64_t i = 0; i < rowLength; ++i) n += p[r * rowLength + i] != 0;
    out[static_cast<size_t>(r)] = n;
  }
  return out;
}

void registerTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("copyRegion", Napi::Function::New(env, guarded<copyRegion>, "copyRegion"));
  exports.Set("maskRowCounts", Napi::Function::New(env, guarded<maskRowCounts>, "maskRowCounts"));
}

}  // namespace rk::bind
