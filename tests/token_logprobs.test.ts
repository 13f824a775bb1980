/**
 * tokenLogProbs / tokenLogProbsBackward against the float64 reference:
 * the reference itself (closed forms, finite differences), the parity grid,
 * the backward, and properties. Edges, invariance and bad inputs are in
 * token_logprobs_edges.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tensor, tokenLogProbs, tokenLogProbsBackward } from '../lib/index.js';
import { DEVICES } from './helpers/devices.js';
import { WIDE_OFFSETS, wideLogits, wideScale } from './helpers/extremes.js';
import { partial } from './helpers/finite_diff.js';
import { Rng } from './helpers/random.js';
import { EPS, f32 } from './helpers/tolerance.js';
import { tokenLogProbsBackwardRef, tokenLogProbsRef } from './reference/token_logprobs.js';
import {
  LOGIT_DTYPES, decode, expectClose, randomLogits, randomTargets, roundTo,
} from './token_logprobs_util.js';

describe('reference', () => {
  it('matches closed forms: uniform rows and two tokens', () => {
    const V = 5, T = 1.7;
    const r = tokenLogProbsRef(new Float64Array(V).fill(3), [2], V, { temperature: T });
    expect(r.logprobs[0]).toBeCloseTo(-Math.log(V), 14);
    expect(r.lse[0]).toBeCloseTo(3 / T + Math.log(V), 14);
    expect(r.entropy[0]).toBeCloseTo(Math.log(V), 14);
    const two = tokenLogProbsRef([0.25, -1.5], [0], 2);
    const d = -1.5 - 0.25;
    expect(two.logprobs[0]).toBeCloseTo(-Math.log1p(Math.exp(d)), 14);
    const p = 1 / (1 + Math.exp(d));
    expect(two.entropy[0]).toBeCloseTo(-p * Math.log(p) - (1 - p) * Math.log(1 - p), 14);
  });

  it('has the gradient of its own forward (finite differences, masked column, temperature, entropy)', () => {
    const rng = new Rng();
    const V = 7, rows = 3, T = 1.7;
    const x = Array.from(rng.normals(rows * V, 1.5));
    x[4] = -Infinity; // a masked column
    const y = [1, 6, -100];
    const gLp = [0.7, -1.3, 2], gH = [-0.4, 0.9, 1.1];
    const loss = (v: Float64Array): number => {
      const r = tokenLogProbsRef(v, y, V, { temperature: T });
      let l = 0;
      for (let i = 0; i < rows; i++) l += gLp[i]! * r.logprobs[i]! + gH[i]! * r.entropy[i]!;
      return l;
    };
    const fwd = tokenLogProbsRef(x, y, V, { temperature: T });
    const analytic = tokenLogProbsBackwardRef(x, y, V, { lse: fwd.lse, gradLogprobs: gLp, entropy: fwd.entropy, gradEntropy: gH }, { temperature: T });
    const v = Float64Array.from(x);
    for (let i = 0; i < x.length; i++) {
      if (x[i] === -Infinity) expect(analytic[i]).toBe(0);
      else expect(Math.abs(analytic[i]! - partial(loss, v, i)), `element ${i}`).toBeLessThan(1e-6);
    }
  });
});

// Each vocabulary size is here for a reason; rows keep every case small.
const GRID: [number, string][] = [
  [1, 'one token: logprob 0, entropy 0'],
  [2, 'two tokens'],
  [31, 'below two AVX-512 vectors: a partial vector only after one whole'],
  [32, 'exactly two AVX-512 / four AVX2 vectors: no tail'],
  [33, 'one element past a vector boundary'],
  [127, 'prime: an odd tail on every ISA'],
  [1025, 'one past a power of two: tail after the unrolled loop'],
  [8191, 'prime just below the CPU chunk (8192)'],
  [8193, 'one past the CPU chunk: a one-element second chunk'],
  [32000, 'Llama-2 / Mistral vocabulary: several chunks'],
  [50257, 'GPT-2 vocabulary: odd V, rows not 16-byte aligned on cuda'],
  [128256, 'Llama-3 vocabulary'],
  [151936, 'Qwen2 vocabulary (the bench shape)'],
];
const TEMPERATURES = [0.5, 1, 1.7];

function rowsFor(V: number): number {
  return Math.max(2, Math.min(48, Math.floor(200_000 / V)));
}

describe('tokenLogProbs parity (cpu)', () => {
  GRID.forEach(([V, why], k) => {
    it(`V=${V} (${why}), every dtype`, () => {
      const rng = new Rng();
      const rows = rowsFor(V);
      const shape = rows % 2 === 0 ? [2, rows / 2, V] : [rows, V];
      const temperature = TEMPERATURES[k % 3]!;
      for (const dtype of LOGIT_DTYPES) {
        const { tensor: logits, values } = randomLogits(rng, shape, dtype, { scale: 3 });
        const y = randomTargets(rng, rows, V);
        const targets = tensor(y, shape.slice(0, -1));
        const out = tokenLogProbs(logits, targets, { temperature, entropy: true });
        expect(out.logprobs.shape).toEqual(shape.slice(0, -1));
        const ref = tokenLogProbsRef(values, y, V, { temperature });
        const naive = tokenLogProbsRef(values, y, V, { temperature }, f32);
        const what = `${dtype} V=${V} T=${temperature}`;
        expectClose(`${what} logprobs`, out.logprobs.toArray(), ref.logprobs, naive.logprobs);
        expectClose(`${what} lse`, out.lse.toArray(), ref.lse, naive.lse);
        expectClose(`${what} entropy`, out.entropy!.toArray(), ref.entropy, naive.entropy);
        const plain = tokenLogProbs(logits, targets, { temperature });
        expect(plain.entropy).toBeUndefined();
        expectClose(`${what} logprobs (no entropy)`, plain.logprobs.toArray(), ref.logprobs, naive.logprobs);
      }
    });
  });

  it('handles masked (-inf) columns, a masked target and a fully masked row', () => {
    const rng = new Rng();
    for (const V of [33, 1025, 50257]) {
      for (const dtype of LOGIT_DTYPES) {
        const rows = 6;
        const { tensor: logits, values } = randomLogits(rng, [rows, V], dtype, { masked: 0.3 });
        const y = randomTargets(rng, rows, V, 0);
        // Row 1: the target is masked; row 2: every logit is masked; row 3: the same, ignored.
        const data = logits.toArray();
        const ninf = dtype === 'float32' ? -Infinity : dtype === 'bfloat16' ? 0xff80 : 0xfc00;
        data[1 * V + y[1]!] = ninf;
        values[1 * V + y[1]!] = -Infinity;
        for (const r of [2, 3]) for (let j = 0; j < V; j++) (data[r * V + j] = ninf), (values[r * V + j] = -Infinity);
        y[3] = -100;
        const out = tokenLogProbs(logits, y, { entropy: true });
        const ref = tokenLogProbsRef(values, y, V);
        const naive = tokenLogProbsRef(values, y, V, {}, f32);
        expect(out.logprobs.toArray()[1]).toBe(-Infinity);
        expect(Array.from(out.lse.toArray().slice(2, 4))).toEqual([-Infinity, -Infinity]);
        expect(out.logprobs.toArray()[2]).toBeNaN();
        expect(out.entropy!.toArray()[2]).toBeNaN();
        expect([out.logprobs.toArray()[3], out.entropy!.toArray()[3]]).toEqual([0, 0]);
        expectClose(`${dtype} V=${V} masked logprobs`, out.logprobs.toArray(), ref.logprobs, naive.logprobs);
        expectClose(`${dtype} V=${V} masked lse`, out.lse.toArray(), ref.lse, naive.lse);
        expectClose(`${dtype} V=${V} masked entropy`, out.entropy!.toArray(), ref.entropy, naive.entropy);
      }
    }
  });

  it('stays accurate for logits shifted by +-1e4 (shift invariance of the logprobs)', () => {
    const rng = new Rng();
    const V = 4099, rows = 8;
    for (const shift of [1e4, -1e4]) {
      const { tensor: logits, values } = randomLogits(rng, [rows, V], 'float32', { scale: 4, shift });
      const y = randomTargets(rng, rows, V);
      const out = tokenLogProbs(logits, y, { entropy: true, temperature: 1.7 });
      const ref = tokenLogProbsRef(values, y, V, { temperature: 1.7 });
      const naive = tokenLogProbsRef(values, y, V, { temperature: 1.7 }, f32);
      expectClose(`shift ${shift} logprobs`, out.logprobs.toArray(), ref.logprobs, naive.logprobs);
      expectClose(`shift ${shift} lse`, out.lse.toArray(), ref.lse, naive.lse);
      expectClose(`shift ${shift} entropy`, out.entropy!.toArray(), ref.entropy, naive.entropy);
    }
  });
});

describe('tokenLogProbs at huge logits and tiny temperatures, on every device', () => {
  // Without the shift's remainder the max's own 2^t overflowed past
  // |x / T| ~ 1.5e9, and the baseline build (no FMA) lost up to ulp(x / T)
  // in every logprob (tests/helpers/extremes.ts).
  const V = 1031, temperature = 0.5;
  for (const device of DEVICES)
    it(`${device}: offsets ${WIDE_OFFSETS.join(', ')}`, () => {
      const rng = new Rng();
      const rows = WIDE_OFFSETS.length;
      const values = wideLogits(rng, WIDE_OFFSETS, V);
      const y = randomTargets(rng, rows, V, 0);
      const out = tokenLogProbs(tensor(values, [rows, V], { device }), tensor(y, [rows], { device }), { entropy: true, temperature });
      const ref = tokenLogProbsRef(values, y, V, { temperature });
      const got = { logprobs: out.logprobs.toArray(), lse: out.lse.toArray(), entropy: out.entropy!.toArray() };
      for (let r = 0; r < rows; r++)
        for (const k of ['logprobs', 'lse', 'entropy'] as const) {
          const scale = wideScale(values, r, V, temperature, ref[k][r]!);
          expectClose(`${device} offset ${WIDE_OFFSETS[r]} ${k}`, [got[k][r]!], [ref[k][r]!], [ref[k][r]!], 0, 16, EPS.float32 * scale);
        }
    });
});

describe('tokenLogProbsBackward parity (cpu)', () => {
  const SIZES: [number, string][] = [
    [1, 'one token: gradient 0 off the entropy term'],
    [33, 'vector tail'],
    [1025, 'unrolled loop and tail'],
    [16385, 'one past the backward work item (16384)'],
    [50257, 'odd V'],
    [151936, 'Qwen2 vocabulary'],
  ];
  for (const [V, why] of SIZES) {
    it(`V=${V} (${why}), every dtype, with and without the entropy term`, () => {
      const rng = new Rng();
      const rows = Math.max(2, Math.min(24, Math.floor(150_000 / V)));
      const temperature = V % 2 ? 1.7 : 0.5;
      for (const dtype of LOGIT_DTYPES) {
        for (const withEntropy of [false, true]) {
          const { tensor: logits, values } = randomLogits(rng, [rows, V], dtype, { scale: 2, masked: 0.05 });
          const y = randomTargets(rng, rows, V);
          const fwd = tokenLogProbs(logits, y, { temperature, entropy: true });
          const gLp = rng.normals(rows);
          const gH = withEntropy ? rng.normals(rows) : undefined;
          const grads = { lse: fwd.lse, gradLogprobs: tensor(gLp), entropy: fwd.entropy, gradEntropy: gH && tensor(gH) };
          const g = tokenLogProbsBackward(logits, y, grads, { temperature });
          expect(g.dtype).toBe(dtype);
          expect(g.shape).toEqual([rows, V]);
          const host = { lse: fwd.lse.toArray(), gradLogprobs: gLp, entropy: fwd.entropy!.toArray(), gradEntropy: gH };
          const ref = tokenLogProbsBackwardRef(values, y, V, host, { temperature });
          const naive = roundTo(dtype, tokenLogProbsBackwardRef(values, y, V, host, { temperature }, f32));
          expectClose(`${dtype} V=${V} entropy=${withEntropy} dlogits`, decode(dtype, g.toArray()), ref, naive, 4, dtype === 'float32' ? 16 : 2, EPS[dtype]);
        }
      }
    });
  }

  // The backward's exponent is t = x c - lse c / T. Rounding the shift lse c / T
  // to one float put |lse| c 2^-24 into every t, and with it a relative error
  // of p that no confident row (p ~ 1, 1 - p small) could absorb: 10 ulps of
  // the largest gradient at lse ~ 20, thousands at 1e4. The shift is hi + lo now.
  it('stays accurate for shifted logits and confident rows (large lse, p near 1), on every device', () => {
    const rng = new Rng();
    // 1 / 0.8 = 1.25 is a float, so the kernel's 1 / T is the reference's, while
    // c = log2(e) / T and c T are rounded: the shift needs its low part.
    const V = 4099, rows = 8, temperature = 0.8;
    for (const device of DEVICES) {
      for (const shift of [30, 1e4, -1e4]) {
        const values = Float32Array.from(rng.normals(rows * V, 2, shift));
        const y = randomTargets(rng, rows, V, 0);
        for (let r = 0; r < rows; r += 2) values[r * V + y[r]!] += 12 * temperature; // p(y) ~ 1 - 1e-3
        const logits = tensor(values, [rows, V], { device });
        const targets = tensor(y, [rows], { device });
        const fwd = tokenLogProbs(logits, targets, { temperature, entropy: true });
        const gLp = rng.normals(rows), gH = rng.normals(rows);
        const g = tokenLogProbsBackward(logits, targets, {
          lse: fwd.lse, entropy: fwd.entropy, gradLogprobs: tensor(gLp, [rows], { device }), gradEntropy: tensor(gH, [rows], { device }),
        }, { temperature });
        const host = { lse: fwd.lse.toArray(), gradLogprobs: gLp, entropy: fwd.entropy!.toArray(), gradEntropy: gH };
        const ref = tokenLogProbsBackwardRef(values, y, V, host, { temperature });
        // No naive float32 yardstick here: it rounds x / T, off by |x| 2^-24
        // (8e-4 at 1e4), which would excuse the very error this guards against.
        // The bound: 4 float32 ulps of the largest gradient element.
        expectClose(`${device} shift ${shift} dlogits`, g.toArray(), ref, ref, 0, 8);
      }
    }
  });

  it('writes in place over the logits and returns them, ignored rows included', () => {
    const rng = new Rng();
    for (const dtype of LOGIT_DTYPES) {
      const V = 1031, rows = 5;
      const { tensor: logits } = randomLogits(rng, [rows, V], dtype);
      const y = randomTargets(rng, rows, V, 0);
      y[2] = -100;
      const fwd = tokenLogProbs(logits, y, { entropy: true });
      const grads = { lse: fwd.lse, gradLogprobs: tensor(rng.normals(rows)), entropy: fwd.entropy, gradEntropy: tensor(rng.normals(rows)) };
      const expected = tokenLogProbsBackward(logits, y, grads).toArray().slice();
      const same = tokenLogProbsBackward(logits, y, grads, { inPlace: true });
      expect(same).toBe(logits);
      expect(Array.from(same.toArray())).toEqual(Array.from(expected));
      expect(Array.from(decode(dtype, same.toArray().slice(2 * V, 3 * V))).every((v) => v === 0)).toBe(true);
    }
  });
});

describe('properties (fast-check)', () => {
  const rowsArb = fc.record({
    V: fc.integer({ min: 1, max: 300 }),
    rows: fc.integer({ min: 1, max: 4 }),
    temperature: fc.double({ min: 0.25, max: 4, noNaN: true }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  });

  it('logprobs are <= 0 and entropy lies in [0, log V]', () => {
    fc.assert(
      fc.property(rowsArb, ({ V, rows, temperature, seed }) => {
        const rng = new Rng(seed);
        const { tensor: logits } = randomLogits(rng, [rows, V], 'float32', { scale: 8 });
        const out = tokenLogProbs(logits, rng.ints(rows, 0, V), { temperature, entropy: true });
        for (const lp of out.logprobs.toArray()) expect(lp).toBeLessThanOrEqual(0);
        for (const h of out.entropy!.toArray()) {
          expect(h).toBeGreaterThanOrEqual(0);
          expect(h).toBeLessThanOrEqual(Math.log(V) * (1 + 1e-6) + 1e-6);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('is shift invariant: logits + k give the same logprobs and entropy, lse + k / T', () => {
    fc.assert(
      fc.property(rowsArb, fc.integer({ min: -10_000, max: 10_000 }), ({ V, rows, temperature, seed }, k) => {
        // Multiples of 1/64 below 16 in magnitude: x + k is exact in float32.
        const rng = new Rng(seed);
        const x = Float32Array.from({ length: rows * V }, () => rng.int(-1000, 1000) / 64);
        const y = rng.ints(rows, 0, V);
        const a = tokenLogProbs(tensor(x, [rows, V]), y, { temperature, entropy: true });
        const b = tokenLogProbs(tensor(x.map((v) => v + k), [rows, V]), y, { temperature, entropy: true });
        for (let r = 0; r < rows; r++) {
          expect(Math.abs(b.logprobs.toArray()[r]! - a.logprobs.toArray()[r]!)).toBeLessThan(1e-5 * (1 + Math.abs(a.logprobs.toArray()[r]!)));
          expect(Math.abs(b.entropy!.toArray()[r]! - a.entropy!.toArray()[r]!)).toBeLessThan(1e-5);
          const lse = a.lse.toArray()[r]! + k / temperature;
          expect(Math.abs(b.lse.toArray()[r]! - lse)).toBeLessThan(4 * EPS.float32 * (Math.abs(lse) + 16));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('gradient rows sum to ~0 without the entropy term', () => {
    fc.assert(
      fc.property(rowsArb, ({ V, rows, temperature, seed }) => {
        const rng = new Rng(seed);
        const { tensor: logits } = randomLogits(rng, [rows, V], 'float32', { scale: 3 });
        const y = rng.ints(rows, 0, V);
        const gLp = rng.normals(rows);
        const fwd = tokenLogProbs(logits, y, { temperature });
        const g = tokenLogProbsBackward(logits, y, { lse: fwd.lse, gradLogprobs: tensor(gLp) }, { temperature }).toArray();
        const lse = fwd.lse.toArray();
        for (let r = 0; r < rows; r++) {
          let sum = 0;
          for (let j = 0; j < V; j++) sum += g[r * V + j]!;
          // sum p - 1 comes from float32 roundings: a few per p, and lse's own
          // (eps |lse|, shared by every p): relative to |gLp| / T.
          const slack = (8 * V + 16 + 4 * Math.abs(lse[r]!)) * EPS.float32;
          expect(Math.abs(sum)).toBeLessThanOrEqual(slack * Math.abs(gLp[r]!) / temperature);
        }
      }),
      { numRuns: 60 },
    );
  });
});
