/**
 * Benchmarks of the token log-prob family: tokenLogProbs (forward, with and
 * without the entropy) and tokenLogProbsBackward (out of place as the API
 * defaults, and in place as a training step uses it), our kernels on each
 * device beside the plain TypeScript loop over a Float32Array (max, exp-sum,
 * gather; the backward's softmax minus one-hot), tfjs-wasm and onnxruntime
 * on the cpu. Shapes and labels come from the runner's registry
 * (bench/shapes.ts), inputs from bench/peers/data.ts: every provider of a
 * case computes on the same uniform [-4, 4) logits.
 */
import {
  type Device, type Tensor, synchronize, tensor, toBFloat16, tokenLogProbs, tokenLogProbsBackward,
} from '../lib/index.js';
import { Rng } from '../tests/helpers/random.js';
import { PERIOD } from './peers/data.js';
import { onnxTokenLogProbs } from './peers/onnx.js';
import { tfjsTokenLogProbs } from './peers/tfjs.js';
import { SHAPES, type TokenLogProbsShape, shapeLabel } from './shapes.js';
import type { BenchCase, BenchProvider, BenchSize, BenchSuite, Prepared } from './types.js';

// Peers that take ~10 ns (ts-loop) or ~2 ns (tfjs-wasm, one thread) per
// logit stay below these sizes; onnxruntime uses every thread.
const TS_LOOP_MAX = 20e6;
const TFJS_MAX = 70e6;
const ONNX_MAX = 700e6;
// The cpu skips shapes beyond this (the 2.5 G-logit GPU shape needs 5 GB of host memory).
const CPU_MAX = 1.5e9;

/**
 * The logits and targets of tokenLogProbsData(N, V, seed) (bench/peers/data.ts),
 * in the shape's dtype. bfloat16 converts one period and tiles it, which
 * equals converting the tiled float32 array, in a fraction of the time.
 */
function inputs(s: TokenLogProbsShape, seed = 1): { logits: Float32Array | Uint16Array; targets: Int32Array } {
  const rng = new Rng(seed);
  const n = s.N * s.V;
  const block = rng.uniforms(Math.min(n, PERIOD), -4, 4);
  const head = s.dtype === 'bfloat16' ? toBFloat16(block) : block;
  const logits = s.dtype === 'bfloat16' ? new Uint16Array(n) : new Float32Array(n);
  logits.set(head as never);
  for (let filled = head.length; filled < n; filled *= 2) logits.copyWithin(filled, 0, Math.min(filled, n - filled));
  return { logits, targets: rng.ints(s.N, 0, s.V) };
}

type Variant = 'forward' | 'forward entropy' | 'backward' | 'backward inPlace';

function ours(s: TokenLogProbsShape, device: Device, variant: Variant): BenchProvider {
  return {
    name: 'rlhf-kernels',
    device,
    ours: true,
    async prepare(): Promise<Prepared> {
      const { logits: data, targets: y } = inputs(s);
      const logits = tensor(data, [s.N, s.V], { dtype: s.dtype, device });
      const targets = tensor(y, [s.N], { device });
      const fwd = tokenLogProbs(logits, targets);
      const gradLogprobs = tensor(new Float32Array(s.N).fill(1), [s.N], { device });
      await synchronize(device);
      const held: Tensor[] = [logits, targets, fwd.logprobs, fwd.lse, gradLogprobs];
      const step = (): Tensor[] => {
        if (variant === 'forward') return Object.values(tokenLogProbs(logits, targets));
        if (variant === 'forward entropy') return Object.values(tokenLogProbs(logits, targets, { entropy: true }));
        if (variant === 'backward') return [tokenLogProbsBackward(logits, targets, { lse: fwd.lse, gradLogprobs })];
        // In place the logits become gradients after the first call: the
        // work per call is the same (no data-dependent branch in the kernel).
        tokenLogProbsBackward(logits, targets, { lse: fwd.lse, gradLogprobs }, { inPlace: true });
        return [];
      };
      return {
        run: async () => {
          const outs = step();
          await synchronize(device);
          for (const t of outs) t.dispose();
        },
        dispose: () => held.forEach((t) => t.dispose()),
      };
    },
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The plain loop a user would write: one row at a time, max, exp-sum, gather (bfloat16 decoded on the fly). */
function tsLoop(s: TokenLogProbsShape, direction: 'forward' | 'backward'): BenchProvider {
  return {
    name: 'ts-loop',
    device: 'cpu',
    async prepare(): Promise<Prepared> {
      const { logits: data, targets: y } = inputs(s);
      const V = s.V;
      const value = data instanceof Float32Array ? (i: number) => data[i]! : (i: number) => ((u32[0] = data[i]! << 16), f32[0]!);
      const lse = new Float32Array(s.N), logprobs = new Float32Array(s.N);
      const forward = () => {
        for (let r = 0; r < s.N; r++) {
          const o = r * V;
          let m = -Infinity;
          for (let j = 0; j < V; j++) m = Math.max(m, value(o + j));
          let sum = 0;
          for (let j = 0; j < V; j++) sum += Math.exp(value(o + j) - m);
          lse[r] = m + Math.log(sum);
          logprobs[r] = value(o + y[r]!) - lse[r]!;
        }
        return logprobs;
      };
      forward();
      const grad = new Float32Array(s.N * V);
      const backward = () => {
        for (let r = 0; r < s.N; r++) {
          const o = r * V;
          for (let j = 0; j < V; j++) grad[o + j] = -Math.exp(value(o + j) - lse[r]!);
          grad[o + y[r]!]! += 1;
        }
        return grad;
      };
      return { run: direction === 'forward' ? forward : backward };
    },
  };
}

function cases(size: BenchSize, devices: Device[]): BenchCase[] {
  const out: BenchCase[] = [];
  for (const s of SHAPES.tokenLogProbs[size] as readonly TokenLogProbsShape[]) {
    const n = s.N * s.V;
    const es = s.dtype === 'float32' ? 4 : 2;
    const on = devices.filter((d) => d !== 'cpu' || n <= CPU_MAX);
    if (on.length === 0) continue;
    const cpu = on.includes('cpu');
    const label = shapeLabel(s);
    const add = (variant: Variant, peers: BenchProvider[]) =>
      out.push({
        op: variant.startsWith('forward') ? 'tokenLogProbs' : 'tokenLogProbsBackward',
        direction: variant.startsWith('forward') ? 'forward' : 'backward',
        shape: variant === 'forward entropy' ? `${label} entropy` : variant === 'backward inPlace' ? `${label} inPlace` : label,
        elements: n,
        // bench/README.md: forward N V es + 4N targets + 8N logprobs, lse (+ 4N entropy);
        // backward 2 N V es + 12N targets, lse, gradLogprobs.
        bytes: variant.startsWith('forward') ? n * es + 12 * s.N + (variant === 'forward entropy' ? 4 * s.N : 0) : 2 * n * es + 12 * s.N,
        providers: [...on.map((d) => ours(s, d, variant)), ...peers],
      });
    add('forward', [
      ...(cpu && n <= TS_LOOP_MAX ? [tsLoop(s, 'forward')] : []),
      ...(cpu && n <= TFJS_MAX ? [tfjsTokenLogProbs(s)] : []),
      ...(cpu && n <= ONNX_MAX ? [onnxTokenLogProbs(s)] : []),
    ]);
    add('forward entropy', []);
    add('backward', cpu && n <= TS_LOOP_MAX ? [tsLoop(s, 'backward')] : []);
    add('backward inPlace', []);
  }
  return out;
}

export const suite: BenchSuite = { family: 'token_logprobs', cases };
