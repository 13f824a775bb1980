// Per-pair math of the preference losses, shared by the CPU backend
// (native/cpu/preference.cpp) and the CUDA kernels (kernels/preference.cu).
//
// With x = beta * d - margin:
//   sigmoid: l = -(1 - s) log sigmoid(x) - s log sigmoid(-x)
//   hinge:   l = relu(1 - x)
//   ipo:     l = (d - margin - 1 / (2 beta))^2   (d itself, not beta * d)
// Each returns l and dl/dd; the caller scales by 1/B for the batch mean.
#pragma once
#include <cmath>

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

// Softplus form: with e = exp(-|x|) in [0, 1],
//   softplus(x) = -log sigmoid(-x) = max(x, 0) + log1p(e),
//   sigmoid(|x|) = 1 / (1 + e),  sigmoid(-|x|) = e / (1 + e).
// No term overflows for any finite x (at |x| = 1e4, e = 0 and l is exact),
// and the gradient s sigmoid(x) - (1 - s) sigmoid(-x) is formed from the two
// sigmoids directly, never as the cancelling sigmoid(x) - 1 + s.
RK_HD PairTerms sigmoidTerms(float x, float beta, float s) {
  float e = expf(-fabsf(x));
  float tail = log1pf(e);  // <= log 2
  // s * max(x, 0) is written as a select so that s = 0 at x = +inf gives 0, not 0 * inf.
  float hi = s > 0.0f ? s * fmaxf(x, 0.0f) : 0.0f;
  float lo = (1.0f - s) * fmaxf(-x, 0.0f);
  float inv = 1.0f / (1.0f + e);
  bool up = x >= 0.0f;
  float sigPos = up ? inv : e * inv;  // sigmoid(x)
  float sigNeg = up ? e * inv : inv;  // sigmoid(-x)
  PairTerms t;
  t.loss = lo + hi + tail;  // a NaN x reaches both through e
  t.slope = beta * (s * sigPos - (1.0f - s) * sigNeg);
  return t;
}

RK_HD PairTerms hingeTerms(float x, float beta) {
  PairTerms t;
  float gap = 1.0f - x;
  // relu(gap), keeping NaN (fmaxf would drop it). At x = 1 the subgradient 0 is used.
  t.loss = gap > 0.0f ? gap : (gap != gap ? gap : 0.0f);
  t.slope = gap > 0.0f ? -beta : (gap != gap ? gap : 0.0f);
  return t;
}

// 1 / (2 beta) is the IPO target gap (tau = beta in Azar et al., eq. 17).
RK_HD PairTerms ipoTerms(float d, float margin, float halfInvBeta) {
  float u = (d - margin) - halfInvBeta;
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
