// Per-pair math of the preference losses, shared by the CPU backend
// (native/cpu/preference.cpp) and the CUDA kernels (kernels/preference.cu).
//
// With x = beta * d - margin:
//   sigmoid: l = -(1 - s) log sigmoid(x) - s log sigmoid(-x)
//   hinge:   l = relu(1 - x)
//   ipo:     l = (d - margin - 1 / (2 beta))^2   (d itself, not beta * d)
// Each returns l and dl/dd; the caller scales by 1/B for the batch mean.
//
// Everything here is branch-free float arithmetic (selects, no calls), so
// that GCC vectorizes the CPU loop over pairs; exp and log1p are therefore
// written out below instead of calling libm.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../../native/ops/preference.h"
#include "hd.cuh"

namespace rk::preference {

struct PairTerms {
  float loss;   // l
  float slope;  // dl/dd
};

// The pair's difference, in this order of operations on every backend (and
// in the references' naive float32 run), so that the sign that decides
// `accuracy` is the same everywhere.
RK_HD float pairDifference(float chosen, float rejected) { return chosen - rejected; }
RK_HD float pairDifference(float chosen, float rejected, float refChosen, float refRejected) {
  return (chosen - refChosen) - (rejected - refRejected);
}

// 2^k for an integer k in [-126, 127], from its bits.
RK_HD float pow2i(int32_t k) { return bitsFloat(static_cast<uint32_t>(k + 127) << 23); }

// exp(y) for y <= 0 (not NaN). z = k ln2 + r with |r| <= ln2 / 2
// (Cody–Waite: k * C1 is exact, C1 having 9 significant bits); exp(r) by the
// Cephes expf polynomial (about 1 ulp). Below the normal range (y < -87.34,
// exp < 2^-126) the result is 0 rather than a subnormal: subnormal arithmetic
// costs x86 ~100 cycles a lane, and what it would add to a loss of at least
// 87 or to a gradient is below 1.2e-38.
RK_HD float expNonPositive(float y) {
  const float z = y > -87.33654f ? y : -87.33654f;
  const float v = z * 1.44269504088896341f;          // z / ln2, in [-126, 0]
  const int32_t k = static_cast<int32_t>(v - 0.5f);  // truncation of a value <= 0: k = nearest integer to v
  const float kf = static_cast<float>(k);
  const float r = (z - kf * 0.693359375f) - kf * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const float normal = static_cast<float>(y >= -87.33654f);  // 1 or 0: a factor, not a branch
  return p * (pow2i(k) * normal);  // flushed before p can take 2^-126 into the subnormals
}

// log1p(e) for e in [0, 1]: 2 atanh(s) with s = e / (2 + e) in [0, 1/3].
// atanh(s) / s = sum_j z^j / (2j + 1) in z = s^2 <= 1/9, cut after z^7 (the
// rest is below 9^-8 / 17, far under float32 rounding): no cancellation
// anywhere, about 2 ulp, and exact at e = 0.
RK_HD float log1pUnit(float e) {
  const float s = e / (2.0f + e);
  // Below 2^-40 the series is 1 in float32 anyway; flooring s there keeps
  // s * s out of the subnormals, which x86 computes ~100 times slower. The
  // floor is taken on the bits (s >= 0 orders like its bits): as a float
  // select, GCC turns it back into s * s for the lanes that keep s.
  const int32_t sBits = static_cast<int32_t>(floatBits(s));
  const float sFloor = bitsFloat(static_cast<uint32_t>(sBits > 0x2b800000 ? sBits : 0x2b800000));  // 2^-40
  const float z = sFloor * sFloor;
  float p = 1.0f / 15.0f;
  p = p * z + 1.0f / 13.0f;
  p = p * z + 1.0f / 11.0f;
  p = p * z + 1.0f / 9.0f;
  p = p * z + 1.0f / 7.0f;
  p = p * z + 1.0f / 5.0f;
  p = p * z + 1.0f / 3.0f;
  p = p * z + 1.0f;
  return 2.0f * s * p;
}

RK_HD float positivePart(float x) { return x > 0.0f ? x : 0.0f; }  // NaN -> 0, like fmaxf

// Softplus form: with e = exp(-|x|) in [0, 1],
//   softplus(x) = -log sigmoid(-x) = max(x, 0) + log1p(e),
//   sigmoid(|x|) = 1 / (1 + e),  sigmoid(-|x|) = e / (1 + e).
// No term overflows for any x (at |x| = 1e4, e = 0 and l is exact), and the
// gradient s sigmoid(x) - (1 - s) sigmoid(-x) is formed from the two
// sigmoids directly, never as the cancelling sigmoid(x) - 1 + s.
RK_HD PairTerms sigmoidTerms(float x, float beta, float s) {
  const float e = expNonPositive(-fabsf(x));  // a NaN x gives 0 here; it is put back below
  const float tail = log1pUnit(e);            // <= log 2
  // s * max(x, 0), except that s = 0 at x = +inf gives 0, not 0 * inf (the
  // only NaN this product can be; the test is per element, so it vectorizes).
  const float hiRaw = s * positivePart(x);
  const float hi = hiRaw == hiRaw ? hiRaw : 0.0f;
  const float lo = (1.0f - s) * positivePart(-x);
  const float inv = 1.0f / (1.0f + e);
  const bool up = x >= 0.0f;
  const float sigPos = up ? inv : e * inv;  // sigmoid(x)
  const float sigNeg = up ? e * inv : inv;  // sigmoid(-x)
  const bool nan = x != x;
  PairTerms t;
  t.loss = nan ? x : lo + hi + tail;
  t.slope = nan ? x : beta * (s * sigPos - (1.0f - s) * sigNeg);
  return t;
}

RK_HD PairTerms hingeTerms(float x, float beta) {
  PairTerms t;
  const float gap = 1.0f - x;
  // relu(gap), keeping NaN (fmaxf would drop it). At x = 1 the subgradient 0 is used.
  t.loss = gap > 0.0f ? gap : (gap != gap ? gap : 0.0f);
  t.slope = gap > 0.0f ? -beta : (gap != gap ? gap : 0.0f);
  return t;
}

// 1 / (2 beta) is the IPO target gap (tau = beta in Azar et al., eq. 17).
// TRL's dpo_trainer agrees: (d - 1 / (2 beta))^2 on d itself, not beta * d;
// it feeds per-token mean log-probs there (sequenceLogProbs reduce 'mean').
RK_HD PairTerms ipoTerms(float d, float margin, float halfInvBeta) {
  const float u = (d - margin) - halfInvBeta;
  PairTerms t;
  t.loss = u * u;
  t.slope = 2.0f * u;
  return t;
}

RK_HD PairTerms pairTerms(PreferenceKind kind, float d, float margin, float beta, float halfInvBeta,
                          float labelSmoothing) {
  switch (kind) {
    case PreferenceKind::Hinge: return hingeTerms(beta * d - margin, beta);
    case PreferenceKind::Ipo: return ipoTerms(d, margin, halfInvBeta);
    default: return sigmoidTerms(beta * d - margin, beta, labelSmoothing);
  }
}

}  // namespace rk::preference
