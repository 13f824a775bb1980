// Binding of the calibration family: readBandwidth({ device, data, checksum, n }).
#include "common.h"

namespace rk::bind {

static Napi::Value readBandwidth(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::readBandwidth);
  ReadBandwidthParams p{};
  p.n = args.count("n");
  p.data = args.tensor<const float>("data", p.n);
  p.checksum = args.tensor<float>("checksum", 1);
  return Napi::Number::New(info.Env(), static_cast<double>(run(args, p)));
}

void registerCalibration(Napi::Env env, Napi::Object exports) {
  exports.Set("readBandwidth", Napi::Function::New(env, guarded<readBandwidth>, "readBandwidth"));
}

}  // namespace rk::bind
