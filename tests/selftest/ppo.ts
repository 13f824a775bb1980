/** Selftest cases of the PPO family: each op on fresh random inputs against its float64 reference. */
import { type Device, ppoPolicyLoss, ppoValueLoss, tensor } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { EPS, derivedTolerance, errorStats, f32, maxAbs } from '../helpers/tolerance.js';
import { type PolicyInputs, ppoPolicyLossReference, ppoValueLossReference } from '../reference/ppo.js';
import { randomPolicyInputs, randomValueInputs } from '../reference/ppo_inputs.js';
import type { SelftestCase, SelftestResult } from './index.js';

interface Check {
  what: string;
  out: ArrayLike<number>;
  ref: ArrayLike<number>;
  naive: ArrayLike<number>;
  /** Magnitude of the values (of a sum's terms) for the 8-ulp floor. */
  scale: number;
}

/** The output furthest from its tolerance (4 × the naive float32 run's error + 8 ulps at its scale). */
function worst(checks: Check[]): SelftestResult {
  let result: SelftestResult = { error: 0, tolerance: 0 };
  let ratio = -1;
  for (const c of checks) {
    const e = errorStats(c.out, c.ref);
    const error = e.mismatchedNonFinite > 0 ? Infinity : e.maxAbs;
    const tolerance = derivedTolerance(c.naive, c.ref, 4, 8 * EPS.float32 * c.scale);
    const r = error === 0 ? 0 : error / tolerance;
    if (r > ratio) {
      ratio = r;
      result = { error, tolerance, detail: c.what };
    }
  }
  return result;
}

function policyCase(name: string, B: number, T: number, make: (rng: Rng) => PolicyInputs): SelftestCase {
  return {
    op: 'ppoPolicyLoss',
    name,
    run(device: Device) {
      const x = make(new Rng());
      const on = (a: ArrayLike<number>, mask = false) => tensor(mask ? Uint8Array.from(a) : Float32Array.from(a), [B, T], { device });
      const r = ppoPolicyLoss(on(x.logprobs), on(x.oldLogprobs), on(x.advantages), {
        mask: x.mask && on(x.mask, true), dualClip: x.dualClip, aggregation: x.aggregation,
        refLogprobs: x.refLogprobs && on(x.refLogprobs), klCoef: x.klCoef, klEstimator: x.klEstimator,
        entropy: x.entropy && on(x.entropy), entropyCoef: x.entropyCoef, normalizer: x.normalizer,
        importanceSampling: x.importanceSampling,
      });
      const ref = ppoPolicyLossReference(x);
      const naive = ppoPolicyLossReference(x, f32);
      const checks: Check[] = [
        { what: 'loss', out: [r.loss.item()], ref: [ref.loss], naive: [naive.loss], scale: ref.lossMagnitude },
        { what: 'gradLogprobs', out: r.gradLogprobs.toArray(), ref: ref.gradLogprobs, naive: naive.gradLogprobs, scale: ref.gradMagnitude },
        { what: 'clipFraction', out: [r.clipFraction.item()], ref: [ref.clipFraction], naive: [naive.clipFraction], scale: ref.clipFraction },
        { what: 'approxKl', out: [r.approxKl.item()], ref: [ref.approxKl], naive: [naive.approxKl], scale: ref.approxKl },
      ];
      if (r.kl) checks.push({ what: 'kl', out: [r.kl.item()], ref: [ref.kl!], naive: [naive.kl!], scale: ref.klMagnitude! });
      if (r.gradEntropy)
        checks.push({ what: 'gradEntropy', out: r.gradEntropy.toArray(), ref: ref.gradEntropy!, naive: naive.gradEntropy!, scale: maxAbs(ref.gradEntropy!) });
      return worst(checks);
    },
  };
}

export const PPO_CASES: SelftestCase[] = [
  policyCase('B=64 T=512 token-mean masked', 64, 512, (rng) => randomPolicyInputs(rng, 64, 512, { mask: 'random' })),
  policyCase('B=64 T=512 token-mean masked, global normalizer', 64, 512, (rng) =>
    ({ ...randomPolicyInputs(rng, 64, 512, { mask: 'random' }), normalizer: 4 * 64 * 512 })),
  policyCase('B=16 T=3000 seq-mean-token-mean dual k3 H', 16, 3000, (rng) =>
    randomPolicyInputs(rng, 16, 3000, { mask: 'empty rows', aggregation: 'seq-mean-token-mean', dualClip: 3, klEstimator: 'k3', entropyCoef: 0.01 })),
  policyCase('B=64 T=512 seq-mean-token-mean GSPO (sequence ratio)', 64, 512, (rng) =>
    ({ ...randomPolicyInputs(rng, 64, 512, { mask: 'random', aggregation: 'seq-mean-token-mean' }), importanceSampling: 'sequence' })),
  {
    op: 'ppoValueLoss',
    name: 'B=64 T=512 clip 0.2 seq-mean-token-sum',
    run(device: Device) {
      const B = 64, T = 512;
      const x = randomValueInputs(new Rng(), B, T, { mask: 'random', clip: 0.2, aggregation: 'seq-mean-token-sum' });
      const on = (a: ArrayLike<number>, mask = false) => tensor(mask ? Uint8Array.from(a) : Float32Array.from(a), [B, T], { device });
      const r = ppoValueLoss(on(x.values), on(x.oldValues), on(x.returns), { mask: on(x.mask!, true), clip: 0.2, aggregation: x.aggregation });
      const ref = ppoValueLossReference(x);
      const naive = ppoValueLossReference(x, f32);
      return worst([
        { what: 'loss', out: [r.loss.item()], ref: [ref.loss], naive: [naive.loss], scale: ref.lossMagnitude },
        { what: 'gradValues', out: r.gradValues.toArray(), ref: ref.gradValues, naive: naive.gradValues, scale: maxAbs(ref.gradValues) },
        { what: 'clipFraction', out: [r.clipFraction.item()], ref: [ref.clipFraction], naive: [naive.clipFraction], scale: ref.clipFraction },
      ]);
    },
  },
];
