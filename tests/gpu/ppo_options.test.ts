/**
 * ppoPolicyLoss on cuda with sequence ratios (GSPO), a given normalizer, and
 * the mask counts taken at a host upload, against the float64 reference, cpu
 * and the device's own counts; empty and extreme inputs. The rest of the
 * family is in ppo.test.ts. node:test + node:assert only; skips without cuda.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addon } from '../../lib/addon.js';
import { concat, tensor } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { ppoPolicyLossReference } from '../reference/ppo.js';
import { AGGREGATIONS, MASKS, policyOptionGrid, randomPolicyInputs, randomValueInputs } from '../reference/ppo_inputs.js';
import { skip } from './common.js';
import { GPU, GRID_SHAPES, checkPolicy, checkValue, runPoisoned, runPolicy, runValue, sameBits } from './ppo_common.js';

describe('ppoPolicyLoss on cuda: sequence ratios, normalizers, mask counts', { skip }, () => {
  const rng = new Rng();

  it('matches the reference and cpu with sequence ratios (GSPO): every option on small shapes, per-row advantages on large ones', () => {
    const sequence = { importanceSampling: 'sequence' } as const;
    for (const [B, T] of GRID_SHAPES)
      for (const { options, label } of policyOptionGrid()) checkPolicy({ ...randomPolicyInputs(rng, B, T, options), ...sequence }, `${B}x${T} ${label} sequence`);
    for (const [B, T] of [[512, 4096], [3, 70000]] as const)
      for (const aggregation of ['token-mean', 'seq-mean-token-mean'] as const) {
        const x = randomPolicyInputs(rng, B, T, { mask: 'empty rows', aggregation, klEstimator: 'k3', entropyCoef: 0.01 });
        const perRow = Float32Array.from({ length: B }, (_, b) => x.advantages[b * T]!);
        const spread = { ...x, ...sequence, advantages: Float32Array.from({ length: B * T }, (_, i) => perRow[Math.floor(i / T)]!) };
        checkPolicy(spread, `${B}x${T} ${aggregation} sequence`);
        sameBits(runPolicy(spread, GPU, tensor(perRow, [B], { device: GPU })), runPolicy(spread, GPU), `${B}x${T} ${aggregation} sequence per row`);
      }
  });

  it('matches the reference and cpu with a given normalizer (no count, no grid barrier but for long rows\' seq-mean-token-mean)', () => {
    for (const [B, T] of [...GRID_SHAPES, [512, 4096], [2, 70000]] as const)
      for (const aggregation of AGGREGATIONS)
        for (const mask of B * T > 1e5 ? (['random'] as const) : MASKS) {
          const normalizer = 0.5 + rng.uniform() * 2 * B * T;
          const x = { ...randomPolicyInputs(rng, B, T, { mask, aggregation, klEstimator: 'k3', entropyCoef: 0.01 }), normalizer };
          checkPolicy(x, `${B}x${T} ${aggregation} mask=${mask} normalizer=${normalizer}`);
          checkValue({ ...randomValueInputs(rng, B, T, { mask, aggregation, clip: 0.2 }), normalizer }, `${B}x${T} ${aggregation} mask=${mask} normalizer=${normalizer} value`);
        }
    // A launch without the barrier leaves the block counter at 0 for the next one, with it.
    const x = randomPolicyInputs(rng, 64, 4096, { mask: 'random', klEstimator: 'k3', entropyCoef: 0.01 });
    for (const normalizer of [1000, 0, 1000, 0]) {
      const out = runPoisoned(x, 'token-mean', true, normalizer);
      const ref = ppoPolicyLossReference({ ...x, klCoef: 0.1, entropyCoef: 0.01, ...(normalizer ? { normalizer } : {}) });
      assert.ok(Math.abs(out.loss![0]! - ref.loss) <= 1e-4 * Math.max(1, ref.lossMagnitude), `normalizer ${normalizer}: loss ${out.loss![0]} vs ${ref.loss}`);
    }
  });

  it('takes the count of a mask uploaded from the host as its normalizer: the same bits as counting on the device', () => {
    // Every option and mask pattern (empty rows, all empty: no count then) on
    // packed tiles, one row per tile and row segments; the value loss too.
    const native = addon();
    const original = native.ppoPolicyLoss as (a: Record<string, unknown>) => number;
    const normalizers: number[] = [];
    native.ppoPolicyLoss = (a: Record<string, unknown>) => (normalizers.push(a.normalizer as number), original(a));
    try {
      for (const [B, T] of GRID_SHAPES)
        for (const { options, label } of policyOptionGrid()) {
          const x = randomPolicyInputs(rng, B, T, options);
          normalizers.length = 0;
          sameBits(runPolicy(x, GPU), runPolicy(x, GPU, undefined, false), `${B}x${T} ${label}`);
          const m = Array.from(x.mask ?? []);
          const valid = m.filter((v) => v !== 0).length;
          const nonEmpty = Array.from({ length: B }, (_, b) => m.slice(b * T, (b + 1) * T).some((v) => v !== 0)).filter(Boolean).length;
          const aggregation = x.aggregation ?? 'token-mean';
          const expected = aggregation === 'seq-mean-token-sum-norm' ? 0 : aggregation === 'token-mean' ? valid : nonEmpty;
          assert.deepEqual(normalizers, [expected, 0], `${B}x${T} ${label}: the normalizer passed, counted then not`);
        }
    } finally {
      native.ppoPolicyLoss = original;
    }
    const originalValue = native.ppoValueLoss as (a: Record<string, unknown>) => number;
    native.ppoValueLoss = (a: Record<string, unknown>) => (normalizers.push(a.normalizer as number), originalValue(a));
    try {
      const x = randomValueInputs(rng, 4, 33, { mask: 'empty rows', aggregation: 'seq-mean-token-sum' });
      normalizers.length = 0;
      runValue(x, GPU);
      runValue(x, GPU, false);
      const nonEmpty = Array.from({ length: 4 }, (_, b) => Array.from(x.mask!).slice(b * 33, (b + 1) * 33).some((v) => v !== 0)).filter(Boolean).length;
      assert.deepEqual(normalizers, [nonEmpty, 0], 'ppoValueLoss: the normalizer passed, counted then not');
    } finally {
      native.ppoValueLoss = originalValue;
    }
    for (const [B, T] of [...GRID_SHAPES, [512, 4096]] as const)
      for (const aggregation of AGGREGATIONS)
        for (const mask of B * T > 1e5 ? (['random'] as const) : MASKS) {
          const x = randomValueInputs(rng, B, T, { mask, aggregation, clip: 0.2 });
          const [a, b] = [runValue(x, GPU), runValue(x, GPU, false)];
          assert.ok(Object.is(a.loss, b.loss) && Object.is(a.clipFraction, b.clipFraction), `${B}x${T} ${aggregation} ${mask} value statistics`);
          assert.ok(Buffer.from(a.gradValues.buffer).equals(Buffer.from(b.gradValues.buffer)), `${B}x${T} ${aggregation} ${mask} gradValues`);
        }
  });

  it('keeps a mask\'s row counts through to(), reshape, slice and concat; drops them where the rows change', () => {
    const B = 6, T = 5;
    const bytes = Uint8Array.from({ length: B * T }, (_, i) => (i % 7 === 0 || i >= 20 ? 0 : 1 + (i % 3)));
    const counts = Array.from({ length: B }, (_, b) => bytes.slice(b * T, (b + 1) * T).filter((m) => m !== 0).length);
    const m = tensor(bytes, [B, T], { device: GPU });
    assert.deepEqual(Array.from(m._rowCounts!), counts);
    assert.deepEqual(Array.from(tensor(bytes, [B, T]).to(GPU)._rowCounts!), counts, 'cpu to cuda');
    assert.deepEqual(Array.from(m.to(GPU)._rowCounts!), counts, 'cuda to cuda');
    assert.deepEqual(Array.from(m.slice(1, 4)._rowCounts!), counts.slice(1, 4));
    assert.deepEqual(Array.from(concat([m.slice(4), m.slice(0, 2)])._rowCounts!), [...counts.slice(4), ...counts.slice(0, 2)]);
    assert.deepEqual(Array.from(m.reshape([2, 3, T])._rowCounts!), counts);
    assert.equal(m.reshape([T, B])._rowCounts, undefined, 'other rows');
    assert.equal(m.reshape([-1])._rowCounts, undefined);
    assert.equal(concat([m, m.reshape([B, T])])._rowCounts?.length, 2 * B);
    const bare = m.to(GPU);
    bare._rowCounts = undefined;
    assert.equal(concat([m, bare])._rowCounts, undefined, 'one part uncounted');
    assert.equal(tensor(new Float32Array(4), [2, 2], { device: GPU })._rowCounts, undefined, 'float32');
    assert.equal(tensor(bytes, [B, T])._rowCounts, undefined, 'cpu: the caller may change its array');
    // Counts are never heavier than both the mask and 64 MiB (4 bytes a row)
    const rows = 2 ** 25;
    assert.equal(tensor(new Uint8Array(rows), [rows, 1], { device: GPU })._rowCounts, undefined, '2^25 rows of 1');
    assert.equal(tensor(new Uint8Array(rows / 2), [rows / 2, 1], { device: GPU })._rowCounts?.length, rows / 2, '2^24 rows of 1');
  });

  it('gives zeros without a valid token, ignores NaN in masked tokens, clamps extreme log-ratios', () => {
    for (const [B, T] of [[4, 9], [0, 5], [5, 0], [3, 5000]] as const) {
      const out = runPolicy(randomPolicyInputs(rng, B, T, { mask: 'all empty', klEstimator: 'k1', entropyCoef: 0.1 }), GPU);
      assert.deepEqual([out.loss, out.clipFraction, out.clipFractionLower, out.approxKl, out.kl], [0, 0, 0, 0, 0]);
      assert.ok(out.gradLogprobs.every((g) => g === 0) && out.gradEntropy!.every((g) => g === 0));
    }
    const x = randomPolicyInputs(rng, 6, 3000, { mask: 'random', klEstimator: 'k2', dualClip: 3 });
    const clean = runPolicy(x, GPU);
    const lp = Float32Array.from(x.logprobs);
    for (let i = 0; i < lp.length; i++) if (!x.mask![i]) lp[i] = NaN;
    sameBits(runPolicy({ ...x, logprobs: lp }, GPU), clean, 'NaN in masked tokens');
    // Log-ratios 30, -30 (outside: no gradient) and exactly ±20 (the clamp passes it); signs for which the unclipped term wins.
    const far = randomPolicyInputs(rng, 2, 8);
    (far.oldLogprobs as Float32Array).set([-30, -30, -30, -30]);
    (far.logprobs as Float32Array).set([0, -60, -10, -50]);
    (far.advantages as Float32Array).set([-1, 1, -1, 1]);
    const out = checkPolicy(far, 'clamped log-ratios');
    assert.ok(Math.abs(out.gradLogprobs[0]!) === 0 && Math.abs(out.gradLogprobs[1]!) === 0);
    assert.ok(out.gradLogprobs[2]! > 0 && out.gradLogprobs[3]! < 0);
  });

  it('handles extreme values alike in full tiles (their copies with the dual clip on or off, min/max clamps)', () => {
    for (const dualClip of [undefined, 3]) {
      // Rows of 1024 tokens: every tile full. The clamped log-ratios above,
      // infinite log-probs, and A = -3e38 at a ratio of e^0.5, where both
      // surrogate terms overflow to +inf: a tie, half of -A r as gradient,
      // halved again by a dual clip (its bound is +inf too), by nothing else.
      const x = randomPolicyInputs(rng, 2, 1024, { dualClip });
      const lp = x.logprobs as Float32Array, old = x.oldLogprobs as Float32Array, adv = x.advantages as Float32Array;
      old.set([-30, -30, -30, -30, -30, -30], 100);
      lp.set([0, -60, -10, -50, Infinity, -Infinity], 100);
      adv.set([-1, 1, -1, 1, 1, -1], 100);
      const gpu = runPolicy(x, GPU);
      for (const i of [100, 101, 104, 105]) assert.equal(Math.abs(gpu.gradLogprobs[i]!), 0, `dual ${dualClip}: token ${i}`);
      // On the bounds: at +20 (A < 0) a dual clip binds, and takes the gradient.
      assert.ok((dualClip ? gpu.gradLogprobs[102] === 0 : gpu.gradLogprobs[102]! > 0) && gpu.gradLogprobs[103]! < 0,
        `dual ${dualClip}: on the bounds ${gpu.gradLogprobs[102]} ${gpu.gradLogprobs[103]}`);
      old[1500] = lp[1500]! - 0.5;
      adv[1500] = -3e38;
      const overflow = runPolicy(x, GPU);
      assert.equal(overflow.loss, Infinity);
      const half = (0.5 * 3e38 * Math.exp(Math.fround(lp[1500]! - old[1500]!))) / lp.length;
      const expected = dualClip ? half / 2 : half;
      assert.ok(Math.abs(overflow.gradLogprobs[1500]! / expected - 1) < 1e-5, `dual ${dualClip}: ${overflow.gradLogprobs[1500]} vs ${expected}`);
      // A NaN log-prob in a valid token: the loss is NaN; its gradient 0
      // (torch's clamp passes none to a NaN), and no other token's moves.
      lp[7] = NaN;
      const nan = runPolicy(x, GPU);
      assert.ok(Number.isNaN(nan.loss) && Math.abs(nan.gradLogprobs[7]!) === 0, `dual ${dualClip}: NaN token ${nan.gradLogprobs[7]}`);
      nan.gradLogprobs[7] = overflow.gradLogprobs[7]!;
      assert.ok(Buffer.from(nan.gradLogprobs.buffer).equals(Buffer.from(overflow.gradLogprobs.buffer)), `dual ${dualClip}: NaN moved other gradients`);
    }
  });
});
