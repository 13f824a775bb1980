/**
 * The cpu stream as JS sees it: ops queued on it (runOp), the JS memory that
 * queued work still uses, and waiting for it without blocking the event loop.
 *
 * Work queued on the cpu stream holds raw pointers into JS memory: until the
 * stream has passed an op's ticket, its arrays stay referenced here.
 *
 * An asynchronous wait that does not settle within the spin budget holds a
 * thread of libuv's pool (4 by default, shared with fs, dns, crypto and
 * zlib) until the stream gets there. So a thread keeps at most one such wait
 * going per stream: reads and synchronize() calls made meanwhile share it,
 * or the one queued after it, instead of holding the whole pool.
 */
import { addon } from './addon.js';
import { KernelError } from './errors.js';

const pending: { ticket: number; arrays: unknown[] }[] = [];
/** The cpu ticket of the last op queued from this thread. */
let lastTicket = 0;

/** What a wait called now covers: every task queued, the host pool's stream-ordered frees too. */
function queuedNow(): number {
  const native = addon();
  return typeof native.submitted === 'function' ? native.submitted() : lastTicket;
}

/** Drops the keep-alive of the work the cpu stream has finished. */
export function releaseFinished(): void {
  if (pending.length === 0) return;
  const done = addon().completed();
  let n = 0;
  while (n < pending.length && pending[n]!.ticket <= done) n++;
  if (n) pending.splice(0, n);
}

/**
 * After a blocking synchronize of the cpu stream: nothing was queued from
 * this thread meanwhile, so everything in the list has run.
 */
export function releaseAll(): void {
  pending.length = 0;
}

/**
 * Runs native op `name` on `device`; arrays in `args` stay alive until it
 * ran. Returns its cpu ticket (0 on cuda). With CpuStream::kMaxQueued ops
 * queued on cpu, the call first waits for half of them (native/core/cpu_stream.h).
 */
export function runOp(name: string, ordinal: number, args: Record<string, unknown>): number {
  const native = addon();
  const fn = native[name] as ((a: Record<string, unknown>) => number) | undefined;
  if (typeof fn !== 'function') throw new KernelError(`${name}: not in this build of the addon`, 'EINTERNAL');
  const ticket = fn({ ...args, device: ordinal });
  if (ordinal < 0) {
    lastTicket = ticket;
    releaseFinished();
    pending.push({ ticket, arrays: Object.values(args).filter((v) => ArrayBuffer.isView(v)) });
  }
  return ticket;
}

interface Wait {
  promise: Promise<void>;
  /** The ops it waits for: up to this cpu ticket, those queued when its callers called. */
  covers: number;
  /** Settled: a later call waits anew (a failure is reported once, as the native wait took it). */
  settled: boolean;
}

/** This thread's newest wait. */
let latest: Wait | undefined;
const ignore = (): void => undefined;

/**
 * Settles once the cpu work queued so far from this thread (or up to ticket
 * `upTo`) has run; rejects with a failure of that work not reported yet (it
 * goes to every call sharing this wait, and to no later one; a failure of
 * an op queued after the call is a later wait's).
 */
export function waitCpu(upTo = queuedNow()): Promise<void> {
  // A wait for what is queued now is shared; otherwise a new one, begun
  // when the one before it settled (one native wait at a time).
  if (latest && !latest.settled && latest.covers === upTo) return latest.promise;
  const prior = latest && !latest.settled ? latest.promise : undefined;
  const wait: Wait = { promise: Promise.resolve(), covers: upTo, settled: false };
  wait.promise = (async () => {
    if (prior) await prior.then(ignore, ignore);
    try {
      await addon().synchronizeAsync(-1, wait.covers);
    } finally {
      wait.settled = true;
    }
    releaseFinished();
  })();
  latest = wait;
  return wait.promise;
}

/** A cuda read: its snapshot (an id from addon().snapshot()), and where it goes. */
export interface CudaCopy {
  snapshot: number;
  dst: ArrayBufferView;
}

interface CudaBatch {
  copies: CudaCopy[];
  promise: Promise<void>;
}

/** Per cuda ordinal: the batch still taking members, and the one whose native wait runs. */
const cudaBatches = new Map<number, { open?: CudaBatch | undefined; running?: Promise<void> | undefined }>();

/**
 * Settles once the cuda work queued so far on `ordinal` has run and `copy`
 * (if any) is in its dst. Calls made before the batch's native wait begins
 * join it: the reads of one `Promise.all` share one wait, so one pool
 * thread; a batch begins when the one before it has settled. The native
 * side frees the snapshots (in stream order) as it copies them, or if the
 * call fails. A failure the stream found goes to every member of the batch
 * that found it.
 */
export function waitCuda(ordinal: number, copy?: CudaCopy): Promise<void> {
  const state = cudaBatches.get(ordinal) ?? {};
  cudaBatches.set(ordinal, state);
  if (state.open) {
    if (copy) state.open.copies.push(copy);
    return state.open.promise;
  }
  const batch: CudaBatch = { copies: copy ? [copy] : [], promise: Promise.resolve() };
  const prior = state.running;
  batch.promise = (async () => {
    // At least one microtask: the calls made in the same synchronous run join.
    await prior?.then(ignore, ignore);
    state.open = undefined;
    state.running = batch.promise;
    try {
      await addon().copyToHostManyAsync(ordinal, batch.copies.map((c) => c.snapshot), batch.copies.map((c) => c.dst));
    } finally {
      if (state.running === batch.promise) state.running = undefined;
    }
  })();
  state.open = batch;
  return batch.promise;
}
