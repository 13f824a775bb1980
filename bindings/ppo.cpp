// Bindings of the PPO family (ppoPolicyLoss, ppoValueLoss): the JS arguments
// object -> Params, every buffer checked for its byte length. lib/ops/ppo.ts
// has already validated values, shapes and options; the checks here keep a
// buggy caller from reaching memory it does not own or a kernel from seeing
// an enum value it does not know.
#include <cmath>
#include <limits>

#include "common.h"

namespace rk::bind {
namespace {

Aggregation aggregation(OpArgs& args) {
  return static_cast<Aggregation>(args.code("aggregation", static_cast<int32_t>(Aggregation::SeqMeanTokenSumNorm)));
}


Napi::Value ppoPolicyLoss(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::ppoPolicyLoss);
  PpoPolicyLossParams p{};
  p.rows = args.count("rows");
  p.steps = args.count("steps");
  const int64_t n = args.elements(p.rows, p.steps);
  p.logprobs = args.tensor<const float>("logprobs", n);
  p.oldLogprobs = args.tensor<const float>("oldLogprobs", n);
  p.advantagePerRow = args.flag("advantagePerRow");
  p.advantages = args.tensor<const float>("advantages", p.advantagePerRow ? p.rows : n);
  p.mask = args.tensor<const uint8_t>("mask", n, true);
  p.refLogprobs = args.tensor<const float>("refLogprobs", n, true);
  p.entropy = args.tensor<const float>("entropy", n, true);
  p.sequenceRatio = args.flag("sequenceRatio");
  p.sequenceLogRatio = p.sequenceRatio ? args.tensor<float>("sequenceLogRatio", p.rows) : nullptr;
  p.gradLogprobs = args.tensor<float>("gradLogprobs", n);
  p.gradEntropy = p.entropy ? args.tensor<float>("gradEntropy", n) : nullptr;
  p.loss = args.tensor<float>("loss", 1);
  p.clipFraction = args.tensor<float>("clipFraction", 1);
  p.clipFractionLower = args.tensor<float>("clipFractionLower", 1);
  p.approxKl = args.tensor<float>("approxKl", 1);
  p.kl = p.refLogprobs ? args.tensor<float>("kl", 1) : nullptr;
  p.clipLow = args.finite("clipLow");
  p.clipHigh = args.finite("clipHigh");
  if (p.clipLow < 0 || p.clipHigh < 0) args.refuse("clipLow and clipHigh expected >= 0");
  // 0 = off: NaN, against which the bound -A * c compares false everywhere (kernels/common/ppo.cuh).
  const float dual = args.finite("dualClip");
  if (dual != 0 && !(dual > 1)) args.refuse("dualClip expected 0 (off) or > 1, got " + std::to_string(dual));
  p.dualClip = dual == 0 ? std::numeric_limits<float>::quiet_NaN() : dual;
  p.klCoef = p.refLogprobs ? args.finite("klCoef") : 0.0f;
  p.entropyCoef = p.entropy ? args.finite("entropyCoef") : 0.0f;
  p.aggregation = aggregation(args);
  p.klEstimator = static_cast<KlEstimator>(args.code("klEstimator", static_cast<int32_t>(KlEstimator::K3)));
  p.normalizer = args.nonNegative("normalizer");  // 0: the batch's own count
  return Napi::Number::New(info.Env(), static_cast<double>(run(args, p)));
}

Napi::Value ppoValueLoss(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::ppoValueLoss);
  PpoValueLossParams p{};
  p.rows = args.count("rows");
  p.steps = args.count("steps");
  const int64_t n = args.elements(p.rows, p.steps);
  p.values = args.tensor<const float>("values", n);
  p.oldValues = args.tensor<const float>("oldValues", n);
  p.returns = args.tensor<const float>("returns", n);
  p.mask = args.tensor<const uint8_t>("mask", n, true);
  p.gradValues = args.tensor<float>("gradValues", n);
  p.loss = args.tensor<float>("loss", 1);
  p.clipFraction = args.tensor<float>("clipFraction", 1);
  p.clip = args.finite("clip");
  p.aggregation = aggregation(args);
  p.normalizer = args.nonNegative("normalizer");  // 0: the batch's own count
  return Napi::Number::New(info.Env(), static_cast<double>(run(args, p)));
}

}  // namespace

void registerPpo(Napi::Env env, Napi::Object exports) {
  exports.Set("ppoPolicyLoss", Napi::Function::New(env, guarded<ppoPolicyLoss>, "ppoPolicyLoss"));
  exports.Set("ppoValueLoss", Napi::Function::New(env, guarded<ppoValueLoss>, "ppoValueLoss"));
}

}  // namespace rk::bind
