/**
 * Benchmarks of the advantage family: gae, whiten and groupAdvantages, ours on
 * each device beside plain TypeScript loops of the algorithms as verl writes
 * them (compute_gae_advantage_return: the reversed loop over T carrying
 * lastgaelam, masked steps keeping nextvalues and lastgaelam; masked_whiten;
 * the GRPO group loop), here as loops over rows since there is no torch.
 * Providers allocate their outputs each iteration, as the API does; one
 * extra cpu row of ours reuses them, to show the kernel without that cost.
 * Shapes: SHAPES.gae / whiten / groupAdvantages (bench/shapes.ts), labelled
 * by shapeLabel(), so rows join the GPU script's PyTorch peers.
 */
import {
  type Device, type Tensor, gae, groupAdvantages, synchronizeSync, tensor, whiten,
} from '../lib/index.js';
import { runOp } from '../lib/stream.js';
import { Rng } from '../tests/helpers/random.js';
import { type TrajectoryKinds, randomTrajectories } from '../tests/reference/advantages.js';
import { type BatchTimeShape, type GroupShape, SHAPES, shapeLabel } from './shapes.js';
import type { BenchCase, BenchProvider, BenchSize, BenchSuite, Prepared } from './types.js';

const GAMMA = 0.99;
const LAMBDA = 0.95;

// GAE variants: the labelled case has a mask (like the peers); two more show
// the cost of no flags at all and of episode flags.
const GAE_VARIANTS: [suffix: string, kinds: TrajectoryKinds][] = [
  ['', { mask: true }],
  [' no-mask', {}],
  [' dones+truncated', { mask: true, dones: true, truncated: true }],
];

/**
 * Our op on `device`. `setup` makes the inputs (data are drawn in prepare,
 * not when the cases are listed) and returns them with the timed step.
 */
function ours(device: Device, setup: () => { inputs: Tensor[]; step: () => Tensor[] }): BenchProvider {
  return {
    name: 'rlhf-kernels',
    device,
    ours: true,
    async prepare(): Promise<Prepared> {
      const { inputs, step } = setup();
      return {
        run: () => {
          const outs = step();
          synchronizeSync(device);
          for (const t of outs) t.dispose();
        },
        dispose: () => {
          for (const t of inputs) t.dispose();
        },
      };
    },
  };
}

/** Inputs drawn once per case, on first use, shared by its providers (large cases take seconds to draw). */
function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

function tsLoop(setup: () => () => unknown): BenchProvider {
  return { name: 'ts-loop', device: 'cpu', prepare: async () => ({ run: setup() }) };
}

// ----------------------------------------------------------------------- gae

/** verl's compute_gae_advantage_return, a row at a time (float64 arithmetic, float32 storage). */
function verlGae(B: number, T: number, rewards: Float32Array, values: Float32Array, mask: Uint8Array | undefined) {
  const advantages = new Float32Array(B * T);
  const returns = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    let nextvalues = 0;
    let lastgaelam = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      const delta = rewards[i]! + GAMMA * nextvalues - values[i]!;
      const next = delta + GAMMA * LAMBDA * lastgaelam;
      if (!mask || mask[i]) {
        nextvalues = values[i]!;
        lastgaelam = next;
      }
      advantages[i] = lastgaelam;
      returns[i] = lastgaelam + values[i]!;
    }
  }
  return { advantages, returns };
}

function gaeCase(shape: BatchTimeShape, [suffix, kinds]: [string, TrajectoryKinds], devices: Device[]): BenchCase {
  const { B, T } = shape;
  const draw = once(() => randomTrajectories(new Rng(1), B, T, kinds, GAMMA, LAMBDA));
  const providers: BenchProvider[] = devices.map((device) =>
    ours(device, () => {
      const x = draw();
      const on = (a: ArrayLike<number> | undefined) => a && tensor(a as Float32Array, [B, T], { device });
      const r = on(x.rewards)!, v = on(x.values)!, mask = on(x.mask), dones = on(x.dones);
      const truncated = on(x.truncated), truncatedValues = on(x.truncatedValues);
      return {
        inputs: [r, v, mask, dones, truncated, truncatedValues].filter((t) => t !== undefined),
        step: () => {
          const opts = { gamma: GAMMA, lambda: LAMBDA, mask, dones, truncated, truncatedValues };
          const { advantages, returns } = gae(r, v, opts);
          return [advantages, returns];
        },
      };
    }),
  );
  // The cpu kernel alone (runOp, no argument checks) on plain JS arrays,
  // writing into the same outputs every iteration. The public call's
  // tensors live in host-pool blocks (huge pages where the OS gives them,
  // reused from call to call); these arrays live in V8's 4 KiB pages. On the
  // 2-core Xeon VM this row is 25-50% slower than the first at B=512
  // T=4096: page size, not the checks, is most of the difference.
  if (devices.includes('cpu'))
    providers.push({
      name: 'rlhf-kernels (outputs reused)',
      device: 'cpu',
      ours: true,
      async prepare(): Promise<Prepared> {
        const x = draw();
        const advantages = new Float32Array(B * T), returns = new Float32Array(B * T);
        const args = {
          rewards: x.rewards, values: x.values, mask: x.mask, dones: x.dones, truncated: x.truncated,
          truncatedValues: x.truncatedValues, advantages, returns, rows: B, steps: T, gamma: GAMMA, lambda: LAMBDA,
        };
        return {
          run: () => {
            runOp('gae', -1, args);
            synchronizeSync('cpu');
          },
        };
      },
    });
  // verl's loop has no episode flags: it is the peer for the cases without them.
  if (!kinds.dones)
    providers.push(tsLoop(() => {
      const x = draw();
      return () => verlGae(B, T, x.rewards as Float32Array, x.values as Float32Array, x.mask as Uint8Array | undefined);
    }));
  // Bytes: rewards, values in, advantages, returns out; a byte per flag array; truncated values.
  const flags = (kinds.mask ? 1 : 0) + (kinds.dones ? 1 : 0) + (kinds.truncated ? 5 : 0);
  return {
    op: 'gae', direction: 'forward', shape: `${shapeLabel(shape)}${suffix}`, elements: B * T,
    bytes: B * T * (16 + flags), providers,
  };
}

// -------------------------------------------------------------------- whiten

/** verl's masked_whiten: masked mean, unbiased masked variance, (x - mean) * rsqrt(var + 1e-8). */
function verlWhiten(x: Float32Array, mask: Uint8Array): Float32Array {
  let n = 0, sum = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) n++, sum += x[i]!;
  const mean = sum / n;
  let m2 = 0;
  for (let i = 0; i < x.length; i++) if (mask[i]) m2 += (x[i]! - mean) ** 2;
  const scale = 1 / Math.sqrt(m2 / (n - 1) + 1e-8);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i]! - mean) * scale;
  return out;
}

function whitenCase(shape: BatchTimeShape, devices: Device[]): BenchCase {
  const { B, T } = shape;
  const draw = once(() => {
    const rng = new Rng(2);
    return { x: rng.normals(B * T, 2, 1), mask: rng.mask(B * T, 0.8) };
  });
  const providers: BenchProvider[] = devices.map((device) =>
    ours(device, () => {
      const { x, mask } = draw();
      const xt = tensor(x, [B, T], { device }), mt = tensor(mask, [B, T], { device });
      return { inputs: [xt, mt], step: () => [whiten(xt, { mask: mt })] };
    }),
  );
  providers.push(tsLoop(() => {
    const { x, mask } = draw();
    return () => verlWhiten(x, mask);
  }));
  return { op: 'whiten', direction: 'forward', shape: shapeLabel(shape), elements: B * T, bytes: B * T * 9, providers };
}

// ---------------------------------------------------------- groupAdvantages

/** The GRPO group loop: mean and unbiased std of each group, (s - mean) / (std + 1e-6). */
function grpoLoop(scores: Float32Array, K: number): Float32Array {
  const out = new Float32Array(scores.length);
  for (let g = 0; g < scores.length; g += K) {
    let sum = 0;
    for (let j = 0; j < K; j++) sum += scores[g + j]!;
    const mean = sum / K;
    let m2 = 0;
    for (let j = 0; j < K; j++) m2 += (scores[g + j]! - mean) ** 2;
    const std = Math.sqrt(m2 / (K - 1));
    for (let j = 0; j < K; j++) out[g + j] = (scores[g + j]! - mean) / (std + 1e-6);
  }
  return out;
}

function groupCase(shape: GroupShape, devices: Device[]): BenchCase {
  const { G, K } = shape;
  const draw = once(() => new Rng(3).normals(G * K));
  const providers: BenchProvider[] = devices.map((device) =>
    ours(device, () => {
      const s = tensor(draw(), undefined, { device });
      return { inputs: [s], step: () => [groupAdvantages(s, { groupSize: K, estimator: 'grpo' })] };
    }),
  );
  providers.push(tsLoop(() => {
    const scores = draw();
    return () => grpoLoop(scores, K);
  }));
  return { op: 'groupAdvantages', direction: 'forward', shape: shapeLabel(shape), elements: G * K, bytes: G * K * 8, providers };
}

/** Found by the runner (bench/suites.ts) as this module's `suite`. */
export const suite: BenchSuite = {
  family: 'advantages',
  cases(size: BenchSize, devices: Device[]): BenchCase[] {
    return [
      ...SHAPES.gae[size].flatMap((shape) => GAE_VARIANTS.map((variant) => gaeCase(shape, variant, devices))),
      ...SHAPES.whiten[size].map((shape) => whitenCase(shape, devices)),
      ...SHAPES.groupAdvantages[size].map((shape) => groupCase(shape, devices)),
    ];
  },
};
