#include "dispatch.h"

#include "../core/isa.h"

namespace rk::cpu {

#define RK_OP(name, P) void name(const P&);
namespace baseline {
#include "../ops.def"
}
#if defined(__x86_64__) || defined(_M_X64)
namespace avx2 {
#include "../ops.def"
}
namespace avx512 {
#include "../ops.def"
}
#elif defined(__aarch64__)
namespace neon {
#include "../ops.def"
}
#endif
#undef RK_OP

#define RK_OP(name, P) &ISA::name,
#if defined(__aarch64__)
#define ISA neon
static const OpTable kNeon = {
#include "../ops.def"
};
#undef ISA
#else
#define ISA baseline
static const OpTable kBaseline = {
#include "../ops.def"
};
#undef ISA
#endif
#if defined(__x86_64__) || defined(_M_X64)
#define ISA avx2
static const OpTable kAvx2 = {
#include "../ops.def"
};
#undef ISA
#define ISA avx512
static const OpTable kAvx512 = {
#include "../ops.def"
};
#undef ISA
#endif
#undef RK_OP

const OpTable& ops() {
  switch (activeIsa()) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::Avx512: return kAvx512;
    case Isa::Avx2: return kAvx2;
#endif
#if defined(__aarch64__)
    case Isa::Neon: return kNeon;
#endif
    default: break;
  }
#if defined(__aarch64__)
  return kNeon;
#else
  return kBaseline;
#endif
}

}  // namespace rk::cpu
