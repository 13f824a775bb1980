/**
 * sequenceLogProbs / sequenceLogProbsBackward against the reference, their
 * masking and batch invariance, bad inputs, and the whole DPO gradient chain
 * from logits to logits.
 */
import { describe, expect, it } from 'vitest';
import {
  type Device, type PreferenceKind, type SequenceReduce, dpoLoss, pairwiseLoss, sequenceLogProbs, sequenceLogProbsBackward,
  tensor,
} from '../lib/index.js';
import { DEVICES } from './helpers/devices.js';
import { gradient } from './helpers/finite_diff.js';
import { Rng } from './helpers/random.js';
import { EPS, derivedTolerance, errorStats, f32, f64, maxAbs, type Round } from './helpers/tolerance.js';
import { preferenceLossRef, sequenceLogProbsBackwardRef, sequenceLogProbsRef } from './reference/preference.js';

const REDUCES: SequenceReduce[] = ['sum', 'mean'];

function expectClose(out: ArrayLike<number>, exact: ArrayLike<number>, naive: ArrayLike<number>, what: string): void {
  const tol = derivedTolerance(naive, exact, 4, 4 * EPS.float32 * maxAbs(exact));
  const e = errorStats(out, exact);
  expect(e.mismatchedNonFinite, `${what}: non-finite mismatch at ${e.worst}`).toBe(0);
  expect(e.maxAbs, `${what}: error at ${e.worst}`).toBeLessThanOrEqual(tol);
}

// [B, T]: the smallest; below one 16-lane cpu block; past two lanes blocks
// and a warp; past a power of two and cuda's 128-thread row stride; a real
// response length; many short rows spread over threads; no steps; no rows.
const SHAPES: [number, number][] = [[1, 1], [3, 15], [5, 33], [4, 1025], [2, 4096], [300, 40], [3, 0], [0, 7]];

describe.each(DEVICES)('sequenceLogProbs on %s', (device: Device) => {
  it.each(SHAPES)('matches the reference, [%i, %i]', (rows, steps) => {
    const rng = new Rng();
    for (const reduce of REDUCES) {
      const lp = rng.uniforms(rows * steps, -12, 0);
      const mask = rng.rowMask(rows, steps);
      const out = sequenceLogProbs(tensor(lp, [rows, steps], { device }), tensor(mask, [rows, steps], { device }), { reduce });
      expect(out.shape).toEqual([rows]);
      const exact = sequenceLogProbsRef(lp, mask, rows, steps, reduce);
      expectClose(out.toArray(), exact, sequenceLogProbsRef(lp, mask, rows, steps, reduce, f32), `${reduce} [${rows}, ${steps}]`);
      if (rows >= 2) expect(out.toArray()[0]).toBe(0); // the empty row

      const g = rng.normals(rows);
      const grad = sequenceLogProbsBackward(tensor(g, undefined, { device }), tensor(mask, [rows, steps], { device }), { reduce });
      expect(grad.shape).toEqual([rows, steps]);
      // One rounding (the division for 'mean'), so the float32 reference is exact.
      expect(Array.from(grad.toArray())).toEqual(Array.from(Float32Array.from(sequenceLogProbsBackwardRef(g, mask, rows, steps, reduce, f32))));
    }
  });

  it('ignores whatever masked-out positions hold, and any nonzero mask value counts as 1', () => {
    const rng = new Rng();
    const [rows, steps] = [6, 77];
    const lp = rng.uniforms(rows * steps, -5, 0);
    const mask = rng.rowMask(rows, steps);
    const dirty = lp.slice();
    const loud = mask.slice();
    for (let i = 0; i < dirty.length; i++) {
      if (!mask[i]) dirty[i] = [NaN, Infinity, -Infinity, 1e30][i % 4]!;
      else loud[i] = 1 + (i % 200);
    }
    const g = rng.normals(rows);
    g[0] = NaN; // row 0 is empty: its gradient must stay 0
    for (const reduce of REDUCES) {
      const clean = sequenceLogProbs(tensor(lp, [rows, steps], { device }), tensor(mask, [rows, steps], { device }), { reduce });
      const noisy = sequenceLogProbs(tensor(dirty, [rows, steps], { device }), tensor(loud, [rows, steps], { device }), { reduce });
      expect(Array.from(noisy.toArray())).toEqual(Array.from(clean.toArray()));
      const back = sequenceLogProbsBackward(tensor(g, undefined, { device }), tensor(loud, [rows, steps], { device }), { reduce });
      const want = sequenceLogProbsBackward(tensor(g, undefined, { device }), tensor(mask, [rows, steps], { device }), { reduce });
      expect(Array.from(back.toArray())).toEqual(Array.from(want.toArray()));
      for (let i = 0; i < steps; i++) expect(back.toArray()[i]).toBe(0);
    }
  });

  it('gives a row the same bits whatever the batch around it', () => {
    const rng = new Rng();
    const [rows, steps] = [9, 1500];
    const lp = rng.uniforms(rows * steps, -20, 0);
    const mask = rng.rowMask(rows, steps);
    for (const reduce of REDUCES) {
      const all = sequenceLogProbs(tensor(lp, [rows, steps], { device }), tensor(mask, [rows, steps], { device }), { reduce }).toArray();
      for (const b of [0, 4, 8]) {
        const row = (a: Float32Array | Uint8Array) => a.slice(b * steps, (b + 1) * steps);
        const alone = sequenceLogProbs(tensor(row(lp), [1, steps], { device }), tensor(row(mask), [1, steps], { device }), { reduce });
        expect(alone.toArray()[0]).toBe(all[b]);
      }
    }
  });
});

describe('sequenceLogProbs reference', () => {
  it('has sequenceLogProbsBackwardRef as its gradient (finite differences)', () => {
    const rng = new Rng();
    const [rows, steps] = [3, 5];
    const mask = rng.rowMask(rows, steps);
    const w = rng.normals(rows);
    for (const reduce of REDUCES) {
      const weighted = (x: Float64Array) => sequenceLogProbsRef(x, mask, rows, steps, reduce).reduce((s, v, b) => s + w[b]! * v, 0);
      const fd = gradient(weighted, rng.normals(rows * steps));
      const grad = sequenceLogProbsBackwardRef(w, mask, rows, steps, reduce);
      for (let i = 0; i < fd.length; i++) expect(grad[i]).toBeCloseTo(fd[i]!, 8);
    }
  });
});

describe('sequenceLogProbs and sequenceLogProbsBackward reject bad input', () => {
  const lp = tensor(new Float32Array(6).fill(-1), [2, 3]);
  const mask = tensor(new Uint8Array(6).fill(1), [2, 3]);

  it('with the class and a message naming op, argument, expectation and value', () => {
    const cases: [() => unknown, ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, string][] = [
      [() => sequenceLogProbs(lp, tensor(new Float32Array(6), [2, 3])), TypeError, 'sequenceLogProbs: mask expected dtype uint8, got float32'],
      [() => sequenceLogProbs(lp, tensor(new Uint8Array(8), [2, 4])), RangeError, 'sequenceLogProbs: mask expected shape [2, 3], got [2, 4]'],
      [() => sequenceLogProbs(lp, tensor(new Uint8Array(6))), RangeError, 'sequenceLogProbs: mask expected shape [2, 3], got [6]'],
      [() => sequenceLogProbs(tensor(new Float32Array(6)), mask), RangeError, 'sequenceLogProbs: tokenLogprobs expected a 2-D tensor, got shape [6]'],
      [() => sequenceLogProbs(new Float32Array(6) as never, mask), TypeError,
        'sequenceLogProbs: tokenLogprobs expected a float32 Tensor, got a Float32Array of length 6'],
      [() => sequenceLogProbs(tensor(new Int32Array(6), [2, 3]), mask), TypeError, 'sequenceLogProbs: tokenLogprobs expected dtype float32, got int32'],
      [() => sequenceLogProbs(lp, mask, { reduce: 'max' as never }), RangeError, `sequenceLogProbs: reduce expected one of 'sum', 'mean', got "max"`],
      [() => sequenceLogProbsBackward([1, 2, 3], mask), RangeError, 'sequenceLogProbsBackward: gradSequence expected shape [2], got [3]'],
      [() => sequenceLogProbsBackward([1, 2], tensor(new Uint8Array(2))), RangeError, 'sequenceLogProbsBackward: mask expected a 2-D tensor, got shape [2]'],
      [() => sequenceLogProbsBackward([1, 2], tensor(new Int32Array(6), [2, 3])), TypeError,
        'sequenceLogProbsBackward: mask expected dtype uint8, got int32'],
      [() => sequenceLogProbsBackward(tensor(new Int32Array(2)), mask), TypeError,
        'sequenceLogProbsBackward: gradSequence expected dtype float32, got int32'],
    ];
    for (const [call, kind, message] of cases) {
      expect(call).toThrow(kind);
      expect(call).toThrow(message);
    }
  });
});

// ------------------------------------------------------------------ the chain
// tokenLogProbs is another family's op: until it is in this branch, the token
// ends of the chain are this small reference (log-softmax and its gradient).

/** logprob[r] = z[y] - logsumexp(z) per row of [rows, V] logits. */
function tokenLogProbsRef(logits: ArrayLike<number>, targets: Int32Array, vocab: number, round: Round = f64): Float64Array {
  const out = new Float64Array(targets.length);
  for (let row = 0; row < targets.length; row++) {
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) max = Math.max(max, logits[row * vocab + v]!);
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum = round(sum + round(Math.exp(round(logits[row * vocab + v]! - max))));
    out[row] = round(round(logits[row * vocab + targets[row]!]! - max) - round(Math.log(sum)));
  }
  return out;
}

/** d logprob / d logits = g * (onehot(y) - softmax(z)). */
function tokenLogProbsBackwardRef(logits: ArrayLike<number>, targets: Int32Array, vocab: number, g: ArrayLike<number>,
  round: Round = f64): Float64Array {
  const out = new Float64Array(logits.length);
  const lp = tokenLogProbsRef(logits, targets, vocab, round);
  for (let row = 0; row < targets.length; row++) {
    const lse = round(logits[row * vocab + targets[row]!]! - lp[row]!);
    for (let v = 0; v < vocab; v++) {
      const p = round(Math.exp(round(logits[row * vocab + v]! - lse)));
      out[row * vocab + v] = round(g[row]! * round((v === targets[row] ? 1 : 0) - p));
    }
  }
  return out;
}

describe.each(DEVICES)('the DPO gradient chain on %s', (device: Device) => {
  const cases: [PreferenceKind, SequenceReduce][] = [['sigmoid', 'sum'], ['ipo', 'mean'], ['hinge', 'sum']];
  it.each(cases)('%s with %s log-probs: logits -> loss -> logits matches finite differences', (kind, reduce) => {
    const rng = new Rng();
    const [pairs, steps, vocab] = [3, 6, 11];
    const rows = 2 * pairs; // chosen sequences first, then rejected
    const policyLogits = rng.normals(rows * steps * vocab, 2);
    const refLogits = policyLogits.map((v) => v + 0.3 * rng.normal());
    const targets = rng.ints(rows * steps, 0, vocab);
    const mask = rng.rowMask(rows, steps);
    mask.fill(0, 0, 2).fill(1, 2, steps); // every row has valid tokens
    const beta = 0.5;

    const sequence = (lp: ArrayLike<number>, round: Round) => sequenceLogProbsRef(lp, mask, rows, steps, reduce, round);
    const refSeq = sequence(tokenLogProbsRef(refLogits, targets, vocab), f64);
    const lossOf = (logits: ArrayLike<number>, round: Round = f64) => {
      const seq = sequence(tokenLogProbsRef(logits, targets, vocab, round), round);
      return preferenceLossRef(seq.subarray(0, pairs), seq.subarray(pairs), {
        kind, beta, refChosen: refSeq.subarray(0, pairs), refRejected: refSeq.subarray(pairs),
      }, round);
    };
    // The whole chain in float64 (exact) or naive float32 (for the tolerance rule).
    const chainRef = (round: Round) => {
      const l = lossOf(policyLogits, round);
      const gSeq = Float64Array.from([...l.gradChosen, ...l.gradRejected]);
      const gTokens = sequenceLogProbsBackwardRef(gSeq, mask, rows, steps, reduce, round);
      return tokenLogProbsBackwardRef(policyLogits, targets, vocab, gTokens, round);
    };

    // The kernels in the middle of the chain.
    const m = tensor(mask, [rows, steps], { device });
    const seqOf = (logits: Float32Array) =>
      sequenceLogProbs(tensor(Float32Array.from(tokenLogProbsRef(logits, targets, vocab)), [rows, steps], { device }), m, { reduce });
    const policySeq = seqOf(policyLogits).toArray();
    const refSeqT = seqOf(refLogits).toArray();
    const loss = dpoLoss(policySeq.subarray(0, pairs), policySeq.subarray(pairs), refSeqT.subarray(0, pairs), refSeqT.subarray(pairs),
      { kind, beta });
    const gradSequence = Float32Array.from([...loss.gradChosen.toArray(), ...loss.gradRejected.toArray()]);
    const gTokens = sequenceLogProbsBackward(tensor(gradSequence, undefined, { device }), m, { reduce }).toArray();
    const out = tokenLogProbsBackwardRef(policyLogits, targets, vocab, gTokens);

    const fd = gradient((x) => lossOf(x).loss, policyLogits);
    const exact = chainRef(f64);
    for (let i = 0; i < fd.length; i++) expect(exact[i]).toBeCloseTo(fd[i]!, 7);
    expectClose(out, exact, chainRef(f32), `${kind} ${reduce} logits gradient`);
    expect(maxAbs(exact)).toBeGreaterThan(0);
  });
});

describe.each(DEVICES)('SimPO through pairwiseLoss on %s', (device: Device) => {
  it('mean sequence log-probs with margin gamma give SimPO\'s loss and token gradients (its closed form, float64)', () => {
    // SimPO (Meng et al. 2024): -log sigmoid(beta (avg_w - avg_l) - gamma),
    // averaged over pairs, avg the mean log-prob over a sequence's tokens; no
    // reference model. A token of a chosen sequence of n tokens gets
    // -(1 - sigmoid(x)) beta / (n B), one of a rejected one the opposite.
    const rng = new Rng();
    const [B, T, beta, gamma] = [7, 33, 2.0, 0.8];
    const lp = (): Float32Array => Float32Array.from(rng.normals(B * T, 0.5), (v) => v - 1.5);
    const [chosenLp, rejectedLp] = [lp(), lp()];
    const [chosenMask, rejectedMask] = [rng.rowMask(B, T), rng.rowMask(B, T)];
    for (const m of [chosenMask, rejectedMask]) for (let b = 0; b < B; b++) m[b * T + T - 1] = 1;  // no empty row

    const on = (a: Float32Array | Uint8Array) => tensor(a, [B, T], { device });
    const [cm, rm] = [on(chosenMask), on(rejectedMask)];
    const avgW = sequenceLogProbs(on(chosenLp), cm, { reduce: 'mean' });
    const avgL = sequenceLogProbs(on(rejectedLp), rm, { reduce: 'mean' });
    const out = pairwiseLoss(avgW, avgL, { beta, margin: new Float32Array(B).fill(gamma) });
    const gradW = sequenceLogProbsBackward(out.gradChosen, cm, { reduce: 'mean' }).toArray();
    const gradL = sequenceLogProbsBackward(out.gradRejected, rm, { reduce: 'mean' }).toArray();

    const avg = (x: Float32Array, m: Uint8Array, b: number) => {
      let s = 0, n = 0;
      for (let t = 0; t < T; t++) if (m[b * T + t]) (s += x[b * T + t]!, n++);
      return [s / n, n] as const;
    };
    let loss = 0;
    const [refW, refL] = [new Float64Array(B * T), new Float64Array(B * T)];
    for (let b = 0; b < B; b++) {
      const [w, nw] = avg(chosenLp, chosenMask, b), [l, nl] = avg(rejectedLp, rejectedMask, b);
      const x = beta * (w - l) - gamma;
      loss += Math.log1p(Math.exp(-x)) / B;
      const g = -1 / (1 + Math.exp(x)) * beta / B;  // d loss / d avg_w
      for (let t = 0; t < T; t++) {
        refW[b * T + t] = chosenMask[b * T + t] ? g / nw : 0;
        refL[b * T + t] = rejectedMask[b * T + t] ? -g / nl : 0;
      }
    }
    // A few float32 roundings of each quantity: 8 ulps of its magnitude.
    expect(Math.abs(out.loss.item() - loss)).toBeLessThanOrEqual(8 * EPS.float32 * loss);
    for (const [got, ref] of [[gradW, refW], [gradL, refL]] as const) {
      const e = errorStats(got, ref);
      expect(e.maxAbs, `worst at ${e.worst}`).toBeLessThanOrEqual(8 * EPS.float32 * maxAbs(ref));
      expect(maxAbs(ref)).toBeGreaterThan(0);
    }
  });
});
