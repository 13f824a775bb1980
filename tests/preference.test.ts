/**
 * pairwiseLoss and dpoLoss: the reference against closed forms and finite
 * differences, the kernels against the reference on every backend, the
 * extremes, properties, determinism and bad inputs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Device, type PreferenceKind, type PreferenceLossResult, dpoLoss, info, pairwiseLoss, setNumThreads, tensor,
} from '../lib/index.js';
import { DEVICES } from './helpers/devices.js';
import { gradient } from './helpers/finite_diff.js';
import { Rng } from './helpers/random.js';
import { EPS, derivedTolerance, errorStats, f32, maxAbs } from './helpers/tolerance.js';
import {
  type LossRefOptions, meanMarginScale, pairTerms, preferenceLossRef, rewardScale, sigmoidSmoothing, softplus,
} from './reference/preference.js';

const KINDS: PreferenceKind[] = ['sigmoid', 'hinge', 'ipo'];

/**
 * The tolerance rule, plus a floor of a few float32 ulps of `scale` (default
 * the largest value) for when the naive run happens to be exact.
 */
function expectClose(out: ArrayLike<number>, exact: ArrayLike<number>, naive: ArrayLike<number>, what: string,
  scale = maxAbs(exact)): void {
  const tol = derivedTolerance(naive, exact, 4, 4 * EPS.float32 * scale);
  const e = errorStats(out, exact);
  expect(e.mismatchedNonFinite, `${what}: non-finite mismatch at ${e.worst}`).toBe(0);
  expect(e.maxAbs, `${what}: error at ${e.worst}`).toBeLessThanOrEqual(tol);
}

function read(r: PreferenceLossResult) {
  return {
    loss: r.loss.item(), gradChosen: r.gradChosen.toArray(),
    gradRejected: r.gradRejected.toArray(), accuracy: r.accuracy.item(), meanMargin: r.meanMargin.item(),
    chosenReward: r.chosenReward.item(), rejectedReward: r.rejectedReward.item(),
  };
}

function expectMatchesReference(out: ReturnType<typeof read>, c: Float32Array, r: Float32Array, o: LossRefOptions,
  what: string): void {
  const exact = preferenceLossRef(c, r, o);
  const naive = preferenceLossRef(c, r, o, f32);
  expectClose([out.loss], [exact.loss], [naive.loss], `${what} loss`);
  expectClose(out.gradChosen, exact.gradChosen, naive.gradChosen, `${what} gradChosen`, exact.gradMagnitude);
  expectClose(out.gradRejected, exact.gradRejected, naive.gradRejected, `${what} gradRejected`, exact.gradMagnitude);
  expectClose([out.accuracy], [exact.accuracy], [naive.accuracy], `${what} accuracy`);
  expectClose([out.meanMargin], [exact.meanMargin], [naive.meanMargin], `${what} meanMargin`, meanMarginScale(c, r, o));
  const beta = o.beta ?? 1;
  expectClose([out.chosenReward], [exact.chosenReward], [naive.chosenReward], `${what} chosenReward`,
    rewardScale(c, o.refChosen, beta));
  expectClose([out.rejectedReward], [exact.rejectedReward], [naive.rejectedReward], `${what} rejectedReward`,
    rewardScale(r, o.refRejected, beta));
}

describe('preference reference', () => {
  it('softplus matches log(1 + e^z) and never overflows', () => {
    expect(softplus(0)).toBeCloseTo(Math.LN2, 15);
    for (let z = -20; z <= 20; z += 0.25) expect(softplus(z)).toBeCloseTo(Math.log(1 + Math.exp(z)), 12);
    expect(softplus(1e4)).toBe(1e4);
    expect(softplus(-1e4)).toBe(0);
    expect(softplus(-50) / Math.exp(-50)).toBeCloseTo(1, 12);
  });

  it('gives the closed forms of each kind', () => {
    // sigmoid at x = 0 is log 2; its minimum with smoothing s is at x = log((1 - s) / s).
    expect(pairTerms('sigmoid', 0, 0, 1, 0).loss).toBeCloseTo(Math.LN2, 15);
    expect(pairTerms('sigmoid', 2, 0, 1, 0).loss).toBeCloseTo(-Math.log(1 / (1 + Math.exp(-2))), 14);
    expect(pairTerms('sigmoid', Math.log(0.8 / 0.2), 0, 1, 0.2).slope).toBeCloseTo(0, 15);
    expect(pairTerms('hinge', 0.25, 0.5, 2, 0)).toEqual({ loss: 1, slope: -2 });
    expect(pairTerms('hinge', 2, 0, 1, 0)).toEqual({ loss: 0, slope: 0 });
    // ipo: (d - margin - 1/(2 beta))^2 with beta 0.25: target gap 2.
    expect(pairTerms('ipo', 3, 0.5, 0.25, 0)).toEqual({ loss: 0.25, slope: 1 });
  });

  it('has the gradients of its loss (finite differences)', () => {
    const rng = new Rng();
    const n = 7;
    const cases: LossRefOptions[] = [
      { kind: 'sigmoid' }, { kind: 'sigmoid', beta: 0.7, labelSmoothing: 0.3, margin: rng.uniforms(n), centerCoef: 0.2 },
      { kind: 'ipo', beta: 0.4, margin: rng.uniforms(n) }, { kind: 'hinge', beta: 0.5, centerCoef: 0.1 },
      { kind: 'sigmoid', beta: 0.1, refChosen: rng.normals(n), refRejected: rng.normals(n) },
    ];
    for (const o of cases) {
      const c = Float64Array.from(rng.normals(n, 2));
      const r = Float64Array.from(rng.normals(n, 2));
      if (o.kind === 'hinge') for (let i = 0; i < n; i++) c[i] = r[i]! + (i % 2 ? 0.5 : 4); // away from the kink at x = 1
      const ref = preferenceLossRef(c, r, o);
      const gc = gradient((x) => preferenceLossRef(x, r, o).loss, c);
      const gr = gradient((x) => preferenceLossRef(c, x, o).loss, r);
      for (let i = 0; i < n; i++) {
        expect(ref.gradChosen[i]).toBeCloseTo(gc[i]!, 7);
        expect(ref.gradRejected[i]).toBeCloseTo(gr[i]!, 7);
      }
    }
  });
});

// B: a lone pair; the smallest true mean; not a multiple of a warp; more
// than one block on both backends (cpu blocks of 4096, cuda blocks of 1024,
// so both the ordered combine and cuda's last-block combine run).
const SIZES = [1, 2, 33, 5000];

function lossOptions(name: string, rng: Rng, n: number): LossRefOptions {
  switch (name) {
    case 'beta 0.1 + margin': return { beta: 0.1, margin: rng.uniforms(n, 0, 1) };
    case 'beta 2.5 + labelSmoothing 0.2': return { beta: 2.5, labelSmoothing: 0.2 };
    case 'centerCoef 0.05 + margin': return { centerCoef: 0.05, margin: rng.uniforms(n, -0.5, 0.5) };
    case 'centerCoef 0.05 + normalizer': return { centerCoef: 0.05, normalizer: 0.5 + rng.uniform() * 4 * n };
    default: return {};
  }
}
const OPTION_SETS = ['defaults', 'beta 0.1 + margin', 'beta 2.5 + labelSmoothing 0.2', 'centerCoef 0.05 + margin', 'centerCoef 0.05 + normalizer'];

describe.each(DEVICES)('pairwiseLoss on %s', (device: Device) => {
  it.each(SIZES)('matches the reference for every kind and option, B = %i', (n) => {
    const rng = new Rng();
    for (const kind of KINDS)
      for (const set of OPTION_SETS) {
        const c = rng.normals(n, 3);
        const r = rng.normals(n, 3);
        const o = sigmoidSmoothing({ ...lossOptions(set, rng, n), kind });
        const margin = o.margin ? tensor(o.margin as Float32Array, undefined, { device }) : undefined;
        const out = read(pairwiseLoss(tensor(c, undefined, { device }), tensor(r, undefined, { device }), { ...o, margin }));
        expectMatchesReference(out, c, r, o, `${kind} ${set} B=${n}`);
      }
  });

  it('stays finite and exact at |x| up to 1e4', () => {
    const c = new Float32Array([5000, -5000, 1e4, -1e4, 0.5, 3000]);
    const r = new Float32Array([-5000, 5000, 0, 0, -0.5, 3000]);
    for (const kind of KINDS)
      for (const labelSmoothing of [0, 0.1]) {
        const o = sigmoidSmoothing({ kind, labelSmoothing });
        const out = read(pairwiseLoss(tensor(c, undefined, { device }), tensor(r, undefined, { device }), o));
        for (const v of [out.loss, ...out.gradChosen, ...out.gradRejected]) expect(Number.isFinite(v)).toBe(true);
        expectMatchesReference(out, c, r, o, `${kind} s=${labelSmoothing}`);
      }
    // The saturated sigmoid: l(1e4) = 0 with slope 0, l(-1e4) = 1e4 with slope -1.
    const out = read(pairwiseLoss(tensor([1e4, -1e4], undefined, { device }), [0, 0]));
    expect(out.loss).toBe(1e4 / 2);
    expect(Array.from(out.gradChosen, (v) => v + 0)).toEqual([0, -0.5]); // + 0 makes -0 plain 0
  });

  it('propagates a NaN to its own pair and to the loss only', () => {
    const c = new Float32Array([0.5, NaN, 2, -1]);
    const r = new Float32Array([0.25, 1, -2, -3]);
    for (const kind of KINDS) {
      const out = read(pairwiseLoss(tensor(c, undefined, { device }), tensor(r, undefined, { device }), { kind }));
      expect(out.loss).toBeNaN();
      expect(out.meanMargin).toBeNaN();
      expect(out.chosenReward).toBeNaN();
      expect(out.rejectedReward).toBe(Math.fround((0.25 + 1 - 2 - 3) / 4));
      expect(out.accuracy).toBe(Math.fround(3 / 4)); // NaN > 0 is false
      for (const g of [out.gradChosen, out.gradRejected]) {
        expect(g[1]).toBeNaN();
        for (const i of [0, 2, 3]) expect(Number.isFinite(g[i]!)).toBe(true);
      }
    }
  });

  it('is accurate over a sweep of x in [-120, 120] (every exp interval, both signs, underflow)', () => {
    // Gradients: 48001 pairs in one batch, each checked. Losses: one pair per call every
    // 0.1, since a batch mean would hide a bad element.
    const n = 48_001;
    const c = new Float32Array(n).map((_, i) => -120 + (240 * i) / (n - 1));
    const r = new Float32Array(n);
    for (const kind of KINDS)
      for (const labelSmoothing of [0, 0.3]) {
        const o = sigmoidSmoothing({ kind, labelSmoothing });
        const out = read(pairwiseLoss(tensor(c, undefined, { device }), r, o));
        expectMatchesReference(out, c, r, o, `sweep ${kind} s=${labelSmoothing}`);
        const loss: number[] = [], exact: number[] = [], naive: number[] = [];
        for (let i = 0; i < n; i += 20) {
          const one = [c[i]!];
          loss.push(pairwiseLoss(tensor(one, undefined, { device }), [0], o).loss.item());
          exact.push(preferenceLossRef(one, [0], o).loss);
          naive.push(preferenceLossRef(one, [0], o, f32).loss);
        }
        // Each pair on its own scale: 4x the naive run's error + 4 ulps, plus 2^-126 for the
        // documented flush of exp(-|x|) below the normal range (|x| > 87.3).
        for (let j = 0; j < loss.length; j++) {
          const tol = 4 * Math.abs(naive[j]! - exact[j]!) + 4 * EPS.float32 * Math.abs(exact[j]!) + 2 ** -126;
          expect(Math.abs(loss[j]! - exact[j]!), `${kind} s=${labelSmoothing} x=${c[j * 20]}`).toBeLessThanOrEqual(tol);
        }
      }
  });

  it('has the gradients of its own loss (finite differences of the kernel)', () => {
    const rng = new Rng();
    const n = 5;
    for (const o of [{ kind: 'sigmoid' as const, labelSmoothing: 0.1, centerCoef: 0.3 }, { kind: 'ipo' as const, beta: 0.5 }]) {
      const c = rng.normals(n, 1.5);
      const r = rng.normals(n, 1.5);
      const grad = read(pairwiseLoss(tensor(c, undefined, { device }), r, o)).gradChosen;
      const ref = preferenceLossRef(c, r, o);
      for (let i = 0; i < n; i++) {
        const up = c.slice();
        const down = c.slice();
        up[i] = Math.fround(c[i]! + 2 ** -7);
        down[i] = Math.fround(c[i]! - 2 ** -7);
        const step = up[i]! - down[i]!;
        const kernelFd = (pairwiseLoss(tensor(up, undefined, { device }), r, o).loss.item() -
          pairwiseLoss(tensor(down, undefined, { device }), r, o).loss.item()) / step;
        // The same float32 points through the float64 reference give the truncation error
        // of this step; the kernel's difference quotient may add its loss rounding (a few
        // ulps of the loss over the step) and the gradient its own rounding.
        const refFd = (preferenceLossRef(up, r, o).loss - preferenceLossRef(down, r, o).loss) / step;
        const truncation = Math.abs(refFd - ref.gradChosen[i]!);
        const rounding = (8 * EPS.float32 * Math.max(1, Math.abs(ref.loss))) / step + 4 * EPS.float32 * Math.abs(refFd);
        expect(Math.abs(kernelFd - grad[i]!)).toBeLessThanOrEqual(truncation + rounding);
      }
    }
  });

  it('decreases as chosen - rejected grows (sigmoid, no smoothing)', () => {
    fc.assert(fc.property(fc.double({ min: -60, max: 60, noNaN: true }), fc.double({ min: 1e-3, max: 30, noNaN: true }),
      fc.double({ min: 0.05, max: 4, noNaN: true }), (d, gap, beta) => {
        const low = pairwiseLoss([d], [0], { beta }).loss.item();
        const high = pairwiseLoss([d + gap], [0], { beta }).loss.item();
        expect(high).toBeLessThanOrEqual(low);
      }), { numRuns: 60 });
  });

  it('reports accuracy as the share of positive differences', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -3, max: 3 })),
      { minLength: 1, maxLength: 80 }), (pairs) => {
        const c = pairs.map((p) => p[0]);
        const r = pairs.map((p) => p[1]);
        const wins = pairs.filter((p) => p[0] > p[1]).length;
        const out = pairwiseLoss(tensor(c, undefined, { device }), tensor(r, undefined, { device }));
        expect(out.accuracy.item()).toBe(Math.fround(wins / pairs.length));
      }), { numRuns: 40 });
  });

  it('is symmetric under swapping chosen and rejected', () => {
    const rng = new Rng();
    const n = 257;
    const c = rng.normals(n, 2);
    const r = rng.normals(n, 2);
    const beta = 0.8;
    // sigmoid: slope(x) + slope(-x) = -beta; ipo: slope(d) + slope(-d) = -2 / beta. Per pair / n.
    for (const [kind, sum] of [['sigmoid', -beta], ['ipo', -2 / beta]] as const) {
      const fwd = read(pairwiseLoss(tensor(c, undefined, { device }), tensor(r, undefined, { device }), { kind, beta }));
      const back = read(pairwiseLoss(tensor(r, undefined, { device }), tensor(c, undefined, { device }), { kind, beta }));
      for (let i = 0; i < n; i++) {
        expect(fwd.gradChosen[i]! + back.gradChosen[i]!).toBeCloseTo(sum / n, 7);
        expect(fwd.gradRejected[i]).toBe(-fwd.gradChosen[i]!);
      }
      expect(fwd.accuracy + back.accuracy).toBeCloseTo(1, 6);
      expect(fwd.meanMargin).toBeCloseTo(-back.meanMargin, 6);
    }
    // c = r: every sigmoid pair costs log 2 and pulls with beta (1 - 2s) / 2.
    const tie = read(pairwiseLoss(tensor(c, undefined, { device }), tensor(c, undefined, { device }), { labelSmoothing: 0.25 }));
    expect(tie.loss).toBeCloseTo(Math.LN2, 6);
    for (const g of tie.gradChosen) expect(g).toBeCloseTo(-(1 - 0.5) / 2 / n, 9);
    expect(tie.accuracy).toBe(0);
  });

  it('gives a pair the same gradient bits wherever it sits: micro-batches with a normalizer, centering and a margin', () => {
    // Split points that put pairs into every position of a vector body and
    // its tail (the cpu ISAs' widths are 16, 8, 4 and 1).
    const rng = new Rng();
    const n = 301;
    const c = rng.normals(n, 3), r = rng.normals(n, 3), m = rng.uniforms(n, -0.5, 0.5);
    const t = (a: Float32Array) => tensor(a, undefined, { device });
    for (const kind of KINDS) {
      const o = { kind, centerCoef: 0.05, beta: 1.5 };
      const whole = read(pairwiseLoss(t(c), t(r), { ...o, margin: t(m) }));
      for (const cut of [1, 3, 7, 13, 17, 40, 150, 300]) {
        const parts = [[0, cut], [cut, n]].map(([lo, hi]) =>
          read(pairwiseLoss(t(c.slice(lo, hi)), t(r.slice(lo, hi)), { ...o, margin: t(m.slice(lo, hi)), normalizer: n })));
        expect(Float32Array.of(...parts[0]!.gradChosen, ...parts[1]!.gradChosen), `${kind} cut ${cut}`).toEqual(whole.gradChosen);
        expect(Float32Array.of(...parts[0]!.gradRejected, ...parts[1]!.gradRejected), `${kind} cut ${cut}`).toEqual(whole.gradRejected);
      }
    }
  });

  it('gives the same bits on every run and thread count (B = 70001: 18 cpu blocks, 69 cuda blocks)', () => {
    const rng = new Rng();
    const n = 70_001;
    const c = tensor(rng.normals(n, 3), undefined, { device });
    const r = tensor(rng.normals(n, 3), undefined, { device });
    const o = { labelSmoothing: 0.1, centerCoef: 0.01 };
    const first = read(pairwiseLoss(c, r, o));
    const again = read(pairwiseLoss(c, r, o));
    const threads = info().cpu.threads;
    setNumThreads(threads === 1 ? 2 : 1);
    let single: ReturnType<typeof read>;
    try {
      single = read(pairwiseLoss(c, r, o));
    } finally {
      setNumThreads(threads);
    }
    for (const other of [again, single]) {
      expect(other.loss).toBe(first.loss);
      expect(other.accuracy).toBe(first.accuracy);
      expect(other.meanMargin).toBe(first.meanMargin);
      expect(other.chosenReward).toBe(first.chosenReward);
      expect(other.rejectedReward).toBe(first.rejectedReward);
      expect(Buffer.from(other.gradChosen.buffer).equals(Buffer.from(first.gradChosen.buffer))).toBe(true);
    }
  });
});

describe.each(DEVICES)('dpoLoss on %s', (device: Device) => {
  function logprobs(rng: Rng, n: number) {
    // Sequence log-probs of a policy near its reference model.
    const refChosen = rng.normals(n, 20, -120);
    const refRejected = rng.normals(n, 20, -120);
    const policyChosen = refChosen.map((v) => v + rng.normal());
    const policyRejected = refRejected.map((v) => v + rng.normal());
    return { policyChosen, policyRejected, refChosen, refRejected };
  }

  it.each(SIZES)('matches the reference for every kind, B = %i', (n) => {
    const rng = new Rng();
    for (const kind of KINDS)
      for (const extra of [{}, sigmoidSmoothing({ kind, beta: 0.5, labelSmoothing: 0.1 })]) {
        const x = logprobs(rng, n);
        const t = (a: Float32Array) => tensor(a, undefined, { device });
        const out = read(dpoLoss(t(x.policyChosen), t(x.policyRejected), t(x.refChosen), t(x.refRejected), { kind, ...extra }));
        const o = { kind, beta: 0.1, ...extra, refChosen: x.refChosen, refRejected: x.refRejected };
        expectMatchesReference(out, x.policyChosen, x.policyRejected, o, `${kind} ${JSON.stringify(extra)} B=${n}`);
      }
  });

  it('adds up over micro-batches given the global pair count: the loss, and the same gradient bits', () => {
    const rng = new Rng();
    const x = logprobs(rng, 1000);
    const t = (a: Float32Array) => tensor(a, undefined, { device });
    const part = (a: Float32Array, lo: number, hi: number) => t(a.slice(lo, hi));
    for (const kind of KINDS) {
      const whole = read(dpoLoss(t(x.policyChosen), t(x.policyRejected), t(x.refChosen), t(x.refRejected), { kind }));
      // Micro-batches of 300 and 700 pairs, each told the global count.
      const micro = [[0, 300], [300, 1000]].map(([lo, hi]) => read(dpoLoss(part(x.policyChosen, lo!, hi!), part(x.policyRejected, lo!, hi!),
        part(x.refChosen, lo!, hi!), part(x.refRejected, lo!, hi!), { kind, normalizer: 1000 })));
      expect(Float32Array.of(...micro[0]!.gradChosen, ...micro[1]!.gradChosen), kind).toEqual(whole.gradChosen);
      expect(Float32Array.of(...micro[0]!.gradRejected, ...micro[1]!.gradRejected), kind).toEqual(whole.gradRejected);
      // Two double sums against one, each rounded to float32 once.
      expect(Math.abs(micro[0]!.loss + micro[1]!.loss - whole.loss), kind).toBeLessThanOrEqual(4 * EPS.float32 * Math.abs(whole.loss));
    }
  });

  it('equals pairwiseLoss on the log-ratios, bit for bit (beta default 0.1)', () => {
    const rng = new Rng();
    const x = logprobs(rng, 999);
    const chosen = x.policyChosen.map((v, i) => v - x.refChosen[i]!);
    const rejected = x.policyRejected.map((v, i) => v - x.refRejected[i]!);
    const t = (a: Float32Array) => tensor(a, undefined, { device });
    for (const kind of KINDS) {
      const { chosenReward, rejectedReward, ...dpo } = read(dpoLoss(t(x.policyChosen), t(x.policyRejected), t(x.refChosen),
        t(x.refRejected), { kind }));
      const { chosenReward: meanChosen, rejectedReward: meanRejected, ...pair } = read(pairwiseLoss(t(chosen), t(rejected),
        { kind, beta: 0.1 }));
      expect(dpo).toEqual(pair);
      // The rewards: beta times the sides' means, each rounded to float32 once.
      expect(Math.abs(chosenReward - 0.1 * meanChosen)).toBeLessThanOrEqual(2 * EPS.float32 * Math.abs(chosenReward));
      expect(Math.abs(rejectedReward - 0.1 * meanRejected)).toBeLessThanOrEqual(2 * EPS.float32 * Math.abs(rejectedReward));
    }
  });

  it("reports DPO's implicit rewards, this batch's means whatever the normalizer", () => {
    // One pair by hand: rewards beta (pi - ref) per side, their difference beta d.
    const one = read(dpoLoss([-10], [-14], [-12], [-13], { beta: 0.5 }));
    expect(one.chosenReward).toBe(1);      // 0.5 * (-10 + 12)
    expect(one.rejectedReward).toBe(-0.5); // 0.5 * (-14 + 13)
    expect(one.meanMargin).toBe(3);        // (2) - (-1), without beta
    const rng = new Rng();
    const x = logprobs(rng, 777);
    const t = (a: Float32Array) => tensor(a, undefined, { device });
    for (const normalizer of [undefined, 5000]) {
      const out = read(dpoLoss(t(x.policyChosen), t(x.policyRejected), t(x.refChosen), t(x.refRejected), { beta: 0.2, normalizer }));
      const exact = preferenceLossRef(x.policyChosen, x.policyRejected, { beta: 0.2, refChosen: x.refChosen, refRejected: x.refRejected });
      // TRL's rewards/margins is the rewards' difference: beta * meanMargin.
      const scale = rewardScale(x.policyChosen, x.refChosen, 0.2);
      expect(Math.abs(out.chosenReward - out.rejectedReward - 0.2 * out.meanMargin)).toBeLessThanOrEqual(8 * EPS.float32 * scale);
      expect(Math.abs(out.chosenReward - exact.chosenReward)).toBeLessThanOrEqual(4 * EPS.float32 * scale);
    }
  });
});

describe('pairwiseLoss and dpoLoss reject bad input', () => {
  const c = new Float32Array([0.5, -1, 2]);
  const r = new Float32Array([0.25, 1, -2]);

  it('with the class and a message naming op, argument, expectation and value', () => {
    const cases: [() => unknown, ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, string][] = [
      [() => pairwiseLoss(c, r.subarray(0, 2)), RangeError, 'pairwiseLoss: rejected expected shape [3], got [2]'],
      [() => pairwiseLoss(c, r, { margin: [1, 2] }), RangeError, 'pairwiseLoss: margin expected shape [3], got [2]'],
      [() => pairwiseLoss([], []), RangeError, 'pairwiseLoss: chosen expected at least one pair, got shape [0]'],
      [() => pairwiseLoss(c, r, { kind: 'logistic' as never }), RangeError,
        `pairwiseLoss: kind expected one of 'sigmoid', 'hinge', 'ipo', got "logistic"`],
      [() => pairwiseLoss(c, r, { beta: 0 }), RangeError, 'pairwiseLoss: beta expected a finite number > 0, got 0'],
      [() => pairwiseLoss(c, r, { beta: -1 }), RangeError, 'pairwiseLoss: beta expected a finite number > 0, got -1'],
      [() => pairwiseLoss(c, r, { beta: NaN }), RangeError, 'pairwiseLoss: beta expected a finite number > 0, got NaN'],
      [() => pairwiseLoss(c, r, { beta: Infinity }), RangeError, 'pairwiseLoss: beta expected a finite number > 0, got Infinity'],
      [() => pairwiseLoss(c, r, { beta: 1e-50 }), RangeError,
        'pairwiseLoss: beta expected a finite number > 0 as a float32, got 1e-50 (0 as a float32)'],
      [() => pairwiseLoss(c, r, { beta: '1' as never }), TypeError, 'pairwiseLoss: beta expected a finite number > 0, got "1"'],
      [() => pairwiseLoss(c, r, { labelSmoothing: 0.5 }), RangeError,
        'pairwiseLoss: labelSmoothing expected a finite number >= 0 < 0.5, got 0.5'],
      [() => pairwiseLoss(c, r, { labelSmoothing: -0.1 }), RangeError,
        'pairwiseLoss: labelSmoothing expected a finite number >= 0 < 0.5, got -0.1'],
      [() => pairwiseLoss(c, r, { centerCoef: -1 }), RangeError, 'pairwiseLoss: centerCoef expected a finite number >= 0, got -1'],
      [() => pairwiseLoss(c, r, { normalizer: 0 }), RangeError, 'pairwiseLoss: normalizer expected a finite number > 0, got 0'],
      [() => dpoLoss(c, r, c, r, { normalizer: Infinity }), RangeError, 'dpoLoss: normalizer expected a finite number > 0, got Infinity'],
      [() => dpoLoss(c, r, c, r, { normalizer: '3' as never }), TypeError, 'dpoLoss: normalizer expected a finite number > 0, got "3"'],
      // Its float32 inverse would be inf: exact zeros would come back as 0 * inf = NaN
      [() => pairwiseLoss(c, r, { normalizer: 1e-39 }), RangeError,
        'pairwiseLoss: normalizer expected a number whose inverse is a finite, non-zero float32, got 1e-39'],
      [() => pairwiseLoss(new Uint16Array(3) as never, r), TypeError, 'pairwiseLoss: chosen expected a float32 Tensor or a typed array, got a Uint16Array of length 3'],
      [() => pairwiseLoss(tensor(new Int32Array([1, 2, 3])), r), TypeError, 'pairwiseLoss: chosen expected dtype float32, got int32'],
      [() => pairwiseLoss(tensor(c, [3, 1]), r), RangeError, 'pairwiseLoss: chosen expected a 1-D tensor, got shape [3, 1]'],
      [() => pairwiseLoss('abc' as never, r), TypeError, 'pairwiseLoss: chosen expected a float32 Tensor or a typed array, got "abc"'],
      [() => pairwiseLoss(c, r, 3 as never), TypeError, 'pairwiseLoss: options expected an object, got 3'],
      [() => dpoLoss(c, r, c, r.subarray(1)), RangeError, 'dpoLoss: refRejected expected shape [3], got [2]'],
      [() => dpoLoss(c, r, c, r, { labelSmoothing: 0.7 }), RangeError,
        'dpoLoss: labelSmoothing expected a finite number >= 0 < 0.5, got 0.7'],
      [() => dpoLoss(c, r, c, r, { kind: 'ipo', labelSmoothing: 0.3 }), RangeError,
        "dpoLoss: labelSmoothing applies to kind 'sigmoid' only, got 0.3 with kind 'ipo'"],
      [() => pairwiseLoss(c, r, { kind: 'hinge', labelSmoothing: 0.1 }), RangeError,
        "pairwiseLoss: labelSmoothing applies to kind 'sigmoid' only, got 0.1 with kind 'hinge'"],
      [() => dpoLoss(c, r, c, r, { kind: 'kto' as never }), RangeError, `dpoLoss: kind expected one of 'sigmoid', 'hinge', 'ipo', got "kto"`],
      [() => dpoLoss(c, r, tensor(new Uint8Array(3)), r), TypeError, 'dpoLoss: refChosen expected dtype float32, got uint8'],
    ];
    for (const [call, kind, message] of cases) {
      expect(call).toThrow(kind);
      expect(call).toThrow(message);
    }
  });

  it('refuses a disposed tensor with EDISPOSED', () => {
    const t = tensor(c);
    t.dispose();
    expect(() => pairwiseLoss(t, r)).toThrow(expect.objectContaining({ code: 'EDISPOSED' }));
  });
});
