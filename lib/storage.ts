/**
 * Tensor storage (lib/tensor.ts owns the tensors): cpu storage from JS or
 * from the addon's host pool, and device buffers that reshape() views share.
 */
import { constants as bufferConstants } from 'node:buffer';
import { markAsUntransferable } from 'node:worker_threads';
import { addon, type DeviceBuffer } from './addon.js';
import { DTYPE_BYTES, type DType, type HostArray, hostArray, hostView } from './dtype.js';
import { KernelError } from './errors.js';
import { runOp } from './stream.js';

// -------------------------------------------------------------- host storage
// A fresh JS allocation of tens of MB costs more in the OS's first-touch page
// faults than the op that fills it, so large cpu storage comes from the
// addon's pool (native/core/host_pool.h) as external ArrayBuffers
// (bindings/host_memory.cpp). A block goes back to the pool only when no JS
// view can reach it any more: when the garbage collector has dropped the
// buffer (its finalizer), or at dispose() of the tensor that owns it if that
// storage never left lib/tensor.ts (no toArray(), read() or reshape() handed it
// out; the keep-alive list of lib/stream.ts holds views, but the block goes
// back in cpu stream order after the work that uses it). dispose() detaches
// the buffer first, so any view left reads as empty. Reused blocks hold old
// data: every op writes every element of its outputs (tests/host_pool.test.ts
// poisons them).

/** Storage below this many bytes is JS-allocated; Infinity when the pool is off. */
let poolMinBytes: number | undefined;

/** Pooled storage no Tensor owns yet: the first one constructed with it does. */
const unclaimed = new WeakSet<HostArray>();

/** True once, for the first tensor (or staging copy) to take pooled storage: it owns the block. */
export function claim(host: HostArray): boolean {
  return unclaimed.delete(host);
}

// ------------------------------------------------------------ device storage

/**
 * Device storage that reshape() shared: how many tensors hold it still
 * (neither disposed nor collected). It goes back to the pool when none
 * does: at the last holder's dispose(), or when the garbage collector has
 * dropped the last of them (`collected`; device memory is invisible to V8,
 * so a view dropped without dispose() must not pin it until the others go).
 */
const holders = new WeakMap<DeviceBuffer, number>();
const collected = new FinalizationRegistry<DeviceBuffer>((buffer) => release(buffer));

/** One holder of a shared buffer let go of it (dispose() or collection); the last frees it. */
function release(buffer: DeviceBuffer): void {
  const left = holders.get(buffer)! - 1;
  if (left > 0) {
    holders.set(buffer, left);
  } else {
    holders.delete(buffer);
    buffer.free();
  }
}

/** Whether reshape() shared `buffer` (it is then freed through release()). */
export function isShared(buffer: DeviceBuffer): boolean {
  return holders.has(buffer);
}

/** `tensor` holds the shared `buffer` until its dispose() or collection. */
export function hold(tensor: object, buffer: DeviceBuffer): void {
  holders.set(buffer, (holders.get(buffer) ?? 0) + 1);
  collected.register(tensor, buffer, tensor);
}

/** `tensor` lets go of the shared `buffer` at its dispose(). */
export function letGo(tensor: object, buffer: DeviceBuffer): void {
  collected.unregister(tensor);
  release(buffer);
}

const MAX_TYPED_ARRAY_LENGTH = bufferConstants.MAX_LENGTH;

/** @internal Uninitialised host storage of `size` elements (zeros when JS-allocated). */
export function allocHost(dtype: DType, size: number): HostArray {
  // (A typed array's length limit, V8's: 2^32 elements on Node 20, more on 22.)
  if (size > MAX_TYPED_ARRAY_LENGTH)
    throw new RangeError(`cpu: a tensor of ${size} ${dtype} elements is past this Node.js's typed-array length limit (${MAX_TYPED_ARRAY_LENGTH})`);
  const bytes = size * DTYPE_BYTES[dtype];
  if (poolMinBytes === undefined) {
    const pool = addon().hostPool();
    poolMinBytes = pool.limit > 0 ? Math.max(1, pool.minBytes) : Infinity;
  }
  const buffer = bytes >= poolMinBytes ? addon().hostAlloc(bytes) : undefined;
  if (!buffer) {
    try {
      return pinned(hostArray(dtype, size));
    } catch (e) {
      if (e instanceof RangeError) throw new KernelError(`cpu: cannot allocate ${bytes} bytes of host memory (${size} ${dtype} elements): ${e.message}`, 'EOOM');
      throw e;
    }
  }
  // Transferred to another thread, the block would go back to the pool when
  // this one's environment ends (Node finalizes external buffers then).
  markAsUntransferable(buffer);
  const array = hostView(dtype, buffer, size);
  unclaimed.add(array);
  return array;
}

/**
 * Storage the addon reads or writes must never be detached: queued cpu work
 * holds raw pointers into it, and a buffer transferred away (postMessage,
 * structuredClone with a transfer list) would be freed under that work.
 * Marked untransferable, a buffer in a transfer list is copied instead
 * (Node 20) or refused with a DataCloneError, as is
 * ArrayBuffer.prototype.transfer() (Node 21 and later).
 */
export function pinned<T extends ArrayBufferView>(array: T): T {
  if (array.buffer instanceof ArrayBuffer) markAsUntransferable(array.buffer);
  return array;
}

export function isDetached(buffer: ArrayBufferLike): boolean {
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/** Gives pooled storage that nothing else has seen back at once (a no-op otherwise). */
export function freeHost(array: HostArray): void {
  addon().hostFree(array.buffer as ArrayBuffer);
}

/**
 * @internal Bytes of host memory in ArrayBuffers (tensors' storage among
 * them): what Node.js's allocator holds, plus the host pool's blocks in use
 * (external ArrayBuffers, which Node.js does not count). Not tracked per
 * tensor: registering every tensor with a FinalizationRegistry would make
 * each large output survive into the old generation and cost more than the
 * op itself.
 */
export function hostBytesInUse(): number {
  return process.memoryUsage().arrayBuffers + addon().hostPool().inUse;
}

/**
 * The cpu stream's ticket of the last op queued to write each host buffer
 * after it was made (slice() and concat() fill new tensors in stream order).
 * Code that reads a tensor's data at the call (the targets' check of
 * lib/ops/token_logprobs.ts) must not read it before that op ran.
 */
const writers = new WeakMap<ArrayBufferLike, number>();

/** Queued work with cpu `ticket` writes `host`. */
export function noteWrite(host: HostArray, ticket: number): void {
  writers.set(host.buffer, Math.max(ticket, writers.get(host.buffer) ?? 0));
}

/** Whether an op queued to write `host` has not run yet: its data is not there. */
export function writePending(host: HostArray): boolean {
  const ticket = writers.get(host.buffer);
  if (ticket === undefined) return false;
  if (ticket > addon().completed()) return true;
  writers.delete(host.buffer);
  return false;
}

/**
 * cpu read()s in flight, per host buffer. A read resolves with the storage
 * itself once the work queued before it ran; an op queued after it that
 * writes the same storage in place (an in-place backward) could be running
 * by then. So such an op first gives each read in flight a copy of what the
 * storage holds (queued before the write): the read returns that, as cuda's
 * snapshot at the call does.
 */
export interface PendingRead {
  readonly host: HostArray;
  readonly dtype: DType;
  copy?: HostArray;
  ticket?: number;  // the copy's cpu ticket
}
const reads = new WeakMap<ArrayBufferLike, Set<PendingRead>>();

export function beginRead(host: HostArray, dtype: DType): PendingRead {
  const read: PendingRead = { host, dtype };
  const set = reads.get(host.buffer) ?? new Set();
  reads.set(host.buffer, set.add(read));
  return read;
}

export function endRead(read: PendingRead): void {
  reads.get(read.host.buffer)?.delete(read);
}

/** Before an op that writes `host` in place is queued: copies for the reads of it in flight. */
export function copyForReads(host: HostArray): void {
  for (const read of reads.get(host.buffer) ?? []) {
    if (read.copy) continue;  // copied at an earlier in-place op: before both writes
    const copy = allocHost(read.dtype, read.host.length);
    read.ticket = runOp('copyRegion', -1, { src: read.host, srcOffset: 0, dst: copy, dstOffset: 0, bytes: read.host.byteLength });
    read.copy = copy;
  }
}

/** A copy of `data` in new host storage. */
export function copyHost(dtype: DType, data: HostArray): HostArray {
  const out = allocHost(dtype, data.length);
  out.set(data as never);
  return out;
}
