/**
 * Shared by the PPO test files: run the ops on plain arrays, compare with the
 * float64 reference under the tolerance rule.
 */
import { expect } from 'vitest';
import { type Device, type Tensor, ppoPolicyLoss, ppoValueLoss, tensor } from '../lib/index.js';
import { EPS, derivedTolerance, errorStats, f32, maxAbs } from './helpers/tolerance.js';
import {
  type PolicyInputs, type PolicyResult, type ValueInputs, type ValueResult, ppoPolicyLossReference,
  ppoValueLossReference,
} from './reference/ppo.js';

export interface PolicyOutput {
  loss: number;
  gradLogprobs: Float32Array;
  gradEntropy?: Float32Array;
  clipFraction: number;
  clipFractionLower: number;
  approxKl: number;
  kl?: number;
}

export function on(data: ArrayLike<number>, x: { B: number; T: number }, device: Device, dtype: 'float32' | 'uint8' = 'float32'): Tensor {
  return tensor(dtype === 'uint8' ? Uint8Array.from(data) : Float32Array.from(data), [x.B, x.T], { device });
}

/** `advantages`: in place of x's (e.g. one per row, [B]). */
export function runPolicy(x: PolicyInputs, device: Device, advantages?: Tensor): PolicyOutput {
  const r = ppoPolicyLoss(on(x.logprobs, x, device), on(x.oldLogprobs, x, device), advantages ?? on(x.advantages, x, device), {
    mask: x.mask && on(x.mask, x, device, 'uint8'),
    clipLow: x.clipLow, clipHigh: x.clipHigh, dualClip: x.dualClip, aggregation: x.aggregation,
    refLogprobs: x.refLogprobs && on(x.refLogprobs, x, device), klCoef: x.klCoef, klEstimator: x.klEstimator,
    entropy: x.entropy && on(x.entropy, x, device), entropyCoef: x.entropyCoef, normalizer: x.normalizer,
    importanceSampling: x.importanceSampling,
  });
  const out: PolicyOutput = {
    loss: r.loss.item(),
    gradLogprobs: r.gradLogprobs.toArray(),
    clipFraction: r.clipFraction.item(),
    clipFractionLower: r.clipFractionLower.item(),
    approxKl: r.approxKl.item(),
  };
  if (r.gradEntropy) out.gradEntropy = r.gradEntropy.toArray();
  if (r.kl) out.kl = r.kl.item();
  return out;
}

export function runValue(x: ValueInputs, device: Device): { loss: number; gradValues: Float32Array; clipFraction: number } {
  const r = ppoValueLoss(on(x.values, x, device), on(x.oldValues, x, device), on(x.returns, x, device), {
    mask: x.mask && on(x.mask, x, device, 'uint8'), clip: x.clip, aggregation: x.aggregation, normalizer: x.normalizer,
  });
  return { loss: r.loss.item(), gradValues: r.gradValues.toArray(), clipFraction: r.clipFraction.item() };
}

/**
 * The tolerance rule: 4 × the naive float32 run's error, plus a floor of 8
 * float32 ulps at the scale of the values (their largest magnitude; for a
 * sum, the magnitude of its terms) for when the naive run happens to round
 * like the reference while the kernel sums in another order or fuses a
 * multiply-add.
 */
export function expectClose(out: ArrayLike<number>, ref: ArrayLike<number>, naive: ArrayLike<number>, scale: number, what: string): void {
  const tol = derivedTolerance(naive, ref, 4, 8 * EPS.float32 * scale);
  const e = errorStats(out, ref);
  expect(e.mismatchedNonFinite, `${what}: non-finite mismatch at ${e.worst} (${out[e.worst]} vs ${ref[e.worst]})`).toBe(0);
  expect(e.maxAbs, `${what}: worst at ${e.worst} (${out[e.worst]} vs ${ref[e.worst]}), tolerance ${tol}`).toBeLessThanOrEqual(tol);
}

/** Every output of ppoPolicyLoss on `device` against the reference. */
export function checkPolicy(x: PolicyInputs, device: Device, what: string, advantages?: Tensor): PolicyOutput {
  const ref = ppoPolicyLossReference(x);
  const naive = ppoPolicyLossReference(x, f32);
  const out = runPolicy(x, device, advantages);
  comparePolicy(out, ref, naive, what);
  return out;
}

export function comparePolicy(out: PolicyOutput, ref: PolicyResult, naive: PolicyResult, what: string): void {
  expectClose([out.loss], [ref.loss], [naive.loss], ref.lossMagnitude, `${what} loss`);
  expectClose(out.gradLogprobs, ref.gradLogprobs, naive.gradLogprobs, ref.gradMagnitude, `${what} gradLogprobs`);
  for (const key of ['clipFraction', 'clipFractionLower', 'approxKl'] as const)
    expectClose([out[key]], [ref[key]], [naive[key]], Math.abs(ref[key]), `${what} ${key}`);
  expect(out.gradEntropy === undefined, `${what} gradEntropy presence`).toBe(ref.gradEntropy === undefined);
  if (ref.gradEntropy) expectClose(out.gradEntropy!, ref.gradEntropy, naive.gradEntropy!, maxAbs(ref.gradEntropy), `${what} gradEntropy`);
  expect(out.kl === undefined, `${what} kl presence`).toBe(ref.kl === undefined);
  if (ref.kl !== undefined) expectClose([out.kl!], [ref.kl], [naive.kl!], ref.klMagnitude!, `${what} kl`);
}

export function checkValue(x: ValueInputs, device: Device, what: string): void {
  const ref: ValueResult = ppoValueLossReference(x);
  const naive = ppoValueLossReference(x, f32);
  const out = runValue(x, device);
  expectClose([out.loss], [ref.loss], [naive.loss], ref.lossMagnitude, `${what} loss`);
  expectClose(out.gradValues, ref.gradValues, naive.gradValues, maxAbs(ref.gradValues), `${what} gradValues`);
  expectClose([out.clipFraction], [ref.clipFraction], [naive.clipFraction], ref.clipFraction, `${what} clipFraction`);
}
