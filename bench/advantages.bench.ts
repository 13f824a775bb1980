/**
 * Benchmarks of the advantage family: gae, whiten and groupAdvantages, ours on
 * each device beside plain TypeScript loops of the algorithms as verl writes
 * them (compute_gae_advantage_return: the reversed loop over T carrying
 * lastgaelam, masked steps keeping nextvalues and lastgaelam; masked_whiten;
 * the GRPO group loop), here as loops over rows since there is no torch.
 * Every provider allocates its outputs each iteration, as the API does.
 */
import {
  type Device, type Tensor, gae, groupAdvantages, synchronizeSync, tensor, whiten,
} from '../lib/index.js';
import { runOp } from '../lib/tensor.js';
import { Rng } from '../tests/helpers/random.js';
import { type TrajectoryKinds, randomTrajectories } from '../tests/reference/advantages.js';
import type { BenchCase, BenchProvider, BenchSize, BenchSuite, Prepared } from './types.js';

const GAMMA = 0.99;
const LAMBDA = 0.95;

interface GaeShape {
  B: number;
  T: number;
  kinds: TrajectoryKinds;
}

const GAE_SHAPES: Record<BenchSize, GaeShape[]> = {
  small: [
    { B: 64, T: 512, kinds: { mask: true } },
    { B: 512, T: 4096, kinds: {} },
    { B: 512, T: 4096, kinds: { mask: true, dones: true } },
  ],
  medium: [
    { B: 64, T: 512, kinds: { mask: true } },
    { B: 512, T: 4096, kinds: {} },
    { B: 512, T: 4096, kinds: { mask: true, dones: true } },
    { B: 2048, T: 4096, kinds: { mask: true } },
  ],
  large: [
    { B: 64, T: 512, kinds: { mask: true } },
    { B: 512, T: 4096, kinds: {} },
    { B: 512, T: 4096, kinds: { mask: true, dones: true } },
    { B: 2048, T: 8192, kinds: {} },
    { B: 2048, T: 8192, kinds: { mask: true } },
  ],
};

const WHITEN_SHAPES: Record<BenchSize, [number, number][]> = {
  small: [[512, 4096]],
  medium: [[512, 4096], [2048, 4096]],
  large: [[512, 4096], [2048, 8192]],
};

/** [groups, groupSize] */
const GROUP_SHAPES: Record<BenchSize, [number, number][]> = {
  small: [[1024, 16]],
  medium: [[1024, 16], [16384, 64]],
  large: [[1024, 16], [65536, 64]],
};

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

function gaeCase({ B, T, kinds }: GaeShape, devices: Device[]): BenchCase {
  const draw = () => randomTrajectories(new Rng(1), B, T, kinds, GAMMA, LAMBDA);
  const providers: BenchProvider[] = devices.map((device) =>
    ours(device, () => {
      const x = draw();
      const on = (a: ArrayLike<number> | undefined) => a && tensor(a as Float32Array, [B, T], { device });
      const r = on(x.rewards)!, v = on(x.values)!, mask = on(x.mask), dones = on(x.dones);
      return {
        inputs: [r, v, mask, dones].filter((t): t is Tensor => t !== undefined),
        step: () => {
          const { advantages, returns } = gae(r, v, { gamma: GAMMA, lambda: LAMBDA, mask, dones });
          return [advantages, returns];
        },
      };
    }),
  );
  // The cpu kernel alone, writing into the same outputs every iteration: on
  // cpu a fresh output is fresh pages from the OS, and faulting in 2 x 4 B
  // x B x T of them can cost more than the kernel; this row shows how much.
  if (devices.includes('cpu'))
    providers.push({
      name: 'rlhf-kernels (outputs reused)',
      device: 'cpu',
      ours: true,
      async prepare(): Promise<Prepared> {
        const x = draw();
        const advantages = new Float32Array(B * T), returns = new Float32Array(B * T);
        const args = {
          rewards: x.rewards, values: x.values, mask: x.mask, dones: x.dones, advantages, returns, rows: B, steps: T,
          gamma: GAMMA, lambda: LAMBDA,
        };
        return {
          run: () => {
            runOp('gae', -1, args);
            synchronizeSync('cpu');
          },
        };
      },
    });
  // verl's loop has no dones: it is the peer for the cases without them.
  if (!kinds.dones)
    providers.push(tsLoop(() => {
      const x = draw();
      return () => verlGae(B, T, x.rewards as Float32Array, x.values as Float32Array, x.mask as Uint8Array | undefined);
    }));
  const flags = (kinds.mask ? 1 : 0) + (kinds.dones ? 1 : 0);
  const what = [kinds.mask && 'mask', kinds.dones && 'dones'].filter(Boolean).join('+') || 'no mask';
  return {
    op: 'gae', direction: 'forward', shape: `B=${B} T=${T} ${what}`, elements: B * T,
    bytes: B * T * (4 + 4 + flags + 4 + 4), providers,
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

function whitenCase([B, T]: [number, number], devices: Device[]): BenchCase {
  const draw = () => {
    const rng = new Rng(2);
    return { x: rng.normals(B * T, 2, 1), mask: rng.mask(B * T, 0.8) };
  };
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
  return { op: 'whiten', direction: 'forward', shape: `B=${B} T=${T} mask`, elements: B * T, bytes: B * T * 9, providers };
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

function groupCase([G, K]: [number, number], devices: Device[]): BenchCase {
  const draw = () => new Rng(3).normals(G * K);
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
  return { op: 'groupAdvantages', direction: 'forward', shape: `G=${G} K=${K} grpo`, elements: G * K, bytes: G * K * 8, providers };
}

export const advantagesSuite: BenchSuite = {
  family: 'advantages',
  cases(size: BenchSize, devices: Device[]): BenchCase[] {
    return [
      ...GAE_SHAPES[size].map((s) => gaeCase(s, devices)),
      ...WHITEN_SHAPES[size].map((s) => whitenCase(s, devices)),
      ...GROUP_SHAPES[size].map((s) => groupCase(s, devices)),
    ];
  },
};

export default advantagesSuite;
