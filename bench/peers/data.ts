/**
 * Seeded inputs for a benchmark case. Every provider of a case builds its own
 * copy from the same seed, so all of them compute on identical data and no
 * case keeps large arrays alive after its providers are disposed.
 */
import { Rng } from '../../tests/helpers/random.js';

export interface TokenLogProbsData {
  N: number;
  V: number;
  /** [N, V] row-major. Uniform in [-4, 4): softmax weights spread over e^8. */
  logits: Float32Array;
  /** [N] in [0, V). */
  targets: Int32Array;
}

export function tokenLogProbsData(N: number, V: number, seed = 1): TokenLogProbsData {
  const rng = new Rng(seed);
  return { N, V, logits: rng.uniforms(N * V, -4, 4), targets: rng.ints(N, 0, V) };
}

export interface PpoData {
  B: number;
  T: number;
  /** [B, T] each. */
  logprobs: Float32Array;
  oldLogprobs: Float32Array;
  advantages: Float32Array;
  /** [B, T] 0/1, about 90% ones. */
  mask: Uint8Array;
}

/** Old log-probs within ±0.3 of the new: ratios in [0.74, 1.35], a share of them beyond a 0.2 clip. */
export function ppoData(B: number, T: number, seed = 1): PpoData {
  const rng = new Rng(seed);
  const n = B * T;
  const logprobs = rng.uniforms(n, -3, 0);
  const oldLogprobs = new Float32Array(n);
  for (let i = 0; i < n; i++) oldLogprobs[i] = logprobs[i]! + 0.6 * (rng.uniform() - 0.5);
  return { B, T, logprobs, oldLogprobs, advantages: rng.normals(n), mask: rng.mask(n, 0.9) };
}

export interface PairData {
  B: number;
  /** [B] scores (rewards or sequence log-probs) of the chosen and rejected answers. */
  chosen: Float32Array;
  rejected: Float32Array;
}

export function pairData(B: number, seed = 1): PairData {
  const rng = new Rng(seed);
  return { B, chosen: rng.normals(B, 2), rejected: rng.normals(B, 2) };
}
