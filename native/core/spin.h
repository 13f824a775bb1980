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

#if defined(__unix__) || defined(__APPLE__)
#include <sched.h>
#endif

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

// Lets another runnable thread have this core (the caller's JS thread may
// be waiting for one while the stream thread and a pool worker spin).
inline void yieldCpu() {
#if defined(__unix__) || defined(__APPLE__)
  sched_yield();
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

// The spin yields the core every 16 rounds (sched_yield, about a
// microsecond): on a 2-core VM the stream thread and a pool worker both
// spinning left the JS thread that issues the next op waiting for a core
// until the spins ran out; then both slept and that op paid two wake-ups,
// and the next, and so on. pairwiseLoss at B=16, back to back: 11% of calls
// took over 50 us (p90 61 us) without the yield, 1% with it (p90 13 us;
// the median went from 7.6 to 9-10 us).
// Spins until ready() holds or the budget is spent; true when it held.
template <class Ready>
bool spinUntil(Ready ready) {
  const auto budget = spinBudget();
  if (budget.count() == 0) return ready();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (ready()) return true;
    cpuRelax();
    if ((i & 15) == 15) {
      if (std::chrono::steady_clock::now() - start > budget) return ready();
      yieldCpu();
    }
  }
}

}  // namespace rk
