/**
 * Float64 reference of the preference family, written as the obvious loops.
 * `round` is applied after every operation: f64 gives the reference itself,
 * f32 the naive float32 run that the tolerance rule compares against.
 */
import { type Round, f64 } from '../helpers/tolerance.js';

export type Kind = 'sigmoid' | 'hinge' | 'ipo';
export type Reduce = 'sum' | 'mean';

/** log(1 + e^z) as max(z, 0) + log1p(e^-|z|): no overflow at any finite z. */
export function softplus(z: number, round: Round = f64): number {
  return round(Math.max(z, 0) + round(Math.log1p(round(Math.exp(-Math.abs(z))))));
}

export function logSigmoid(x: number, round: Round = f64): number {
  return -softplus(-x, round);
}

export function sigmoid(x: number, round: Round = f64): number {
  if (x >= 0) return round(1 / round(1 + round(Math.exp(-x))));
  const e = round(Math.exp(x));
  return round(e / round(1 + e));
}

/** One pair's loss l and its derivative dl/dd. */
export function pairTerms(kind: Kind, d: number, margin: number, beta: number, labelSmoothing: number,
  round: Round = f64): { loss: number; slope: number } {
  const r = round;
  const s = labelSmoothing;
  const b = r(beta);
  if (kind === 'ipo') {
    const u = r(r(d - margin) - r(1 / r(2 * b)));
    return { loss: r(u * u), slope: r(2 * u) };
  }
  const x = r(r(b * d) - margin);
  if (kind === 'hinge') {
    const gap = r(1 - x);
    if (Number.isNaN(gap)) return { loss: NaN, slope: NaN };
    return gap > 0 ? { loss: gap, slope: -b } : { loss: 0, slope: 0 };
  }
  // -(1 - s) log σ(x) - s log σ(-x); the s term is absent (not 0 * inf) when s = 0.
  const chosenTerm = r(-r((1 - s) * logSigmoid(x, r)));
  const loss = s > 0 ? r(chosenTerm - r(s * logSigmoid(-x, r))) : chosenTerm;
  // d/dx = s σ(x) - (1 - s) σ(-x)
  const slope = r(b * r(r(s * sigmoid(x, r)) - r((1 - s) * sigmoid(-x, r))));
  return { loss, slope };
}

/** `o` without labelSmoothing unless its kind is 'sigmoid': the ops refuse smoothing with 'hinge' and 'ipo'. */
export function sigmoidSmoothing<T extends { kind?: Kind; labelSmoothing?: number }>(o: T): T {
  if ((o.kind ?? 'sigmoid') === 'sigmoid' || o.labelSmoothing === undefined) return o;
  const { labelSmoothing: _, ...rest } = o;
  return rest as T;
}

export interface LossRefOptions {
  kind?: Kind;
  beta?: number;
  labelSmoothing?: number;
  centerCoef?: number;
  margin?: ArrayLike<number>;
  /** dpoLoss: d = (chosen - refChosen) - (rejected - refRejected). */
  refChosen?: ArrayLike<number>;
  refRejected?: ArrayLike<number>;
  /** The loss's denominator in place of B (the statistics keep B). */
  normalizer?: number;
}

export interface LossRef {
  loss: number;
  gradChosen: Float64Array;
  gradRejected: Float64Array;
  accuracy: number;
  meanMargin: number;
  /** mean(chosen), or beta * mean(chosen - refChosen) for dpoLoss. */
  chosenReward: number;
  rejectedReward: number;
  /**
   * Largest |g| + |center| over the pairs (= max(|g + center|, |center - g|)):
   * the size of the gradients' terms, which may cancel, so the scale of
   * their rounding error.
   */
  gradMagnitude: number;
  /** d per pair. */
  differences: Float64Array;
}

/**
 * The scale of meanMargin's rounding: mean(d) cancels, while each d rounds to
 * float32 with an error of order eps times its operands, so a tolerance floor
 * scales with the mean operand magnitude, not with the mean (which can be far
 * smaller; the naive run's own error may cancel too).
 */
export function meanMarginScale(chosen: ArrayLike<number>, rejected: ArrayLike<number>, opts: LossRefOptions): number {
  let operands = 0;
  for (let i = 0; i < chosen.length; i++) {
    operands += Math.abs(chosen[i]!) + Math.abs(rejected[i]!);
    if (opts.refChosen && opts.refRejected) operands += Math.abs(opts.refChosen[i]!) + Math.abs(opts.refRejected[i]!);
  }
  return chosen.length ? operands / chosen.length : 0;
}

/**
 * The same for a side's mean reward: its terms (c, or c - ref) cancel across
 * the pairs, so the floor scales with the mean operand magnitude (times beta
 * for dpoLoss's implicit rewards).
 */
export function rewardScale(side: ArrayLike<number>, ref: ArrayLike<number> | undefined, beta: number): number {
  let operands = 0;
  for (let i = 0; i < side.length; i++) operands += Math.abs(side[i]!) + (ref ? Math.abs(ref[i]!) : 0);
  return side.length ? (ref ? beta : 1) * operands / side.length : 0;
}

/** pairwiseLoss (and dpoLoss with the refs set). */
export function preferenceLossRef(chosen: ArrayLike<number>, rejected: ArrayLike<number>, opts: LossRefOptions,
  round: Round = f64): LossRef {
  const r = round;
  const n = chosen.length;
  const kind = opts.kind ?? 'sigmoid';
  const beta = opts.beta ?? 1;
  const s = opts.labelSmoothing ?? 0;
  const coef = opts.centerCoef ?? 0;
  const N = opts.normalizer ?? n;
  const out: LossRef = {
    loss: 0, gradChosen: new Float64Array(n), gradRejected: new Float64Array(n), accuracy: 0, meanMargin: 0,
    chosenReward: 0, rejectedReward: 0, gradMagnitude: 0, differences: new Float64Array(n),
  };
  let lossSum = 0;
  let centerSum = 0;
  let marginSum = 0;
  let correct = 0;
  let chosenSum = 0;
  let rejectedSum = 0;
  const dpo = opts.refChosen !== undefined && opts.refRejected !== undefined;
  for (let i = 0; i < n; i++) {
    const c = chosen[i]!;
    const rej = rejected[i]!;
    const cs = dpo ? r(c - opts.refChosen![i]!) : c;
    const rs = dpo ? r(rej - opts.refRejected![i]!) : rej;
    const d = dpo ? r(cs - rs) : r(c - rej);
    const t = pairTerms(kind, d, opts.margin ? opts.margin[i]! : 0, beta, s, r);
    const g = r(t.slope / N);
    const sum = r(c + rej);
    const center = coef > 0 ? r(r(r(2 * coef) * sum) / N) : 0;
    out.gradChosen[i] = r(g + center);
    out.gradRejected[i] = r(center - g);
    out.gradMagnitude = Math.max(out.gradMagnitude, Math.abs(g) + Math.abs(center));
    out.differences[i] = d;
    lossSum = r(lossSum + t.loss);
    if (coef > 0) centerSum = r(centerSum + r(sum * sum));
    marginSum = r(marginSum + d);
    chosenSum = r(chosenSum + cs);
    rejectedSum = r(rejectedSum + rs);
    if (d > 0) correct++;
  }
  out.loss = r(r(lossSum / N) + (coef > 0 ? r(coef * r(centerSum / N)) : 0));
  out.accuracy = r(correct / n);
  out.meanMargin = r(marginSum / n);
  const rewardBeta = dpo ? beta : 1;
  out.chosenReward = r(rewardBeta * r(chosenSum / n));
  out.rejectedReward = r(rewardBeta * r(rejectedSum / n));
  return out;
}

/** sequenceLogProbs: masked row sums (or means) of [rows, steps] token log-probs. */
export function sequenceLogProbsRef(tokenLogprobs: ArrayLike<number>, mask: ArrayLike<number>, rows: number,
  steps: number, reduce: Reduce, round: Round = f64): Float64Array {
  const out = new Float64Array(rows);
  for (let b = 0; b < rows; b++) {
    let sum = 0;
    let count = 0;
    for (let t = 0; t < steps; t++)
      if (mask[b * steps + t] !== 0) {
        sum = round(sum + tokenLogprobs[b * steps + t]!);
        count++;
      }
    out[b] = reduce === 'sum' ? sum : count > 0 ? round(sum / count) : 0;
  }
  return out;
}

/** sequenceLogProbsBackward: the gradient of sequenceLogProbs wrt the token log-probs. */
export function sequenceLogProbsBackwardRef(gradSequence: ArrayLike<number>, mask: ArrayLike<number>, rows: number,
  steps: number, reduce: Reduce, round: Round = f64): Float64Array {
  const out = new Float64Array(rows * steps);
  for (let b = 0; b < rows; b++) {
    let count = 0;
    for (let t = 0; t < steps; t++) if (mask[b * steps + t] !== 0) count++;
    const scale = reduce === 'sum' ? gradSequence[b]! : count > 0 ? round(gradSequence[b]! / count) : 0;
    for (let t = 0; t < steps; t++) out[b * steps + t] = mask[b * steps + t] !== 0 ? scale : 0;
  }
  return out;
}
