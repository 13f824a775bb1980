// Failures that cross from the native core to JavaScript.
//
// KernelFailure is thrown by host code (allocation, driver calls, CPU tasks);
// the bindings turn it into a JS KernelError carrying `code`.
// ErrorSlot is how a running kernel (CPU task or CUDA thread) reports a bad
// input value it found: the first report wins (compare-and-swap on `code`),
// and the next synchronize of that device turns it into a JS error.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace rk {

// Codes seen by JS as KernelError.code. (A kernel's report of a bad input,
// an ErrorSlot, becomes a RangeError with code "EBADINPUT": bindings/addon.cpp.)
enum class ErrorCode : int32_t {
  NoDevice,   // ENODEVICE: cuda asked for where it is unavailable
  OutOfMemory,  // EOOM
  Cuda,       // ECUDA: a CUDA runtime call failed
  Internal,   // EINTERNAL: a bug or unexpected state in this library
};

inline const char* errorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::NoDevice: return "ENODEVICE";
    case ErrorCode::OutOfMemory: return "EOOM";
    case ErrorCode::Cuda: return "ECUDA";
    case ErrorCode::Internal: return "EINTERNAL";
  }
  return "EINTERNAL";
}

class KernelFailure : public std::runtime_error {
 public:
  KernelFailure(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// What a kernel can report about its inputs while running.
enum SlotCode : int32_t {
  kSlotClaimed = -1,  // a writer is filling in the details (then it stores the code)
  kSlotClear = 0,
  kSlotBadTarget = 1,  // index = row, value = target id, bound = V
};

// What a bad-target report needs for its message beside the row: the
// targets' shape (the logits' leading dimensions), so that it names
// targets[b, t] as the call-time check on cpu does, and the ignoreIndex.
struct TargetsShape {
  static constexpr int kMaxRank = 4;
  int32_t rank;         // -1 with more than kMaxRank dimensions: the flat row is named
  int32_t ignoreIndex;
  int64_t dims[kMaxRank];
};

// Plain struct, written by CPU threads and CUDA threads alike (72 bytes).
struct ErrorSlot {
  int32_t code;  // SlotCode; 0 while nothing was reported
  int32_t op;    // OpId of the reporting op
  int64_t index; // row / element the report is about
  int64_t value; // the offending value
  int64_t bound; // the bound it broke
  TargetsShape targets;
};

}  // namespace rk
