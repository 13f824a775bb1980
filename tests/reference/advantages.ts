/**
 * Float64 references of the advantage family, written as the obvious loops.
 * `round` is applied after every arithmetic operation: f64 gives the
 * reference, f32 the naive float32 run the tolerance rule compares against.
 */
import type { Rng } from '../helpers/random.js';
import { type Round, f64 } from '../helpers/tolerance.js';

export interface GaeInputs {
  rewards: ArrayLike<number>;
  values: ArrayLike<number>;
  B: number;
  T: number;
  gamma: number;
  lambda: number;
  mask?: ArrayLike<number>;
  dones?: ArrayLike<number>;
  truncated?: ArrayLike<number>;
  truncatedValues?: ArrayLike<number>;
  lastValues?: ArrayLike<number>;
}

/**
 * GAE backward over each row, step by step (conventions of lib/ops/advantages.ts:
 * masked steps pass the carry through, a flag on a masked step resets it,
 * done wins over truncated).
 */
export function gaeReference(x: GaeInputs, round: Round = f64): { advantages: Float64Array; returns: Float64Array } {
  const { B, T } = x;
  const gamma = round(x.gamma);
  const gammaLambda = round(gamma * round(x.lambda));
  const advantages = new Float64Array(B * T);
  const returns = new Float64Array(B * T);
  for (let b = 0; b < B; b++) {
    let nextValue = x.lastValues ? round(x.lastValues[b]!) : 0;
    let nextAdv = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      const valid = !x.mask || x.mask[i] !== 0;
      const done = !!x.dones && x.dones[i] !== 0;
      const cut = !done && !!x.truncated && x.truncated[i] !== 0;
      if (!valid) {
        if (done) {
          nextValue = 0;
          nextAdv = 0;
        } else if (cut) {
          nextValue = x.truncatedValues![i]!;
          nextAdv = 0;
        }
        continue;
      }
      const r = x.rewards[i]!;
      const v = x.values[i]!;
      let a: number;
      if (done) a = round(r - v);
      else if (cut) a = round(round(r + round(gamma * x.truncatedValues![i]!)) - v);
      else a = round(round(round(r + round(gamma * nextValue)) - v) + round(gammaLambda * nextAdv));
      advantages[i] = a;
      returns[i] = round(a + v);
      nextValue = v;
      nextAdv = a;
    }
  }
  return { advantages, returns };
}

/**
 * verl's compute_gae_advantage_return as a plain loop (the reversed loop
 * over T with lastgaelam; masked steps keep nextvalues and lastgaelam), for
 * rows without dones. It leaves the carried lastgaelam at masked positions
 * where gae() writes 0; at valid positions the two agree.
 */
export function gaeVerl(x: GaeInputs): Float64Array {
  const { B, T, gamma, lambda } = x;
  const out = new Float64Array(B * T);
  for (let b = 0; b < B; b++) {
    let nextvalues = x.lastValues ? x.lastValues[b]! : 0;
    let lastgaelam = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = b * T + t;
      const m = x.mask ? x.mask[i]! : 1;
      const delta = x.rewards[i]! + gamma * nextvalues - x.values[i]!;
      const next = delta + gamma * lambda * lastgaelam;
      nextvalues = m ? x.values[i]! : nextvalues;
      lastgaelam = m ? next : lastgaelam;
      out[i] = lastgaelam;
    }
  }
  return out;
}

/** Masked whitening with the unbiased variance (taken as 0 below two valid elements). */
export function whitenReference(
  x: ArrayLike<number>,
  opts: { mask?: ArrayLike<number>; shiftMean?: boolean; eps?: number } = {},
  round: Round = f64,
): Float64Array {
  const { mask, shiftMean = true, eps = 1e-8 } = opts;
  let n = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++)
    if (!mask || mask[i] !== 0) {
      n++;
      sum = round(sum + x[i]!);
    }
  const out = new Float64Array(x.length);
  if (n === 0) return out;
  const mean = round(sum / n);
  let m2 = 0;
  for (let i = 0; i < x.length; i++)
    if (!mask || mask[i] !== 0) m2 = round(m2 + round(round(x[i]! - mean) ** 2));
  const variance = n > 1 ? round(m2 / (n - 1)) : 0;
  const std = round(Math.sqrt(round(variance + round(eps))));
  for (let i = 0; i < x.length; i++)
    if (!mask || mask[i] !== 0) {
      const z = round(round(x[i]! - mean) / std);
      out[i] = shiftMean ? z : round(z + mean);
    }
  return out;
}

export type Estimator = 'grpo' | 'dr-grpo' | 'rloo';

/** Group advantages; rloo is computed literally as s minus the mean of the others. */
export function groupAdvantagesReference(
  scores: ArrayLike<number>,
  groupSize: number,
  estimator: Estimator,
  eps = 1e-6,
  round: Round = f64,
): Float64Array {
  const K = groupSize;
  const out = new Float64Array(scores.length);
  for (let g = 0; g * K < scores.length; g++) {
    if (K < 2) continue;
    let sum = 0;
    for (let j = 0; j < K; j++) sum = round(sum + scores[g * K + j]!);
    const mean = round(sum / K);
    let m2 = 0;
    for (let j = 0; j < K; j++) m2 = round(m2 + round(round(scores[g * K + j]! - mean) ** 2));
    const std = round(Math.sqrt(round(m2 / (K - 1))));
    for (let j = 0; j < K; j++) {
      const s = scores[g * K + j]!;
      if (estimator === 'dr-grpo') out[g * K + j] = round(s - mean);
      else if (estimator === 'grpo') out[g * K + j] = round(round(s - mean) / round(std + round(eps)));
      else out[g * K + j] = round(s - round(round(sum - s) / (K - 1)));
    }
  }
  return out;
}

/** What a random batch of trajectories carries besides rewards and values. */
export interface TrajectoryKinds {
  /** Prompt prefixes, tool-token holes, right padding, and a few all-masked rows. */
  mask?: boolean;
  /** Episode ends, at t = 0 and t = T - 1 on some rows. */
  dones?: boolean;
  /** Cuts, some next to (and one on) a done. */
  truncated?: boolean;
  lastValues?: boolean;
}

/** Random [B, T] trajectories (rewards ~ N(0, 1), values ~ N(0.5, 1)). */
export function randomTrajectories(rng: Rng, B: number, T: number, kinds: TrajectoryKinds = {},
  gamma = 0.99, lambda = 0.95): GaeInputs {
  const n = B * T;
  const x: GaeInputs = { rewards: rng.normals(n), values: rng.normals(n, 1, 0.5), B, T, gamma, lambda };
  if (kinds.mask) {
    const mask = new Uint8Array(n);
    for (let b = 0; b < B; b++) {
      if (B > 2 && b % 7 === 3) continue; // all masked
      const start = rng.int(0, Math.max(1, T >> 2)); // prompt
      const end = T - rng.int(0, Math.max(1, T >> 2)); // right padding
      for (let t = start; t < end; t++) mask[b * T + t] = 1;
      for (let t = start; t < end; t++) // tool-token holes
        if (rng.uniform() < 0.05) for (let h = rng.int(1, 6); h > 0 && t < end; h--, t++) mask[b * T + t] = 0;
    }
    x.mask = mask;
  }
  if (kinds.dones) {
    const dones = new Uint8Array(n);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) if (rng.uniform() < 0.03) dones[b * T + t] = 1;
      if (b % 3 === 0) dones[b * T] = 1;
      if (b % 3 === 1) dones[b * T + T - 1] = 1;
    }
    x.dones = dones;
  }
  if (kinds.truncated) {
    const truncated = new Uint8Array(n);
    for (let i = 0; i < n; i++) if (rng.uniform() < 0.02) truncated[i] = 1;
    if (x.dones)
      for (let i = 0; i < n; i++)
        if (x.dones[i]) {
          if (i % 5 === 0) truncated[i] = 1; // both: done wins
          else if (i % 5 === 1 && i + 1 < n) truncated[i + 1] = 1; // right after a done
          else if (i % 5 === 2 && i > 0) truncated[i - 1] = 1; // right before a done
        }
    x.truncated = truncated;
    x.truncatedValues = rng.normals(n, 1, 0.5);
  }
  if (kinds.lastValues) x.lastValues = rng.normals(B, 1, 0.5);
  return x;
}
