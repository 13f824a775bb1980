/**
 * The PPO family on cuda, against the float64 reference and the cpu backend:
 * every option, large shapes, per-row advantages, determinism, every output
 * written, the statistics of every launch; GSPO, normalizers and mask counts
 * are in ppo_options.test.ts. node:test + node:assert only (the GPU machine
 * has no node_modules): `npx tsc -p tsconfig.json && node --test
 * dist/tests/gpu/`. Skips when cuda is unavailable.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pairwiseLoss, tensor } from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { type PolicyInputs, ppoPolicyLossReference } from '../reference/ppo.js';
import { AGGREGATIONS, MASKS, policyOptionGrid, randomPolicyInputs, randomValueInputs } from '../reference/ppo_inputs.js';
import { skip } from './common.js';
import { GPU, GRID_SHAPES, LARGE_SHAPES, checkPolicy, checkValue, runPoisoned, runPolicy, sameBits, sameUpToContraction } from './ppo_common.js';

describe('ppoPolicyLoss on cuda', { skip }, () => {
  const rng = new Rng();

  it('matches the reference and cpu for every option combination on small shapes', () => {
    for (const [B, T] of GRID_SHAPES)
      for (const { options, label } of policyOptionGrid()) checkPolicy(randomPolicyInputs(rng, B, T, options), `${B}x${T} ${label}`);
  });

  it('matches the reference on large shapes', () => {
    LARGE_SHAPES.forEach(([B, T], k) => {
      // Two aggregations per shape (one of them per-row weighted), rotating.
      for (const aggregation of [AGGREGATIONS[k % 2]!, AGGREGATIONS[2 + (k % 2)]!]) {
        const x = randomPolicyInputs(rng, B, T, { mask: 'empty rows', aggregation, dualClip: 3, klEstimator: 'k3', entropyCoef: 0.01 });
        checkPolicy(x, `${B}x${T} ${aggregation}`);
      }
    });
  });

  it('takes one advantage per row ([B]) as it takes those advantages written out [B, T]', () => {
    // Packed tiles of many short rows, one row per tile, and rows cut into segments.
    for (const [B, T] of [[300, 3], [5, 1000], [7, 1024], [3, 4100]] as const)
      for (const aggregation of AGGREGATIONS) {
        const x = randomPolicyInputs(rng, B, T, { mask: 'empty rows', aggregation, klEstimator: 'k3', entropyCoef: 0.01 });
        const perRow = Float32Array.from({ length: B }, (_, b) => x.advantages[b * T]!);
        const spread = { ...x, advantages: Float32Array.from({ length: B * T }, (_, i) => perRow[Math.floor(i / T)]!) };
        sameUpToContraction(runPolicy(spread, GPU, tensor(perRow, [B], { device: GPU })), runPolicy(spread, GPU),
          ppoPolicyLossReference(spread), `${B}x${T} ${aggregation} per row`);
      }
  });

  it('counts a mask on the device as the host does, whatever the byte alignment of its full tiles', () => {
    // Whole tiles whose mask starts 4-byte aligned are counted a word at a
    // time, the rest a byte at a time: rows of 1025, 2049 and 3075 tokens
    // put full tiles at every alignment. Host-counted (the normalizer passed
    // in) against counted by the kernel: the same bits.
    for (const [B, T] of [[9, 1025], [5, 2049], [3, 3075]] as const)
      for (const aggregation of ['token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean'] as const) {
        const x = randomPolicyInputs(rng, B, T, { mask: 'random', aggregation });
        // Any nonzero byte is a valid token: some of them 0x80, 0xff, 2.
        x.mask = Uint8Array.from(x.mask!, (v, i) => (v ? [1, 0x80, 0xff, 2][i % 4]! : 0));
        sameBits(runPolicy(x, GPU, undefined, false), runPolicy(x, GPU), `${B}x${T} ${aggregation}`);
      }
  });

  it('is bit-identical from run to run', () => {
    for (const [B, T] of [[512, 4096], [8000, 300], [2, 70000]] as const)
      for (const aggregation of ['token-mean', 'seq-mean-token-mean'] as const) {
        const x = randomPolicyInputs(rng, B, T, { mask: 'random', aggregation, klEstimator: 'k3', entropyCoef: 0.01 });
        const first = runPolicy(x, GPU);
        for (let k = 0; k < 3; k++) sameBits(runPolicy(x, GPU), first, `${B}x${T} ${aggregation} run ${k + 1}`);
      }
  });

  it('writes every output element, masked ones included (outputs filled with NaN first)', () => {
    for (const [B, T, aggregation] of [[7, 300, 'seq-mean-token-mean'], [2, 5000, 'token-mean']] as const) {
      const x = randomPolicyInputs(rng, B, T, { mask: 'empty rows', aggregation, klEstimator: 'k3', entropyCoef: 0.01 });
      for (const [name, a] of Object.entries(runPoisoned(x, aggregation)))
        assert.ok(a.every(Number.isFinite), `${B}x${T} ${name} has unwritten elements`);
    }
  });

  it('writes its statistics on every launch: the block counter it shares with pairwiseLoss is back at 0 after each', () => {
    // With a mask a block arrives twice (barrier, then the last-block test),
    // without one once; many tiles or one; a multi-block pairwiseLoss between.
    // 20000 pairs: 20 blocks, so pairwiseLoss takes the block counter too.
    const c = tensor(rng.normals(20000), undefined, { device: GPU }), r = tensor(rng.normals(20000), undefined, { device: GPU });
    for (let round = 0; round < 2; round++)
      for (const [B, T] of [[64, 4096], [1, 1], [8000, 300], [3, 4100]] as const)
        for (const masked of [true, false]) {
          const x = randomPolicyInputs(rng, B, T, { mask: 'random', klEstimator: 'k3', entropyCoef: 0.01 });
          const what = `round ${round} ${B}x${T} ${masked ? 'masked' : 'no mask'}`;
          const out = runPoisoned(x, 'token-mean', masked);
          for (const key of ['loss', 'clipFraction', 'clipFractionLower', 'approxKl', 'kl'])
            assert.ok(Number.isFinite(out[key]![0]), `${what}: ${key} not written`);
          // runPoisoned's options: those of x, klCoef 0.1 and entropyCoef 0.01.
          const refInputs: PolicyInputs = { ...x, klCoef: 0.1, entropyCoef: 0.01 };
          if (!masked) delete refInputs.mask;
          const ref = ppoPolicyLossReference(refInputs);
          assert.ok(Math.abs(out.loss![0]! - ref.loss) <= 1e-4 * Math.max(1, ref.lossMagnitude), `${what}: loss ${out.loss![0]} vs ${ref.loss}`);
          assert.ok(Number.isFinite(pairwiseLoss(c, r).loss.item()), `${what}: pairwiseLoss after it`);
        }
  });
});

describe('ppoValueLoss on cuda', { skip }, () => {
  const rng = new Rng();

  it('matches the reference for every aggregation, clip and mask pattern', () => {
    for (const [B, T] of GRID_SHAPES)
      for (const aggregation of AGGREGATIONS)
        for (const clip of [undefined, 0.2])
          for (const mask of MASKS) checkValue(randomValueInputs(rng, B, T, { mask, aggregation, clip }), `${B}x${T} ${aggregation} clip=${clip} mask=${mask}`);
    LARGE_SHAPES.forEach(([B, T], k) => {
      for (const aggregation of [AGGREGATIONS[k % 2]!, AGGREGATIONS[2 + (k % 2)]!])
        checkValue(randomValueInputs(rng, B, T, { mask: 'empty rows', aggregation, clip: 0.2 }), `${B}x${T} ${aggregation}`);
    });
  });
});
