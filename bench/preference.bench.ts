/**
 * The preference family's suite: pairwiseLoss and dpoLoss (loss, gradients
 * and statistics in one call) over B pairs, and sequenceLogProbs with its
 * backward over [B, T]. Ours on each device against a plain TS loop of the
 * same math, and for pairwiseLoss tfjs-wasm (its elementwise ops; no JS
 * library has these losses as one call). The losses run
 * kind 'sigmoid' (the costliest: an exp and a log1p per pair), the sequence
 * ops reduce 'mean'. Shapes: SHAPES.preference and SHAPES.sequenceLogProbs.
 */
import {
  type Device, type Tensor, dpoLoss, pairwiseLoss, sequenceLogProbs, sequenceLogProbsBackward, synchronize, tensor,
} from '../lib/index.js';
import { Rng } from '../tests/helpers/random.js';
import { pairData } from './peers/data.js';
import { tfjsPairwiseLoss } from './peers/tfjs.js';
import { type BatchTimeShape, type PairShape, SHAPES, shapeLabel } from './shapes.js';
import type { BenchCase, BenchProvider, BenchSize, BenchSuite } from './types.js';

/** Ours: `make` builds the inputs; its `run` returns every output, freed after the timed part. */
function ours(device: Device, make: (rng: Rng) => { run: () => Tensor[]; inputs: Tensor[] }): BenchProvider {
  return {
    name: 'rlhf-kernels',
    device,
    ours: true,
    async prepare() {
      const { run, inputs } = make(new Rng(1));
      return {
        run: async () => {
          const out = run();
          await synchronize(device);
          for (const t of out) t.dispose();
        },
        dispose: () => inputs.forEach((t) => t.dispose()),
      };
    },
  };
}

/** The plain TS loop: `make` builds its inputs and returns the iteration. */
function tsLoop(make: () => () => unknown): BenchProvider {
  return { name: 'ts-loop', device: 'cpu', prepare: async () => ({ run: make() }) };
}

/** The sigmoid pairwise loss as a JS programmer writes it: stable softplus, one pass. */
function tsSigmoidLoss(c: Float32Array, r: Float32Array, rc: Float32Array | null, rr: Float32Array | null, beta: number,
  gc: Float32Array, gr: Float32Array): number[] {
  const n = c.length;
  let loss = 0, margin = 0, correct = 0;
  for (let i = 0; i < n; i++) {
    const d = rc && rr ? c[i]! - rc[i]! - (r[i]! - rr[i]!) : c[i]! - r[i]!;
    const x = beta * d;
    const e = Math.exp(-Math.abs(x));
    loss += Math.max(-x, 0) + Math.log1p(e);
    const sigNeg = x >= 0 ? e / (1 + e) : 1 / (1 + e);
    gc[i] = (-beta * sigNeg) / n;
    gr[i] = -gc[i]!;
    margin += d;
    if (d > 0) correct++;
  }
  return [loss / n, correct / n, margin / n];
}

function lossCases(devices: Device[], shape: PairShape): BenchCase[] {
  const n = shape.B;
  // pairwiseLoss scores come from pairData (bench/peers/data.ts, as for the
  // tfjs peer); for dpoLoss, sequence log-probs of a policy near its reference.
  const data = (rng: Rng) => {
    const rc = rng.normals(n, 20, -120), rr = rng.normals(n, 20, -120);
    return { c: rc.map((v) => v + rng.normal()), r: rr.map((v) => v + rng.normal()), rc, rr };
  };
  const pairwise: BenchCase = {
    op: 'pairwiseLoss', direction: 'forward+backward', shape: shapeLabel(shape), elements: n, bytes: 16 * n + 12,
    providers: [
      ...devices.map((device) => ours(device, () => {
        const x = pairData(n);
        const c = tensor(x.chosen, undefined, { device });
        const r = tensor(x.rejected, undefined, { device });
        return { run: () => Object.values(pairwiseLoss(c, r)), inputs: [c, r] };
      })),
      tsLoop(() => {
        const x = pairData(n);
        const gc = new Float32Array(n), gr = new Float32Array(n);
        return () => tsSigmoidLoss(x.chosen, x.rejected, null, null, 1, gc, gr);
      }),
      ...(devices.includes('cpu') ? [tfjsPairwiseLoss(shape)] : []),
    ],
  };
  const dpo: BenchCase = {
    op: 'dpoLoss', direction: 'forward+backward', shape: shapeLabel(shape), elements: n, bytes: 24 * n + 12,
    providers: [
      ...devices.map((device) => ours(device, (rng) => {
        const x = data(rng);
        const t = [x.c, x.r, x.rc, x.rr].map((a) => tensor(a, undefined, { device })) as [Tensor, Tensor, Tensor, Tensor];
        return { run: () => Object.values(dpoLoss(...t)), inputs: t };
      })),
      tsLoop(() => {
        const x = data(new Rng(1));
        const gc = new Float32Array(n), gr = new Float32Array(n);
        return () => tsSigmoidLoss(x.c, x.r, x.rc, x.rr, 0.1, gc, gr);
      }),
    ],
  };
  return [pairwise, dpo];
}

function sequenceCases(devices: Device[], shape: BatchTimeShape): BenchCase[] {
  const { B: rows, T: steps } = shape, n = rows * steps;
  const data = (rng: Rng) => ({ lp: rng.uniforms(n, -12, 0), mask: rng.mask(n, 0.8), g: rng.normals(rows) });
  const forward: BenchCase = {
    op: 'sequenceLogProbs', direction: 'forward', shape: shapeLabel(shape), elements: n, bytes: 5 * n + 4 * rows,
    providers: [
      ...devices.map((device) => ours(device, (rng) => {
        const x = data(rng);
        const lp = tensor(x.lp, [rows, steps], { device });
        const mask = tensor(x.mask, [rows, steps], { device });
        return { run: () => [sequenceLogProbs(lp, mask, { reduce: 'mean' })], inputs: [lp, mask] };
      })),
      tsLoop(() => {
        const x = data(new Rng(1));
        const out = new Float32Array(rows);
        return () => {
          for (let b = 0; b < rows; b++) {
            let sum = 0, count = 0;
            for (let t = b * steps; t < (b + 1) * steps; t++)
              if (x.mask[t]) {
                sum += x.lp[t]!;
                count++;
              }
            out[b] = count ? sum / count : 0;
          }
          return out;
        };
      }),
    ],
  };
  const backward: BenchCase = {
    op: 'sequenceLogProbsBackward', direction: 'backward', shape: shapeLabel(shape), elements: n, bytes: 5 * n + 4 * rows,
    providers: [
      ...devices.map((device) => ours(device, (rng) => {
        const x = data(rng);
        const g = tensor(x.g, undefined, { device });
        const mask = tensor(x.mask, [rows, steps], { device });
        return { run: () => [sequenceLogProbsBackward(g, mask, { reduce: 'mean' })], inputs: [g, mask] };
      })),
      tsLoop(() => {
        const x = data(new Rng(1));
        const out = new Float32Array(n);
        return () => {
          for (let b = 0; b < rows; b++) {
            let count = 0;
            for (let t = b * steps; t < (b + 1) * steps; t++) if (x.mask[t]) count++;
            const scale = count ? x.g[b]! / count : 0;
            for (let t = b * steps; t < (b + 1) * steps; t++) out[t] = x.mask[t] ? scale : 0;
          }
          return out;
        };
      }),
    ],
  };
  return [forward, backward];
}

export const suite: BenchSuite = {
  family: 'preference',
  cases(size: BenchSize, devices: Device[]): BenchCase[] {
    return [
      ...SHAPES.preference[size].flatMap((shape) => lossCases(devices, shape)),
      ...SHAPES.sequenceLogProbs[size].flatMap((shape) => sequenceCases(devices, shape)),
    ];
  },
};
