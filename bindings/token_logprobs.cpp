// Bindings of the token log-prob family: JS arguments -> TokenLogProbs*Params.
// lib/ops/token_logprobs.ts validates first; the checks here only make sure
// that no kernel can read or write past a buffer whatever it is handed.
#include <algorithm>
#include <cmath>

#include "common.h"

namespace rk::bind {
namespace {

struct Shape {
  int64_t rows, vocab;
  DType dtype;
  size_t logitsBytes;
};

[[noreturn]] void typeError(Napi::Env env, const char* op, const std::string& what) {
  throw Napi::TypeError::New(env, std::string(op) + ": " + what);
}

Shape shapeOf(OpArgs& args, const char* op) {
  Shape s;
  s.rows = args.integer("rows");
  s.vocab = args.integer("vocab");
  int64_t code = args.integer("dtype");
  if (code != static_cast<int64_t>(DType::Float32) && code != static_cast<int64_t>(DType::BFloat16) &&
      code != static_cast<int64_t>(DType::Float16))
    typeError(args.env, op, "'dtype' must be float32, bfloat16 or float16, got code " + std::to_string(code));
  s.dtype = static_cast<DType>(code);
  if (s.rows < 0 || s.vocab < 1 || s.vocab > INT32_MAX)
    args.refuse("'rows' must be >= 0 and 'vocab' in [1, 2^31), got " + std::to_string(s.rows) + " and " +
                std::to_string(s.vocab));
  if (s.rows > 0 && s.vocab > static_cast<int64_t>(INT64_MAX / 4 / s.rows)) args.refuse("rows x vocab overflows");
  s.logitsBytes = static_cast<size_t>(s.rows * s.vocab) * dtypeSize(s.dtype);
  return s;
}

float invTemperatureOf(OpArgs& args) {
  double v = args.number("invTemperature");
  float f = static_cast<float>(v);
  if (!(f > 0.0f) || !std::isfinite(f)) args.refuse("'invTemperature' must be a finite float32 > 0");
  return f;
}

int32_t ignoreIndexOf(OpArgs& args) {
  int64_t v = args.integer("ignoreIndex");
  if (v < INT32_MIN || v > INT32_MAX) args.refuse("'ignoreIndex' must be an int32");
  return static_cast<int32_t>(v);
}

// The targets' shape for a bad-target report's message: `leading`, the
// logits' leading dimensions (their product is the row count; [rows] when
// not given).
TargetsShape targetsShapeOf(OpArgs& args, int64_t rows, int32_t ignoreIndex) {
  TargetsShape t{};
  t.ignoreIndex = ignoreIndex;
  const std::vector<int64_t> dims = args.dims("leading", {rows});
  int64_t n = 1;
  if (std::find(dims.begin(), dims.end(), 0) != dims.end())
    n = 0;  // no rows, however large the other dimensions
  else
    for (int64_t d : dims)
      if (__builtin_mul_overflow(n, d, &n)) args.refuse("'leading' holds more than 2^63 rows");
  if (n != rows) args.refuse("'leading' holds " + std::to_string(n) + " rows, expected " + std::to_string(rows));
  if (dims.size() > TargetsShape::kMaxRank) {
    t.rank = -1;
    return t;
  }
  t.rank = static_cast<int32_t>(dims.size());
  for (size_t k = 0; k < dims.size(); ++k) t.dims[k] = dims[k];
  return t;
}

Napi::Value tokenLogProbs(const Napi::CallbackInfo& info) {
  const char* op = "tokenLogProbs";
  OpArgs args(info, OpId::tokenLogProbs);
  Shape s = shapeOf(args, op);
  TokenLogProbsParams p{};
  p.rows = s.rows;
  p.vocab = s.vocab;
  p.dtype = s.dtype;
  p.logits = args.storage("logits", s.logitsBytes);
  p.targets = args.tensor<int32_t>("targets", s.rows);
  p.logprobs = args.tensor<float>("logprobs", s.rows);
  p.lse = args.tensor<float>("lse", s.rows);
  p.entropy = args.tensor<float>("entropy", s.rows, true);
  p.invTemperature = invTemperatureOf(args);
  p.ignoreIndex = ignoreIndexOf(args);
  // A bad target: lib/ops/token_logprobs.ts refuses it at the call on cpu;
  // the kernels report one (the error slot) and never read past the row.
  p.error = args.errorSlot();
  p.targetsShape = targetsShapeOf(args, p.rows, p.ignoreIndex);
  return Napi::Number::New(info.Env(), static_cast<double>(run(args, p)));
}

Napi::Value tokenLogProbsBackward(const Napi::CallbackInfo& info) {
  const char* op = "tokenLogProbsBackward";
  OpArgs args(info, OpId::tokenLogProbsBackward);
  Shape s = shapeOf(args, op);
  TokenLogProbsBackwardParams p{};
  p.rows = s.rows;
  p.vocab = s.vocab;
  p.dtype = s.dtype;
  p.logits = args.storage("logits", s.logitsBytes);
  p.targets = args.tensor<int32_t>("targets", s.rows);
  p.lse = args.tensor<float>("lse", s.rows);
  p.gradLogprobs = args.tensor<float>("gradLogprobs", s.rows, true);
  p.gradEntropy = args.tensor<float>("gradEntropy", s.rows, true);
  p.entropy = args.tensor<float>("entropy", s.rows, !p.gradEntropy);
  if (s.rows > 0 && !p.gradLogprobs && !p.gradEntropy)
    typeError(args.env, op, "needs 'gradLogprobs' or 'gradEntropy'");
  p.gradLogits = args.storage("gradLogits", s.logitsBytes);
  p.invTemperature = invTemperatureOf(args);
  p.ignoreIndex = ignoreIndexOf(args);
  // A bad target: lib/ops/token_logprobs.ts refuses it at the call on cpu;
  // the kernels report one (the error slot) and never read past the row.
  p.error = args.errorSlot();
  p.targetsShape = targetsShapeOf(args, p.rows, p.ignoreIndex);
  return Napi::Number::New(info.Env(), static_cast<double>(run(args, p)));
}

}  // namespace

void registerTokenLogProbs(Napi::Env env, Napi::Object exports) {
  exports.Set("tokenLogProbs", Napi::Function::New(env, guarded<tokenLogProbs>, "tokenLogProbs"));
  exports.Set("tokenLogProbsBackward",
              Napi::Function::New(env, guarded<tokenLogProbsBackward>, "tokenLogProbsBackward"));
}

}  // namespace rk::bind
