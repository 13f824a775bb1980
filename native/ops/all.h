// Every Params struct, and the op ids generated from native/ops.def.
#pragma once
#include "advantages.h"
#include "calibration.h"
#include "ppo.h"
#include "preference.h"
#include "tensor.h"
#include "token_logprobs.h"

namespace rk {

enum class OpId : int32_t {
#define RK_OP(name, P) name,
#include "../ops.def"
#undef RK_OP
  Count
};

inline const char* opName(int32_t id) {
  static const char* const names[] = {
#define RK_OP(name, P) #name,
#include "../ops.def"
#undef RK_OP
  };
  return id >= 0 && id < static_cast<int32_t>(OpId::Count) ? names[id] : "unknown op";
}

// What a CUDA entry receives beside its Params.
struct CudaLaunch {
  void* stream;          // cudaStream_t of this device's ordered stream
  int device;            // CUDA ordinal
  int multiprocessors;   // SM count, for persistent / split grids
  // Stream-ordered scratch of at least `bytes` bytes, valid until the next
  // call of scratch on this stream; null (with a CUDA error) on failure.
  void* (*scratch)(void* owner, size_t bytes);
  void* owner;
  // A device counter that reads 0 when a kernel starts. A kernel that counts
  // its finished blocks in it (the last block then combines their partial
  // sums) sets it back to 0 before it ends; ops on one stream run one after
  // another, so no two use it at once. Saves a memset launch per op.
  unsigned* blockCounter;
  // A second such word, 64 bits wide, under the same rules: a grid-wide
  // integer tally (kernels/ppo.cu's count-and-barrier, RK_PPO_TALLY).
  unsigned long long* gridTally;
};

}  // namespace rk
