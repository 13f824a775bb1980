/**
 * Benchmarks of the token log-prob family: tokenLogProbs (forward) and
 * tokenLogProbsBackward (in place, as a training step uses it), float32 and
 * bfloat16 logits, our kernels on each device against a plain TypeScript
 * loop over a Float32Array (max, exp-sum, gather; the backward's softmax
 * minus one-hot) on the cpu.
 */
import {
  type Device, type Tensor, synchronize, tensor, toBFloat16, tokenLogProbs, tokenLogProbsBackward,
} from '../lib/index.js';
import { Rng } from '../tests/helpers/random.js';
import type { BenchCase, BenchProvider, BenchSize, BenchSuite, Prepared } from './types.js';

type LogitDType = 'float32' | 'bfloat16';
interface Shape {
  rows: number;
  vocab: number;
  dtype: LogitDType;
}

// The TS loop takes ~10 ns per element: past this it is left out.
const TS_LOOP_MAX_ELEMENTS = 100e6;

const SHAPES: Record<BenchSize, { cpu: Shape[]; cuda: Shape[] }> = {
  small: {
    cpu: [
      { rows: 256, vocab: 32000, dtype: 'float32' },
      { rows: 1024, vocab: 32000, dtype: 'bfloat16' },
      { rows: 256, vocab: 151936, dtype: 'float32' },
      { rows: 256, vocab: 151936, dtype: 'bfloat16' },
    ],
    cuda: [
      { rows: 1024, vocab: 151936, dtype: 'bfloat16' },
      { rows: 1024, vocab: 151936, dtype: 'float32' },
    ],
  },
  medium: {
    cpu: [
      { rows: 2048, vocab: 32000, dtype: 'float32' },
      { rows: 1024, vocab: 151936, dtype: 'bfloat16' },
      { rows: 1024, vocab: 151936, dtype: 'float32' },
    ],
    cuda: [
      { rows: 4096, vocab: 151936, dtype: 'bfloat16' },
      { rows: 4096, vocab: 151936, dtype: 'float32' },
    ],
  },
  large: {
    cpu: [
      { rows: 4096, vocab: 151936, dtype: 'bfloat16' },
      { rows: 2048, vocab: 151936, dtype: 'float32' },
    ],
    cuda: [
      { rows: 16384, vocab: 151936, dtype: 'bfloat16' },
      { rows: 8192, vocab: 151936, dtype: 'float32' },
    ],
  },
};

/** Logits with a realistic spread (normal, std 3), tiled from one random block: fast to make. */
function hostLogits(s: Shape): Float32Array | Uint16Array {
  const n = s.rows * s.vocab;
  const block = new Rng(1234).normals(Math.min(n, 1 << 20), 3);
  const src = s.dtype === 'bfloat16' ? toBFloat16(block) : block;
  const out = s.dtype === 'bfloat16' ? new Uint16Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i += src.length) out.set(src.subarray(0, Math.min(src.length, n - i)) as never, i);
  return out;
}

function hostTargets(s: Shape): Int32Array {
  const t = new Rng(99).ints(s.rows, 0, s.vocab);
  for (let i = 0; i < s.rows; i += 16) t[i] = -100; // some padding, as in a batch
  return t;
}

function ours(s: Shape, device: Device, direction: 'forward' | 'backward'): BenchProvider {
  return {
    name: 'rlhf-kernels',
    device,
    ours: true,
    async prepare(): Promise<Prepared> {
      const logits = tensor(hostLogits(s), [s.rows, s.vocab], { dtype: s.dtype, device });
      const targets = tensor(hostTargets(s), [s.rows], { device });
      const fwd = tokenLogProbs(logits, targets);
      const gradLogprobs = tensor(new Float32Array(s.rows).fill(1), [s.rows], { device });
      await synchronize(device);
      const held: Tensor[] = [logits, targets, fwd.logprobs, fwd.lse, gradLogprobs];
      return {
        run: async () => {
          if (direction === 'forward') {
            const out = tokenLogProbs(logits, targets);
            await synchronize(device);
            out.logprobs.dispose();
            out.lse.dispose();
          } else {
            tokenLogProbsBackward(logits, targets, { lse: fwd.lse, gradLogprobs }, { inPlace: true });
            await synchronize(device);
          }
        },
        dispose: () => held.forEach((t) => t.dispose()),
      };
    },
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The plain loop a user would write: one row at a time, max, exp-sum, gather. */
function tsLoop(s: Shape, direction: 'forward' | 'backward'): BenchProvider {
  return {
    name: 'ts-loop',
    device: 'cpu',
    async prepare(): Promise<Prepared | string> {
      if (s.rows * s.vocab > TS_LOOP_MAX_ELEMENTS) return `skipped above ${TS_LOOP_MAX_ELEMENTS / 1e6}M elements (too slow to time)`;
      const data = hostLogits(s);
      const y = hostTargets(s);
      const V = s.vocab;
      const value = s.dtype === 'float32' ? (i: number) => data[i]! : (i: number) => ((u32[0] = data[i]! << 16), f32[0]!);
      const lse = new Float32Array(s.rows), logprobs = new Float32Array(s.rows);
      const forward = () => {
        for (let r = 0; r < s.rows; r++) {
          const o = r * V;
          let m = -Infinity;
          for (let j = 0; j < V; j++) m = Math.max(m, value(o + j));
          let sum = 0;
          for (let j = 0; j < V; j++) sum += Math.exp(value(o + j) - m);
          lse[r] = m + Math.log(sum);
          logprobs[r] = y[r] === -100 ? 0 : value(o + y[r]!) - lse[r]!;
        }
      };
      forward();
      const grad = new Float32Array(s.rows * V);
      const backward = () => {
        for (let r = 0; r < s.rows; r++) {
          const o = r * V;
          if (y[r] === -100) {
            grad.fill(0, o, o + V);
            continue;
          }
          for (let j = 0; j < V; j++) grad[o + j] = -Math.exp(value(o + j) - lse[r]!);
          grad[o + y[r]!]! += 1;
        }
      };
      return { run: direction === 'forward' ? forward : backward };
    },
  };
}

function cases(size: BenchSize, devices: Device[]): BenchCase[] {
  const out: BenchCase[] = [];
  const add = (s: Shape, onDevices: Device[], direction: 'forward' | 'backward') => {
    const bytesPer = s.dtype === 'float32' ? 4 : 2;
    const n = s.rows * s.vocab;
    const providers = onDevices.map((d) => ours(s, d, direction));
    if (onDevices.includes('cpu')) providers.push(tsLoop(s, direction));
    out.push({
      op: direction === 'forward' ? 'tokenLogProbs' : 'tokenLogProbsBackward',
      direction,
      shape: `N=${s.rows} V=${s.vocab} ${s.dtype === 'float32' ? 'fp32' : 'bf16'}${direction === 'backward' ? ' inPlace' : ''}`,
      elements: n,
      // Forward: logits and targets read once, logprobs and lse written.
      // Backward: logits read and the gradient written once, targets, lse and gradLogprobs read.
      bytes: direction === 'forward' ? n * bytesPer + s.rows * 12 : 2 * n * bytesPer + s.rows * 12,
      providers,
    });
  };
  const cudaDevices = devices.filter((d) => d !== 'cpu');
  for (const direction of ['forward', 'backward'] as const) {
    if (devices.includes('cpu')) for (const s of SHAPES[size].cpu) add(s, ['cpu'], direction);
    if (cudaDevices.length) for (const s of SHAPES[size].cuda) add(s, cudaDevices, direction);
  }
  return out;
}

export const suite: BenchSuite = { family: 'token_logprobs', cases };
export default suite;
