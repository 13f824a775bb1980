// Runtime choice of the CPU instruction set. Every CPU op is compiled once per
// ISA (native/cpu/isa.h opens the target region); the dispatch table of the
// best ISA this CPU and OS support is used, capped by RLHF_KERNELS_ISA.
#pragma once
#include <string>
#include <vector>

namespace rk {

enum class Isa : int { Baseline = 0, Neon = 1, Avx2 = 2, Avx512 = 3 };

const char* isaName(Isa isa);
std::vector<Isa> supportedIsas();  // compiled in and supported here, best last
Isa activeIsa();                   // what the ops run with
// Non-empty when RLHF_KERNELS_ISA asked for something that could not be used.
const std::string& isaNote();

}  // namespace rk
