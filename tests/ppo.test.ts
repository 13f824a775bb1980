import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { type Aggregation, type Tensor, info, ppoPolicyLoss, setNumThreads, tensor } from '../lib/index.js';
import { DEVICES } from './helpers/devices.js';
import { partial } from './helpers/finite_diff.js';
import { Rng } from './helpers/random.js';
import { EPS } from './helpers/tolerance.js';
import {
  LOG_RATIO_BOUND, type PolicyInputs, type ValueInputs, ppoPolicyLossReference, ppoValueLossReference,
} from './reference/ppo.js';
import {
  AGGREGATIONS, KLS, MASKS, policyOptionGrid, randomPolicyInputs, randomValueInputs,
} from './reference/ppo_inputs.js';
import { checkPolicy, checkValue, on, runPolicy, runValue } from './ppo_util.js';


afterAll(() => setNumThreads(info().cpu.threads));

// --------------------------------------------------------------- reference

describe('ppo reference', () => {
  const rng = new Rng();

  // Relative agreement of an analytic gradient with central differences.
  function expectGradient(f: (v: Float64Array) => number, at: ArrayLike<number>, grad: ArrayLike<number>, what: string): void {
    const v = Float64Array.from(at);
    for (let i = 0; i < v.length; i++) {
      const fd = partial(f, v, i);
      expect(Math.abs(fd - grad[i]!), `${what} [${i}]: ${fd} vs ${grad[i]}`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(grad[i]!)));
    }
  }

  it('has policy gradients equal to finite differences, away from the kinks (token and sequence ratios)', () => {
    for (const aggregation of AGGREGATIONS)
      for (const dualClip of [undefined, 3])
        for (const klEstimator of KLS)
          for (const importanceSampling of ['token', 'sequence'] as const) {
          const x = { ...randomPolicyInputs(rng, 3, 6, { mask: 'empty rows', aggregation, dualClip, klEstimator, entropyCoef: 0.01, spread: 0.4 }), importanceSampling };
          // A sequence ratio's gradient is GSPO-token's: the exact one when advantages are equal along a row.
          if (importanceSampling === 'sequence') x.advantages = Float32Array.from(x.advantages, (_, i) => x.advantages[i - (i % 6)]!);
          const ref = ppoPolicyLossReference(x);
          const what = `${aggregation} dual ${dualClip} ${klEstimator} ${importanceSampling}`;
          expectGradient((lp) => ppoPolicyLossReference({ ...x, logprobs: lp }).loss, x.logprobs, ref.gradLogprobs, `${what} logprobs`);
          expectGradient((h) => ppoPolicyLossReference({ ...x, entropy: h }).loss, x.entropy!, ref.gradEntropy!, `${what} entropy`);
        }
  });

  it('has value gradients equal to finite differences, away from the kinks', () => {
    for (const aggregation of AGGREGATIONS)
      for (const clip of [undefined, 0.2]) {
        const x = randomValueInputs(rng, 3, 6, { mask: 'empty rows', aggregation, clip });
        const ref = ppoValueLossReference(x);
        expectGradient((v) => ppoValueLossReference({ ...x, values: v }).loss, x.values, ref.gradValues, `${aggregation} clip ${clip}`);
      }
  });

  it('follows the closed forms of each aggregation on hand-made numbers', () => {
    // Ratio 1 everywhere: L = -A; rows [1, 2, 3 | 4, masked, masked].
    const x: PolicyInputs = {
      B: 2, T: 3, logprobs: new Float32Array(6).fill(-1), oldLogprobs: new Float32Array(6).fill(-1),
      advantages: Float32Array.of(1, 2, 3, 4, 5, 6), mask: Uint8Array.of(1, 1, 1, 1, 0, 0),
    };
    const loss = (aggregation: Aggregation): number => ppoPolicyLossReference({ ...x, aggregation }).loss;
    expect(loss('token-mean')).toBeCloseTo(-10 / 4, 12);
    expect(loss('seq-mean-token-sum')).toBeCloseTo(-(6 + 4) / 2, 12);
    expect(loss('seq-mean-token-mean')).toBeCloseTo(-(2 + 4) / 2, 12);
    expect(loss('seq-mean-token-sum-norm')).toBeCloseTo(-10 / 6, 12);
    // A normalizer N replaces each denominator (4, 2, 2, 6), in the loss and in every weight.
    const given = (aggregation: Aggregation, normalizer: number) => ppoPolicyLossReference({ ...x, aggregation, normalizer });
    expect(given('token-mean', 8).loss).toBeCloseTo(-10 / 8, 12);
    expect(given('seq-mean-token-sum', 5).loss).toBeCloseTo(-(6 + 4) / 5, 12);
    expect(given('seq-mean-token-mean', 4).loss).toBeCloseTo(-(2 + 4) / 4, 12);
    expect(given('seq-mean-token-sum-norm', 12).loss).toBeCloseTo(-10 / 12, 12);
    expect(Array.from(given('token-mean', 8).gradLogprobs)).toEqual([-1 / 8, -2 / 8, -3 / 8, -4 / 8, 0, 0]);
    expect(Array.from(given('seq-mean-token-mean', 4).gradLogprobs)).toEqual([-1 / 12, -2 / 12, -3 / 12, -4 / 4, 0, 0]);
    // One clipped token: r = 1.5 > 1.2 with A = 1 -> -1.2, no gradient; with A = -1 -> 1.5, gradient -(-1) r / n.
    const one = (A: number, dualClip?: number) => ppoPolicyLossReference({
      B: 1, T: 1, logprobs: [Math.log(1.5)], oldLogprobs: [0], advantages: [A], ...(dualClip ? { dualClip } : {}),
    });
    expect(one(1).loss).toBeCloseTo(-1.2, 12);
    expect(one(1).gradLogprobs[0]).toBe(0);
    expect(one(1).clipFraction).toBe(1);
    expect(one(-1).loss).toBeCloseTo(1.5, 12);
    expect(one(-1).gradLogprobs[0]).toBeCloseTo(1.5, 12);
    expect(one(-1).clipFraction).toBe(0);
    expect(one(-1, 1.4).loss).toBeCloseTo(1.4, 12);
    expect(one(-1, 1.4).gradLogprobs[0]).toBe(0);
    expect(one(-1, 1.4).clipFractionLower).toBe(1);
    expect(one(-1).approxKl).toBeCloseTo(1 / 1.5 - 1 + Math.log(1.5), 12);
  });
});

// ------------------------------------------------------------------ parity

// Each shape is here for a reason.
const SHAPES: [number, number, string][] = [
  [1, 1, 'one token'],
  [3, 7, 'runs shorter than a CPU vector'],
  [4, 33, 'one past a warp and a vector multiple'],
  [300, 3, 'many short rows: CUDA packs hundreds of rows per tile'],
  [5, 1000, 'CUDA: one row per tile'],
  [9, 2000, 'CPU reduction blocks (16384 tokens) end inside a row; CUDA: two row segments'],
  [2, 2048, 'CUDA: whole row segments, every tile full'],
  [3, 4100, 'rows longer than a CUDA tile: row segments'],
];

describe.each(DEVICES)('ppoPolicyLoss on %s', (device) => {
  const rng = new Rng();

  it.each(SHAPES)('%i x %i (%s): every aggregation, dual clip, KL estimator, entropy and mask pattern', (B, T) => {
    for (const { options, label } of policyOptionGrid()) checkPolicy(randomPolicyInputs(rng, B, T, options), device, `${B}x${T} ${label}`);
  });

  it('handles asymmetric clips (clip-higher) and wide ratio spreads', () => {
    for (const aggregation of AGGREGATIONS) {
      const x = randomPolicyInputs(rng, 16, 100, { mask: 'random', aggregation, clipLow: 0.2, clipHigh: 0.28, dualClip: 2, spread: 1 });
      const out = checkPolicy(x, device, `clip-higher ${aggregation}`);
      expect(out.clipFraction).toBeGreaterThan(0);
      expect(out.clipFractionLower).toBeGreaterThan(0);
    }
  });

  it('applies no dual clip without one, not even to a loss that overflows to +inf', () => {
    // A = -3e38 at a ratio of e^0.5: both surrogate terms overflow float32 to
    // +inf, a tie, whose gradient torch splits (half of -A r). A dual clip
    // ties with its own infinite bound there and halves it again; without
    // one nothing may. Rows of 1024 tokens: CUDA's full tiles.
    const x = randomPolicyInputs(rng, 2, 1024);
    const lp = x.logprobs as Float32Array, old = x.oldLogprobs as Float32Array, adv = x.advantages as Float32Array;
    const tokens = [0, 1500];
    for (const i of tokens) {
      old[i] = lp[i]! - 0.5;
      adv[i] = -3e38;
    }
    const off = runPolicy(x, device);
    const on = runPolicy({ ...x, dualClip: 3 }, device);
    expect([off.loss, on.loss]).toEqual([Infinity, Infinity]);
    for (const i of tokens) {
      const half = (0.5 * 3e38 * Math.exp(Math.fround(lp[i]! - old[i]!))) / lp.length;  // -A r / 2, token-mean
      expect(off.gradLogprobs[i]! / half, `token ${i} without a dual clip`).toBeCloseTo(1, 5);
      expect(on.gradLogprobs[i]! / (half / 2), `token ${i} with one`).toBeCloseTo(1, 5);
    }
  });

  it('gives a loss, gradients and statistics of 0 without a valid token', () => {
    // 2^40 rows of no step: nothing is allocated per row (it once asked for 8 TB)
    const none = (): Tensor => tensor(new Float32Array(0), [2 ** 40, 0], { device });
    for (const aggregation of AGGREGATIONS) {
      const out = ppoPolicyLoss(none(), none(), none(), { mask: tensor(new Uint8Array(0), [2 ** 40, 0], { device }), aggregation });
      expect([out.loss.item(), out.clipFraction.item()]).toEqual([0, 0]);
    }
    for (const [B, T] of [[4, 9], [0, 5], [5, 0]] as const) {
      const x = randomPolicyInputs(rng, B, T, { mask: 'all empty', klEstimator: 'k3', entropyCoef: 0.1 });
      const out = runPolicy(x, device);
      expect([out.loss, out.clipFraction, out.clipFractionLower, out.approxKl, out.kl]).toEqual([0, 0, 0, 0, 0]);
      expect(out.gradLogprobs.every((g) => g === 0)).toBe(true);
      expect(out.gradEntropy!.every((g) => g === 0)).toBe(true);
    }
  });

  it('ignores masked tokens, even NaN ones, and gives them gradient 0', () => {
    const x = randomPolicyInputs(rng, 6, 50, { mask: 'random', klEstimator: 'k2', entropyCoef: 0.01, dualClip: 3 });
    const clean = runPolicy(x, device);
    const dirty = { ...x, logprobs: Float32Array.from(x.logprobs), advantages: Float32Array.from(x.advantages) };
    for (let i = 0; i < x.mask!.length; i++)
      if (!x.mask![i]) {
        dirty.logprobs[i] = NaN;
        dirty.advantages[i] = Infinity;
      }
    const out = runPolicy(dirty, device);
    expect(out).toEqual(clean);
    for (let i = 0; i < x.mask!.length; i++) if (!x.mask![i]) expect(out.gradLogprobs[i]).toBe(0);
  });

  it('makes the loss NaN when a valid token is NaN', () => {
    const x = randomPolicyInputs(rng, 2, 20);
    (x.advantages as Float32Array)[7] = NaN;
    expect(runPolicy(x, device).loss).toBeNaN();
  });

  it('clamps the log-ratio to ±20: finite results, and no surrogate gradient outside', () => {
    const x = randomPolicyInputs(rng, 2, 8);
    const lp = x.logprobs as Float32Array;
    const old = x.oldLogprobs as Float32Array;
    // Far outside, exactly on the bound (the clamp passes the gradient there), inside.
    const logRatios = [60, -60, 25, -25, LOG_RATIO_BOUND, -LOG_RATIO_BOUND];
    logRatios.forEach((d, i) => {
      old[i] = -30;
      lp[i] = -30 + d;
    });
    // Signs for which the unclipped term wins on the bounds: it carries the gradient.
    (x.advantages as Float32Array).set([-1, 1, -1, 1, -1, 1]);
    const out = checkPolicy(x, device, 'clamped log-ratios');
    expect(Number.isFinite(out.loss)).toBe(true);
    for (let i = 0; i < 4; i++) expect(Math.abs(out.gradLogprobs[i]!)).toBe(0);
    expect(out.gradLogprobs[4]).toBeGreaterThan(0);
    expect(out.gradLogprobs[5]).toBeLessThan(0);
    // k3's d is clamped alike.
    const withKl = randomPolicyInputs(rng, 1, 4, { klEstimator: 'k3', klCoef: 1 });
    (withKl.refLogprobs as Float32Array).set([withKl.logprobs[0]! + 30, withKl.logprobs[1]! - 30]);
    const kl = checkPolicy(withKl, device, 'clamped k3');
    expect(Number.isFinite(kl.kl!)).toBe(true);
  });

  it('is minus the mean advantage, with gradient -A / n, at ratio 1 (token-mean, no KL or entropy)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 70 }), fc.integer(), (B, T, seed) => {
        const r = new Rng(seed >>> 0);
        const x = randomPolicyInputs(r, B, T, { mask: 'random' });
        x.oldLogprobs = x.logprobs;
        const out = runPolicy(x, device);
        let sum = 0;
        let magnitude = 0;
        let count = 0;
        for (let i = 0; i < B * T; i++)
          if (x.mask![i]) {
            sum += x.advantages[i]!;
            magnitude += Math.abs(x.advantages[i]!);
            count++;
          }
        // Float32 sums of the w A terms: a few ulps of their magnitude per term summed in a lane.
        expect(Math.abs(out.loss - (count ? -sum / count : 0))).toBeLessThanOrEqual(1e-5 * (count ? magnitude / count : 0));
        // fl(fl(1 / n) * A): two roundings.
        for (let i = 0; i < B * T; i++) {
          const expected = x.mask![i] ? -x.advantages[i]! / count : 0;
          expect(Math.abs(out.gradLogprobs[i]! - expected)).toBeLessThanOrEqual(3 * 2 ** -24 * Math.abs(expected));
        }
        expect(out.clipFraction).toBe(0);
        expect(out.approxKl).toBe(0);
      }),
      { numRuns: 40 },
    );
  });

  it('clips nothing when |log ratio| is tiny, and approxKl is about the mean of half its square', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 90 }), fc.integer(), (B, T, seed) => {
        const r = new Rng(seed >>> 0);
        const x = randomPolicyInputs(r, B, T, { mask: 'random', dualClip: 3, spread: 1e-3 });
        const out = runPolicy(x, device);
        expect(out.clipFraction).toBe(0);
        expect(out.clipFractionLower).toBe(0);
        let sum = 0;
        let count = 0;
        for (let i = 0; i < B * T; i++)
          if (x.mask![i]) {
            const d = Math.fround(x.logprobs[i]! - x.oldLogprobs[i]!);
            sum += (d * d) / 2;
            count++;
          }
        const expected = count ? sum / count : 0;
        // k3(d) = d^2/2 - d^3/6 + ...: relative deviation about |d| / 3 (|d| < 5e-3 here).
        expect(Math.abs(out.approxKl - expected)).toBeLessThanOrEqual(3e-3 * expected + 1e-12);
      }),
      { numRuns: 30 },
    );
  });

  it('is bit-identical from run to run', () => {
    const x = randomPolicyInputs(rng, 40, 1500, { mask: 'random', aggregation: 'seq-mean-token-mean', klEstimator: 'k3', entropyCoef: 0.01, dualClip: 3 });
    const first = runPolicy(x, device);
    for (let k = 0; k < 3; k++) expect(runPolicy(x, device)).toEqual(first);
  });

  it.each(SHAPES)('%i x %i (%s): a given normalizer, every aggregation and mask pattern', (B, T) => {
    for (const aggregation of AGGREGATIONS)
      for (const mask of MASKS) {
        const normalizer = 0.5 + rng.uniform() * 2 * B * T;  // any count > 0: a global batch's, say
        const x = { ...randomPolicyInputs(rng, B, T, { mask, aggregation, klEstimator: 'k3', entropyCoef: 0.01, dualClip: 3 }), normalizer };
        checkPolicy(x, device, `${B}x${T} ${aggregation} mask=${mask} normalizer=${normalizer}`);
      }
  });

  it('adds up over micro-batches given the global batch\'s count: the loss, and the same gradient bits', () => {
    // Rows [0, 7) and [7, 19) of one batch; rows 3 and 11 empty.
    const [B, T, cut] = [19, 2100, 7];
    for (const aggregation of AGGREGATIONS) {
      const x = randomPolicyInputs(rng, B, T, { mask: 'random', aggregation, klEstimator: 'k1', entropyCoef: 0.01 });
      const mask = x.mask as Uint8Array;
      mask.fill(0, 3 * T, 4 * T);
      mask.fill(0, 11 * T, 12 * T);
      const nonEmpty = B - 2;
      const count = mask.reduce((a, m) => a + m, 0);
      const normalizer = { 'token-mean': count, 'seq-mean-token-sum': nonEmpty, 'seq-mean-token-mean': nonEmpty, 'seq-mean-token-sum-norm': B * T }[aggregation];
      const rows = (b0: number, b1: number): PolicyInputs => {
        const part = (a: ArrayLike<number> | undefined) => a && Float32Array.prototype.slice.call(a, b0 * T, b1 * T);
        return {
          ...x, B: b1 - b0, normalizer, logprobs: part(x.logprobs)!, oldLogprobs: part(x.oldLogprobs)!, advantages: part(x.advantages)!,
          mask: Uint8Array.from(mask.subarray(b0 * T, b1 * T)), refLogprobs: part(x.refLogprobs), entropy: part(x.entropy),
        };
      };
      const whole = runPolicy(x, device);
      const [first, second] = [runPolicy(rows(0, cut), device), runPolicy(rows(cut, B), device)];
      const what = `${aggregation}: `;
      // The same weights (the normalizer's, or fl(1 / count) of the same count) give the same bits.
      expect(Float32Array.of(...first.gradLogprobs, ...second.gradLogprobs), `${what}gradLogprobs`).toEqual(whole.gradLogprobs);
      expect(Float32Array.of(...first.gradEntropy!, ...second.gradEntropy!), `${what}gradEntropy`).toEqual(whole.gradEntropy);
      // Two sums of float32 terms against one: a few ulps of the terms' magnitude.
      const ref = ppoPolicyLossReference(x);
      expect(Math.abs(first.loss + second.loss - whole.loss), `${what}loss`).toBeLessThanOrEqual(16 * 2 ** -24 * ref.lossMagnitude);
    }
  });
});

describe('ppoPolicyLoss with one advantage per row ([B], GRPO\'s)', () => {
  it.each(DEVICES)('matches the reference on %s', (device) => {
    const rng = new Rng();
    for (const aggregation of AGGREGATIONS)
      for (const [B, T] of [[3, 1], [5, 17], [4, 300]] as const) {
        const x = randomPolicyInputs(rng, B, T, { mask: 'empty rows', aggregation, klEstimator: 'k3', entropyCoef: 0.01 });
        const perRow = Float32Array.from({ length: B }, (_, b) => x.advantages[b * T]!);
        const spread = { ...x, advantages: Float32Array.from({ length: B * T }, (_, i) => perRow[Math.floor(i / T)]!) };
        checkPolicy(spread, device, `${B}x${T} ${aggregation} per row`, tensor(perRow, [B], { device }));
      }
  });

  it.each(DEVICES)('takes them as host data too (a Float32Array or number[]), with the same bits (%s)', (device) => {
    const rng = new Rng();
    const B = 6, T = 33;
    const x = randomPolicyInputs(rng, B, T, { mask: 'empty rows', aggregation: 'seq-mean-token-mean' });
    const perRow = rng.normals(B);
    const on = (a: Float32Array | Uint8Array, shape: number[]) => tensor(a, shape, { device });
    const run = (advantages: Parameters<typeof ppoPolicyLoss>[2]) => {
      const out = ppoPolicyLoss(on(x.logprobs, [B, T]), on(x.oldLogprobs, [B, T]), advantages, { mask: on(x.mask!, [B, T]) });
      return [out.loss.item(), ...out.gradLogprobs.toArray()];
    };
    const expected = run(tensor(perRow, [B], { device }));
    expect(run(perRow)).toEqual(expected);
    expect(run(Array.from(perRow))).toEqual(expected);
  });

  // Each ISA in a child process: rows that start anywhere in a vector.
  it.each(info().cpu.supportedIsas)('gives the same bits as the advantages written out [B, T] (cpu, %s)', (isa) => {
    const child = fileURLToPath(new URL('./ppo_row_advantages_child.mjs', import.meta.url));
    const out = execFileSync(process.execPath, [child], { env: { ...process.env, RLHF_KERNELS_ISA: isa }, encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { isa: string; cases: number; differ: string[] };
    expect(r.isa).toBe(isa);
    expect(r.cases).toBe(40);
    expect(r.differ).toEqual([]);
  });
});

describe.each(DEVICES)('ppoPolicyLoss with sequence ratios (GSPO) on %s', (device) => {
  const rng = new Rng();
  const sequence = { importanceSampling: 'sequence' } as const;

  it.each(SHAPES)('%i x %i (%s): every aggregation, dual clip, KL estimator, entropy and mask pattern', (B, T) => {
    for (const { options, label } of policyOptionGrid())
      checkPolicy({ ...randomPolicyInputs(rng, B, T, options), ...sequence }, device, `${B}x${T} ${label} sequence`);
  });

  it('takes one advantage per row ([B], as GSPO does), and a given normalizer', () => {
    for (const aggregation of AGGREGATIONS)
      for (const [B, T] of [[3, 1], [5, 17], [4, 300], [3, 4100]] as const) {
        const x = randomPolicyInputs(rng, B, T, { mask: 'empty rows', aggregation, klEstimator: 'k3', entropyCoef: 0.01 });
        const perRow = Float32Array.from({ length: B }, (_, b) => x.advantages[b * T]!);
        const spread = { ...x, ...sequence, advantages: Float32Array.from({ length: B * T }, (_, i) => perRow[Math.floor(i / T)]!) };
        checkPolicy(spread, device, `${B}x${T} ${aggregation} per row`, tensor(perRow, [B], { device }));
        checkPolicy({ ...spread, normalizer: 1.5 * B * T }, device, `${B}x${T} ${aggregation} normalizer`);
      }
  });

  it('equals the token ratio when every row holds one valid token (within 4 ulps: the two paths may fuse differently)', () => {
    for (const aggregation of AGGREGATIONS) {
      const B = 37, T = 9;
      const x = randomPolicyInputs(rng, B, T, { aggregation, klEstimator: 'k2', entropyCoef: 0.02, dualClip: 3 });
      const mask = new Uint8Array(B * T);
      for (let b = 0; b < B; b++) mask[b * T + ((b * 5) % T)] = 1;
      const token = runPolicy({ ...x, mask }, device);
      const seq = runPolicy({ ...x, mask, ...sequence }, device);
      // The loss sums terms of both signs: its ulps are those of the terms' magnitudes, not of the sum.
      const scale = { loss: Math.max(Math.abs(token.loss), ppoPolicyLossReference({ ...x, mask }).lossMagnitude) };
      for (const key of ['loss', 'clipFraction', 'clipFractionLower', 'approxKl', 'kl'] as const)
        expect(Math.abs(seq[key]! - token[key]!), `${aggregation} ${key}`).toBeLessThanOrEqual(4 * EPS.float32 * (key === 'loss' ? scale.loss : Math.abs(token[key]!)));
      for (const key of ['gradLogprobs', 'gradEntropy'] as const)
        token[key]!.forEach((g, i) => expect(Math.abs(seq[key]![i]! - g), `${aggregation} ${key}[${i}]`).toBeLessThanOrEqual(4 * EPS.float32 * Math.abs(g)));
    }
  });

  it('gives every valid token of a row its row ratio: a clipped row counts all its tokens, masked NaNs stay out', () => {
    // Row 0: log-ratios 0.5 and -0.1 (mean 0.2, ratio e^0.2 > 1.2: clipped for A > 0); row 1: 0.1 and -0.1 (ratio 1).
    const lp = Float32Array.of(-1, -2, NaN, -1, -1, 5);
    const old = Float32Array.of(-1.5, -1.9, 0, -1.1, -0.9, NaN);
    const x = { B: 2, T: 3, logprobs: lp, oldLogprobs: old, advantages: Float32Array.of(1, 1, 1, 2, 2, 2),
      mask: Uint8Array.of(1, 1, 0, 1, 1, 0), ...sequence };
    const out = runPolicy(x, device);
    expect(out.clipFraction).toBe(0.5);
    [0, 0, 0, -0.5, -0.5, 0].forEach((g, i) => expect(out.gradLogprobs[i]).toBeCloseTo(g, 6));
    // token-mean: (-1.2 - 1.2 - 2 - 2) / 4
    expect(out.loss).toBeCloseTo(-1.6, 6);
    checkPolicy(x, device, 'by hand');
  });
});

describe('ppoPolicyLoss on cpu across thread counts', () => {
  it('gives the same bits with 1, 2 and 3 threads (token and sequence ratios)', () => {
    const rng = new Rng();
    for (const aggregation of AGGREGATIONS) {
      const x = randomPolicyInputs(rng, 37, 1777, { mask: 'empty rows', aggregation, klEstimator: 'k1', entropyCoef: 0.02 });
      const v = randomValueInputs(rng, 37, 1777, { mask: 'random', clip: 0.2, aggregation });
      const runs = [1, 2, 3].map((threads) => {
        setNumThreads(threads);
        return [runPolicy(x, 'cpu'), runPolicy({ ...x, importanceSampling: 'sequence' }, 'cpu'), runValue(v, 'cpu')];
      });
      expect(runs[1]).toEqual(runs[0]);
      expect(runs[2]).toEqual(runs[0]);
    }
  });
});

describe.each(DEVICES)('ppoValueLoss on %s', (device) => {
  const rng = new Rng();

  it.each(SHAPES)('%i x %i (%s): every aggregation, clip and mask pattern', (B, T) => {
    for (const aggregation of AGGREGATIONS)
      for (const clip of [undefined, 0.2, 0])
        for (const mask of MASKS) {
          const x: ValueInputs = randomValueInputs(rng, B, T, { mask, aggregation, clip });
          checkValue(x, device, `${B}x${T} ${aggregation} clip=${clip} mask=${mask}`);
        }
  });

  it.each(SHAPES)('%i x %i (%s): a given normalizer, every aggregation and mask pattern', (B, T) => {
    for (const aggregation of AGGREGATIONS)
      for (const mask of MASKS) {
        const normalizer = 0.5 + rng.uniform() * 2 * B * T;
        checkValue({ ...randomValueInputs(rng, B, T, { mask, aggregation, clip: 0.2 }), normalizer }, device, `${B}x${T} ${aggregation} mask=${mask} normalizer=${normalizer}`);
      }
  });

  it('is 0.5 mean (v - R)^2 without clip, and clips nothing when values moved less than clip', () => {
    const x = randomValueInputs(rng, 5, 40, { mask: 'random' });
    const plain = runValue(x, device);
    let sum = 0;
    let count = 0;
    for (let i = 0; i < 200; i++) if (x.mask![i]) (sum += 0.5 * (x.values[i]! - x.returns[i]!) ** 2), count++;
    expect(plain.loss).toBeCloseTo(sum / count, 5);
    expect(plain.clipFraction).toBe(0);
    const wide = runValue({ ...x, clip: 100 }, device);
    expect(wide).toEqual(plain);
  });

  it('ignores masked tokens, even NaN ones, and makes the loss NaN for a NaN valid value', () => {
    const x = randomValueInputs(rng, 4, 30, { mask: 'random', clip: 0.2 });
    const clean = runValue(x, device);
    const dirty = { ...x, values: Float32Array.from(x.values), oldValues: Float32Array.from(x.oldValues) };
    for (let i = 0; i < 120; i++) if (!x.mask![i]) (dirty.values[i] = NaN), (dirty.oldValues[i] = NaN);
    expect(runValue(dirty, device)).toEqual(clean);
    const valid = x.mask!.indexOf(1);
    dirty.oldValues[valid] = NaN;
    expect(runValue(dirty, device).loss).toBeNaN();
  });
});

describe('ppo outputs', () => {
  it('are 0-d float32 tensors on the inputs device, gradients [B, T]', () => {
    const x = randomPolicyInputs(new Rng(), 2, 3, { klEstimator: 'k1', entropyCoef: 0.1 });
    const r = ppoPolicyLoss(on(x.logprobs, x, 'cpu'), on(x.oldLogprobs, x, 'cpu'), on(x.advantages, x, 'cpu'), {
      refLogprobs: on(x.refLogprobs!, x, 'cpu'), entropy: on(x.entropy!, x, 'cpu'), entropyCoef: 0.1,
    });
    // Typed as Tensors, not possibly undefined, since refLogprobs and entropy were given.
    for (const t of [r.loss, r.clipFraction, r.clipFractionLower, r.approxKl, r.kl]) {
      expect(t.shape).toEqual([]);
      expect(t.dtype).toBe('float32');
      expect(t.device).toBe('cpu');
    }
    expect(r.gradLogprobs.shape).toEqual([2, 3]);
    expect(r.gradEntropy.shape).toEqual([2, 3]);
    const bare = ppoPolicyLoss(tensor([0, 0], [1, 2]), tensor([0, 0], [1, 2]), tensor([1, -1], [1, 2]));
    expect(bare.kl).toBeUndefined();
    expect(bare.gradEntropy).toBeUndefined();
  });
});
