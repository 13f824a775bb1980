/** Selftest cases of the advantage family: each op on fresh random inputs against its float64 reference. */
import { type Device, gae, groupAdvantages, tensor, whiten } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { EPS, derivedTolerance, errorStats, f32, maxAbs } from '../helpers/tolerance.js';
import { gaeReference, groupAdvantagesReference, randomTrajectories, whitenReference } from '../reference/advantages.js';
import type { SelftestCase, SelftestResult } from './index.js';

/** Max abs error against the reference; tolerance 4 x the naive float32 run's + 4 ulps. */
function compare(out: ArrayLike<number>, ref: Float64Array, naive: Float64Array): SelftestResult {
  const e = errorStats(out, ref);
  const tolerance = derivedTolerance(naive, ref, 4, 4 * EPS.float32 * maxAbs(ref));
  return { error: e.mismatchedNonFinite > 0 ? Infinity : e.maxAbs, tolerance };
}

export const ADVANTAGES_CASES: SelftestCase[] = [
  {
    op: 'gae',
    name: 'B=64 T=1000 mask dones truncated',
    run(device: Device) {
      const B = 64, T = 1000;
      const x = randomTrajectories(new Rng(), B, T, { mask: true, dones: true, truncated: true, lastValues: true });
      const on = (a: ArrayLike<number>, dtype: 'float32' | 'uint8', shape = [B, T]) =>
        tensor(Float32Array.from(a), shape, { dtype, device });
      const { advantages } = gae(on(x.rewards, 'float32'), on(x.values, 'float32'), {
        gamma: x.gamma, lambda: x.lambda, mask: on(x.mask!, 'uint8'), dones: on(x.dones!, 'uint8'),
        truncated: on(x.truncated!, 'uint8'), truncatedValues: on(x.truncatedValues!, 'float32'),
        lastValues: on(x.lastValues!, 'float32', [B]),
      });
      return compare(advantages.toArray(), gaeReference(x).advantages, gaeReference(x, f32).advantages);
    },
  },
  {
    op: 'whiten',
    name: '[64, 1000] masked',
    run(device: Device) {
      const rng = new Rng();
      const x = rng.normals(64_000, 2, 1), mask = rng.mask(64_000, 0.7);
      const out = whiten(tensor(x, [64, 1000], { device }), { mask: tensor(mask, [64, 1000], { device }) });
      return compare(out.toArray(), whitenReference(x, { mask }), whitenReference(x, { mask }, f32));
    },
  },
  {
    op: 'groupAdvantages',
    name: 'G=256 K=16 grpo',
    run(device: Device) {
      const s = new Rng().normals(256 * 16);
      const out = groupAdvantages(tensor(s, undefined, { device }), { groupSize: 16, estimator: 'grpo' });
      return compare(out.toArray(), groupAdvantagesReference(s, 16, 'grpo'), groupAdvantagesReference(s, 16, 'grpo', 1e-6, f32));
    },
  },
];
