/**
 * Element types, their host arrays, and the float16 / bfloat16 conversions.
 * Half-precision host data are Uint16Array bit patterns.
 */

import { describe } from './errors.js';

export type DType = 'float32' | 'float16' | 'bfloat16' | 'int32' | 'uint8';
/** The host array of each dtype (half types as Uint16Array bit patterns). */
export interface HostArrays {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int32: Int32Array;
  uint8: Uint8Array;
}
export type HostArrayOf<D extends DType> = HostArrays[D];
export type HostArray = HostArrayOf<DType>;

export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'int32', 'uint8'];

/** The integer each dtype has in the native layer (native/core/dtype.h). */
export const DTYPE_CODE: Record<DType, number> = { float32: 0, float16: 1, bfloat16: 2, int32: 3, uint8: 4 };

export const DTYPE_BYTES: Record<DType, number> = { float32: 4, float16: 2, bfloat16: 2, int32: 4, uint8: 1 };

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16';
}

export function hostArray(dtype: DType, size: number): HostArray {
  switch (dtype) {
    case 'float32': return new Float32Array(size);
    case 'float16': case 'bfloat16': return new Uint16Array(size);
    case 'int32': return new Int32Array(size);
    case 'uint8': return new Uint8Array(size);
  }
}

/** A host array of `size` elements over `buffer` (from its start). */
export function hostView(dtype: DType, buffer: ArrayBuffer, size: number): HostArray {
  switch (dtype) {
    case 'float32': return new Float32Array(buffer, 0, size);
    case 'float16': case 'bfloat16': return new Uint16Array(buffer, 0, size);
    case 'int32': return new Int32Array(buffer, 0, size);
    case 'uint8': return new Uint8Array(buffer, 0, size);
  }
}

/** The dtype a host array holds without conversion, if any. */
export function dtypeOfArray(data: ArrayBufferView): DType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint8Array) return 'uint8';
  return undefined;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function bfloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  // Adding 0x7fff plus the lowest kept bit rounds half to even.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bfloat16Value(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** float32 -> IEEE float16 bits, round to nearest even, overflow to ±inf. */
export function float16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero) in float16: shift the mantissa with its hidden bit.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let out = mant >>> shift;
    if (rest > half || (rest === half && (out & 1))) out += 1;
    return sign | out;
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1))) out += 1; // may carry into the exponent: correct
  return sign | out;
}

export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** A number[] or a typed array of numbers (not a DataView, not BigInt64Array / BigUint64Array). */
export function isNumberArray(data: unknown): data is ArrayLike<number> {
  return Array.isArray(data) ||
    (ArrayBuffer.isView(data) && !(data instanceof DataView) && !(data instanceof BigInt64Array) && !(data instanceof BigUint64Array));
}

function expectNumbers(where: string, data: unknown): ArrayLike<number> {
  if (isNumberArray(data)) return data;
  throw new TypeError(`${where}: data expected a TypedArray of numbers or a number[], got ${describe(data)}`);
}

function expectBits(where: string, bits: unknown): Uint16Array {
  if (bits instanceof Uint16Array) return bits;
  throw new TypeError(`${where}: bits expected a Uint16Array of half-precision bit patterns, got ${describe(bits)}`);
}

/** Converts floats to bfloat16 bit patterns (round to nearest even). */
export function toBFloat16(data: ArrayLike<number>): Uint16Array {
  expectNumbers('toBFloat16', data);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = bfloat16Bits(data[i]!);
  return out;
}

export function fromBFloat16(bits: Uint16Array): Float32Array {
  expectBits('fromBFloat16', bits);
  const out = new Float32Array(bits.length);
  const view = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) view[i] = bits[i]! << 16;
  return out;
}

/** Converts floats to IEEE float16 bit patterns (round to nearest even). */
export function toFloat16(data: ArrayLike<number>): Uint16Array {
  expectNumbers('toFloat16', data);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = float16Bits(data[i]!);
  return out;
}

export function fromFloat16(bits: Uint16Array): Float32Array {
  expectBits('fromFloat16', bits);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16Value(bits[i]!);
  return out;
}

/** Host values of any dtype as float32 (half types decoded). */
export function toFloat32(dtype: DType, data: HostArray): Float32Array {
  if (dtype === 'bfloat16') return fromBFloat16(data as Uint16Array);
  if (dtype === 'float16') return fromFloat16(data as Uint16Array);
  return data instanceof Float32Array ? data : Float32Array.from(data);
}
