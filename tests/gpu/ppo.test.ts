/**
 * The PPO family on cuda, against the float64 reference and the cpu backend.
 * node:test + node:assert only (the GPU machine has no node_modules):
 * `npx tsc -p tsconfig.json && node --test dist/tests/gpu/`. Skips when cuda
 * is unavailable.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addon } from '../../lib/addon.js';
import { type Device, Tensor, concat, pairwiseLoss, ppoPolicyLoss, ppoValueLoss, tensor } from '../../lib/index.js';
import { runOp } from '../../lib/stream.js';
import { Rng } from '../helpers/random.js';
import { EPS, derivedTolerance, errorStats, f32, maxAbs } from '../helpers/tolerance.js';
import {
  type PolicyInputs, type PolicyResult, type ValueInputs, ppoPolicyLossReference, ppoValueLossReference,
} from '../reference/ppo.js';
import { AGGREGATIONS, MASKS, policyOptionGrid, randomPolicyInputs, randomValueInputs } from '../reference/ppo_inputs.js';
import { skip } from './common.js';

const GPU: Device = 'cuda:0';

interface Outputs {
  loss: number;
  clipFraction: number;
  clipFractionLower: number;
  approxKl: number;
  kl?: number;
  gradLogprobs: Float32Array;
  gradEntropy?: Float32Array;
}

function on(data: ArrayLike<number>, x: { B: number; T: number }, device: Device, mask = false) {
  return tensor(mask ? Uint8Array.from(data) : Float32Array.from(data), [x.B, x.T], { device });
}

/**
 * x's mask on `device`. `counted` false: without the row counts its upload
 * took (Tensor._rowCounts), so that the kernel counts the mask itself.
 */
function maskOn(x: { B: number; T: number; mask?: ArrayLike<number> }, device: Device, counted = true): Tensor | undefined {
  if (!x.mask) return undefined;
  const t = on(x.mask, x, device, true);
  if (!counted) t._rowCounts = undefined;
  return t;
}

/** `advantages`: in place of x's (e.g. one per row, [B]). */
function runPolicy(x: PolicyInputs, device: Device, advantages?: Tensor, counted = true): Outputs {
  const r = ppoPolicyLoss(on(x.logprobs, x, device), on(x.oldLogprobs, x, device), advantages ?? on(x.advantages, x, device), {
    mask: maskOn(x, device, counted), clipLow: x.clipLow, clipHigh: x.clipHigh, dualClip: x.dualClip,
    aggregation: x.aggregation, refLogprobs: x.refLogprobs && on(x.refLogprobs, x, device), klCoef: x.klCoef,
    klEstimator: x.klEstimator, entropy: x.entropy && on(x.entropy, x, device), entropyCoef: x.entropyCoef,
    normalizer: x.normalizer, importanceSampling: x.importanceSampling,
  });
  const out: Outputs = {
    loss: r.loss.item(), clipFraction: r.clipFraction.item(), clipFractionLower: r.clipFractionLower.item(),
    approxKl: r.approxKl.item(), gradLogprobs: r.gradLogprobs.toArray(),
  };
  if (r.kl) out.kl = r.kl.item();
  if (r.gradEntropy) out.gradEntropy = r.gradEntropy.toArray();
  return out;
}

function runValue(x: ValueInputs, device: Device, counted = true) {
  const r = ppoValueLoss(on(x.values, x, device), on(x.oldValues, x, device), on(x.returns, x, device), {
    mask: maskOn(x, device, counted), clip: x.clip, aggregation: x.aggregation, normalizer: x.normalizer,
  });
  return { loss: r.loss.item(), clipFraction: r.clipFraction.item(), gradValues: r.gradValues.toArray() };
}

/**
 * 4 × the naive float32 run's error, plus 8 ulps at the values' scale (see
 * tests/ppo_util.ts). With `other` set, compares out with other (cpu)
 * instead of the reference: each may be off by the rule, so twice it.
 */
function assertClose(out: ArrayLike<number>, exact: ArrayLike<number>, naive: ArrayLike<number>, scale: number, what: string, other?: ArrayLike<number>): void {
  const k = other ? 2 : 1;
  const tol = derivedTolerance(naive, exact, 4 * k, 8 * k * EPS.float32 * scale);
  const against = other ?? exact;
  const e = errorStats(out, against);
  assert.equal(e.mismatchedNonFinite, 0, `${what}: non-finite mismatch at ${e.worst}`);
  assert.ok(e.maxAbs <= tol, `${what}: error ${e.maxAbs} at ${e.worst} (${out[e.worst]} vs ${against[e.worst]}) > tolerance ${tol}`);
}

function comparePolicy(out: Outputs, ref: PolicyResult, naive: PolicyResult, what: string, cpu?: Outputs): void {
  assertClose([out.loss], [ref.loss], [naive.loss], ref.lossMagnitude, `${what} loss`, cpu && [cpu.loss]);
  assertClose(out.gradLogprobs, ref.gradLogprobs, naive.gradLogprobs, ref.gradMagnitude, `${what} gradLogprobs`, cpu?.gradLogprobs);
  for (const key of ['clipFraction', 'clipFractionLower', 'approxKl'] as const)
    assertClose([out[key]], [ref[key]], [naive[key]], Math.abs(ref[key]), `${what} ${key}`, cpu && [cpu[key]]);
  assert.equal(out.gradEntropy === undefined, ref.gradEntropy === undefined, `${what} gradEntropy presence`);
  if (ref.gradEntropy)
    assertClose(out.gradEntropy!, ref.gradEntropy, naive.gradEntropy!, maxAbs(ref.gradEntropy), `${what} gradEntropy`, cpu?.gradEntropy);
  assert.equal(out.kl === undefined, ref.kl === undefined, `${what} kl presence`);
  if (ref.kl !== undefined) assertClose([out.kl!], [ref.kl], [naive.kl!], ref.klMagnitude!, `${what} kl`, cpu && [cpu.kl!]);
}

/** cuda against the reference, and against cpu. */
function checkPolicy(x: PolicyInputs, what: string): Outputs {
  const ref = ppoPolicyLossReference(x);
  const naive = ppoPolicyLossReference(x, f32);
  const gpu = runPolicy(x, GPU);
  comparePolicy(gpu, ref, naive, `${what} cuda`);
  comparePolicy(gpu, ref, naive, `${what} cuda vs cpu`, runPolicy(x, 'cpu'));
  return gpu;
}

function checkValue(x: ValueInputs, what: string): void {
  const ref = ppoValueLossReference(x);
  const naive = ppoValueLossReference(x, f32);
  const gpu = runValue(x, GPU);
  assertClose([gpu.loss], [ref.loss], [naive.loss], ref.lossMagnitude, `${what} loss`);
  assertClose(gpu.gradValues, ref.gradValues, naive.gradValues, maxAbs(ref.gradValues), `${what} gradValues`);
  assertClose([gpu.clipFraction], [ref.clipFraction], [naive.clipFraction], ref.clipFraction, `${what} clipFraction`);
}

/**
 * ppoPolicyLoss straight through the addon into outputs filled with NaN
 * bits first (x must have a mask, refLogprobs and entropy): an element the
 * kernel fails to write stays NaN.
 */
function runPoisoned(x: PolicyInputs, aggregation: string, masked = true, normalizer = 0): Record<string, Float32Array> {
  const poisoned = (shape: number[]) => {
    const t = Tensor.empty(shape, 'float32', GPU);
    addon().fillDevice(t._buffer!, 0xff);
    return t;
  };
  const { B, T } = x;
  const outs = {
    gradLogprobs: poisoned([B, T]), gradEntropy: poisoned([B, T]), loss: poisoned([]), clipFraction: poisoned([]),
    clipFractionLower: poisoned([]), approxKl: poisoned([]), kl: poisoned([]),
  };
  const input = (a: ArrayLike<number>, mask = false) => on(a, x, GPU, mask)._storage();
  runOp('ppoPolicyLoss', 0, {
    rows: B, steps: T, logprobs: input(x.logprobs), oldLogprobs: input(x.oldLogprobs), advantages: input(x.advantages),
    mask: masked ? input(x.mask!, true) : null, refLogprobs: input(x.refLogprobs!), entropy: input(x.entropy!),
    clipLow: 0.2, clipHigh: 0.2, dualClip: 0, klCoef: 0.1, entropyCoef: 0.01, aggregation: AGGREGATIONS.indexOf(aggregation as never),
    klEstimator: 2, normalizer, ...Object.fromEntries(Object.entries(outs).map(([k, t]) => [k, t._storage()])),
  });
  return Object.fromEntries(Object.entries(outs).map(([k, t]) => [k, t.toArray()]));
}

function sameBits(a: Outputs, b: Outputs, what: string): void {
  const bytes = (t: Float32Array | undefined) => (t ? Buffer.from(t.buffer, t.byteOffset, t.byteLength) : Buffer.alloc(0));
  assert.ok(bytes(a.gradLogprobs).equals(bytes(b.gradLogprobs)), `${what}: gradLogprobs differ`);
  assert.ok(bytes(a.gradEntropy).equals(bytes(b.gradEntropy)), `${what}: gradEntropy differ`);
  for (const key of ['loss', 'clipFraction', 'clipFractionLower', 'approxKl', 'kl'] as const)
    assert.ok(Object.is(a[key], b[key]), `${what}: ${key} ${a[key]} vs ${b[key]}`);
}

// Shapes and why: tails and tiny grids; packed tiles of many rows; one row
// per tile; row segments (T > 1024, the tile); the bench shape; more tiles
// than co-resident blocks (blocks loop over tiles, reusing shared memory).
const GRID_SHAPES: [number, number][] = [[1, 1], [3, 7], [4, 33], [300, 3], [5, 1000], [9, 2000], [3, 4100]];
const LARGE_SHAPES: [number, number][] = [[512, 4096], [8000, 300], [1, 300000]];

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

  it('takes one advantage per row ([B]) with the same bits as those advantages written out [B, T]', () => {
    // Packed tiles of many short rows, one row per tile, and rows cut into segments.
    for (const [B, T] of [[300, 3], [5, 1000], [7, 1024], [3, 4100]] as const)
      for (const aggregation of AGGREGATIONS) {
        const x = randomPolicyInputs(rng, B, T, { mask: 'empty rows', aggregation, klEstimator: 'k3', entropyCoef: 0.01 });
        const perRow = Float32Array.from({ length: B }, (_, b) => x.advantages[b * T]!);
        const spread = { ...x, advantages: Float32Array.from({ length: B * T }, (_, i) => perRow[Math.floor(i / T)]!) };
        sameBits(runPolicy(spread, GPU, tensor(perRow, [B], { device: GPU })), runPolicy(spread, GPU), `${B}x${T} ${aggregation} per row`);
      }
  });

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
