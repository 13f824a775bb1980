/// <reference lib="esnext.disposable" preserve="true" />
/**
 * Tensor: a dense, row-major array on one device.
 *
 * cpu tensors keep their elements in an ArrayBuffer, so no view can outlive
 * its memory: a small one JS allocates, a large one comes from the addon's
 * host pool and goes back to it only once no view can reach it (see "host
 * storage" below); cuda tensors own a DeviceBuffer from the device's
 * stream-ordered pool (shared with the views reshape() makes, and freed
 * when the last of them is disposed or collected). Ops return tensors at
 * once and fill them in stream order; `read()` waits without blocking the
 * event loop, `toArray()` and `item()` block.
 */
import { inspect } from 'node:util';
import { addon, type DeviceBuffer } from './addon.js';
import { type Device, defaultDevice, deviceOf, ordinalOf, parseDevice } from './device.js';
import {
  DTYPES, DTYPE_BYTES, type DType, type HostArray, type HostArrayOf, bfloat16Bits, bfloat16Value, dtypeOfArray, float16Bits,
  float16Value, hostArray, isNumberArray,
} from './dtype.js';
import { KernelError, article, describe, expectKeys } from './errors.js';
import {
  allocHost, beginRead, claim, copyHost, endRead, freeHost, hold, isDetached, isShared, letGo, noteWrite, pinned,
} from './storage.js';
import { releaseAll, runOp, waitCpu, waitCuda } from './stream.js';

export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array | Int8Array | Int16Array | Uint32Array;

export interface TensorOptions {
  /** Default: the data's own (Float32Array / number[] float32, Int32Array int32, Uint8Array uint8). */
  dtype?: DType;
  device?: Device;
  /**
   * false: use `data` itself as the storage of a cpu tensor (no copy). Its
   * ArrayBuffer is then marked untransferable (see Tensor.toArray). It must
   * be a fixed-length, unshared ArrayBuffer (resizable and shared ones are a
   * TypeError), left as it is until the work that reads it is done; a
   * WebAssembly.Memory that grows detaches its buffer, and the tensor's
   * next use is then a KernelError EDISPOSED.
   */
  copy?: boolean;
}

/** Options without a dtype: the data's own. */
type UntypedOptions = TensorOptions & { dtype?: undefined };

/** A float32 tensor: what every op returns (but tokenLogProbsBackward, which keeps the logits' dtype). */
export type Float32Tensor = Tensor<'float32'>;

const TENSOR_OPTIONS = ['dtype', 'device', 'copy'];

function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(where: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${where}: shape expected an array of integers, got ${describe(shape)}`);
  for (const d of shape) {
    if (typeof d !== 'number') throw new TypeError(`${where}: shape expected an array of integers, got [${shape.map(describe).join(', ')}]`);
    if (!Number.isSafeInteger(d) || d < 0)
      throw new RangeError(`${where}: shape expected non-negative integers below 2^53, got [${shape.join(', ')}]`);
  }
  if (!Number.isSafeInteger(shapeSize(shape)))
    throw new RangeError(`${where}: shape expected at most 2^53 - 1 elements, got [${shape.join(', ')}]`);
  return [...shape];
}

function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * `D`, the dtype, types what toArray() and read() return (Float32Array for
 * 'float32', Uint16Array bit patterns for the half types, ...). Ops return
 * Tensor<'float32'> (exported as Float32Tensor); they take any Tensor and
 * check its dtype at the call.
 */
export class Tensor<D extends DType = DType> {
  readonly shape: readonly number[];
  readonly dtype: D;
  readonly device: Device;
  /** Element count. */
  readonly size: number;
  /** @internal cpu storage, null once disposed */
  _host: HostArray | null;
  /** @internal cuda storage, null once disposed */
  _buffer: DeviceBuffer | null;
  /** Owns pooled storage: dispose() may give it back if not #exposed. */
  readonly #pooled: boolean = false;
  /** toArray() or read() handed the storage out: views of it may live anywhere. */
  #exposed = false;
  /**
   * @internal A cuda uint8 tensor's nonzero count per row of its last
   * dimension, taken from the host data it was made from (no op writes a
   * uint8 tensor, so it stays true): the PPO losses use it as their
   * normalizer and skip the kernel's own count of the mask (lib/ops/ppo.ts).
   */
  _rowCounts: Int32Array | undefined;

  /**
   * `x instanceof Tensor` narrows to Tensor<DType> (TypeScript would give
   * Tensor<any>, and so an untyped toArray()); the test itself is the usual one.
   */
  static [Symbol.hasInstance](value: unknown): value is Tensor {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  /** @internal Use tensor() or an op to make tensors. */
  constructor(shape: readonly number[], dtype: D, device: Device, host: HostArray | null, buffer: DeviceBuffer | null) {
    if (!Array.isArray(shape) || (host === null) === (buffer === null))
      throw new TypeError('new Tensor(): not public; make tensors with tensor(data, shape, opts) or an op');
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = device;
    this.size = shapeSize(shape);
    this._host = host;
    this._buffer = buffer;
    if (host) this.#pooled = claim(host);
  }

  /**
   * @internal An uninitialised tensor, on cpu as on cuda: large cpu storage
   * comes from the host pool and holds whatever it held before.
   */
  static empty<D extends DType>(shape: readonly number[], dtype: D, device: Device): Tensor<D> {
    const size = shapeSize(shape);
    const ordinal = ordinalOf(device);
    if (ordinal < 0) return new Tensor(shape, dtype, 'cpu', allocHost(dtype, size), null);
    const native = addon();
    return new Tensor(shape, dtype, device, null, new native.DeviceBuffer(ordinal, size * DTYPE_BYTES[dtype]));
  }

  /** The native ordinal: -1 for cpu. */
  get ordinal(): number {
    return ordinalOf(this.device);
  }

  get disposed(): boolean {
    return this._host === null && this._buffer === null;
  }

  /**
   * @internal The storage handed to the addon; throws if disposed. Not an
   * exposure (see dispose()): callers must not keep it past runOp.
   */
  _storage(what = 'tensor'): HostArray | DeviceBuffer {
    const s = this._host ?? this._buffer;
    if (!s) throw new KernelError(`${what}: the tensor ${this} was disposed`, 'EDISPOSED');
    // copy: false storage is the caller's: a WebAssembly.Memory's buffer is
    // detached when the memory grows (a resizable one is refused at tensor()).
    if (this._host && this._host.length !== this.size)
      throw new KernelError(`${what}: the tensor ${this} lost its copy: false data (its buffer was detached)`, 'EDISPOSED');
    return s;
  }

  /**
   * @internal Whether this tensor's storage and `other`'s share a byte (a
   * reshape view, or cpu copy: false data over one buffer). A cuda tensor
   * shares device memory only with its views, which hold the same buffer.
   */
  _overlaps(other: Tensor): boolean {
    if (this._buffer || other._buffer) return this._buffer !== null && this._buffer === other._buffer;
    const a = this._host, b = other._host;
    if (!a || !b || a.buffer !== b.buffer || a.byteLength === 0 || b.byteLength === 0) return false;
    return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
  }

  /** A copy on `device` (also when it is this tensor's device). */
  to(device: Device): Tensor<D> {
    const target = parseDevice(device, 'Tensor.to: device');
    const src = this._storage('Tensor.to');
    const native = addon();
    if (target === 'cpu') {
      const out = allocHost(this.dtype, this.size);
      if (this._host) {
        native.synchronize(-1);
        releaseAll();
        out.set(this._host as never);
      } else {
        native.copyToHost(src as DeviceBuffer, out);
      }
      return new Tensor(this.shape, this.dtype, 'cpu', out, null);
    }
    const out = Tensor.empty(this.shape, this.dtype, target);
    if (this._host) {
      native.synchronize(-1);
      releaseAll();
      native.copyToDevice(out._buffer!, this._host);
      out._rowCounts = rowCountsOf(this._host, this.shape);
    } else if ((src as DeviceBuffer).device === out._buffer!.device) {
      native.copyOnDevice(src as DeviceBuffer, out._buffer!, this.size * DTYPE_BYTES[this.dtype]);
    } else {
      const staged = this.toArray();
      native.copyToDevice(out._buffer!, staged);
    }
    out._rowCounts ??= this._rowCounts;
    return out;
  }

  /**
   * The elements on the host; blocks until the work that writes them ran.
   * For a cpu tensor this is its storage itself (a view), not a copy: its
   * buffer is untransferable (queued work may read it), so postMessage
   * copies it (Node 20) or refuses it (Node 21+); send a `slice()` instead.
   * float16/bfloat16 come as Uint16Array bit patterns.
   */
  toArray(): HostArrayOf<D> {
    if (this._host) this.#exposed = true;
    return this.#hostNow('Tensor.toArray') as HostArrayOf<D>;
  }

  /** toArray() without handing out the storage (item()). */
  #hostNow(what: string): HostArray {
    const src = this._storage(what);
    const native = addon();
    if (this._host) {
      native.synchronize(-1);
      releaseAll();
      return this._host;
    }
    const out = hostArray(this.dtype, this.size);
    native.copyToHost(src as DeviceBuffer, out);
    return out;
  }

  /**
   * Like toArray(), without blocking the event loop: the elements once the
   * ops queued before the call ran. An in-place op on this storage queued
   * while the read is in flight does not change what it gives (on cpu it
   * gets a copy first; cuda copies at the call). On cpu what it gives is,
   * like toArray()'s, the storage itself: an in-place op queued after it
   * settled writes into it.
   */
  async read(): Promise<HostArrayOf<D>> {
    const src = this._storage('Tensor.read');
    const native = addon();
    if (this._host) {
      const host = this._host;
      this.#exposed = true;
      // An in-place op queued meanwhile gives this read a copy (lib/storage.ts).
      const pending = beginRead(host, this.dtype);
      try {
        await waitCpu();
        // (Up to the copy only: a failure of the in-place op is a later wait's.)
        while (pending.ticket !== undefined && pending.ticket > native.completed()) await waitCpu(pending.ticket);
      } finally {
        endRead(pending);
      }
      return (pending.copy ?? host) as HostArrayOf<D>;
    }
    // A snapshot now, in stream order: ops queued after this call (in place
    // ones too) cannot change what is read. waitCuda copies it out.
    const out = hostArray(this.dtype, this.size);  // first: a failed allocation leaves no snapshot behind
    const snapshot = native.snapshot(src as DeviceBuffer);
    await waitCuda((src as DeviceBuffer).device, { snapshot, dst: out });
    return out as HostArrayOf<D>;
  }

  /** The value of a one-element tensor, as a number (half types decoded). */
  item(): number {
    this._storage('Tensor.item');
    if (this.size !== 1) throw new RangeError(`Tensor.item: expected a tensor of one element, got shape ${formatShape(this.shape)}`);
    const v = this.#hostNow('Tensor.item')[0]!;
    if (this.dtype === 'bfloat16') return bfloat16Value(v);
    if (this.dtype === 'float16') return float16Value(v);
    return v;
  }

  /**
   * The same elements in another shape, sharing this tensor's storage (no
   * copy): a write to one (an in-place backward) shows in the other. One
   * dimension may be -1: what the element count leaves for it. The storage
   * goes back when every tensor sharing it is disposed or collected.
   */
  reshape(shape: readonly number[]): Tensor<D> {
    const where = 'Tensor.reshape';
    const storage = this._storage(where);
    const dims = inferShape(where, shape, this.size);
    if (this._host) {
      this.#exposed = true;  // never back to the pool at dispose(): the other holder may still use it
      return new Tensor(dims, this.dtype, this.device, this._host, null);
    }
    const buffer = storage as DeviceBuffer;
    if (!isShared(buffer)) hold(this, buffer);
    const view = new Tensor(dims, this.dtype, this.device, null, buffer);
    hold(view, buffer);
    if (dims.length > 0 && this._rowCounts?.length === shapeSize(dims.slice(0, -1))) view._rowCounts = this._rowCounts;  // the same rows
    return view;
  }

  /**
   * Rows [start, end) of the first dimension as a new tensor on the same
   * device: a copy, like TypedArray.prototype.slice, queued in stream order
   * (it sees what ops queued before it write, and later ones cannot change
   * it). Negative indices count from the end; both are clamped to
   * [0, shape[0]]; end defaults to shape[0].
   */
  slice(start = 0, end?: number): Tensor<D> {
    const where = 'Tensor.slice';
    this._storage(where);
    if (this.shape.length === 0) throw new RangeError(`${where}: expected a tensor with at least one dimension, got shape []`);
    const rows = this.shape[0]!;
    const lo = rowIndex(where, 'start', start, rows);
    const hi = Math.max(lo, end === undefined ? rows : rowIndex(where, 'end', end, rows));
    const rowBytes = (this.size / Math.max(rows, 1)) * DTYPE_BYTES[this.dtype];
    const out = Tensor.empty([hi - lo, ...this.shape.slice(1)], this.dtype, this.device);
    copyBytes(this, lo * rowBytes, out, 0, (hi - lo) * rowBytes);
    if (this._rowCounts && this.shape.length > 1) {
      const per = this._rowCounts.length / Math.max(rows, 1);  // rows of the last dimension per first-dimension index
      out._rowCounts = this._rowCounts.slice(lo * per, hi * per);
    }
    return out;
  }

  /**
   * Gives the memory back (device memory to the pool, in stream order).
   * Idempotent. On cpu, views from toArray() or read() stay valid: their
   * memory goes back when the garbage collector has dropped them. Storage
   * shared by reshape() goes back at its last holder's dispose().
   */
  dispose(): void {
    if (this._host && this.#pooled && !this.#exposed) freeHost(this._host);
    this._host = null;
    const buffer = this._buffer;
    this._buffer = null;
    if (!buffer) return;
    if (!isShared(buffer)) return buffer.free();
    letGo(this, buffer);
  }

  /** dispose() at the end of a `using` block (the declarations pull in TypeScript's esnext.disposable lib). */
  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype} ${formatShape(this.shape)} ${this.device}${this.disposed ? ', disposed' : ''})`;
  }

  /** @internal console.log and util.inspect show toString() (kept out of the declarations: no @types/node needed). */
  [inspect.custom](): string {
    return this.toString();
  }
}

function convert(where: string, data: ArrayLike<number>, dtype: DType): HostArray {
  const out = allocHost(dtype, data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (typeof v !== 'number') throw new TypeError(`${where}: data[${i}] expected a number, got ${describe(v)}`);
    switch (dtype) {
      case 'float32': out[i] = v; break;
      case 'bfloat16': out[i] = bfloat16Bits(v); break;
      case 'float16': out[i] = float16Bits(v); break;
      case 'int32':
        if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647)
          throw new RangeError(`${where}: data[${i}] expected an int32, got ${describe(v)}`);
        out[i] = v;
        break;
      case 'uint8':
        if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`${where}: data[${i}] expected a uint8, got ${describe(v)}`);
        out[i] = v;
        break;
    }
  }
  return out;
}

/**
 * Makes a tensor from host data. dtype defaults from the data:
 * Float32Array / number[] -> float32, Int32Array -> int32, Uint8Array -> uint8;
 * a Uint16Array holds float16/bfloat16 bits and needs that dtype. Numbers are
 * converted to another dtype when asked (half types round to nearest even).
 * The data are copied unless `copy: false` (cpu only, data already in dtype).
 * The result's type follows: Tensor<'float32'> from a Float32Array, and so on.
 */
export function tensor<D extends DType>(data: TypedArray | number[], shape: readonly number[] | undefined,
  opts: TensorOptions & { dtype: D }): Tensor<D>;
export function tensor(data: Int32Array, shape?: readonly number[], opts?: UntypedOptions): Tensor<'int32'>;
export function tensor(data: Uint8Array, shape?: readonly number[], opts?: UntypedOptions): Tensor<'uint8'>;
export function tensor(data: Float32Array | Float64Array | Int8Array | Int16Array | Uint32Array | number[],
  shape?: readonly number[], opts?: UntypedOptions): Tensor<'float32'>;
export function tensor(data: TypedArray | number[], shape?: readonly number[], opts?: TensorOptions): Tensor;
export function tensor(data: TypedArray | number[], shape?: readonly number[], opts: TensorOptions = {}): Tensor {
  const where = 'tensor';
  if (!isNumberArray(data))
    throw new TypeError(`${where}: data expected a TypedArray of numbers or a number[], got ${describe(data)}`);
  if (!Array.isArray(data) && isDetached(data.buffer))
    throw new TypeError(`${where}: data expected a TypedArray of numbers or a number[], got ${article(data.constructor.name)} ${data.constructor.name} over a detached ArrayBuffer`);
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: opts expected an object, got ${describe(opts)}`);
  expectKeys(where, 'opts', opts, TENSOR_OPTIONS);
  if (opts.copy !== undefined && typeof opts.copy !== 'boolean')
    throw new TypeError(`${where}: copy expected a boolean, got ${describe(opts.copy)}`);
  const length = (data as ArrayLike<number>).length;
  const dims = shape === undefined ? [length] : checkShape(where, shape);
  if (shapeSize(dims) !== length)
    throw new RangeError(`${where}: shape ${formatShape(dims)} holds ${shapeSize(dims)} elements, data has ${length}`);
  const device = opts.device === undefined ? defaultDevice() : parseDevice(opts.device, `${where}: device`);
  if (opts.dtype !== undefined && !DTYPES.includes(opts.dtype))
    throw new TypeError(`${where}: dtype expected one of ${DTYPES.join(', ')}, got ${describe(opts.dtype)}`);

  const natural = Array.isArray(data) ? 'float32' : dtypeOfArray(data as ArrayBufferView);
  let dtype: DType;
  if (data instanceof Uint16Array) {
    if (opts.dtype !== 'bfloat16' && opts.dtype !== 'float16')
      throw new TypeError(`${where}: a Uint16Array holds float16 or bfloat16 bits: dtype expected 'bfloat16' or 'float16', got ${describe(opts.dtype)}`);
    dtype = opts.dtype;
  } else {
    dtype = opts.dtype ?? natural ?? 'float32';
  }
  const exact = data instanceof Uint16Array || (!Array.isArray(data) && natural === dtype);
  if (opts.copy === false && (!exact || device !== 'cpu'))
    throw new TypeError(`${where}: copy: false needs a cpu tensor and data already in ${dtype} (a ${dtypeArrayName(dtype)}), got ${describe(data)} for ${device}`);
  const shared = !Array.isArray(data) && !(data.buffer instanceof ArrayBuffer);
  if (opts.copy === false && shared)
    throw new TypeError(`${where}: copy: false needs data over an ArrayBuffer, got ${describe(data)} over a SharedArrayBuffer`);
  // Storage that could shrink under queued work (which reads it on other threads) is refused.
  if (opts.copy === false && !Array.isArray(data) && (data.buffer as ArrayBuffer & { resizable?: boolean }).resizable)
    throw new TypeError(`${where}: copy: false needs data over a fixed-length ArrayBuffer, got ${describe(data)} over a resizable one`);
  // A copy to the device reads the caller's array directly (from an
  // ArrayBuffer): it is staged before copyToDevice returns, so no host copy
  // is needed first. Used as storage (copy: false), the caller's buffer is
  // pinned (see pinned()).
  const host: HostArray = exact
    ? opts.copy === false
      ? pinned(data as HostArray)
      : device !== 'cpu' && !shared
        ? (data as HostArray)
        : copyHost(dtype, data as HostArray)
    : convert(where, data as ArrayLike<number>, dtype);
  if (device === 'cpu') return new Tensor(dims, dtype, 'cpu', host, null);
  const out = Tensor.empty(dims, dtype, device);
  addon().copyToDevice(out._buffer!, host);
  out._rowCounts = rowCountsOf(host, dims);
  if (claim(host)) freeHost(host); // a converted staging copy, seen by nothing else
  return out;
}

/**
 * Joins tensors along the first dimension into a new one (a copy, queued in
 * stream order). They must share dtype, device and every other dimension.
 */
export function concat<D extends DType>(tensors: readonly Tensor<D>[]): Tensor<D> {
  const where = 'concat';
  if (!Array.isArray(tensors as unknown)) throw new TypeError(`${where}: tensors expected an array of tensors, got ${describe(tensors)}`);
  if (tensors.length === 0) throw new RangeError(`${where}: tensors expected at least one tensor, got []`);
  for (let i = 0; i < tensors.length; i++) {  // not forEach: it skips holes
    const t: unknown = tensors[i];
    if (!(t instanceof Tensor)) throw new TypeError(`${where}: tensors[${i}] expected a Tensor, got ${describe(t)}`);
    t._storage(`${where}: tensors[${i}]`);
  }
  const first = tensors[0]!;
  if (first.shape.length === 0) throw new RangeError(`${where}: tensors[0] expected at least one dimension, got shape []`);
  const inner = first.shape.slice(1);
  let rows = 0;
  tensors.forEach((t, i) => {
    if (t.dtype !== first.dtype) throw new TypeError(`${where}: tensors[${i}] expected dtype ${first.dtype} like tensors[0], got ${t.dtype}`);
    if (t.device !== first.device) throw new RangeError(`${where}: tensors[${i}] expected to be on ${first.device} like tensors[0], got ${t.device}`);
    if (t.shape.length !== first.shape.length || t.shape.some((d, k) => k > 0 && d !== first.shape[k]))
      throw new RangeError(`${where}: tensors[${i}] expected shape ${formatShape(['*', ...inner])} like tensors[0], got ${formatShape(t.shape)}`);
    rows += t.shape[0]!;
  });
  const out = Tensor.empty([rows, ...inner], first.dtype, first.device);
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.size * DTYPE_BYTES[t.dtype];
    copyBytes(t, 0, out, offset, bytes);
    offset += bytes;
  }
  const counted = inner.length > 0 && tensors.every((t) => t._rowCounts) ? tensors.reduce((n, t) => n + t._rowCounts!.length, 0) : -1;
  if (counted >= 0 && counted <= 0x7fffffff) {  // (as rowCountsOf: never more than an Int32Array of 2^31 - 1)
    out._rowCounts = new Int32Array(counted);
    let at = 0;
    for (const t of tensors) {
      out._rowCounts.set(t._rowCounts!, at);
      at += t._rowCounts!.length;
    }
  }
  return out;
}

/** A uint8 tensor's nonzero count per row of its last dimension (see Tensor._rowCounts); undefined for other dtypes. */
function rowCountsOf(host: HostArray, shape: readonly number[]): Int32Array | undefined {
  const native = addon();
  // (A binary older than this file has no count: the GPU scripts time such base builds with this JS.)
  if (!(host instanceof Uint8Array) || typeof native.maskRowCounts !== 'function') return undefined;
  const rowLength = shape.at(-1) ?? 1;
  const rows = shapeSize(shape.slice(0, -1));
  // A count is an optional speed-up, never a reason for an upload to fail:
  // none for rows longer than an int32 holds, for more rows than the
  // binding's Int32Array takes, or where the counts (4 bytes a row) would
  // outweigh both the mask and 64 MiB (billions of rows under 4 bytes).
  if (rowLength > 0x7fffffff || rows > 0x7fffffff || 4 * rows > Math.max(host.length, 64 << 20)) return undefined;
  try {
    return native.maskRowCounts(host, rows, rowLength);
  } catch {
    return undefined;  // out of host memory for the counts
  }
}

/** Queues the copy of `bytes` bytes between two tensors of one device (the tensor family's copyRegion op). */
function copyBytes(src: Tensor, srcOffset: number, dst: Tensor, dstOffset: number, bytes: number): void {
  if (bytes === 0) return;
  try {
    const ticket = runOp('copyRegion', src.ordinal, { src: src._storage(), srcOffset, dst: dst._storage(), dstOffset, bytes });
    if (dst._host) noteWrite(dst._host, ticket);
  } catch (e) {
    dst.dispose();  // the new tensor being filled: nobody else holds it yet
    throw e;
  }
}

/** A row index of slice(): an integer, negative from the end, clamped to [0, rows]. */
function rowIndex(where: string, name: string, value: unknown, rows: number): number {
  if (typeof value !== 'number') throw new TypeError(`${where}: ${name} expected an integer, got ${describe(value)}`);
  if (!Number.isSafeInteger(value)) throw new RangeError(`${where}: ${name} expected an integer, got ${describe(value)}`);
  return Math.min(rows, Math.max(0, value < 0 ? rows + value : value));
}

/** reshape()'s shape: non-negative integers, one -1 at most (inferred), holding `size` elements. */
function inferShape(where: string, shape: unknown, size: number): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${where}: shape expected an array of integers, got ${describe(shape)}`);
  const free = shape.indexOf(-1);
  if (free >= 0 && shape.indexOf(-1, free + 1) >= 0)
    throw new RangeError(`${where}: shape expected at most one -1, got [${shape.join(', ')}]`);
  const given = `[${shape.map((d: unknown) => (typeof d === 'number' ? String(d) : describe(d))).join(', ')}]`;
  let known: number[];
  try {
    known = checkShape(where, shape.map((d: unknown) => (d === -1 ? 1 : d)));
  } catch (e) {
    if (free < 0 || !(e instanceof Error)) throw e;
    // The same complaint about the shape the caller wrote, not the one with -1 replaced.
    throw new (e.constructor as ErrorConstructor)(`${where}: shape expected non-negative integers and at most one -1, got ${given}`);
  }
  const rest = shapeSize(known);
  if (free >= 0) {
    if (rest === 0 || size % rest !== 0)
      throw new RangeError(`${where}: shape [${shape.join(', ')}] cannot hold the tensor's ${size} elements`);
    known[free] = size / rest;
  }
  if (shapeSize(known) !== size)
    throw new RangeError(`${where}: shape ${formatShape(known)} holds ${shapeSize(known)} elements, the tensor has ${size}`);
  return known;
}

function dtypeArrayName(dtype: DType): string {
  return { float32: 'Float32Array', float16: 'Uint16Array', bfloat16: 'Uint16Array', int32: 'Int32Array', uint8: 'Uint8Array' }[dtype];
}

export { deviceOf };
