// Shared math of the token log-prob family: what the CPU backend
// (native/cpu/token_logprobs.cpp) and the CUDA kernels (kernels/token_logprobs.cu)
// both compute, written once.
//
// Units. Both backends work in base 2: a logit x becomes u = x * c with
// c = log2(e) / T, so exp(z) = 2^u for z = x / T, and the exponent of one
// element relative to a shift m costs one FMA: t = fma(x, c, -m) = u - m.
// The product x * c is exact inside the FMA, so only the final difference is
// rounded; t is accurate even when the logits sit near 1e4.
//
// The shift. A chunk's shift is its max u, m = fl(xmax * c), and t is
// exact up to one rounding against m itself. That m is u rounded does not
// matter (logprob = ln2 (tTarget - log2 s) uses the same m) until it
// rounds by more than 2^t can take: from |m| >= 2^30 (|x / T| >= 7.4e8) the
// max's own t = xmax c - m, up to ulp(m) / 2, could reach 128 and 2^t
// overflow. Such "wide" chunks keep that remainder, mLo = fma(xmax, c, -m)
// (exact), and subtract it from every t: the shift is then m + mLo, the max's
// t is 0, and u stays exact up to |x / T| of 2.3e38 (FLT_MAX / log2 e), past
// which x * c itself overflows. Without FMA (the baseline CPU build) the
// exponents are (x - xmax) c, a shift of exactly xmax c: there mLo is that
// remainder in every chunk.
//
// Reduction. A row is cut into chunks of fixed length (a function of V and
// the dtype only). Each chunk gives an LsePartial relative to its own max,
// and the partials are folded left to right with lseCombine. Whether the
// chunks of a row are computed by one thread in sequence or by many threads
// at once, the fold sees the same partials in the same order, so a row's
// results are bit-identical whatever the batch size, the row's position or
// the thread count (batch invariance).
#pragma once
#include <cmath>
#include <cstdint>

#include "../../native/core/errors.h"
#include "hd.cuh"

namespace rk::tlp {

constexpr float kLn2 = 0.69314718055994530942f;
// Where t multiplies 2^t (entropy terms, gradients) it is clamped to
// [kMinExp, kMaxExp] first: 2^t is 0 below -127 anyway, and a masked (-inf)
// logit then gives 0 * -127 = 0 instead of 0 * -inf = NaN. The upper bound
// only matters for a caller-supplied lse that is too small (backward). The
// CPU's vector 2^t has its own domain (simd::clampExp).
constexpr float kMinExp = -127.0f;
constexpr float kMaxExp = 127.0f;

// c = log2(e) / T, rounded once from double (the host computes it per call).
RK_HD float log2Scale(float invTemperature) {
  return static_cast<float>(static_cast<double>(invTemperature) * 1.4426950408889634074);
}
// c / invT as hi + lo (the double quotient split in two floats): lse * scale
// is lse in the units of x * c (see gradRow).
struct LseScale {
  float hi, lo;
};
RK_HD LseScale lseScale(float invTemperature) {
  const double s = static_cast<double>(log2Scale(invTemperature)) / static_cast<double>(invTemperature);
  const float hi = static_cast<float>(s);
  return {hi, static_cast<float>(s - static_cast<double>(hi))};
}

// Operations whose rounding the compiler must not change (no FMA contraction
// on the device), so a partial folds to the same bits wherever it is folded.
RK_HD float mulRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
RK_HD float addRn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
RK_HD float fmaRn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
RK_HD float exp2Accurate(float x) {
#if defined(__CUDA_ARCH__)
  return exp2f(x);
#else
  return std::exp2(x);
#endif
}
RK_HD float log2Accurate(float x) {
#if defined(__CUDA_ARCH__)
  return log2f(x);
#else
  return std::log2(x);
#endif
}

// The log-sum-exp state of a run of elements, in base 2 (see above).
struct LsePartial {
  float m;           // max of u = x * c, rounded; -inf when empty or all -inf; NaN when a NaN was seen
  float s;           // sum of 2^(u - shift), shift = m + mLo
  float w;           // sum of 2^(u - shift) * (u - shift), for the entropy
  float mLo = 0.0f;  // the shift's remainder: 0 unless the chunk is wide (see above)
};

RK_HD LsePartial lseEmpty() { return {-INFINITY, 0.0f, 0.0f}; }
RK_HD LsePartial lseNaN() { return {NAN, NAN, NAN}; }

// Shifts from this magnitude keep their remainder (see "The shift" above).
constexpr float kWideShift = 0x1p30f;
RK_HD bool wideShift(float m) { return m >= kWideShift || m <= -kWideShift; }

// The fold must round the same way at every call site: on the device the
// _rn intrinsics forbid contraction; on the host (GCC contracts a * b + c
// into an FMA at will) one out-of-line copy serves every caller.
#if defined(__CUDACC__)
#define RK_TLP_FOLD RK_HD
#else
#define RK_TLP_FOLD static __attribute__((noinline, unused))
#endif

// The partial of the concatenation a ++ b. Rescaling to the larger shift M:
// s = sa 2^(Ma-M) + sb 2^(Mb-M); w follows from u - M = (u - Ma) + (Ma - M),
// with Ma - M = (ma - m) + (maLo - mLo) (the second term 0 but in wide rows).
// A NaN in either side reaches s and w through 2^(NaN); +inf maxima give
// inf - inf = NaN, so a row with +inf is NaN like the float64 formula's.
RK_TLP_FOLD LsePartial lseCombine(LsePartial a, LsePartial b) {
  if (b.m == -INFINITY) return a;  // b holds no mass (empty or all -inf)
  if (a.m == -INFINITY) return b;
  const bool aLarger = a.m > b.m || (a.m == b.m && a.mLo >= b.mLo);
  float m = aLarger ? a.m : b.m, mLo = aLarger ? a.mLo : b.mLo;
  float da = addRn(addRn(a.m, -m), addRn(a.mLo, -mLo));  // one of da, db is 0
  float db = addRn(addRn(b.m, -m), addRn(b.mLo, -mLo));
  float ra = da == 0.0f ? 1.0f : exp2Accurate(da);
  float rb = db == 0.0f ? 1.0f : exp2Accurate(db);
  LsePartial out;
  out.m = m;
  out.mLo = mLo;
  out.s = addRn(mulRn(a.s, ra), mulRn(b.s, rb));
  out.w = addRn(mulRn(ra, addRn(a.w, mulRn(a.s, da))), mulRn(rb, addRn(b.w, mulRn(b.s, db))));
  return out;
}

struct RowResult {
  float lse;
  float logprob;
  float entropy;
};

// The exponent of the target's logit x against a row's folded shift.
RK_HD float targetExponent(float x, float c, const LsePartial& p) { return addRn(fmaRn(x, c, -p.m), -p.mLo); }

// The outputs of a row from its folded partial. tTarget = targetExponent(x[y])
// is the target's exponent against the same shift, so the shift cancels:
// logprob = ln2 (tTarget - log2 s) carries no rounding of m. In natural
// units: lse = ln2 (m + mLo + log2 s) and entropy = lse - sum p z = ln2 (log2 s - w / s).
// A row of only -inf logits has m = -inf and s = 0: lse = -inf, and the
// IEEE arithmetic gives logprob = -inf - (-inf) = NaN and entropy NaN (no
// distribution exists). Ignored rows give logprob 0 and entropy 0.
RK_HD RowResult lseFinish(LsePartial p, float tTarget, bool ignored) {
  float l2s = log2Accurate(p.s);
  RowResult r;
  r.lse = kLn2 * (p.m + addRn(p.mLo, l2s));
  if (ignored) {
    r.logprob = 0.0f;
    r.entropy = 0.0f;
    return r;
  }
  float lp = kLn2 * (tTarget - l2s);
  r.logprob = lp > 0.0f ? 0.0f : lp;  // rounding when p is ~1; NaN stays NaN
  float h = kLn2 * (l2s - p.w / p.s);
  r.entropy = h < 0.0f ? 0.0f : h;  // rounding of a one-hot row; NaN stays NaN
  return r;
}

// Per-row constants of the backward. With t = log2 p = fma(x, c, -shift) - shiftLo:
//   dlogits = (gLp (onehot(y) - p) - gH p (ln p + H)) / T
//           = p (a + b t) + [j == y] gLp / T,
//   a = -(gLp + gH H) / T,  b = -gH ln2 / T.
struct GradRow {
  float shift, shiftLo;  // lse in the units of x * c (log2 of the normaliser), as hi + lo
  float a, b;
  float gLp, gH, h, invT;
};

// scale = lseScale(invT): then shift = lse * scale carries the same rounding
// of c as x * c, and it cancels in t = x * c - shift. The shift is kept to
// twice float precision: rounded to one float, its error |lse| c 2^-24 would
// go into every t, a relative error of p of that times ln 2 (about 1e-6 for
// lse ~ 20) however close p is to 1; as hi + lo, t is off by about |t| 2^-23.
RK_HD GradRow gradRow(float lse, float gLp, float h, float gH, float invT, LseScale scale) {
  GradRow r;
  r.shift = mulRn(lse, scale.hi);
  r.shiftLo = addRn(fmaRn(lse, scale.hi, -r.shift), mulRn(lse, scale.lo));
  r.a = -invT * (gLp + gH * h);
  r.b = -invT * gH * kLn2;
  r.gLp = gLp;
  r.gH = gH;
  r.h = h;
  r.invT = invT;
  return r;
}

// The gradient of the target element, from its x, t (clamped) and p = 2^t.
// Written without the a + b t shortcut so that 1 - p keeps its precision.
// A masked target (x = -inf) gets 0 like every masked logit (p (a + b t) is
// 0 there), or NaN like them when the row's inputs hold a NaN.
RK_HD float gradTarget(const GradRow& r, float x, float t, float p) {
  if (x == -INFINITY) return 0.0f * (p + r.a + r.b);
  return r.invT * (r.gLp * (1.0f - p) - r.gH * p * (kLn2 * t + r.h));
}

RK_HD bool targetInVocab(int32_t y, int64_t vocab) { return y >= 0 && static_cast<int64_t>(y) < vocab; }

// First report wins: a compare-and-swap claims the slot, the details follow,
// then the code. On CUDA the take reads the slot in stream order, once the
// kernel is done; on cpu it may read it while later ops run
// (CpuStream::takeFailure), so the code is stored last, with release.
RK_HD void reportBadTarget(ErrorSlot* slot, int32_t op, int64_t row, int32_t target, int64_t vocab,
                           const TargetsShape& shape) {
  if (!slot) return;
#if defined(__CUDA_ARCH__)
  bool first = atomicCAS(&slot->code, static_cast<int32_t>(kSlotClear), static_cast<int32_t>(kSlotClaimed)) ==
               static_cast<int32_t>(kSlotClear);
#else
  int32_t expected = kSlotClear;
  bool first = __atomic_compare_exchange_n(&slot->code, &expected, static_cast<int32_t>(kSlotClaimed), false,
                                           __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
#endif
  if (!first) return;
  slot->op = op;
  slot->index = row;
  slot->value = target;
  slot->bound = vocab;
  slot->targets = shape;
#if defined(__CUDA_ARCH__)
  slot->code = kSlotBadTarget;
#else
  __atomic_store_n(&slot->code, static_cast<int32_t>(kSlotBadTarget), __ATOMIC_RELEASE);
#endif
}

}  // namespace rk::tlp
