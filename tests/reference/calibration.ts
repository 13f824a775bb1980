/** Float64 reference of the calibration family. */
import { EPS, type Round, f64 } from '../helpers/tolerance.js';

/** readBandwidth's checksum: the sum of x, front to back (each addition rounded by `round`). */
export function readBandwidthRef(x: ArrayLike<number>, round: Round = f64): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum = round(sum + x[i]!);
  return sum;
}

/**
 * Tolerance of a checksum, by the project's rule: 4x the error of the naive
 * float32 loop, plus a floor for when that loop happens to be exact: the
 * kernels' own roundings that the naive loop lacks, one per level of the
 * pairwise combination of 32 lanes (5) and the final rounding to float32,
 * each at most u * sum |x|.
 */
export function readBandwidthTolerance(x: ArrayLike<number>): number {
  const exact = readBandwidthRef(x);
  const naive = readBandwidthRef(x, Math.fround);
  let absSum = 0;
  for (let i = 0; i < x.length; i++) absSum += Math.abs(x[i]!);
  return 4 * Math.abs(naive - exact) + 6 * EPS.float32 * absSum;
}
