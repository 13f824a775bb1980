// Per-token math of the PPO family, shared by the CPU backend
// (native/cpu/ppo.cpp) and the CUDA backend (kernels/ppo.cu).
//
// The functions are templates over a lanes type L that names the value type
// L::V and supplies what differs between one token and many: masks, selects,
// broadcasts and bit casts. ScalarLanes (V = float) serves CUDA threads; the
// CPU source defines its own for a SIMD vector of floats (one token per
// lane), in an anonymous namespace so that every instantiation keeps the
// internal linkage its ISA region needs. Everything is branch-free, so a
// vector of tokens runs the same code as one token.
//
// Conventions follow verl's compute_policy_loss / compute_value_loss and
// kl_penalty (verl/trainer/ppo/core_algos.py; k3 is also TRL's GRPO KL term):
// the log-ratio is clamped to [-20, 20] before exp, and gradients are those
// torch autograd gives for that formulation: torch.clamp passes the gradient
// where lo <= x <= hi (inclusive) and nothing outside; torch.maximum and
// torch.minimum split it half and half between equal inputs.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../native/ops/ppo.h"
#include "hd.cuh"

namespace rk::ppo {

// |log ratio| and |logprob - refLogprob| are clamped to this before exp (verl).
constexpr float kLogRatioBound = 20.0f;

struct ScalarLanes {
  using V = float;
  using Mask = bool;
  using Bits = uint32_t;
  RK_HD float splat(float x) { return x; }
  RK_HD bool none() { return false; }
  RK_HD float select(bool m, float a, float b) { return m ? a : b; }
  RK_HD uint32_t bits(float x) { return floatBits(x); }
  RK_HD float fromBits(uint32_t u) { return bitsFloat(u); }
};

// clamp(x, lo, hi) for lo <= hi that keeps NaN (fminf/fmaxf would drop
// it), and is x itself wherever lo <= x <= hi: so `clamp == x` tests that,
// ends included, false for NaN, in one comparison. On sm_80 and newer two
// NaN-propagating min/max instructions where the selects take three or
// four; the same values, but for the sign of a zero x at a zero bound.
template <class L, class V = typename L::V>
RK_HD V clampKeepNan(V x, V lo, V hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800 && !defined(RK_CUDA_EMU)
  if constexpr (std::is_same_v<V, float>) {
    float r;
    asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(x), "f"(lo));
    asm("min.NaN.f32 %0, %0, %1;" : "+f"(r) : "f"(hi));
    return r;
  }
#endif
  return L::select(x < lo, lo, L::select(x > hi, hi, x));
}

// One range reduction from which e^y, e^-y - 1 + y and 1 - e^-y all follow
// accurately, for |y| <= 20 (callers clamp):
//   y = n ln2 + r with n = round(y / ln2), |r| <= ln2 / 2 (+ rounding),
//   e^r = 1 + r + r^2 (E(r^2) + r O(r^2)),
// E and O the even and odd parts of the Taylor series of (e^r - 1 - r) / r^2
// up to r^6 (truncation below 2^-30 relative), so e^-r costs one multiply-add
// more. Keeping r and r^2 P(r) apart avoids the cancellation of e^-y - 1 + y
// (the k3 estimator, ~y^2/2) for small y: with n = 0 it is r^2 P(-r) exactly.
// 2^n is built in the exponent bits (|n| <= 29 here, a normal number).
// Plain arithmetic only, so that vectors run it too. NaN propagates.
template <class L, class V = typename L::V>
struct ExpSplit {
  V y;          // the argument
  V s, sInv;    // 2^n, 2^-n
  V r;          // y - n ln2
  V even, odd;  // E(r^2), O(r^2)
};

template <class L, class V = typename L::V>
RK_HD ExpSplit<L> expSplit(V y) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;          // 1.5 * 2^23: t = x + kRound rounds x to an integer
  constexpr uint32_t kRoundBits = 0x4B400000u;   // bits of kRound: bits(t) = kRoundBits + n
  constexpr float kLn2Hi = 0.693359375f;         // 9 bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;      // ln2 - kLn2Hi
  ExpSplit<L> e;
  e.y = y;
  V t = y * kLog2e + kRound;
  V n = t - kRound;
  typename L::Bits bits = L::bits(t);
  e.s = L::fromBits((bits - kRoundBits + 127u) << 23);
  e.sInv = L::fromBits((kRoundBits + 127u - bits) << 23);
  e.r = (y - n * kLn2Hi) - n * kLn2Lo;
  V u = e.r * e.r;
  e.even = 0.5f + u * (1.0f / 24.0f + u * (1.0f / 720.0f + u * (1.0f / 40320.0f)));
  e.odd = 1.0f / 6.0f + u * (1.0f / 120.0f + u * (1.0f / 5040.0f));
  return e;
}

// e^y.
template <class L, class V = typename L::V>
RK_HD V expOf(const ExpSplit<L>& e) {
  V p = e.r * e.r * (e.even + e.r * e.odd);
  return e.s + e.s * (e.r + p);
}

// e^-y - 1 + y (>= 0): with z = -y = -n ln2 - r and p' = r^2 P(-r),
// e^z - 1 - z = 2^-n p' + (-2^-n r + ((2^-n - 1) + y)), where each bracket
// is exact or small when n = 0 (then r = y exactly).
template <class L, class V = typename L::V>
RK_HD V expNegMinus1PlusY(const ExpSplit<L>& e) {
  V p = e.r * e.r * (e.even - e.r * e.odd);
  return e.sInv * p + (-e.sInv * e.r + ((e.sInv - 1.0f) + e.y));
}

// 1 - e^-y = 2^-n (r - p') + (1 - 2^-n), accurate for small y.
template <class L, class V = typename L::V>
RK_HD V oneMinusExpNeg(const ExpSplit<L>& e) {
  V p = e.r * e.r * (e.even - e.r * e.odd);
  return e.sInv * (e.r - p) + (1.0f - e.sInv);
}

struct PolicyConsts {
  float lo, hi;       // the ratio's clip range [1 - clipLow, 1 + clipHigh]
  float dualClip;     // > 1, or NaN when off: the bound -A c is NaN, every comparison with it false
  float klCoef;       // 0 without a KL term
  float entropyCoef;  // 0 without an entropy term
};

template <class L, class V = typename L::V>
struct PolicyToken {
  using Mask = typename L::Mask;
  V loss;             // clipped surrogate + klCoef * kl - entropyCoef * H
  V grad;             // d loss / d logprob, before the aggregation weight
  V approxKl;         // exp(old - new) - (old - new) - 1 on the clamped log-ratio
  V kl;               // the KL estimator (0 without one)
  Mask clipped;       // the clipped term is strictly the larger
  Mask clippedLower;  // A < 0 and the dual-clip bound is strictly below the clipped loss
};

// Kl: -1 = no KL term, else a KlEstimator. Entropy: whether the loss has an
// entropy term (without, `entropy` is not read). Terms the op lacks are left
// out at compile time rather than added as 0 * x: fewer instructions in a
// kernel bound by them (the CUDA policy loss), and the same value.
// sequence: the ratio is exp(seqLr), the row's mean log-ratio (GSPO), with
// d ratio / d lp = ratio as for a token's own (verl's log_prob -
// log_prob.detach() + mean); approxKl stays the token's own.
// MayDualClip false: the caller knows c has no dual clip (the CUDA kernel's
// full tiles test it once), and its instructions are left out.
template <int Kl, bool Entropy, class L, bool MayDualClip = true, class V = typename L::V>
RK_HD PolicyToken<L> policyToken(V lp, V old, V adv, V ref, V entropy, const PolicyConsts& c, bool sequence = false,
                                 V seqLr = V{}) {
  const V zero = L::splat(0.0f), bound = L::splat(kLogRatioBound);
  PolicyToken<L> t;
  const V tokenLr = lp - old;
  const V tokenLrClamped = clampKeepNan<L>(tokenLr, -bound, bound);
  const ExpSplit<L> eToken = expSplit<L>(tokenLrClamped);
  auto lrInside = tokenLrClamped == tokenLr;
  ExpSplit<L> e = eToken;
  if (sequence) {
    const V seqLrClamped = clampKeepNan<L>(seqLr, -bound, bound);
    lrInside = seqLrClamped == seqLr;
    e = expSplit<L>(seqLrClamped);
  }
  V ratio = expOf<L>(e);
  V dRatio = L::select(lrInside, ratio, zero);  // d ratio / d lp through the clamp

  // max(-A r, -A clip(r)): the gradient wrt r is -A where the unclipped term
  // counts (r inside the clip range, both terms equal then, or strictly
  // larger), 0 where the clipped term wins, and half at a tie with r outside.
  V unclipped = -adv * ratio;
  V ratioClipped = clampKeepNan<L>(ratio, L::splat(c.lo), L::splat(c.hi));
  V clipped = -adv * ratioClipped;
  auto ratioInside = ratioClipped == ratio;
  auto unclippedLarger = unclipped > clipped;
  V loss = L::select(unclippedLarger, unclipped, clipped);
  V g = L::select(ratioInside | unclippedLarger, -adv, L::select(unclipped == clipped, -0.5f * adv, zero));
  t.clipped = clipped > unclipped;

  // Dual clip for A < 0: min(loss, -A c); the bound does not depend on lp.
  // The gradient stays where loss < bound (or either is NaN: no dual clip,
  // c = NaN, leaves every token as it is, an infinite loss
  // included), is 0 above it and half at a tie.
  t.clippedLower = L::none();
  if (MayDualClip) {
    V dual = -adv * c.dualClip;
    auto negative = adv < zero;
    auto aboveDual = loss > dual, notBelowDual = loss >= dual;
    t.clippedLower = negative & aboveDual;
    V gDual = L::select(notBelowDual, L::select(aboveDual, zero, 0.5f * g), g);
    loss = L::select(negative & aboveDual, dual, loss);
    g = L::select(negative, gDual, g);
  }

  t.approxKl = expNegMinus1PlusY<L>(eToken);  // the token's own in either mode

  V d = lp - ref;
  V kl = zero, gKl = zero;
  if (Kl == static_cast<int>(KlEstimator::K1)) {
    kl = d;
    gKl = L::splat(1.0f);
  } else if (Kl == static_cast<int>(KlEstimator::K2)) {
    kl = 0.5f * d * d;
    gKl = d;
  } else if (Kl == static_cast<int>(KlEstimator::K3)) {
    // exp(-d) + d - 1 with d clamped like the log-ratio (verl's low_var_kl;
    // verl also clamps the result to [-10, 10], which is not done here).
    V dClamped = clampKeepNan<L>(d, -bound, bound);
    auto dInside = dClamped == d;
    ExpSplit<L> ed = expSplit<L>(dClamped);
    kl = expNegMinus1PlusY<L>(ed);
    gKl = L::select(dInside, oneMinusExpNeg<L>(ed), zero);
  }
  t.kl = kl;
  t.loss = loss;
  t.grad = g * dRatio;
  if (Kl >= 0) {
    t.loss = loss + c.klCoef * kl;
    t.grad = g * dRatio + c.klCoef * gKl;
  }
  if (Entropy) t.loss = t.loss - c.entropyCoef * entropy;
  return t;
}

template <class L, class V = typename L::V>
struct ValueToken {
  V loss;                    // 0.5 * max((v - R)^2, (clip(v) - R)^2)
  V grad;                    // d loss / d v, before the aggregation weight
  typename L::Mask clipped;  // the clipped term is strictly the larger
};

// The clipped value is clamp(v, oldV - c, oldV + c) (verl's clip_by_value),
// which equals oldV + clip(v - oldV, -c, c) and is v itself, bit for bit,
// when nothing is clipped (so equal terms never count as clipped).
// Clip = false: 0.5 (v - R)^2 alone.
template <bool Clip, class L, class V = typename L::V>
RK_HD ValueToken<L> valueToken(V v, V oldV, V ret, float clip) {
  ValueToken<L> t;
  V d = v - ret;
  V l1 = d * d;
  if (!Clip) {
    t.loss = 0.5f * l1;
    t.grad = d;
    t.clipped = L::none();
    return t;
  }
  V lo = oldV - clip, hi = oldV + clip;
  V vc = clampKeepNan<L>(v, lo, hi);
  vc = L::select(lo == lo, vc, lo);  // a NaN old value poisons the token as a NaN value does
  auto inside = vc == v;  // lo <= v <= hi (false for a NaN v, lo or hi)
  V dc = vc - ret;
  V l2 = dc * dc;
  auto firstLarger = l1 > l2;
  t.loss = 0.5f * L::select(firstLarger, l1, l2);
  t.grad = L::select(inside | firstLarger, d, L::select(l1 == l2, 0.5f * d, L::splat(0.0f)));
  t.clipped = l2 > l1;
  return t;
}

}  // namespace rk::ppo
