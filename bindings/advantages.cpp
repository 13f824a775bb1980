// Bindings of the advantage family (gae, whiten, groupAdvantages): the JS
// arguments object -> Params, every buffer checked for its byte length.
// lib/ops/advantages.ts has already validated values and shapes; the checks
// here keep a buggy caller from reaching memory it does not own.
#include "common.h"

namespace rk::bind {
namespace {

Napi::Value gae(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::gae);
  GaeParams p{};
  p.rows = args.count("rows");
  p.steps = args.count("steps");
  const int64_t n = args.elements(p.rows, p.steps);
  p.rewards = args.tensor<const float>("rewards", n);
  p.values = args.tensor<const float>("values", n);
  p.mask = args.tensor<const uint8_t>("mask", n, true);
  p.dones = args.tensor<const uint8_t>("dones", n, true);
  p.truncated = args.tensor<const uint8_t>("truncated", n, true);
  // Required exactly when truncated is given.
  p.truncatedValues = p.truncated ? args.tensor<const float>("truncatedValues", n) : nullptr;
  p.lastValues = args.tensor<const float>("lastValues", p.rows, true);
  p.advantages = args.tensor<float>("advantages", n);
  p.returns = args.tensor<float>("returns", n);
  p.gamma = static_cast<float>(args.number("gamma"));
  p.lambda = static_cast<float>(args.number("lambda"));
  return Napi::Number::New(info.Env(), static_cast<double>(run(args, p)));
}

Napi::Value whiten(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::whiten);
  WhitenParams p{};
  p.count = args.count("count");
  p.x = args.tensor<const float>("x", p.count);
  p.mask = args.tensor<const uint8_t>("mask", p.count, true);
  p.out = args.tensor<float>("out", p.count);
  p.eps = static_cast<float>(args.number("eps"));
  p.shiftMean = args.flag("shiftMean");
  return Napi::Number::New(info.Env(), static_cast<double>(run(args, p)));
}

Napi::Value groupAdvantages(const Napi::CallbackInfo& info) {
  OpArgs args(info, OpId::groupAdvantages);
  GroupAdvantagesParams p{};
  p.groups = args.count("groups");
  p.groupSize = args.count("groupSize");
  if (p.groupSize < 1) throw Napi::RangeError::New(info.Env(), "groupAdvantages: groupSize expected >= 1, got 0");
  const int64_t n = args.elements(p.groups, p.groupSize);
  p.scores = args.tensor<const float>("scores", n);
  p.out = args.tensor<float>("out", n);
  const int64_t estimator = args.integer("estimator");
  if (estimator < 0 || estimator > static_cast<int64_t>(GroupEstimator::Rloo))
    throw Napi::RangeError::New(info.Env(), "groupAdvantages: estimator code " + std::to_string(estimator) + " is unknown");
  p.estimator = static_cast<GroupEstimator>(estimator);
  p.eps = static_cast<float>(args.number("eps"));
  return Napi::Number::New(info.Env(), static_cast<double>(run(args, p)));
}

}  // namespace

void registerAdvantages(Napi::Env env, Napi::Object exports) {
  exports.Set("gae", Napi::Function::New(env, guarded<gae>, "gae"));
  exports.Set("whiten", Napi::Function::New(env, guarded<whiten>, "whiten"));
  exports.Set("groupAdvantages", Napi::Function::New(env, guarded<groupAdvantages>, "groupAdvantages"));
}

}  // namespace rk::bind
