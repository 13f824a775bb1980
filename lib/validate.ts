/**
 * Argument checks shared by the op wrappers. Every message reads
 * "<op>: <argument> expected <what>, got <what came>".
 */
import type { Device } from './device.js';
import { type DType, DTYPES, isNumberArray } from './dtype.js';
import { article, describe, expectKeys } from './errors.js';
import { Tensor, type TypedArray, tensor } from './tensor.js';

/** A 1-D float32 input: a Tensor, or host data copied to the op's device. */
export type VectorInput = Tensor | TypedArray | number[];

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** An argument that must be a live Tensor of one of `dtypes`. */
export function expectTensor(op: string, name: string, value: unknown, dtypes: readonly DType[]): Tensor {
  if (!(value instanceof Tensor)) {
    const kinds = dtypes.join(' or ');
    throw new TypeError(`${op}: ${name} expected ${article(kinds)} ${kinds} Tensor, got ${describe(value)}`);
  }
  if (!dtypes.includes(value.dtype))
    throw new TypeError(`${op}: ${name} expected dtype ${dtypes.join(' or ')}, got ${value.dtype}`);
  value._storage(`${op}: ${name}`);
  return value;
}

/**
 * What one op call makes besides the results it returns: copies of plain
 * arrays passed as inputs (temporaries), disposed once the call has queued
 * its work or failed, and its outputs, disposed if the call fails after
 * allocating them. So a call leaks nothing on any path, and device memory
 * does not wait for the garbage collector (which cannot see it).
 */
export class OpScope {
  readonly #temporaries: Tensor[] = [];
  readonly #outputs: Tensor[] = [];

  /** Runs an op's body with a scope. */
  static run<T>(body: (scope: OpScope) => T): T {
    const scope = new OpScope();
    try {
      return body(scope);
    } catch (e) {
      for (const t of scope.#outputs) t.dispose();
      throw e;
    } finally {
      // Queued work still reads them: cpu storage goes back in stream order
      // (runOp holds the views), cuda memory is freed in stream order.
      for (const t of scope.#temporaries) t.dispose();
    }
  }

  /** A new output tensor (uninitialised). */
  output<D extends DType>(shape: readonly number[], dtype: D, device: Device): Tensor<D> {
    const t = Tensor.empty(shape, dtype, device);
    this.#outputs.push(t);
    return t;
  }

  /** Working memory of the call's native work (uninitialised), freed once it is queued (in stream order). */
  scratch<D extends DType>(shape: readonly number[], dtype: D, device: Device): Tensor<D> {
    const t = Tensor.empty(shape, dtype, device);
    this.#temporaries.push(t);
    return t;
  }

  /**
   * A 1-D input: a Tensor, or a plain typed array / number[] copied to
   * `device` (the device of the op's other inputs) for this call only
   * (shaped `shape` when given: see tensorOrArray).
   */
  vector(op: string, name: string, value: unknown, dtype: DType, device: Device, shape?: readonly number[]): Tensor {
    if (value instanceof Tensor) {
      const t = expectTensor(op, name, value, [dtype]);
      if (t.shape.length !== 1) throw new RangeError(`${op}: ${name} expected a 1-D tensor, got shape ${shapeText(t.shape)}`);
      return t;
    }
    // (A Uint16Array holds half-precision bits, which tensor() takes with their dtype only.)
    if (!isNumberArray(value) || value instanceof Uint16Array)
      throw new TypeError(`${op}: ${name} expected ${article(dtype)} ${dtype} Tensor or a typed array, got ${describe(value)}`);
    const length = (value as ArrayLike<number>).length;
    if (shape && length !== shape.reduce((n, d) => n * d, 1))
      throw new RangeError(`${op}: ${name} expected shape ${shapeText(shape)}, got ${length} elements`);
    let t: Tensor;
    try {
      t = tensor(value as Float32Array, shape, { dtype, device });
    } catch (e) {
      // tensor()'s own words ("tensor: data[1] expected an int32"), for this argument.
      if (e instanceof TypeError || e instanceof RangeError) {
        const message = e.message.replace(/^tensor: data/, `${op}: ${name}`);
        throw e instanceof TypeError ? new TypeError(message) : new RangeError(message);
      }
      throw e;
    }
    this.#temporaries.push(t);
    return t;
  }

  /**
   * `value` as a Tensor of `dtype`: a Tensor as it is, a plain array through
   * vector(), shaped `shape` when given (a mask laid out like its data).
   */
  tensorOrArray(op: string, name: string, value: unknown, dtype: DType, device: Device, shape?: readonly number[]): Tensor {
    return value instanceof Tensor ? expectTensor(op, name, value, [dtype]) : this.vector(op, name, value, dtype, device, shape);
  }
}

export function expectShape(op: string, name: string, t: Tensor, shape: readonly number[]): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
    throw new RangeError(`${op}: ${name} expected shape ${shapeText(shape)}, got ${shapeText(t.shape)}`);
}

export function expectRank(op: string, name: string, t: Tensor, rank: number): void {
  if (t.shape.length !== rank)
    throw new RangeError(`${op}: ${name} expected a ${rank}-D tensor, got shape ${shapeText(t.shape)}`);
}

/** All tensors on one device; returns it. */
export function sameDevice(op: string, named: Record<string, Tensor | undefined>): Device {
  let first: [string, Tensor] | undefined;
  for (const [name, t] of Object.entries(named)) {
    if (!t) continue;
    if (!first) first = [name, t];
    else if (t.device !== first[1].device)
      throw new RangeError(`${op}: ${name} expected to be on ${first[1].device} like ${first[0]}, got ${t.device}`);
  }
  return first ? first[1].device : 'cpu';
}

export interface NumberRule {
  min?: number;
  max?: number;
  /** Exclusive bounds. */
  above?: number;
  below?: number;
  integer?: boolean;
}

function ruleText(rule: NumberRule): string {
  const parts: string[] = [];
  if (rule.integer) parts.push('an integer');
  else parts.push('a finite number');
  if (rule.min !== undefined) parts.push(`>= ${rule.min}`);
  if (rule.above !== undefined) parts.push(`> ${rule.above}`);
  if (rule.max !== undefined) parts.push(`<= ${rule.max}`);
  if (rule.below !== undefined) parts.push(`< ${rule.below}`);
  return parts.join(' ');
}

/** An optional number option: `fallback` when undefined; TypeError / RangeError otherwise. */
export function expectNumber(op: string, name: string, value: unknown, fallback: number, rule: NumberRule = {}): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw new TypeError(`${op}: ${name} expected ${ruleText(rule)}, got ${describe(value)}`);
  const bad =
    !Number.isFinite(value) ||
    (rule.integer && !Number.isInteger(value)) ||
    (rule.min !== undefined && value < rule.min) ||
    (rule.max !== undefined && value > rule.max) ||
    (rule.above !== undefined && value <= rule.above) ||
    (rule.below !== undefined && value >= rule.below);
  if (bad) throw new RangeError(`${op}: ${name} expected ${ruleText(rule)}, got ${describe(value)}`);
  // The kernels take options as float32: a value that leaves float32's range
  // or crosses a bound when rounded would reach them as inf, 0 or a bound.
  if (!rule.integer) {
    const f = Math.fround(value);
    if (!Number.isFinite(f) || (rule.above !== undefined && f <= rule.above) || (rule.below !== undefined && f >= rule.below))
      throw new RangeError(`${op}: ${name} expected ${ruleText(rule)} as a float32, got ${describe(value)} (${describe(f)} as a float32)`);
  }
  return value;
}

/**
 * expectNumber for a number the kernels divide by (they take its float32
 * inverse): that inverse must be a finite, non-zero float32 too, or exact
 * zeros would come back as 0 * inf = NaN. `fallback` is returned unchecked.
 */
export function expectInvertible(op: string, name: string, value: unknown, fallback: number, rule: NumberRule = {}): number {
  const x = expectNumber(op, name, value, fallback, rule);
  const inverse = Math.fround(1 / x);
  if (value !== undefined && (!Number.isFinite(inverse) || inverse === 0))
    throw new RangeError(`${op}: ${name} expected a number whose inverse is a finite, non-zero float32, got ${describe(x)}`);
  return x;
}

/** A required number. */
export function requireNumber(op: string, name: string, value: unknown, rule: NumberRule = {}): number {
  if (value === undefined) throw new TypeError(`${op}: ${name} expected ${ruleText(rule)}, got undefined`);
  return expectNumber(op, name, value, 0, rule);
}

/** An optional string option among `choices`. */
export function expectChoice<T extends string>(op: string, name: string, value: unknown, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !choices.includes(value as T)) {
    const message = `${op}: ${name} expected one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(value)}`;
    throw typeof value === 'string' ? new RangeError(message) : new TypeError(message);
  }
  return value as T;
}

export function expectBoolean(op: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${op}: ${name} expected a boolean, got ${describe(value)}`);
  return value;
}

/**
 * An options object (undefined = {}) whose keys are among `known`: a
 * misspelt option is an error, not a silent default.
 */
export function expectOptions<T extends object>(op: string, value: unknown, known: readonly (keyof T & string)[], what = 'options'): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new TypeError(`${op}: ${what} expected an object, got ${describe(value)}`);
  expectKeys(op, what, value, known);
  return value as Partial<T>;
}

export { DTYPES };
