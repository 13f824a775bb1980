/**
 * The advantage family on cuda, against the float64 reference and the cpu
 * backend. Run on a GPU machine with `node --test dist/tests/gpu/` (node:test
 * only, no node_modules); skips when cuda is unavailable.
 *
 * Tolerance: the CUDA scan composes each 8-step segment's affine map and the
 * maps of the segments and warps before it, so its float32 rounding differs
 * from the sequential CPU recursion. Both backends are held to the same rule
 * against float64 (4 x the naive float32 run's error + 4 ulps at the largest
 * magnitude), so they agree with each other within twice that.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Device, type Tensor, gae, groupAdvantages, synchronizeSync, tensor, whiten,
} from '../../lib/index.js';
import { addon } from '../../lib/addon.js';
import { runOp } from '../../lib/stream.js';
import { Rng } from '../helpers/random.js';
import { EPS, derivedTolerance, errorStats, f32 } from '../helpers/tolerance.js';
import {
  type Estimator, type GaeInputs, type TrajectoryKinds, gaeReference, groupAdvantagesReference, randomTrajectories,
  whitenReference,
} from '../reference/advantages.js';
import { skip, maxAbs } from './common.js';


function tolerance(ref: Float64Array, naive: Float64Array): number {
  return derivedTolerance(naive, ref, 4, 4 * EPS.float32 * maxAbs(ref));
}

function expectClose(out: ArrayLike<number>, ref: ArrayLike<number>, tol: number, what: string): void {
  const e = errorStats(out, ref);
  assert.equal(e.mismatchedNonFinite, 0, `${what}: non-finite mismatch at ${e.worst} (${out[e.worst]} vs ${ref[e.worst]})`);
  assert.ok(e.maxAbs <= tol, `${what}: error ${e.maxAbs} > ${tol} at ${e.worst} (${out[e.worst]} vs ${ref[e.worst]})`);
}

function runGae(x: GaeInputs, device: Device): { advantages: Float32Array; returns: Float32Array } {
  const on = (data: ArrayLike<number> | undefined, dtype: 'float32' | 'uint8', shape = [x.B, x.T]): Tensor | undefined =>
    data === undefined ? undefined : tensor(Float32Array.from(data), shape, { dtype, device });
  const inputs = {
    mask: on(x.mask, 'uint8'), dones: on(x.dones, 'uint8'), truncated: on(x.truncated, 'uint8'),
    truncatedValues: on(x.truncatedValues, 'float32'), lastValues: on(x.lastValues, 'float32', [x.B]),
  };
  const r = on(x.rewards, 'float32')!, v = on(x.values, 'float32')!;
  const out = gae(r, v, { gamma: x.gamma, lambda: x.lambda, ...inputs });
  const result = { advantages: out.advantages.toArray(), returns: out.returns.toArray() };
  for (const t of [r, v, out.advantages, out.returns, ...Object.values(inputs)]) t?.dispose();
  return result;
}

/** cuda against float64 and against cpu. */
function checkGae(x: GaeInputs, what: string): void {
  const ref = gaeReference(x), naive = gaeReference(x, f32);
  const gpu = runGae(x, 'cuda'), cpu = runGae(x, 'cpu');
  for (const k of ['advantages', 'returns'] as const) {
    const tol = tolerance(ref[k], naive[k]);
    expectClose(gpu[k], ref[k], tol, `${what} ${k} cuda vs float64`);
    expectClose(gpu[k], cpu[k], 2 * tol, `${what} ${k} cuda vs cpu`);
  }
  if (x.mask)
    for (let i = 0; i < x.mask.length; i++)
      if (!x.mask[i]) assert.ok(gpu.advantages[i] === 0 && gpu.returns[i] === 0, `${what}: masked step ${i} is not 0`);
}

const KINDS: Record<string, TrajectoryKinds> = {
  plain: {},
  masked: { mask: true, lastValues: true },
  episodes: { mask: true, dones: true, truncated: true, lastValues: true },
};

describe('gae on cuda', { skip }, () => {
  const rng = new Rng();

  // T around the kernel's edges: 8 steps per thread, 256 per warp; a row
  // takes 1, 2, 4, 8 or 16 warps (T <= 256, 512, 1024, 2048, 4096), longer
  // rows loop over 4096-step tiles. T % 4 != 0 takes the unvectorized path.
  // B: several short rows share a block (16 rows of T <= 256), 17 leaves a
  // block partly empty, 257 and 2048 fill many blocks.
  const grid: [number, number][] = [];
  for (const T of [1, 7, 8, 9, 31, 32, 33, 255, 256, 257]) for (const B of [1, 17, 257]) grid.push([B, T]);
  for (const T of [511, 512, 513, 1024, 1025, 2048, 2049, 4095, 4096, 4097, 8192, 8193]) for (const B of [1, 17]) grid.push([B, T]);
  grid.push([2048, 33], [64, 4096]);

  for (const [kind, kinds] of Object.entries(KINDS))
    test(`matches float64 and cpu: ${kind}`, () => {
      for (const [B, T] of grid) checkGae(randomTrajectories(rng, B, T, kinds), `B=${B} T=${T} ${kind}`);
    });

  test('matches float64 and cpu at gamma = lambda = 1 and at lambda = 0', () => {
    for (const [gamma, lambda] of [[1, 1], [0.9, 0], [0, 0.5]])
      for (const [B, T] of [[3, 4097], [17, 300]] as const)
        checkGae(randomTrajectories(rng, B, T, KINDS.episodes!, gamma, lambda), `B=${B} T=${T} gamma=${gamma} lambda=${lambda}`);
  });

  test('matches float64 and cpu at 1024 x 8192 with masks and episodes', () => {
    const x = randomTrajectories(rng, 1024, 8192, KINDS.episodes!);
    const ref = gaeReference(x), naive = gaeReference(x, f32);
    const gpu = runGae(x, 'cuda'), cpu = runGae(x, 'cpu');
    const tol = tolerance(ref.advantages, naive.advantages);
    expectClose(gpu.advantages, ref.advantages, tol, 'cuda vs float64');
    expectClose(gpu.advantages, cpu.advantages, 2 * tol, 'cuda vs cpu');
  });

  test('writes every element (outputs poisoned with NaN first)', () => {
    const B = 37, T = 1001;
    const x = randomTrajectories(rng, B, T, KINDS.episodes!);
    const on = (a: ArrayLike<number>, dtype: 'float32' | 'uint8') => tensor(Float32Array.from(a), [a.length], { dtype, device: 'cuda' });
    const outs = [on(new Float32Array(B * T), 'float32'), on(new Float32Array(B * T), 'float32')];
    for (const t of outs) addon().fillDevice(t._buffer!, 0xff);
    const ins = {
      rewards: on(x.rewards, 'float32'), values: on(x.values, 'float32'), mask: on(x.mask!, 'uint8'),
      dones: on(x.dones!, 'uint8'), truncated: on(x.truncated!, 'uint8'), truncatedValues: on(x.truncatedValues!, 'float32'),
      lastValues: on(x.lastValues!, 'float32'),
    };
    const args: Record<string, unknown> = { rows: B, steps: T, gamma: x.gamma, lambda: x.lambda };
    for (const [k, t] of Object.entries(ins)) args[k] = t._storage();
    runOp('gae', 0, { ...args, advantages: outs[0]!._storage(), returns: outs[1]!._storage() });
    for (const t of outs) assert.ok((t.toArray()).every(Number.isFinite), 'an output was left unwritten');
  });

  // Without dones and truncated the kernel is built without the code for a
  // reset (kernels/advantages.cu, Episodes = false); all-zero flags take the
  // kernel with it. The two do the same operations, but the compiler may
  // fuse their multiply-adds differently (under the emulator they differ by
  // up to 2 ulps of the largest value), so they must agree within 4 ulps
  // (8 unit roundoffs) of it, on every block shape: short rows, the 512-thread tile, rows longer
  // than one (many rows take the smaller blocks), and T % 4 != 0 (the
  // unvectorized path).
  test('agrees to rounding with all-zero dones and truncated and without them', () => {
    for (const [B, T] of [[17, 300], [3, 4096], [257, 8192], [5, 5001]] as const) {
      const x = randomTrajectories(rng, B, T, KINDS.masked!);
      const zeros: GaeInputs = {
        ...x, dones: new Uint8Array(B * T), truncated: new Uint8Array(B * T),
        truncatedValues: Float32Array.from({ length: B * T }, () => rng.normal()),
      };
      const without = runGae(x, 'cuda'), withZeros = runGae(zeros, 'cuda');
      for (const k of ['advantages', 'returns'] as const)
        expectClose(withZeros[k], without[k], 8 * EPS.float32 * maxAbs(without[k]), `B=${B} T=${T} ${k}`);
    }
  });

  test('is deterministic', () => {
    const x = randomTrajectories(rng, 100, 3000, KINDS.episodes!);
    const a = runGae(x, 'cuda'), b = runGae(x, 'cuda');
    assert.deepEqual(Buffer.from(a.advantages.buffer), Buffer.from(b.advantages.buffer));
  });

  test('keeps a NaN inside its episode, like the cpu', () => {
    const B = 4, T = 3000;
    const x = randomTrajectories(rng, B, T, { dones: true });
    for (let b = 0; b < B; b++) (x.rewards as Float32Array)[b * T + 1500 + b] = NaN;
    const gpu = runGae(x, 'cuda'), cpu = runGae(x, 'cpu');
    for (let i = 0; i < B * T; i++)
      assert.equal(Number.isNaN(gpu.advantages[i]), Number.isNaN(cpu.advantages[i]), `NaN pattern differs at ${i}`);
  });

  test('skips inserted masked steps (within the tolerance)', () => {
    const B = 5, T = 700;
    const x = randomTrajectories(rng, B, T, KINDS.episodes!);
    const T2 = 2 * T; // every other step a masked junk step
    const y: GaeInputs = {
      ...x, T: T2, rewards: new Float32Array(B * T2).fill(NaN), values: new Float32Array(B * T2).fill(NaN),
      mask: new Uint8Array(B * T2), dones: new Uint8Array(B * T2), truncated: new Uint8Array(B * T2),
      truncatedValues: new Float32Array(B * T2),
    };
    for (let i = 0; i < B * T; i++) {
      const j = 2 * i + 1;
      for (const k of ['rewards', 'values', 'mask', 'dones', 'truncated', 'truncatedValues'] as const)
        (y[k] as Float32Array)[j] = x[k]![i]!;
    }
    const ref = gaeReference(x), naive = gaeReference(x, f32);
    const a = runGae(y, 'cuda').advantages.filter((_, j) => j % 2 === 1);
    expectClose(a, ref.advantages, tolerance(ref.advantages, naive.advantages), 'with masked steps');
  });
});

describe('whiten on cuda', { skip }, () => {
  const rng = new Rng();

  // 4095/4096/4097 around a stats tile; 4096 * 1024 + 5 needs two tiles per
  // stats block; 1 and 3 are tiny; n % 4 != 0 exercises the vector tail.
  for (const n of [1, 3, 4095, 4096, 4097, 100_003, 4096 * 1024 + 5])
    test(`matches float64 and cpu, n = ${n}`, () => {
      const x = rng.normals(n, 3, -2);
      for (const mask of [undefined, rng.mask(n, 0.7)])
        for (const shiftMean of [true, false]) {
          const ref = whitenReference(x, { mask, shiftMean }), naive = whitenReference(x, { mask, shiftMean }, f32);
          const run = (device: Device) =>
            whiten(tensor(x, undefined, { device }), { mask: mask && tensor(mask, undefined, { device }), shiftMean }).toArray();
          const tol = tolerance(ref, naive);
          const gpu = run('cuda');
          expectClose(gpu, ref, tol, `n=${n} mask=${!!mask} shiftMean=${shiftMean}`);
          expectClose(gpu, run('cpu'), 2 * tol, `n=${n} cuda vs cpu`);
          synchronizeSync();
        }
    });

  test('stays exact at magnitudes up to 1e37 and keeps the noise on a 1e5 offset', () => {
    // Scale invariant while the variance dwarfs eps: the yardstick is a naive
    // float32 run at unit scale. On the offset, a few ulps of |z|.
    const n = 5000;
    const y = rng.normals(n, 1, 0.3);
    for (const scale of [1e20, 1e30, 1e37]) {
      const mask = rng.mask(n, 0.8);
      const x = y.map((v) => v * scale);
      const ref = whitenReference(x, { mask });
      const out = whiten(tensor(x, undefined, { device: 'cuda' }), { mask: tensor(mask, undefined, { device: 'cuda' }) }).toArray();
      expectClose(out, ref, tolerance(ref, whitenReference(y, { mask }, f32)), `scale ${scale}`);
    }
    const x = rng.normals(n, 0.05, 1e5);
    const ref = whitenReference(x);
    expectClose(whiten(tensor(x, undefined, { device: 'cuda' })).toArray(), ref, 16 * EPS.float32 * maxAbs(ref), 'offset 1e5');
  });

  test('takes the double path for data spread to float32\'s limit (x - mean past 3.4e38, 1 / std subnormal), like cpu', () => {
    const n = 70_000;  // several apply blocks, the quad path and its tail
    const y = rng.normals(n + 3, 1, 0.3);
    y[7] = -Math.max(...y.map(Math.abs));
    const x = Float32Array.from(y, (v) => v * (3.3e38 / Math.abs(y[7]!)));
    const mask = rng.mask(n + 3, 0.8);
    mask[7] = 1;
    for (const shiftMean of [true, false]) {
      const run = (device: Device) =>
        whiten(tensor(x, undefined, { device }), { mask: tensor(mask, undefined, { device }), shiftMean }).toArray();
      const out = run('cuda'), ref = whitenReference(x, { mask, shiftMean });
      assert.ok(out.every(Number.isFinite), `shiftMean ${shiftMean}: finite`);
      expectClose(out, ref, 4 * EPS.float32 * maxAbs(ref), `shiftMean ${shiftMean}`);
      expectClose(out, run('cpu'), 2 * EPS.float32 * maxAbs(ref), `shiftMean ${shiftMean}: cpu`);
    }
  });

  test('is deterministic', () => {
    const x = tensor(rng.normals(3_000_000), undefined, { device: 'cuda' });
    const a = whiten(x).toArray(), b = whiten(x).toArray();
    assert.deepEqual(Buffer.from(a.buffer), Buffer.from(b.buffer));
  });
});

describe('groupAdvantages on cuda', { skip }, () => {
  const rng = new Rng();
  for (const estimator of ['grpo', 'dr-grpo', 'rloo'] as Estimator[])
    test(`matches float64 and cpu: ${estimator}`, () => {
      for (const K of [1, 2, 31, 32, 33, 100]) {
        const s = rng.normals(301 * K, 2, 1);
        const ref = groupAdvantagesReference(s, K, estimator), naive = groupAdvantagesReference(s, K, estimator, 1e-6, f32);
        const run = (device: Device) => groupAdvantages(tensor(s, undefined, { device }), { groupSize: K, estimator }).toArray();
        const tol = tolerance(ref, naive);
        const gpu = run('cuda');
        expectClose(gpu, ref, tol, `${estimator} K=${K}`);
        expectClose(gpu, run('cpu'), 2 * tol, `${estimator} K=${K} cuda vs cpu`);
      }
    });
});
