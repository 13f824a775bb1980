// A short spin before blocking. A thread asleep on a condition variable
// takes tens of microseconds to wake on a virtual machine (its vCPU halts),
// and every cpu op crosses two such waits (the stream thread waiting for
// work, the caller waiting for the result): small ops paid ~60 us each.
// Spinning briefly first keeps back-to-back ops fast and costs at most the
// budget of CPU time per idle period. RLHF_KERNELS_SPIN_US sets the budget
// (default 50; 0 turns spinning off).
#pragma once
#include <chrono>
#include <cstdlib>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace rk {

inline void cpuRelax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

inline std::chrono::microseconds spinBudget() {
  static const std::chrono::microseconds budget = [] {
    const char* env = std::getenv("RLHF_KERNELS_SPIN_US");
    long us = env && *env ? std::strtol(env, nullptr, 10) : 50;
    return std::chrono::microseconds(us < 0 ? 0 : us > 100000 ? 100000 : us);
  }();
  return budget;
}

// Spins until ready() holds or the budget is spent; true when it held.
template <class Ready>
bool spinUntil(Ready ready) {
  const auto budget = spinBudget();
  if (budget.count() == 0) return ready();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (ready()) return true;
    cpuRelax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() - start > budget) return ready();
  }
}

}  // namespace rk
