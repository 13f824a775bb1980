// Bindings of the preference family: arguments object -> Params (every
// buffer length checked by OpArgs) -> run on the cpu stream or cuda stream.
// lib/ops/preference.ts has validated everything already; the checks here
// only keep a buggy caller from reaching a kernel with bad sizes.
#include "common.h"

namespace rk::bind {
namespace {

SequenceReduce reduceArg(OpArgs& args) {
  return static_cast<SequenceReduce>(args.code("reduce", static_cast<int32_t>(SequenceReduce::Mean)));
}

Napi::Value preferenceLoss(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::preferenceLoss);
  PreferenceLossParams p{};
  p.count = args.count("count", 1);
  p.chosen = args.tensor<const float>("chosen", p.count);
  p.rejected = args.tensor<const float>("rejected", p.count);
  p.refChosen = args.tensor<const float>("refChosen", p.count, true);
  p.refRejected = args.tensor<const float>("refRejected", p.count, true);
  if ((p.refChosen == nullptr) != (p.refRejected == nullptr))
    args.refuse("'refChosen' and 'refRejected' come together");
  p.margin = args.tensor<const float>("margin", p.count, true);
  p.gradChosen = args.tensor<float>("gradChosen", p.count);
  p.gradRejected = args.tensor<float>("gradRejected", p.count);
  p.loss = args.tensor<float>("loss", 1);
  p.accuracy = args.tensor<float>("accuracy", 1);
  p.meanMargin = args.tensor<float>("meanMargin", 1);
  p.chosenReward = args.tensor<float>("chosenReward", 1);
  p.rejectedReward = args.tensor<float>("rejectedReward", 1);
  p.beta = args.finite("beta");
  p.labelSmoothing = args.finite("labelSmoothing");
  p.centerCoef = args.finite("centerCoef");
  if (!(p.beta > 0.0f)) args.refuse("beta expected > 0");
  if (!(p.labelSmoothing >= 0.0f && p.labelSmoothing < 0.5f)) args.refuse("labelSmoothing expected in [0, 0.5)");
  if (!(p.centerCoef >= 0.0f)) args.refuse("centerCoef expected >= 0");
  p.kind = static_cast<PreferenceKind>(args.code("kind", static_cast<int32_t>(PreferenceKind::Ipo)));
  p.normalizer = args.nonNegative("normalizer");  // 0: the batch's own count
  return Napi::Number::New(args.env, static_cast<double>(run(args, p)));
}

Napi::Value sequenceLogProbs(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::sequenceLogProbs);
  SequenceLogProbsParams p{};
  p.rows = args.count("rows", 0);
  p.steps = args.count("steps", 0);
  const int64_t n = args.elements(p.rows, p.steps);
  p.tokenLogprobs = args.tensor<const float>("tokenLogprobs", n);
  p.mask = args.tensor<const uint8_t>("mask", n);
  p.out = args.tensor<float>("out", p.rows);
  p.reduce = reduceArg(args);
  return Napi::Number::New(args.env, static_cast<double>(run(args, p)));
}

Napi::Value sequenceLogProbsBackward(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::sequenceLogProbsBackward);
  SequenceLogProbsBackwardParams p{};
  p.rows = args.count("rows", 0);
  p.steps = args.count("steps", 0);
  const int64_t n = args.elements(p.rows, p.steps);
  p.gradSequence = args.tensor<const float>("gradSequence", p.rows);
  p.mask = args.tensor<const uint8_t>("mask", n);
  p.out = args.tensor<float>("out", n);
  p.reduce = reduceArg(args);
  return Napi::Number::New(args.env, static_cast<double>(run(args, p)));
}

}  // namespace

void registerPreference(Napi::Env env, Napi::Object exports) {
  exports.Set("preferenceLoss", Napi::Function::New(env, guarded<preferenceLoss>, "preferenceLoss"));
  exports.Set("sequenceLogProbs", Napi::Function::New(env, guarded<sequenceLogProbs>, "sequenceLogProbs"));
  exports.Set("sequenceLogProbsBackward",
              Napi::Function::New(env, guarded<sequenceLogProbsBackward>, "sequenceLogProbsBackward"));
}

}  // namespace rk::bind
