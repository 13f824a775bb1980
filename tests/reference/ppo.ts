/**
 * Float64 references of the PPO family, written as the obvious loops.
 * `round` is applied after every arithmetic operation: f64 gives the
 * reference, f32 the naive float32 run the tolerance rule compares against.
 *
 * Gradients follow torch autograd on verl's formulation: clamp passes the
 * gradient where lo <= x <= hi, maximum / minimum split it at a tie.
 */
import type { Aggregation, KlEstimator } from '../../lib/index.js';
import { type Round, f64 } from '../helpers/tolerance.js';

export const LOG_RATIO_BOUND = 20;

export interface PolicyInputs {
  B: number;
  T: number;
  logprobs: ArrayLike<number>;
  oldLogprobs: ArrayLike<number>;
  advantages: ArrayLike<number>;
  mask?: ArrayLike<number>;
  clipLow?: number;
  clipHigh?: number;
  dualClip?: number;
  aggregation?: Aggregation;
  refLogprobs?: ArrayLike<number>;
  klCoef?: number;
  klEstimator?: KlEstimator;
  entropy?: ArrayLike<number>;
  entropyCoef?: number;
  normalizer?: number;
  /** 'sequence' (GSPO): every token's log-ratio is its row's masked mean of logprobs - oldLogprobs. */
  importanceSampling?: 'token' | 'sequence';
}

export interface PolicyResult {
  loss: number;
  /** sum of |weight| × the size of L's terms over the tokens: the scale of the loss's rounding error. */
  lossMagnitude: number;
  gradLogprobs: Float64Array;
  /**
   * Largest |weight| × the size of dL's terms (surrogate, and the KL
   * gradient's pieces: k3's 1 and e^-d cancel near d = 0): the scale of the
   * gradient's rounding error.
   */
  gradMagnitude: number;
  gradEntropy?: Float64Array;
  clipFraction: number;
  clipFractionLower: number;
  approxKl: number;
  kl?: number;
  /** Token mean of |kl|: the scale of the kl statistic's rounding error. */
  klMagnitude?: number;
}

export interface ValueInputs {
  B: number;
  T: number;
  values: ArrayLike<number>;
  oldValues: ArrayLike<number>;
  returns: ArrayLike<number>;
  mask?: ArrayLike<number>;
  clip?: number;
  aggregation?: Aggregation;
  normalizer?: number;
}

export interface ValueResult {
  loss: number;
  /** sum of |weight| × the size of L's terms over the tokens: the scale of the loss's rounding error. */
  lossMagnitude: number;
  gradValues: Float64Array;
  clipFraction: number;
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

function isValid(mask: ArrayLike<number> | undefined, i: number): boolean {
  return !mask || mask[i] !== 0;
}

/**
 * The aggregate of per-token losses `L` by the formulas of the contract,
 * each token's weight in it (d aggregate / d L), and the magnitude of the
 * loss's terms: sum of |weight| × terms[i], where terms[i] is the size of
 * what token i's L adds up (its clipped surrogate, KL and entropy terms: L
 * may cancel to far less, so |L| alone would understate the rounding
 * error). A `normalizer` replaces the denominator (sum(M), B', B', B T).
 */
function aggregate(B: number, T: number, L: Float64Array, terms: Float64Array, mask: ArrayLike<number> | undefined, aggregation: Aggregation, normalizer: number | undefined, round: Round): { loss: number; magnitude: number; weight: Float64Array } {
  const weight = new Float64Array(B * T);
  const rowSum = new Float64Array(B);
  const rowCount = new Float64Array(B);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (!isValid(mask, i)) continue;
      rowSum[b] = round(rowSum[b]! + L[i]!);
      rowCount[b]! += 1;
    }
  let total = 0;
  let count = 0;
  let rows = 0;
  let rowMeans = 0;
  for (let b = 0; b < B; b++) {
    total = round(total + rowSum[b]!);
    count += rowCount[b]!;
    if (rowCount[b]! > 0) {
      rows += 1;
      rowMeans = round(rowMeans + round(rowSum[b]! / rowCount[b]!));
    }
  }
  if (count === 0) return { loss: 0, magnitude: 0, weight };
  let denominator: number;
  switch (aggregation) {
    case 'token-mean': denominator = count; break;
    case 'seq-mean-token-sum': case 'seq-mean-token-mean': denominator = rows; break;
    case 'seq-mean-token-sum-norm': denominator = B * T; break;
  }
  denominator = normalizer ?? denominator;
  const loss = round((aggregation === 'seq-mean-token-mean' ? rowMeans : total) / denominator);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (!isValid(mask, i)) continue;
      weight[i] = round(1 / (aggregation === 'seq-mean-token-mean' ? rowCount[b]! * denominator : denominator));
    }
  let magnitude = 0;
  for (let i = 0; i < B * T; i++) if (isValid(mask, i)) magnitude += Math.abs(weight[i]!) * terms[i]!;
  return { loss, magnitude, weight };
}

/** Token mean of `x` over the mask (0 without a valid token). */
function maskedMean(x: ArrayLike<number>, mask: ArrayLike<number> | undefined, round: Round): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < x.length; i++) {
    if (!isValid(mask, i)) continue;
    sum = round(sum + x[i]!);
    count++;
  }
  return count ? round(sum / count) : 0;
}

/** exp(-x) + x - 1, the k3 form (also approxKl with x = new - old). */
function k3(x: number, round: Round): number {
  return round(round(round(Math.exp(-x)) + x) - 1);
}

export function ppoPolicyLossReference(x: PolicyInputs, round: Round = f64): PolicyResult {
  const { B, T, mask } = x;
  const n = B * T;
  const lo = round(1 - (x.clipLow ?? 0.2));
  const hi = round(1 + (x.clipHigh ?? x.clipLow ?? 0.2));
  const klCoef = x.klCoef ?? 0;
  const entropyCoef = x.entropyCoef ?? 0;
  const L = new Float64Array(n);
  const terms = new Float64Array(n);  // |surrogate| + |KL term| + |entropy term| (L may cancel)
  const dL = new Float64Array(n);  // d L / d logprob per token
  const dTerms = new Float64Array(n);  // the size of dL's terms (dL may cancel)
  const clipped = new Float64Array(n);
  const clippedLower = new Float64Array(n);
  const approx = new Float64Array(n);
  const kl = new Float64Array(n);
  // GSPO: the row's mean log-ratio stands for each of its tokens' (verl's
  // log_prob - log_prob.detach() + mean: its gradient reaches the token's own
  // log-prob, which for weights equal within a row is the mean's exact gradient).
  const rowLogRatio = new Float64Array(B);
  if (x.importanceSampling === 'sequence')
    for (let b = 0; b < B; b++) {
      let sum = 0, count = 0;
      for (let i = b * T; i < (b + 1) * T; i++) {
        if (!isValid(mask, i)) continue;
        sum = round(sum + round(x.logprobs[i]! - x.oldLogprobs[i]!));
        count++;
      }
      rowLogRatio[b] = count ? round(sum / count) : 0;
    }
  for (let i = 0; i < n; i++) {
    const A = x.advantages[i]!;
    const tokenLr = round(x.logprobs[i]! - x.oldLogprobs[i]!);
    const lr = x.importanceSampling === 'sequence' ? rowLogRatio[Math.floor(i / T)]! : tokenLr;
    const lrc = clamp(lr, -LOG_RATIO_BOUND, LOG_RATIO_BOUND);
    const ratio = round(Math.exp(lrc));
    const dRatio = lr >= -LOG_RATIO_BOUND && lr <= LOG_RATIO_BOUND ? ratio : 0;
    const inside = ratio >= lo && ratio <= hi;
    const unclipped = round(-A * ratio);
    const clip = round(-A * clamp(ratio, lo, hi));
    let loss = Math.max(unclipped, clip);
    let g: number;
    if (unclipped > clip) g = -A;
    else if (unclipped < clip) g = inside ? -A : 0;
    else g = inside ? -A : round(-A / 2);
    clipped[i] = clip > unclipped ? 1 : 0;
    if (x.dualClip !== undefined && A < 0) {
      const bound = round(-A * x.dualClip);
      clippedLower[i] = loss > bound ? 1 : 0;
      if (loss > bound) g = 0;
      else if (loss === bound) g = round(g / 2);
      loss = Math.min(loss, bound);
    }
    let grad = round(g * dRatio);
    terms[i] = Math.abs(loss);
    dTerms[i] = Math.abs(grad);
    approx[i] = k3(clamp(tokenLr, -LOG_RATIO_BOUND, LOG_RATIO_BOUND), round);  // per token in either mode
    if (x.refLogprobs) {
      const d = round(x.logprobs[i]! - x.refLogprobs[i]!);
      let k: number;
      let gk: number;
      let gkTerms: number;
      switch (x.klEstimator ?? 'k3') {
        case 'k1': k = d; gk = 1; gkTerms = 1; break;
        case 'k2': k = round(round(d * d) / 2); gk = d; gkTerms = Math.abs(d); break;
        case 'k3': {
          const dc = clamp(d, -LOG_RATIO_BOUND, LOG_RATIO_BOUND);
          k = k3(dc, round);
          gk = d >= -LOG_RATIO_BOUND && d <= LOG_RATIO_BOUND ? round(1 - round(Math.exp(-dc))) : 0;
          gkTerms = 1 + Math.exp(-dc);
          break;
        }
      }
      dTerms[i]! += Math.abs(klCoef) * gkTerms;
      kl[i] = k;
      loss = round(loss + round(klCoef * k));
      grad = round(grad + round(klCoef * gk));
      terms[i]! += Math.abs(klCoef * k);
    }
    if (x.entropy) {
      loss = round(loss - round(entropyCoef * x.entropy[i]!));
      terms[i]! += Math.abs(entropyCoef * x.entropy[i]!);
    }
    L[i] = loss;
    dL[i] = grad;
  }
  const { loss, magnitude, weight } = aggregate(B, T, L, terms, mask, x.aggregation ?? 'token-mean', x.normalizer, round);
  const gradLogprobs = new Float64Array(n);
  let gradMagnitude = 0;
  for (let i = 0; i < n; i++) {
    gradLogprobs[i] = isValid(mask, i) ? round(weight[i]! * dL[i]!) : 0;
    if (isValid(mask, i)) gradMagnitude = Math.max(gradMagnitude, Math.abs(weight[i]!) * dTerms[i]!);
  }
  const result: PolicyResult = {
    loss,
    lossMagnitude: magnitude,
    gradLogprobs,
    gradMagnitude,
    clipFraction: maskedMean(clipped, mask, round),
    clipFractionLower: maskedMean(clippedLower, mask, round),
    approxKl: maskedMean(approx, mask, round),
  };
  if (x.entropy) {
    const gradEntropy = new Float64Array(n);
    for (let i = 0; i < n; i++) gradEntropy[i] = isValid(mask, i) ? round(-entropyCoef * weight[i]!) : 0;
    result.gradEntropy = gradEntropy;
  }
  if (x.refLogprobs) {
    result.kl = maskedMean(kl, mask, round);
    result.klMagnitude = maskedMean(kl.map(Math.abs), mask, f64);
  }
  return result;
}

export function ppoValueLossReference(x: ValueInputs, round: Round = f64): ValueResult {
  const { B, T, mask } = x;
  const n = B * T;
  const L = new Float64Array(n);
  const dL = new Float64Array(n);
  const clipped = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = x.values[i]!;
    const R = x.returns[i]!;
    const d = round(v - R);
    const l1 = round(d * d);
    if (x.clip === undefined) {
      L[i] = round(l1 / 2);
      dL[i] = d;
      continue;
    }
    const lo = round(x.oldValues[i]! - x.clip);
    const hi = round(x.oldValues[i]! + x.clip);
    const inside = v >= lo && v <= hi;
    const dc = round(clamp(v, lo, hi) - R);
    const l2 = round(dc * dc);
    L[i] = round(Math.max(l1, l2) / 2);
    if (l1 > l2) dL[i] = d;
    else if (l1 < l2) dL[i] = inside ? d : 0;
    else dL[i] = inside ? d : round(d / 2);
    clipped[i] = l2 > l1 ? 1 : 0;
  }
  const { loss, magnitude, weight } = aggregate(B, T, L, L, mask, x.aggregation ?? 'token-mean', x.normalizer, round);  // L >= 0: no cancellation
  const gradValues = new Float64Array(n);
  for (let i = 0; i < n; i++) gradValues[i] = isValid(mask, i) ? round(weight[i]! * dL[i]!) : 0;
  return { loss, lossMagnitude: magnitude, gradValues, clipFraction: maskedMean(clipped, mask, round) };
}
