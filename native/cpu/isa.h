// Included by every CPU op source after its own includes. The source is
// compiled once per ISA (CMake defines RK_ISA_AVX512, RK_ISA_AVX2, or neither);
// this header opens a `#pragma GCC target` region that lasts to the end of the
// file and names the namespace the op functions go in (RK_ISA_NS).
//
// Why a pragma and not -mavx512f on the file: code compiled from headers
// before the region (the standard library's templates and inline functions)
// stays baseline, so the linker can never pick an AVX-512 copy of a shared
// inline function for a caller on an older CPU. Code inside the region must
// therefore have internal linkage or live in RK_ISA_NS: shared math from
// kernels/common/ is `static inline` on the host (RK_HD) for this reason.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "../core/thread_pool.h"
#include "../ops/all.h"

#if defined(RK_ISA_AVX512)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2")
#define RK_ISA_NS avx512
#elif defined(RK_ISA_AVX2)
#pragma GCC target("avx2,fma,f16c,bmi2")
#define RK_ISA_NS avx2
#elif defined(__aarch64__)
#define RK_ISA_NS neon
#else
#define RK_ISA_NS baseline
#endif

namespace rk::cpu::RK_ISA_NS {
#define RK_OP(name, P) void name(const P& params);
#include "../ops.def"
#undef RK_OP
}  // namespace rk::cpu::RK_ISA_NS
