/** Shared helpers of the token log-prob tests: inputs, decoding, the tolerance rule. */
import { expect } from 'vitest';
import { type DType, type Device, Tensor, fromBFloat16, fromFloat16, tensor, toBFloat16, toFloat16 } from '../lib/index.js';
import type { Rng } from './helpers/random.js';
import { EPS, errorStats } from './helpers/tolerance.js';

export type LogitDType = 'float32' | 'bfloat16' | 'float16';
export const LOGIT_DTYPES: LogitDType[] = ['float32', 'bfloat16', 'float16'];

/** Host values of a logits tensor as float32 (half types decoded). */
export function decode(dtype: DType, data: ArrayLike<number>): Float32Array {
  if (dtype === 'bfloat16') return fromBFloat16(data as Uint16Array);
  if (dtype === 'float16') return fromFloat16(data as Uint16Array);
  return Float32Array.from(data);
}

export function encode(dtype: LogitDType, values: Float32Array): Float32Array | Uint16Array {
  if (dtype === 'bfloat16') return toBFloat16(values);
  if (dtype === 'float16') return toFloat16(values);
  return values;
}

export interface Logits {
  tensor: Tensor;
  /** The values the kernel reads (rounded to the dtype), as float32. */
  values: Float32Array;
}

/** Normal logits (std `scale`, mean `shift`) in `dtype`; `masked` of them set to -inf. */
export function randomLogits(
  rng: Rng, shape: number[], dtype: LogitDType, o: { scale?: number; shift?: number; masked?: number; device?: Device } = {},
): Logits {
  const n = shape.reduce((a, b) => a * b, 1);
  const raw = rng.normals(n, o.scale ?? 2, o.shift ?? 0);
  if (o.masked) for (let i = 0; i < n; i++) if (rng.uniform() < o.masked) raw[i] = -Infinity;
  const data = encode(dtype, raw);
  return { tensor: tensor(data, shape, { dtype, device: o.device ?? 'cpu' }), values: decode(dtype, data) };
}

/** Targets in [0, V), with about `ignored` of them set to ignoreIndex. */
export function randomTargets(rng: Rng, rows: number, vocab: number, ignored = 0.2, ignoreIndex = -100): Int32Array {
  const t = rng.ints(rows, 0, vocab);
  for (let i = 0; i < rows; i++) if (rng.uniform() < ignored) t[i] = ignoreIndex;
  return t;
}

/**
 * The tolerance rule: |out - ref| <= factor x (naive float32 error) + floor,
 * floor = `ulps` float32 ulps of the largest |ref| (for rows where the
 * naive run happens to be exact). Non-finite values must match exactly.
 */
export function expectClose(
  what: string, out: ArrayLike<number>, ref: ArrayLike<number>, naive: ArrayLike<number>, factor = 4, ulps = 16, unit: number = EPS.float32,
): void {
  let top = 1;
  for (let i = 0; i < ref.length; i++) if (Number.isFinite(ref[i]!)) top = Math.max(top, Math.abs(ref[i]!));
  const naiveErr = errorStats(naive, ref).maxAbs;
  const tol = factor * naiveErr + ulps * unit * top;
  const s = errorStats(out, ref);
  const at = s.worst;
  const detail = `${what}: max |err| ${s.maxAbs.toExponential(2)} > tol ${tol.toExponential(2)} (naive ${naiveErr.toExponential(2)}) at ${at}: got ${out[at]}, ref ${ref[at]}`;
  expect(s.mismatchedNonFinite, `${what}: non-finite mismatch at ${at}: got ${out[at]}, ref ${ref[at]}`).toBe(0);
  expect(s.maxAbs <= tol, detail).toBe(true);
}

/** Rounds float64 values to a dtype's grid (for the naive run of a half output). */
export function roundTo(dtype: LogitDType, v: ArrayLike<number>): Float32Array {
  return decode(dtype, encode(dtype, Float32Array.from(v)));
}

/** Bit patterns of a float32 array, for bit-exact comparisons. */
export function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}
