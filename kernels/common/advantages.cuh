// The advantage family's per-element math, shared by the CPU backend
// (native/cpu/advantages.cpp) and the CUDA backend (kernels/advantages.cu).
//
// GAE runs backward in time. What a step needs from the future is a carry:
// the value to bootstrap from (V of the next valid step) and the advantage to
// continue from (A of the next valid step). gaeStep is one step of the
// sequential recursion. For the parallel scan, each step is also an affine
// map from the carry after it to the carry before it (GaeMap); maps compose
// associatively, so a chunk of steps is summarized by one map. Composition
// only multiplies factors that are at most 1 (gamma, gamma * lambda, and
// their products), never divides: products that underflow to 0 are the true
// (negligible) weights, unlike closed forms with cumulative products of
// gamma * lambda that divide by them.
//
// Conventions, per step t (flags from the mask / dones / truncated bytes):
//  - valid, no flag:  delta = r + gamma * V_next - V,  A = delta + gamma*lambda * A_next
//  - valid, done:     delta = r - V,                   A = delta   (terminated)
//  - valid, truncated: delta = r + gamma * TV_t - V,   A = delta   (cut: bootstrap from TV_t)
//  - done and truncated on one step: done wins (the episode terminated).
//  - masked (not a step of the sequence): output 0 and the carry passes
//    through unchanged (nothing decays across tool or prompt tokens), except
//    that a flag on a masked step still ends the episode there: done resets
//    the carry to (0, 0) and truncated to (TV_t, 0), so the valid step before
//    it acts as if it carried the flag itself. Packed or multi-turn rows can
//    put the episode end on a non-trained token without leaking across it.
#pragma once
#include <cmath>
#include <cstdint>

#include "../../native/ops/advantages.h"
#include "hd.cuh"

namespace rk {

enum : uint32_t { kGaeValid = 1, kGaeDone = 2, kGaeTruncated = 4 };

// Flags of one step from its bytes (null arrays: valid, no flag).
RK_HD uint32_t gaeFlags(const uint8_t* mask, const uint8_t* dones, const uint8_t* truncated, int64_t i) {
  uint32_t f = (!mask || mask[i]) ? kGaeValid : 0u;
  if (dones && dones[i]) f |= kGaeDone;
  if (truncated && truncated[i]) f |= kGaeTruncated;
  return f;
}

// What the step before (in time) receives from the future.
struct GaeCarry {
  float value;  // to bootstrap from
  float adv;    // to continue the recursion from
};

// One step of the recursion: returns the carry for the step before; writes
// the step's advantage (0 when masked). Returns are adv + value where valid.
// Written with selects only, so that a masked step's (unused, possibly NaN)
// inputs never reach a result, and so that the SIMD code of the CPU backend
// can follow it lane by lane.
RK_HD GaeCarry gaeStep(GaeCarry next, float reward, float value, float truncValue, uint32_t flags, float gamma,
                       float gammaLambda, float* adv) {
  const bool valid = flags & kGaeValid;
  const bool done = flags & kGaeDone;
  const bool cut = !done && (flags & kGaeTruncated);
  const float bootstrap = done ? 0.0f : cut ? truncValue : next.value;
  const float carry = (done || cut) ? 0.0f : next.adv;
  const float a = (reward + gamma * bootstrap - value) + gammaLambda * carry;
  *adv = valid ? a : 0.0f;
  return valid ? GaeCarry{value, a} : GaeCarry{bootstrap, carry};
}

// A chunk of steps as a map of the carry after it to the carry before it:
//   Identity: only masked steps without flags: the carry passes through
//   Open:     (value, adv) -> (u, q * value + s * adv + w)
//   Reset:    a flag inside: the carry before is (u, w) whatever came after
// Reset maps ignore their input, so a NaN after an episode's end stays there.
enum : int32_t { kGaeIdentity = 0, kGaeOpen = 1, kGaeReset = 2 };

struct GaeMap {
  int32_t kind;
  float q, s, u, w;
};

RK_HD GaeMap gaeIdentity() { return GaeMap{kGaeIdentity, 0.0f, 0.0f, 0.0f, 0.0f}; }

// The map of one step (same cases as gaeStep).
RK_HD GaeMap gaeStepMap(float reward, float value, float truncValue, uint32_t flags, float gamma, float gammaLambda) {
  if (!(flags & kGaeValid)) {
    if (flags & kGaeDone) return GaeMap{kGaeReset, 0.0f, 0.0f, 0.0f, 0.0f};
    if (flags & kGaeTruncated) return GaeMap{kGaeReset, 0.0f, 0.0f, truncValue, 0.0f};
    return gaeIdentity();
  }
  if (flags & kGaeDone) return GaeMap{kGaeReset, 0.0f, 0.0f, value, reward - value};
  if (flags & kGaeTruncated) return GaeMap{kGaeReset, 0.0f, 0.0f, value, reward + gamma * truncValue - value};
  return GaeMap{kGaeOpen, gamma, gammaLambda, value, reward - value};
}

// earlier ∘ later: `later` covers the steps after `earlier` and applies first.
// Resets = false: neither map is a Reset (no dones, no truncation), which
// leaves out that case's code; the arithmetic is the same.
template <bool Resets = true>
RK_HD GaeMap gaeCompose(GaeMap earlier, GaeMap later) {
  if ((Resets && earlier.kind == kGaeReset) || later.kind == kGaeIdentity) return earlier;
  if (earlier.kind == kGaeIdentity) return later;
  // earlier is Open; later is Open or Reset (q = s = 0 for Reset).
  return GaeMap{later.kind, earlier.s * later.q, earlier.s * later.s, earlier.u,
                earlier.q * later.u + earlier.s * later.w + earlier.w};
}

template <bool Resets = true>
RK_HD GaeCarry gaeApply(GaeMap m, GaeCarry c) {
  if (m.kind == kGaeIdentity) return c;
  if (Resets && m.kind == kGaeReset) return GaeCarry{m.u, m.w};
  return GaeCarry{m.u, m.q * c.value + m.s * c.adv + m.w};
}

// ------------------------------------------------------------------ whiten

// Count, mean and sum of squared deviations of a set (Chan et al.):
// merging two sets is exact in real arithmetic and stable in floating point,
// so a fixed partition merged in a fixed order is accurate and reproducible.
struct Moments {
  double count;
  double mean;
  double m2;
};

RK_HD Moments mergeMoments(Moments a, Moments b) {
  if (b.count == 0) return a;
  if (a.count == 0) return b;
  const double n = a.count + b.count;
  const double d = b.mean - a.mean;
  return Moments{n, a.mean + d * (b.count / n), a.m2 + b.m2 + d * d * (a.count * (b.count / n))};
}

// out = (x - mean) * scale + shift over valid elements, 0 elsewhere. The
// mean is kept as hi + lo: x - hi is exact for x near the mean (Sterbenz),
// so data on a large offset (1e7 + noise) whiten without losing the noise to
// the rounding of the mean.
// Data spread near float's limit (sum of squared deviations m2 past 1e75)
// take the wide path, in double: there a deviation x - mean can overflow
// float (every squared deviation is at most m2, so below it none can), and
// scale = 1 / std would be subnormal (std > 8.5e37), losing bits. A choice
// per call, from the moments: the float path stays branch-free.
constexpr double kWhitenWideM2 = 1e75;

struct WhitenAffine {
  float mean, meanLo;
  float scale;  // 1 / sqrt(var + eps)
  float shift;  // 0, or the mean when shiftMean is false
  bool wide;    // m2 > kWhitenWideM2: the double fields below are used
  double meanWide, scaleWide, shiftWide;
};

// Unbiased variance; with fewer than two valid elements it is taken as 0, so
// a single element whitens to 0 (or to itself when shiftMean is false) and
// an empty mask gives all zeros.
RK_HD WhitenAffine whitenAffine(Moments m, float eps, bool shiftMean) {
  const double var = m.count > 1 ? m.m2 / (m.count - 1) : 0.0;
  const double scale = 1.0 / sqrt(var + static_cast<double>(eps));
  const float mean = static_cast<float>(m.mean);
  return WhitenAffine{mean,  static_cast<float>(m.mean - static_cast<double>(mean)),
                      static_cast<float>(scale), shiftMean ? 0.0f : mean,
                      m.m2 > kWhitenWideM2, m.mean, scale, shiftMean ? 0.0 : m.mean};
}

// The float path (a.wide false): computed unconditionally, so the select vectorizes.
RK_HD float whitenNarrow(float x, bool valid, const WhitenAffine& a) {
  const float z = ((x - a.mean) - a.meanLo) * a.scale + a.shift;
  return valid ? z : 0.0f;
}

RK_HD float whitenWide(float x, bool valid, const WhitenAffine& a) {
  const double z = (static_cast<double>(x) - a.meanWide) * a.scaleWide + a.shiftWide;
  return valid ? static_cast<float>(z) : 0.0f;
}

// ---------------------------------------------------------- group advantages

// The factor f of a group (k members, mean, sum of squared deviations m2)
// such that each score's advantage is (s - mean) * f:
//   Grpo:   1 / (std + eps), unbiased std
//   DrGrpo: 1
//   Rloo:   k / (k - 1)  (s minus the mean of the others = k / (k - 1) * (s - mean))
// A group of one has no baseline: f = 0, every advantage is 0.
RK_HD double groupFactor(double m2, int64_t k, GroupEstimator estimator, double eps) {
  if (k < 2) return 0.0;
  switch (estimator) {
    case GroupEstimator::DrGrpo:
      return 1.0;
    case GroupEstimator::Rloo:
      return static_cast<double>(k) / static_cast<double>(k - 1);
    case GroupEstimator::Grpo:
      break;
  }
  return 1.0 / (sqrt(m2 / static_cast<double>(k - 1)) + eps);
}

RK_HD float groupAdvantage(float score, double mean, double factor) {
  return static_cast<float>((static_cast<double>(score) - mean) * factor);
}

}  // namespace rk
