/**
 * Seeded inputs for a benchmark case. Every provider of a case builds its own
 * copy from the same seed, so all of them compute on identical data and no
 * case keeps large arrays alive after its providers are disposed.
 */
import { Rng } from '../../tests/helpers/random.js';

/**
 * Past this many values, random data is one random block repeated: drawing
 * each value costs ~40 ns in JS (26 s for the 622 M logits of a large
 * case), copying costs ~0.1 ns. The period (a prime near 4 M) is not a
 * multiple of any vocabulary, so rows still differ; caches work by address,
 * so repeated values give a streaming kernel no advantage.
 */
export const PERIOD = 4_194_301;

/** n uniform values in [lo, hi). */
export function uniforms(rng: Rng, n: number, lo: number, hi: number): Float32Array {
  if (n <= PERIOD) return rng.uniforms(n, lo, hi);
  const out = new Float32Array(n);
  out.set(rng.uniforms(PERIOD, lo, hi));
  for (let filled = PERIOD; filled < n; filled *= 2) out.copyWithin(filled, 0, Math.min(filled, n - filled));
  return out;
}

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
  return { N, V, logits: uniforms(rng, N * V, -4, 4), targets: rng.ints(N, 0, V) };
}

export interface PpoData {
  B: number;
  T: number;
  /** [B, T] each; advantages uniform in [-2, 2). */
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
  const logprobs = uniforms(rng, n, -3, 0);
  const shift = uniforms(rng, n, -0.3, 0.3);
  const oldLogprobs = logprobs.map((lp, i) => lp + shift[i]!);
  const mask = Uint8Array.from(uniforms(rng, n, 0, 1), (u) => (u < 0.9 ? 1 : 0));
  return { B, T, logprobs, oldLogprobs, advantages: uniforms(rng, n, -2, 2), mask };
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
