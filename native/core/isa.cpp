#include "isa.h"

#include <cstdlib>
#include <cstring>

namespace rk {

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::Baseline: return "baseline";
    case Isa::Neon: return "neon";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "baseline";
}

std::vector<Isa> supportedIsas() {
  std::vector<Isa> out;
#if defined(__x86_64__) || defined(_M_X64)
  out.push_back(Isa::Baseline);
  __builtin_cpu_init();
  // libgcc's checks include the OS's support for the wider registers (XCR0).
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
              __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
  if (avx2) out.push_back(Isa::Avx2);
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    out.push_back(Isa::Avx512);
#elif defined(__aarch64__)
  out.push_back(Isa::Neon);  // NEON is part of the arm64 baseline
#else
  out.push_back(Isa::Baseline);
#endif
  return out;
}

namespace {

struct Choice {
  Isa isa;
  std::string note;
};

Choice choose() {
  std::vector<Isa> have = supportedIsas();
  Choice c{have.back(), ""};
  const char* want = std::getenv("RLHF_KERNELS_ISA");
  if (!want || !*want) return c;
  for (Isa isa : have)
    if (std::strcmp(want, isaName(isa)) == 0) return {isa, ""};
  c.note = std::string("RLHF_KERNELS_ISA=") + want +
           " is not compiled in or not supported by this CPU; using " + isaName(c.isa);
  return c;
}

const Choice& choice() {
  static const Choice c = choose();
  return c;
}

}  // namespace

Isa activeIsa() { return choice().isa; }
const std::string& isaNote() { return choice().note; }

}  // namespace rk
