/**
 * The preference family on cuda, against the float64 reference and the cpu
 * backend. node:test + node:assert only (the GPU machine has no
 * node_modules): `npx tsc -p tsconfig.json && node --test dist/tests/gpu/`.
 * Skips when cuda is unavailable.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Device, type PreferenceKind, type SequenceReduce, type Tensor, dpoLoss, pairwiseLoss, sequenceLogProbs,
  sequenceLogProbsBackward, tensor,
} from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { EPS, derivedTolerance, errorStats, f32 } from '../helpers/tolerance.js';
import {
  type LossRefOptions, meanMarginScale, preferenceLossRef, rewardScale, sequenceLogProbsBackwardRef, sequenceLogProbsRef, sigmoidSmoothing,
} from '../reference/preference.js';
import { skip, maxAbs } from './common.js';

const GPU: Device = 'cuda:0';
const KINDS: PreferenceKind[] = ['sigmoid', 'hinge', 'ipo'];
const REDUCES: SequenceReduce[] = ['sum', 'mean'];

/** Error within 4x the naive float32 run's, plus 4 ulps of `scale` (default: the largest value). */
function assertClose(out: ArrayLike<number>, exact: ArrayLike<number>, naive: ArrayLike<number>, what: string,
  scale = maxAbs(exact)): void {
  const tol = derivedTolerance(naive, exact, 4, 4 * EPS.float32 * scale);
  const e = errorStats(out, exact);
  assert.equal(e.mismatchedNonFinite, 0, `${what}: non-finite mismatch at ${e.worst}`);
  assert.ok(e.maxAbs <= tol, `${what}: error ${e.maxAbs} at ${e.worst} > tolerance ${tol}`);
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), what);
}

type LossArgs = { c: Float32Array; r: Float32Array; o: LossRefOptions };

/**
 * Fills `sizes` blocks of the device's memory pool with NaN and frees them:
 * outputs allocated next likely reuse them, so an element a kernel fails to
 * write shows up as NaN.
 */
function poisonPool(device: Device, sizes: number[]): void {
  for (const n of sizes) tensor(new Float32Array(n).fill(NaN), undefined, { device }).dispose();
}

function runLoss(device: Device, { c, r, o }: LossArgs) {
  const t = (a: Float32Array) => tensor(a, undefined, { device });
  const inputs = o.refChosen
    ? [t(c), t(r), t(o.refChosen as Float32Array), t(o.refRejected as Float32Array)]
    : [t(c), t(r), ...(o.margin ? [t(o.margin as Float32Array)] : [])];
  poisonPool(device, [c.length, c.length, 1, 1, 1, 1, 1]);
  const res = o.refChosen
    ? dpoLoss(inputs[0]!, inputs[1]!, inputs[2]!, inputs[3]!, { kind: o.kind, beta: o.beta, labelSmoothing: o.labelSmoothing, normalizer: o.normalizer })
    : pairwiseLoss(inputs[0]!, inputs[1]!, { ...o, margin: inputs[2] });
  return {
    loss: res.loss.item(), accuracy: res.accuracy.item(), meanMargin: res.meanMargin.item(),
    chosenReward: res.chosenReward.item(), rejectedReward: res.rejectedReward.item(),
    gradChosen: res.gradChosen.toArray(), gradRejected: res.gradRejected.toArray(),
  };
}

function assertLoss(args: LossArgs, what: string): void {
  const exact = preferenceLossRef(args.c, args.r, args.o);
  const naive = preferenceLossRef(args.c, args.r, args.o, f32);
  for (const device of ['cpu', GPU] as Device[]) {
    const out = runLoss(device, args);
    const w = `${what} on ${device}`;
    assertClose([out.loss], [exact.loss], [naive.loss], `${w} loss`);
    assertClose(out.gradChosen, exact.gradChosen, naive.gradChosen, `${w} gradChosen`, exact.gradMagnitude);
    assertClose(out.gradRejected, exact.gradRejected, naive.gradRejected, `${w} gradRejected`, exact.gradMagnitude);
    assertClose([out.accuracy], [exact.accuracy], [naive.accuracy], `${w} accuracy`);
    assertClose([out.meanMargin], [exact.meanMargin], [naive.meanMargin], `${w} meanMargin`, meanMarginScale(args.c, args.r, args.o));
    const beta = args.o.beta ?? 1;
    assertClose([out.chosenReward], [exact.chosenReward], [naive.chosenReward], `${w} chosenReward`,
      rewardScale(args.c, args.o.refChosen, beta));
    assertClose([out.rejectedReward], [exact.rejectedReward], [naive.rejectedReward], `${w} rejectedReward`,
      rewardScale(args.r, args.o.refRejected, beta));
  }
}

// One block of 512 pairs (no combine); one past it, several blocks and the
// benchmark size (the last block combines); hundreds of partials for the
// last block to combine.
const SIZES = [1, 2, 33, 512, 513, 5000, 16384, 300_000];

describe('pairwiseLoss / dpoLoss on cuda', { skip }, () => {
  it('match the reference and the cpu backend for every kind and option', () => {
    const rng = new Rng();
    for (const n of SIZES)
      for (const kind of KINDS)
        for (const o of [{}, { beta: 0.1, margin: rng.uniforms(n) }, { beta: 2.5, labelSmoothing: 0.2 },
          { centerCoef: 0.05, margin: rng.uniforms(n, -0.5, 0.5) }, { centerCoef: 0.05, normalizer: 3.5 * n }] as LossRefOptions[])
          assertLoss({ c: rng.normals(n, 3), r: rng.normals(n, 3), o: sigmoidSmoothing({ ...o, kind }) }, `seed ${rng.seed} pairwise ${kind} ${JSON.stringify({ ...o, margin: !!o.margin })} B=${n}`);
  });

  it('dpoLoss matches the reference and the cpu backend', () => {
    const rng = new Rng();
    for (const n of [1, 33, 1025, 16384, 300_000])
      for (const kind of KINDS)
        for (const extra of [{ beta: 0.1 }, { beta: 0.5, labelSmoothing: 0.1 }, { beta: 0.1, normalizer: 2 * n + 1 }]) {
          const refChosen = rng.normals(n, 20, -120);
          const refRejected = rng.normals(n, 20, -120);
          const c = refChosen.map((v) => v + rng.normal());
          const r = refRejected.map((v) => v + rng.normal());
          assertLoss({ c, r, o: sigmoidSmoothing({ kind, ...extra, refChosen, refRejected }) }, `seed ${rng.seed} dpo ${kind} ${JSON.stringify(extra)} B=${n}`);
        }
  });

  it('stay finite and exact at |x| up to 1e4', () => {
    const c = new Float32Array([5000, -5000, 1e4, -1e4, 0.5, 3000]);
    const r = new Float32Array([-5000, 5000, 0, 0, -0.5, 3000]);
    for (const kind of KINDS)
      for (const labelSmoothing of [0, 0.1]) assertLoss({ c, r, o: sigmoidSmoothing({ kind, labelSmoothing }) }, `huge ${kind} s=${labelSmoothing}`);
  });

  it('propagate a NaN to its own pair and to the loss only', () => {
    const c = new Float32Array([0.5, NaN, 2, -1]);
    const r = new Float32Array([0.25, 1, -2, -3]);
    for (const kind of KINDS) {
      const out = runLoss(GPU, { c, r, o: { kind } });
      assert.ok(Number.isNaN(out.loss) && Number.isNaN(out.meanMargin) && Number.isNaN(out.chosenReward), `${kind} loss`);
      assert.equal(out.rejectedReward, Math.fround((0.25 + 1 - 2 - 3) / 4));
      assert.equal(out.accuracy, Math.fround(3 / 4));
      for (const g of [out.gradChosen, out.gradRejected]) {
        assert.ok(Number.isNaN(g[1]!), `${kind} NaN pair`);
        for (const i of [0, 2, 3]) assert.ok(Number.isFinite(g[i]!), `${kind} pair ${i}`);
      }
    }
  });

  it('give the same bits on every run (32 and 588 partials combined by the last block, the block counter back at 0 after each)', () => {
    const rng = new Rng();
    for (const n of [16384, 300_001]) {
      const args = { c: rng.normals(n, 3), r: rng.normals(n, 3), o: { labelSmoothing: 0.1, centerCoef: 0.01 } };
      const first = runLoss(GPU, args);
      for (let k = 0; k < 3; k++) {
        const again = runLoss(GPU, args);
        assert.equal(again.loss, first.loss, `B=${n}`);
        assert.equal(again.accuracy, first.accuracy, `B=${n}`);
        assert.equal(again.meanMargin, first.meanMargin, `B=${n}`);
        assert.equal(again.chosenReward, first.chosenReward, `B=${n}`);
        assert.equal(again.rejectedReward, first.rejectedReward, `B=${n}`);
        sameBits(again.gradChosen, first.gradChosen, `B=${n} gradChosen`);
      }
    }
  });

  it('refuse inputs on two devices', () => {
    const c = tensor([1, 2], undefined, { device: GPU });
    assert.throws(() => pairwiseLoss(c, tensor([0, 1])), { name: 'RangeError', message: /pairwiseLoss: rejected expected to be on cuda:0 like chosen, got cpu/ });
  });
});

const SHAPES: [number, number][] = [[1, 1], [3, 15], [5, 33], [4, 1025], [2, 4096], [300, 40], [3, 0], [0, 7], [512, 4096]];

describe('sequenceLogProbs / sequenceLogProbsBackward on cuda', { skip }, () => {
  it('match the reference and the cpu backend', () => {
    const rng = new Rng();
    for (const [rows, steps] of SHAPES)
      for (const reduce of REDUCES) {
        const lp = rng.uniforms(rows * steps, -12, 0);
        const mask = rng.rowMask(rows, steps);
        const exact = sequenceLogProbsRef(lp, mask, rows, steps, reduce);
        const naive = sequenceLogProbsRef(lp, mask, rows, steps, reduce, f32);
        const g = rng.normals(rows);
        const gradRef = Float32Array.from(sequenceLogProbsBackwardRef(g, mask, rows, steps, reduce, f32));
        for (const device of ['cpu', GPU] as Device[]) {
          const what = `seed ${rng.seed} ${reduce} [${rows}, ${steps}] on ${device}`;
          const m = tensor(mask, [rows, steps], { device });
          const lpT = tensor(lp, [rows, steps], { device });
          const gT = tensor(g, undefined, { device });
          poisonPool(device, [rows]);
          assertClose(sequenceLogProbs(lpT, m, { reduce }).toArray(), exact, naive, what);
          poisonPool(device, [rows * steps]);
          sameBits(sequenceLogProbsBackward(gT, m, { reduce }).toArray(), gradRef, `${what} backward`);
        }
      }
  });

  it('give a row the same bits whatever the batch around it', () => {
    const rng = new Rng();
    const [rows, steps] = [9, 1500];
    const lp = rng.uniforms(rows * steps, -20, 0);
    const mask = rng.rowMask(rows, steps);
    for (const reduce of REDUCES) {
      const all = sequenceLogProbs(tensor(lp, [rows, steps], { device: GPU }), tensor(mask, [rows, steps], { device: GPU }), { reduce }).toArray();
      for (const b of [0, 4, 8]) {
        const row = (a: Float32Array | Uint8Array) => a.slice(b * steps, (b + 1) * steps);
        const alone = sequenceLogProbs(tensor(row(lp), [1, steps], { device: GPU }), tensor(row(mask), [1, steps], { device: GPU }), { reduce });
        assert.equal(alone.toArray()[0], all[b], `row ${b} ${reduce}`);
      }
    }
  });

  it('ignore whatever masked-out positions hold', () => {
    const rng = new Rng();
    const [rows, steps] = [6, 777];
    const lp = rng.uniforms(rows * steps, -5, 0);
    const mask = rng.rowMask(rows, steps);
    const dirty = lp.map((v, i) => (mask[i] ? v : [NaN, Infinity, -Infinity, 1e30][i % 4]!));
    const g = rng.normals(rows);
    g[0] = NaN; // row 0 is empty
    for (const reduce of REDUCES) {
      // Typed: node:assert's assertion signatures in this loop defeat the inference.
      const m: Tensor<'uint8'> = tensor(mask, [rows, steps], { device: GPU });
      sameBits(sequenceLogProbs(tensor(dirty, [rows, steps], { device: GPU }), m, { reduce }).toArray(),
        sequenceLogProbs(tensor(lp, [rows, steps], { device: GPU }), m, { reduce }).toArray(), `forward ${reduce}`);
      const back: Float32Array = sequenceLogProbsBackward(tensor(g, undefined, { device: GPU }), m, { reduce }).toArray();
      for (let t = 0; t < steps; t++) assert.equal(back[t], 0);
    }
  });
});
