/**
 * Inputs at the edges of float32, shared by the vitest and GPU suites.
 *
 * Wide logits: one row per offset, each logit on its offset's float grid
 * (offset + k ulp, k ~ normal * 3 / ulp, or steps of 2^-6 where the grid is
 * finer), so x / T is exact in float32 for T a power of two and the float64
 * reference sees exactly the kernels' z. From |x / T| ~ 7.4e8 a chunk's
 * shift keeps its remainder (kernels/common/token_logprobs.cuh, "The shift").
 */
import type { Rng } from './random.js';

export const WIDE_OFFSETS = [1e3, -1e6, 3e7, 7.5e8, -2e9, 1e10, 1e20, -1e30];

export function wideLogits(rng: Rng, offsets: readonly number[], V: number): Float32Array {
  const values = new Float32Array(offsets.length * V);
  offsets.forEach((o, r) => {
    const ulp = 2 ** (Math.floor(Math.log2(Math.abs(o))) - 23);
    const step = Math.max(ulp, 2 ** -6);
    for (let j = 0; j < V; j++) values[r * V + j] = Math.fround(o + step * Math.round((rng.normal() * 3) / step));
  });
  return values;
}

/**
 * The scale a row's outputs are exact to a few ulps of: max(1, |value|,
 * log V, mean |z - max z|). A naive float32 run rounds lse to ulp(lse), which
 * at these offsets would excuse any error, so it is no yardstick here.
 */
export function wideScale(values: Float32Array, row: number, V: number, temperature: number, value: number): number {
  let zmax = -Infinity, spread = 0;
  for (let j = 0; j < V; j++) zmax = Math.max(zmax, values[row * V + j]! / temperature);
  for (let j = 0; j < V; j++) spread += zmax - values[row * V + j]! / temperature;
  return Math.max(1, Math.abs(value), Math.log(V), spread / V);
}
