/**
 * Random inputs for the PPO family's tests, selftest and GPU tests: float32
 * values kept away from the kinks of max / min so that the kernels, the
 * naive float32 run and the float64 reference (and finite differences)
 * all take the same branch.
 */
import type { Aggregation, KlEstimator } from '../../lib/index.js';
import type { Rng } from '../helpers/random.js';
import type { PolicyInputs, ValueInputs } from './ppo.js';

/** Mask patterns: none, random, random with empty rows (and a full one), all empty. */
export type MaskKind = 'none' | 'random' | 'empty rows' | 'all empty';

export const AGGREGATIONS: Aggregation[] = ['token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean', 'seq-mean-token-sum-norm'];
export const MASKS: MaskKind[] = ['none', 'random', 'empty rows', 'all empty'];
export const KLS: (KlEstimator | undefined)[] = [undefined, 'k1', 'k2', 'k3'];

/** Every policy-loss option combination the parity tests cover, with a label naming it. */
export function* policyOptionGrid(): Generator<{ options: PolicyDraw; label: string }> {
  for (const aggregation of AGGREGATIONS)
    for (const dualClip of [undefined, 3])
      for (const klEstimator of KLS)
        for (const entropyCoef of [undefined, 0.01])
          for (const mask of MASKS)
            yield {
              options: { mask, aggregation, dualClip, klEstimator, entropyCoef },
              label: `${aggregation} dual=${dualClip} kl=${klEstimator} H=${entropyCoef} mask=${mask}`,
            };
}

export function randomMask(rng: Rng, B: number, T: number, kind: MaskKind): Uint8Array | undefined {
  if (kind === 'none') return undefined;
  if (kind === 'all empty') return new Uint8Array(B * T);
  const mask = rng.mask(B * T, 0.7);
  if (kind === 'empty rows')
    for (let b = 0; b < B; b++) {
      const fill = b % 3 === 0 ? 0 : b % 3 === 1 ? 1 : -1;
      if (fill >= 0) mask.fill(fill, b * T, (b + 1) * T);
    }
  return mask;
}

/** |x / k - 1| > 1e-3 for every kink k: far enough that float32 and float64 agree on every side. */
function awayFrom(x: number, kinks: readonly number[]): boolean {
  return kinks.every((k) => Math.abs(x / k - 1) > 1e-3);
}

export interface PolicyDraw {
  mask?: MaskKind;
  clipLow?: number;
  clipHigh?: number;
  dualClip?: number;
  aggregation?: Aggregation;
  klEstimator?: KlEstimator;
  klCoef?: number;
  entropyCoef?: number;
  /** Standard deviation of logprobs - oldLogprobs (default 0.3: many tokens clip at 0.2). */
  spread?: number;
}

/**
 * Random policy-loss inputs, float32 values, with every ratio and advantage
 * away from the kinks of max / min (the clip bounds, the dual-clip bound,
 * A = 0) and log-ratios inside ±20, so that finite differences and float32
 * runs see the same branch as the float64 reference.
 */
export function randomPolicyInputs(rng: Rng, B: number, T: number, draw: PolicyDraw = {}): PolicyInputs {
  const n = B * T;
  const clipLow = draw.clipLow ?? 0.2;
  const clipHigh = draw.clipHigh ?? clipLow;
  const kinks = [1 - clipLow, 1 + clipHigh, ...(draw.dualClip ? [draw.dualClip] : [])];
  const logprobs = new Float32Array(n);
  const oldLogprobs = new Float32Array(n);
  const advantages = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    logprobs[i] = -0.05 - Math.abs(rng.normal()) * 2;
    do oldLogprobs[i] = logprobs[i]! - (draw.spread ?? 0.3) * rng.normal();
    while (!awayFrom(Math.exp(Math.fround(logprobs[i]! - oldLogprobs[i]!)), kinks));
    do advantages[i] = rng.normal();
    while (Math.abs(advantages[i]!) < 1e-3);
  }
  const x: PolicyInputs = {
    B, T, logprobs, oldLogprobs, advantages, mask: randomMask(rng, B, T, draw.mask ?? 'none'),
    clipLow, clipHigh, aggregation: draw.aggregation ?? 'token-mean',
  };
  if (draw.dualClip !== undefined) x.dualClip = draw.dualClip;
  if (draw.klEstimator) {
    const ref = new Float32Array(n);
    for (let i = 0; i < n; i++) ref[i] = logprobs[i]! - 0.2 * rng.normal();
    x.refLogprobs = ref;
    x.klEstimator = draw.klEstimator;
    x.klCoef = draw.klCoef ?? 0.1;
  }
  if (draw.entropyCoef !== undefined) {
    x.entropy = rng.uniforms(n, 0, 3);
    x.entropyCoef = draw.entropyCoef;
  }
  return x;
}

/**
 * Random value-loss inputs, with every clipped value away from the kinks:
 * v - oldV away from ±clip and (v - R)^2 away from (clip(v) - R)^2.
 */
export function randomValueInputs(rng: Rng, B: number, T: number, draw: { mask?: MaskKind; clip?: number; aggregation?: Aggregation } = {}): ValueInputs {
  const n = B * T;
  const values = new Float32Array(n);
  const oldValues = new Float32Array(n);
  const returns = new Float32Array(n);
  const c = draw.clip ?? 0.2;
  for (let i = 0; i < n; i++) {
    for (;;) {
      values[i] = rng.normal();
      oldValues[i] = values[i]! - 0.3 * rng.normal();
      returns[i] = values[i]! + rng.normal();
      const delta = Math.abs(Math.fround(values[i]! - oldValues[i]!));
      const clipped = Math.min(Math.max(values[i]!, oldValues[i]! - c), oldValues[i]! + c);
      const l1 = (values[i]! - returns[i]!) ** 2;
      const l2 = (clipped - returns[i]!) ** 2;
      if (Math.abs(delta - c) > 1e-3 && (l1 === l2 || Math.abs(l1 / l2 - 1) > 1e-3)) break;
    }
  }
  const x: ValueInputs = { B, T, values, oldValues, returns, mask: randomMask(rng, B, T, draw.mask ?? 'none'), aggregation: draw.aggregation ?? 'token-mean' };
  if (draw.clip !== undefined) x.clip = draw.clip;
  return x;
}
