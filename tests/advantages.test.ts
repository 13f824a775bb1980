import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type Device, KernelError, type Tensor, gae, groupAdvantages, info, setNumThreads, tensor, whiten,
} from '../lib/index.js';
import { runOp } from '../lib/stream.js';
import { DEVICES } from './helpers/devices.js';
import { Rng } from './helpers/random.js';
import { EPS, derivedTolerance, errorStats, f32, isPoison, maxAbs, poison } from './helpers/tolerance.js';
import {
  type Estimator, type GaeInputs, type TrajectoryKinds, gaeReference, gaeVerl, groupAdvantagesReference,
  randomTrajectories, whitenReference,
} from './reference/advantages.js';

// ------------------------------------------------------------------ helpers

function runGae(x: GaeInputs, device: Device): { advantages: Float32Array; returns: Float32Array } {
  const on = (data: ArrayLike<number> | undefined, dtype: 'float32' | 'uint8', shape = [x.B, x.T]): Tensor | undefined =>
    data === undefined ? undefined : tensor(Array.from(data), shape, { dtype, device });
  const { advantages, returns } = gae(on(x.rewards, 'float32')!, on(x.values, 'float32')!, {
    gamma: x.gamma, lambda: x.lambda, mask: on(x.mask, 'uint8'), dones: on(x.dones, 'uint8'),
    truncated: on(x.truncated, 'uint8'), truncatedValues: on(x.truncatedValues, 'float32'),
    lastValues: on(x.lastValues, 'float32', [x.B]),
  });
  return { advantages: advantages.toArray(), returns: returns.toArray() };
}

/**
 * The tolerance rule: 4 x the naive float32 run's error, plus 4 ulps at the
 * largest magnitude (where the naive run happens to round like the
 * reference but the kernel fuses a multiply-add, or sums in another order).
 */
function expectClose(out: ArrayLike<number>, ref: Float64Array, naive: Float64Array, what: string): void {
  const tol = derivedTolerance(naive, ref, 4, 4 * EPS.float32 * maxAbs(ref));
  const e = errorStats(out, ref);
  expect(e.mismatchedNonFinite, `${what}: non-finite mismatch at ${e.worst}`).toBe(0);
  expect(e.maxAbs, `${what}: worst at ${e.worst} (${out[e.worst]} vs ${ref[e.worst]})`).toBeLessThanOrEqual(tol);
}

function checkGae(x: GaeInputs, device: Device, what: string): void {
  const ref = gaeReference(x);
  const naive = gaeReference(x, f32);
  const out = runGae(x, device);
  expectClose(out.advantages, ref.advantages, naive.advantages, `${what} advantages`);
  expectClose(out.returns, ref.returns, naive.returns, `${what} returns`);
  if (x.mask)
    for (let i = 0; i < x.mask.length; i++)
      if (!x.mask[i] && (out.advantages[i] !== 0 || out.returns[i] !== 0))
        throw new Error(`${what}: masked step ${i} is not 0`);
}

const KINDS: Record<string, TrajectoryKinds> = {
  plain: {},
  masked: { mask: true, lastValues: true },
  episodes: { mask: true, dones: true, truncated: true, lastValues: true },
  'flags, no mask': { dones: true, truncated: true },
};

afterAll(() => setNumThreads(info().cpu.threads));

// --------------------------------------------------------------- reference

describe('gae reference', () => {
  const rng = new Rng();

  it('agrees with the verl loop (reversed over T with lastgaelam) at valid steps', () => {
    const x = randomTrajectories(rng, 9, 200, { mask: true, lastValues: true });
    const ours = gaeReference(x).advantages;
    const verl = gaeVerl(x);
    for (let i = 0; i < ours.length; i++) if (x.mask![i]) expect(ours[i]).toBeCloseTo(verl[i]!, 12);
  });

  it('gives geometric sums for a constant TD residual', () => {
    // delta_t = r + gamma V - V at every step when V and lastValues are constant:
    // A_t = delta (1 - (gamma lambda)^(T - t)) / (1 - gamma lambda).
    const T = 2049, r = 0.3, v = 0.7, gamma = 0.99, lambda = 0.95;
    const x: GaeInputs = {
      rewards: new Float64Array(T).fill(r), values: new Float64Array(T).fill(v), lastValues: [v], B: 1, T, gamma, lambda,
    };
    const a = gaeReference(x).advantages;
    const delta = r + gamma * v - v, gl = gamma * lambda;
    for (const t of [0, 1000, T - 2, T - 1]) expect(a[t]).toBeCloseTo((delta * (1 - gl ** (T - t))) / (1 - gl), 12);
  });
});

// ------------------------------------------------------------- gae parity

describe.each(DEVICES)('gae on %s', (device) => {
  const rng = new Rng();

  // B: 1 row; 7 = scalar rows only; 8 = one 8-row vector group; 9 and 257 =
  // groups plus a scalar row. T: 1; 7 < one 8-step block; 8; 31/32/33 around
  // a warp; 2049 = long, one past a power of two.
  const grid: [number, number][] = [];
  for (const B of [1, 7, 8, 9]) for (const T of [1, 7, 8, 31, 32, 33]) grid.push([B, T]);
  grid.push([257, 33], [9, 2049], [257, 2049]);

  for (const [kind, kinds] of Object.entries(KINDS))
    it(`matches the float64 reference: ${kind}`, () => {
      for (const [B, T] of grid) checkGae(randomTrajectories(rng, B, T, kinds), device, `B=${B} T=${T} ${kind}`);
    });

  it('is the TD residual when lambda = 0', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 11 }), fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 1, noNaN: true }), (B, T, gamma) => {
        const x = randomTrajectories(rng, B, T, { lastValues: true }, gamma, 0);
        const a = runGae(x, device).advantages;
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++) {
            const next = t + 1 < T ? x.values[b * T + t + 1]! : x.lastValues![b]!;
            const td = x.rewards[b * T + t]! + Math.fround(gamma) * next - x.values[b * T + t]!;
            expect(Math.abs(a[b * T + t]! - td)).toBeLessThanOrEqual(4 * EPS.float32 * (Math.abs(td) + 4));
          }
      }),
      { numRuns: 40 },
    );
  });

  it('is the reverse cumulative sum of rewards when gamma = lambda = 1 and values are 0', () => {
    for (const [B, T] of [[3, 100], [9, 1000]] as const) {
      const x = randomTrajectories(rng, B, T, {}, 1, 1);
      x.values = new Float32Array(B * T);
      const ref = new Float64Array(B * T);
      const naive = new Float64Array(B * T);
      for (let b = 0; b < B; b++)
        for (let t = T - 1, s = 0, s32 = 0; t >= 0; t--) {
          s += x.rewards[b * T + t]!;
          s32 = Math.fround(s32 + x.rewards[b * T + t]!);
          ref[b * T + t] = s;
          naive[b * T + t] = s32;
        }
      expectClose(runGae(x, device).advantages, ref, naive, `cumsum B=${B} T=${T}`);
    }
  });

  it('reaches the geometric limit r / (1 - gamma lambda) for a constant reward, values 0', () => {
    const B = 9, T = 2049, r = 0.25, gamma = 0.99, lambda = 0.9;
    const x: GaeInputs = {
      rewards: new Float32Array(B * T).fill(r), values: new Float32Array(B * T), B, T, gamma, lambda,
    };
    const a = runGae(x, device).advantages;
    const gl = Math.fround(gamma) * Math.fround(lambda);
    for (let b = 0; b < B; b++) {
      for (const t of [0, 500, 1500, T - 1]) {
        const exact = (r * (1 - gl ** (T - t))) / (1 - gl);
        expect(Math.abs(a[b * T + t]! - exact)).toBeLessThanOrEqual(1e-5 * exact);
      }
    }
  });

  it('skips masked steps: inserting them (with junk values) changes nothing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 20 }), (B, T, inserts) => {
        const x = randomTrajectories(rng, B, T, { mask: true, dones: true, truncated: true, lastValues: true });
        // Insert `inserts` masked steps at random places of every row (same places per row).
        const at = Array.from({ length: inserts }, () => rng.int(0, T + 1)).sort((p, q) => p - q);
        const T2 = T + inserts;
        const map: number[] = []; // new column of each old column
        for (let t = 0, k = 0, c = 0; t < T; t++) {
          while (k < inserts && at[k]! <= t) k++, c++;
          map.push(t + c);
        }
        const y: GaeInputs = {
          ...x, T: T2, rewards: new Float32Array(B * T2).fill(NaN), values: new Float32Array(B * T2).fill(1e30),
          mask: new Uint8Array(B * T2), dones: new Uint8Array(B * T2), truncated: new Uint8Array(B * T2),
          truncatedValues: new Float32Array(B * T2).fill(NaN),
        };
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++) {
            const i = b * T + t, j = b * T2 + map[t]!;
            (y.rewards as Float32Array)[j] = x.rewards[i]!;
            (y.values as Float32Array)[j] = x.values[i]!;
            (y.mask as Uint8Array)[j] = x.mask![i]!;
            (y.dones as Uint8Array)[j] = x.dones![i]!;
            (y.truncated as Uint8Array)[j] = x.truncated![i]!;
            (y.truncatedValues as Float32Array)[j] = x.truncatedValues![i]!;
          }
        const a = runGae(x, device), c = runGae(y, device);
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++) {
            const i = b * T + t, j = b * T2 + map[t]!;
            // Bit for bit on cpu (the same recursion); on cuda the carries are rounded per segment.
            if (device === 'cpu') expect(c.advantages[j]).toBe(a.advantages[i]);
            else expect(Math.abs(c.advantages[j]! - a.advantages[i]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(a.advantages[i]!)));
          }
      }),
      { numRuns: 30 },
    );
  });

  it('ends the episode at a flag on a masked step as if the valid step before carried it', () => {
    const B = 4, T = 40;
    for (const flag of ['dones', 'truncated'] as const) {
      const x = randomTrajectories(rng, B, T, { truncated: true, lastValues: true });
      x.truncated = new Uint8Array(B * T);
      const mask = new Uint8Array(B * T).fill(1);
      for (let b = 0; b < B; b++) for (let t = 20; t < 25; t++) mask[b * T + t] = 0; // a tool call
      const onMasked = { ...x, mask, [flag]: new Uint8Array(B * T) };
      const onValid = { ...x, mask, [flag]: new Uint8Array(B * T) };
      for (let b = 0; b < B; b++) {
        (onMasked[flag] as Uint8Array)[b * T + 22] = 1;
        (onValid[flag] as Uint8Array)[b * T + 19] = 1;
        (onValid.truncatedValues as Float32Array)[b * T + 19] = x.truncatedValues![b * T + 22]!;
      }
      const a = runGae(onMasked, device).advantages, c = runGae(onValid, device).advantages;
      if (device === 'cpu' || flag === 'dones') {
        expect(Array.from(a)).toEqual(Array.from(c)); // the same recursion, the same bits
      } else {
        // The cuda scan composes the 8-step segment holding both steps into one
        // map; a truncation there rounds gamma TV + (r - V) on the masked step
        // and (r + gamma TV) - V on the valid one (22 inputs in 40 on the
        // emulator), and the carry into earlier segments differs by an ulp:
        // equal within 4 ulps of the largest |A|.
        const e = errorStats(a, c);
        expect(e.maxAbs, `${flag}: worst at ${e.worst}`).toBeLessThanOrEqual(8 * EPS.float32 * maxAbs(c));
      }
      const free = runGae({ ...x, mask }, device).advantages; // and the flag matters
      expect(a[19]).not.toBe(free[19]);
    }
  });

  it('lets done win over truncated on the same step', () => {
    const x = randomTrajectories(rng, 5, 60, { mask: true, dones: true, lastValues: true });
    const both = { ...x, truncated: Uint8Array.from(x.dones!), truncatedValues: rng.normals(5 * 60) };
    expect(Array.from(runGae(both, device).advantages)).toEqual(Array.from(runGae(x, device).advantages));
  });

  it('keeps a NaN reward inside its episode (the steps after the next done are finite)', () => {
    const B = 9, T = 300;
    const x = randomTrajectories(rng, B, T, { dones: true, truncated: true });
    for (let b = 0; b < B; b++) (x.rewards as Float32Array)[b * T + 150 + b] = NaN;
    const ref = gaeReference(x);
    const out = runGae(x, device);
    expect(errorStats(out.advantages, ref.advantages).mismatchedNonFinite).toBe(0);
    expect(out.advantages.filter(Number.isNaN).length).toBeGreaterThan(B);
    expect(out.advantages.filter(Number.isFinite).length).toBeGreaterThan(B * T / 2);
  });

  it('gives all zeros for an all-masked batch', () => {
    const x = randomTrajectories(rng, 3, 17, { lastValues: true });
    x.mask = new Uint8Array(3 * 17);
    const out = runGae(x, device);
    expect(out.advantages.every((v) => v === 0) && out.returns.every((v) => v === 0)).toBe(true);
  });

  it('handles empty batches', () => {
    const out = gae(tensor(new Float32Array(0), [0, 5], { device }), tensor(new Float32Array(0), [0, 5], { device }), { gamma: 1, lambda: 1 });
    expect(out.advantages.shape).toEqual([0, 5]);
    expect(out.returns.toArray().length).toBe(0);
  });
});

describe('gae on cpu: determinism', () => {
  const rng = new Rng();

  it('writes every element (poisoned outputs, called through the binding)', () => {
    const x = randomTrajectories(rng, 11, 45, { mask: true, dones: true, truncated: true, lastValues: true });
    const advantages = poison(new Float32Array(11 * 45)), returns = poison(new Float32Array(11 * 45));
    runOp('gae', -1, {
      rewards: x.rewards, values: x.values, mask: x.mask, dones: x.dones, truncated: x.truncated,
      truncatedValues: x.truncatedValues, lastValues: x.lastValues, advantages, returns, rows: 11, steps: 45,
      gamma: 0.99, lambda: 0.95,
    });
    tensor([0]).toArray(); // synchronizes the cpu stream
    expect(advantages.some(isPoison) || returns.some(isPoison)).toBe(false);
    expect(Array.from(advantages)).toEqual(Array.from(runGae(x, 'cpu').advantages));
  });

  it('gives the same bits on 1 and 2 threads, and for a row alone or in a batch', () => {
    const x = randomTrajectories(rng, 64, 600, { mask: true, dones: true, truncated: true, lastValues: true });
    setNumThreads(1);
    const one = runGae(x, 'cpu');
    setNumThreads(2);
    const two = runGae(x, 'cpu');
    expect(Buffer.from(one.advantages.buffer).equals(Buffer.from(two.advantages.buffer))).toBe(true);
    expect(Buffer.from(one.returns.buffer).equals(Buffer.from(two.returns.buffer))).toBe(true);
    // Row 9 sits in the second 8-row group here and is the last (scalar) row alone.
    const T = x.T, row = (a: ArrayLike<number>) => Array.prototype.slice.call(a, 9 * T, 10 * T);
    const alone = runGae({
      ...x, B: 1, rewards: row(x.rewards), values: row(x.values), mask: row(x.mask!), dones: row(x.dones!),
      truncated: row(x.truncated!), truncatedValues: row(x.truncatedValues!), lastValues: [x.lastValues![9]!],
    }, 'cpu');
    expect(Array.from(alone.advantages)).toEqual(row(one.advantages));
  });
});

// ------------------------------------------------------------------ whiten

describe.each(DEVICES)('whiten on %s', (device) => {
  const rng = new Rng();

  // Sizes: 1, 7 (< a vector), 4097 (one past a cuda tile), 70000 (several
  // cpu blocks of 16384), and shapes of any rank.
  const shapes = [[1], [7], [4097], [70000], [13, 311], [2, 3, 5]];

  it.each(shapes.map((s) => [s]))('matches the float64 reference for shape %j', (shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = rng.normals(n, 3, 2);
    for (const mask of [undefined, rng.mask(n, 0.7)])
      for (const shiftMean of [true, false]) {
        const ref = whitenReference(x, { mask, shiftMean });
        const naive = whitenReference(x, { mask, shiftMean }, f32);
        const out = whiten(tensor(x, shape, { device }), {
          mask: mask && tensor(mask, shape, { device }), shiftMean,
        });
        expect(out.shape).toEqual(shape);
        expectClose(out.toArray(), ref, naive, `n=${n} mask=${!!mask} shiftMean=${shiftMean}`);
      }
  });

  it('standardizes: mean 0 and unbiased variance 1 over the mask, whatever the affine shift', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 3000 }), fc.double({ min: -100, max: 100, noNaN: true }), fc.double({ min: 0.01, max: 100, noNaN: true }), (n, shift, scale) => {
        const x = rng.normals(n, scale, shift);
        const mask = rng.mask(n, 0.8);
        mask[0] = mask[1] = 1;
        const out = whiten(tensor(x, undefined, { device }), { mask: tensor(mask, undefined, { device }), eps: 1e-12 }).toArray();
        let k = 0, s = 0, s2 = 0;
        for (let i = 0; i < n; i++) if (mask[i]) k++, s += out[i]!, s2 += out[i]! ** 2;
        // x is float32: its rounding, relative to the spread, bounds how exact z can be.
        const tol = 1e-5 + 16 * EPS.float32 * (Math.abs(shift) / scale + 4);
        expect(Math.abs(s / k)).toBeLessThan(tol);
        expect(Math.abs((s2 - (s * s) / k) / (k - 1) - 1)).toBeLessThan(tol);
      }),
      { numRuns: 30 },
    );
  });

  it('stays exact at magnitudes up to 1e37, where float32 squares overflow (two cuda tiles)', () => {
    // Whitening is scale invariant while the variance dwarfs eps: the
    // yardstick is a naive float32 run of the same data at unit scale.
    const n = 5000;
    const y = rng.normals(n, 1, 0.3);
    for (const scale of [1e20, 1e30, 1e37]) {
      const x = y.map((v) => v * scale);
      const mask = rng.mask(n, 0.8);
      const ref = whitenReference(x, { mask });
      const naive = whitenReference(y, { mask }, f32);
      const out = whiten(tensor(x, undefined, { device }), { mask: tensor(mask, undefined, { device }) });
      expectClose(out.toArray(), ref, naive, `scale ${scale}`);
    }
  });

  it('stays exact with data spread to float32\'s limit, where x - mean overflows float32 and 1 / std is subnormal', () => {
    // [3e38, -3e38, 3e38]: mean 1e38, deviations 2e38 and -4e38 (past
    // float32's 3.4e38), std 3.46e38 (1 / std subnormal).
    const small = whiten(tensor([3e38, -3e38, 3e38], undefined, { device })).toArray();
    expectClose(small, whitenReference(Float32Array.from([3e38, -3e38, 3e38])), whitenReference([3, -3, 3], {}, f32), 'three');
    const n = 5000;
    const y = rng.normals(n, 1, 0.3);
    y[7] = -Math.max(...y.map(Math.abs));  // the farthest from the mean, below it
    const scale = 3.3e38 / Math.max(...y.map(Math.abs));
    const x = Float32Array.from(y, (v) => v * scale);
    const mask = rng.mask(n, 0.8);
    mask[7] = 1;
    const run = (shiftMean: boolean) =>
      whiten(tensor(x, undefined, { device }), { mask: tensor(mask, undefined, { device }), shiftMean }).toArray();
    const z = run(true);
    expect(z.every(Number.isFinite)).toBe(true);
    expectClose(z, whitenReference(x, { mask }), whitenReference(y, { mask }, f32), 'spread to the limit');
    // With the mean added back the values are those of x: a few ulps of them.
    const ref = whitenReference(x, { mask, shiftMean: false });
    const e = errorStats(run(false), ref);
    expect(e.mismatchedNonFinite).toBe(0);
    expect(e.maxAbs, `worst at ${e.worst}`).toBeLessThanOrEqual(4 * EPS.float32 * maxAbs(ref));
  });

  it('keeps the noise on a large offset: the mean is applied as hi + lo', () => {
    // 1e5 + noise of 0.05: the float mean is off by up to ulp(1e5) / 2 =
    // 0.004, 8% of the spread. With hi + lo, z is off by a few ulps of |z|.
    const x = rng.normals(5000, 0.05, 1e5);
    const ref = whitenReference(x);
    const out = whiten(tensor(x, undefined, { device })).toArray();
    const e = errorStats(out, ref);
    expect(e.maxAbs, `worst at ${e.worst}: ${out[e.worst]} vs ${ref[e.worst]}`).toBeLessThanOrEqual(16 * EPS.float32 * maxAbs(ref));
  });

  it('takes the variance as 0 for one valid element and gives zeros for none', () => {
    const x = tensor([3, -1, 4], undefined, { device });
    const one = tensor(new Uint8Array([0, 1, 0]), undefined, { device });
    expect(Array.from(whiten(x, { mask: one }).toArray())).toEqual([0, 0, 0]);
    expect(Array.from(whiten(x, { mask: one, shiftMean: false }).toArray())).toEqual([0, -1, 0]);
    const none = tensor(new Uint8Array(3), undefined, { device });
    expect(Array.from(whiten(x, { mask: none, shiftMean: false }).toArray())).toEqual([0, 0, 0]);
  });

  it('takes a Uint8Array mask laid out like x, whatever its shape', () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));
    const bits = Uint8Array.from({ length: 12 }, (_, i) => (i % 5 === 2 ? 0 : 1));
    const x = tensor(data, [2, 3, 2], { device });
    const asTensor = whiten(x, { mask: tensor(bits, [2, 3, 2], { device }) }).toArray();
    expect(Array.from(whiten(x, { mask: bits }).toArray())).toEqual(Array.from(asTensor));
  });
});

describe('whiten on cpu: determinism', () => {
  it('gives the same bits on 1 and 2 threads', () => {
    const rng = new Rng();
    const x = tensor(rng.normals(200_000, 2, 5));
    const mask = tensor(rng.mask(200_000, 0.6));
    setNumThreads(1);
    const one = Float32Array.from(whiten(x, { mask }).toArray());
    setNumThreads(2);
    const two = whiten(x, { mask }).toArray();
    expect(Buffer.from(one.buffer).equals(Buffer.from(two.buffer))).toBe(true);
  });
});

// -------------------------------------------------------- group advantages

describe.each(DEVICES)('groupAdvantages on %s', (device) => {
  const rng = new Rng();
  const estimators: Estimator[] = ['grpo', 'dr-grpo', 'rloo'];

  // K: 2 (smallest with a baseline), 3, 8, 16, 33 (past a warp), 64; G: 37 groups.
  for (const estimator of estimators)
    it(`matches the float64 reference: ${estimator}`, () => {
      for (const K of [2, 3, 8, 16, 33, 64]) {
        const s = rng.normals(37 * K, 1, 0.5);
        const ref = groupAdvantagesReference(s, K, estimator);
        const naive = groupAdvantagesReference(s, K, estimator, 1e-6, f32);
        const out = groupAdvantages(tensor(s, undefined, { device }), { groupSize: K, estimator }).toArray();
        expectClose(out, ref, naive, `${estimator} K=${K}`);
      }
    });

  it('gives 0 to a group of one and to a group of equal scores', () => {
    for (const estimator of estimators) {
      expect(Array.from(groupAdvantages(tensor([0.5, -2, 7], undefined, { device }), { groupSize: 1, estimator }).toArray())).toEqual([0, 0, 0]);
      expect(Array.from(groupAdvantages(tensor([0.1, 0.1, 0.1, 1, 2, 3], undefined, { device }), { groupSize: 3, estimator }).toArray().slice(0, 3))).toEqual([0, 0, 0]);
    }
  });

  it('centers each group; grpo scales it to unit std', () => {
    const K = 6;
    const s = rng.normals(10 * K, 2, 1);
    const grpo = groupAdvantages(tensor(s, undefined, { device }), { groupSize: K, estimator: 'grpo', eps: 1e-12 }).toArray();
    for (let g = 0; g < 10; g++) {
      const a = Array.from(grpo.slice(g * K, g * K + K));
      const mean = a.reduce((p, q) => p + q, 0) / K;
      expect(Math.abs(mean)).toBeLessThan(1e-6);
      expect(a.reduce((p, q) => p + (q - mean) ** 2, 0) / (K - 1)).toBeCloseTo(1, 5);
    }
  });
});

// ---------------------------------------------------------------- bad input

describe('bad inputs', () => {
  const r = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  const v = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  const u8 = tensor(new Uint8Array(6).fill(1), [2, 3]);
  const opts = { gamma: 0.9, lambda: 0.9 };

  it('gae: shapes, dtypes and options', () => {
    expect(() => gae(tensor(new Float32Array(6)), v, opts)).toThrow(new RangeError('gae: rewards expected a 2-D tensor, got shape [6]'));
    expect(() => gae(new Float32Array(6) as never, v, opts)).toThrow(new TypeError('gae: rewards expected a float32 Tensor, got a Float32Array of length 6'));
    expect(() => gae(r, tensor(new Float32Array(6), [3, 2]), opts)).toThrow(new RangeError('gae: values expected shape [2, 3], got [3, 2]'));
    expect(() => gae(r, tensor(new Int32Array(6), [2, 3]), opts)).toThrow(new TypeError('gae: values expected dtype float32, got int32'));
    expect(() => gae(r, v, { ...opts, mask: r })).toThrow(new TypeError('gae: mask expected dtype uint8, got float32'));
    expect(() => gae(r, v, { ...opts, dones: tensor(new Uint8Array(3), [1, 3]) })).toThrow(new RangeError('gae: dones expected shape [2, 3], got [1, 3]'));
    expect(() => gae(r, v, { ...opts, gamma: 1.5 })).toThrow(new RangeError('gae: gamma expected a finite number >= 0 <= 1, got 1.5'));
    expect(() => gae(r, v, { ...opts, gamma: -0.1 })).toThrow(new RangeError('gae: gamma expected a finite number >= 0 <= 1, got -0.1'));
    expect(() => gae(r, v, { ...opts, lambda: NaN })).toThrow(new RangeError('gae: lambda expected a finite number >= 0 <= 1, got NaN'));
    expect(() => gae(r, v, { lambda: 0.9 } as never)).toThrow(new TypeError('gae: gamma expected a finite number >= 0 <= 1, got undefined'));
    expect(() => gae(r, v, undefined as never)).toThrow(TypeError);
    expect(() => gae(r, v, { ...opts, truncated: u8 })).toThrow(
      new TypeError('gae: truncatedValues expected a float32 Tensor of shape [2, 3] (truncated is given), got undefined'));
    expect(() => gae(r, v, { ...opts, truncatedValues: v })).toThrow(
      new TypeError('gae: truncated expected a uint8 Tensor (truncatedValues is given), got undefined'));
    expect(() => gae(r, v, { ...opts, lastValues: [1, 2, 3] })).toThrow(new RangeError('gae: lastValues expected shape [2], got [3]'));
  });

  it('gae: a disposed input is a KernelError EDISPOSED', () => {
    const gone = tensor(new Float32Array(6), [2, 3]);
    gone.dispose();
    expect(() => gae(r, gone, opts)).toThrow(KernelError);
  });

  it('whiten: mask and eps', () => {
    expect(() => whiten(v, { mask: tensor(new Uint8Array(6)) })).toThrow(new RangeError('whiten: mask expected shape [2, 3], got [6]'));
    expect(() => whiten(v, { mask: new Uint8Array(4) })).toThrow(new RangeError('whiten: mask expected shape [2, 3], got 4 elements'));
    expect(() => whiten(v, { mask: v as never })).toThrow(new TypeError('whiten: mask expected dtype uint8, got float32'));
    expect(() => whiten(v, { eps: 0 })).toThrow(new RangeError('whiten: eps expected a finite number > 0, got 0'));
    expect(() => whiten(v, { shiftMean: 1 as never })).toThrow(new TypeError('whiten: shiftMean expected a boolean, got 1'));
  });

  it('groupAdvantages: group size, estimator, shape', () => {
    const s = new Float32Array(10);
    expect(() => groupAdvantages(s, { groupSize: 3, estimator: 'grpo' })).toThrow(
      new RangeError('groupAdvantages: groupSize expected a divisor of the number of scores (10), got 3'));
    expect(() => groupAdvantages(s, { groupSize: 0, estimator: 'grpo' })).toThrow(
      new RangeError('groupAdvantages: groupSize expected an integer >= 1, got 0'));
    expect(() => groupAdvantages(s, { groupSize: 2.5, estimator: 'grpo' })).toThrow(RangeError);
    expect(() => groupAdvantages(s, { groupSize: 2, estimator: 'ppo' as never })).toThrow(
      new RangeError("groupAdvantages: estimator expected one of 'grpo', 'dr-grpo', 'rloo', got \"ppo\""));
    expect(() => groupAdvantages(s, { groupSize: 2 } as never)).toThrow(
      new TypeError("groupAdvantages: estimator expected one of 'grpo', 'dr-grpo', 'rloo', got undefined"));
    expect(() => groupAdvantages(tensor(s, [2, 5]), { groupSize: 5, estimator: 'rloo' })).toThrow(
      new RangeError('groupAdvantages: scores expected a 1-D tensor, got shape [2, 5]'));
    expect(() => groupAdvantages(s, { groupSize: 2, estimator: 'grpo', eps: -1 })).toThrow(RangeError);
  });

  it('the binding refuses buffers too short for the sizes it is given', () => {
    const short = new Float32Array(5);
    expect(() => runOp('gae', -1, {
      rewards: short, values: short, advantages: short, returns: short, rows: 2, steps: 3, gamma: 1, lambda: 1,
    })).toThrow(/gae: 'rewards' holds 20 bytes, the op needs 24/);
    expect(() => runOp('gae', -1, {
      rewards: r.toArray(), values: v.toArray(), truncated: u8.toArray(), advantages: new Float32Array(6),
      returns: new Float32Array(6), rows: 2, steps: 3, gamma: 1, lambda: 1,
    })).toThrow(/gae: missing tensor 'truncatedValues'/);
    expect(() => runOp('groupAdvantages', -1, { scores: short, out: short, groups: 1, groupSize: 0, estimator: 0, eps: 1 }))
      .toThrow(/groupAdvantages: groupSize expected >= 1/);
  });
});
