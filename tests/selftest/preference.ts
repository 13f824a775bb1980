/**
 * Selftest cases of the preference family: each kernel against the float64
 * reference, error over the rule's tolerance (4x the naive float32 run's
 * error plus 4 ulps of the largest value, or of the size of a gradient's
 * terms where they may cancel), worst output of the case.
 */
import {
  type Device, type PreferenceKind, type SequenceReduce, dpoLoss, pairwiseLoss, sequenceLogProbs, sequenceLogProbsBackward,
  tensor,
} from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { EPS, derivedTolerance, errorStats, f32, maxAbs } from '../helpers/tolerance.js';
import {
  type LossRefOptions, preferenceLossRef, rewardScale, sequenceLogProbsBackwardRef, sequenceLogProbsRef,
} from '../reference/preference.js';
import type { SelftestCase, SelftestResult } from './index.js';

/** The worst of several outputs, as error / tolerance (so the case passes at <= 1). */
function judge(parts: [string, ArrayLike<number>, ArrayLike<number>, ArrayLike<number>, number?][]): SelftestResult {
  let worst: SelftestResult = { error: 0, tolerance: 1 };
  for (const [name, out, exact, naive, scale = maxAbs(exact)] of parts) {
    const tol = derivedTolerance(naive, exact, 4, 4 * EPS.float32 * scale);
    const e = errorStats(out, exact);
    const ratio = e.mismatchedNonFinite > 0 ? Infinity : tol > 0 ? e.maxAbs / tol : e.maxAbs === 0 ? 0 : Infinity;
    if (!(ratio <= worst.error)) worst = { error: ratio, tolerance: 1, detail: `worst: ${name}` };
  }
  return worst;
}

function lossCase(name: string, n: number, kind: PreferenceKind, dpo: boolean, extra: LossRefOptions): SelftestCase {
  return {
    op: dpo ? 'dpoLoss' : 'pairwiseLoss',
    name,
    run(device: Device) {
      const rng = new Rng();
      const t = (a: Float32Array) => tensor(a, undefined, { device });
      let c: Float32Array, r: Float32Array, o: LossRefOptions;
      let res;
      if (dpo) {
        const refChosen = rng.normals(n, 20, -120);
        const refRejected = rng.normals(n, 20, -120);
        c = refChosen.map((v) => v + rng.normal());
        r = refRejected.map((v) => v + rng.normal());
        o = { kind, beta: 0.1, ...extra, refChosen, refRejected };
        res = dpoLoss(t(c), t(r), t(refChosen), t(refRejected), { kind, beta: o.beta, labelSmoothing: o.labelSmoothing });
      } else {
        c = rng.normals(n, 3);
        r = rng.normals(n, 3);
        o = { kind, ...extra, margin: rng.uniforms(n) };
        res = pairwiseLoss(t(c), t(r), { ...o, margin: t(o.margin as Float32Array) });
      }
      const exact = preferenceLossRef(c, r, o);
      const naive = preferenceLossRef(c, r, o, f32);
      return judge([
        ['loss', [res.loss.item()], [exact.loss], [naive.loss]],
        ['gradChosen', res.gradChosen.toArray(), exact.gradChosen, naive.gradChosen, exact.gradMagnitude],
        ['gradRejected', res.gradRejected.toArray(), exact.gradRejected, naive.gradRejected, exact.gradMagnitude],
        ['accuracy', [res.accuracy.item()], [exact.accuracy], [naive.accuracy]],
        ['meanMargin', [res.meanMargin.item()], [exact.meanMargin], [naive.meanMargin]],
        ['chosenReward', [res.chosenReward.item()], [exact.chosenReward], [naive.chosenReward],
          rewardScale(c, o.refChosen, o.beta ?? 1)],
        ['rejectedReward', [res.rejectedReward.item()], [exact.rejectedReward], [naive.rejectedReward],
          rewardScale(r, o.refRejected, o.beta ?? 1)],
      ]);
    },
  };
}

function sequenceCase(rows: number, steps: number, reduce: SequenceReduce): SelftestCase {
  return {
    op: 'sequenceLogProbs',
    name: `[${rows}, ${steps}] ${reduce} + backward`,
    run(device: Device) {
      const rng = new Rng();
      const lp = rng.uniforms(rows * steps, -12, 0);
      const mask = rng.mask(rows * steps, 0.7);
      const g = rng.normals(rows);
      const m = tensor(mask, [rows, steps], { device });
      const out = sequenceLogProbs(tensor(lp, [rows, steps], { device }), m, { reduce }).toArray();
      const grad = sequenceLogProbsBackward(tensor(g, undefined, { device }), m, { reduce }).toArray();
      return judge([
        ['forward', out, sequenceLogProbsRef(lp, mask, rows, steps, reduce), sequenceLogProbsRef(lp, mask, rows, steps, reduce, f32)],
        ['backward', grad, sequenceLogProbsBackwardRef(g, mask, rows, steps, reduce), sequenceLogProbsBackwardRef(g, mask, rows, steps, reduce, f32)],
      ]);
    },
  };
}

export const PREFERENCE_CASES: SelftestCase[] = [
  lossCase('B=5000 sigmoid margin smoothing center', 5000, 'sigmoid', false, { beta: 0.5, labelSmoothing: 0.1, centerCoef: 0.01 }),
  lossCase('B=16384 ipo', 16384, 'ipo', true, {}),
  lossCase('B=1025 hinge', 1025, 'hinge', true, { beta: 0.3 }),
  sequenceCase(64, 1025, 'mean'),
];
