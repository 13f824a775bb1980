/** Runtime: what is here, memory, synchronize, threads. */
import { type NativeInfo, addon, loadedFrom } from './addon.js';
import { type Device, ordinalOf, parseDevice } from './device.js';
import { describe } from './errors.js';
import { releaseAll, waitCpu, waitCuda } from './stream.js';
import { hostBytesInUse } from './storage.js';

export type Backend = 'cpu' | 'cuda';

export interface Info extends NativeInfo {
  /** Backends that can run ops here: always 'cpu', plus 'cuda' when available. */
  backends: Backend[];
  /** Where the native addon was loaded from. */
  binary: string | undefined;
}

/** What this build and host can do. Probes CUDA on first call (silently). */
export function info(): Info {
  const native = addon().info();
  return {
    version: native.version,
    backends: native.cuda.available ? ['cpu', 'cuda'] : ['cpu'],
    binary: loadedFrom(),
    cpu: native.cpu,
    cuda: native.cuda,
  };
}

export interface MemoryUse {
  device: Device;
  /**
   * cuda: bytes held by live tensors. cpu: bytes in the process's
   * ArrayBuffers (cpu tensors keep their data there; freed by the garbage
   * collector once no view of them is left), host pool blocks included.
   */
  inUse: number;
  /**
   * Bytes the device's pool has reserved. cpu: the idle blocks of the
   * process's host pool (shared by its worker threads), kept for reuse up to
   * $RLHF_KERNELS_HOST_POOL MiB (default 1/8 of the RAM, at most 1 GiB) for
   * blocks in use and idle together.
   */
  pooled: number;
}

/** Memory held by tensors on every device used in this thread. */
export function memory(): MemoryUse[] {
  const out: MemoryUse[] = [{ device: 'cpu', inUse: hostBytesInUse(), pooled: addon().hostPool().idle }];
  for (const m of addon().memory()) out.push({ device: `cuda:${m.device}`, inUse: m.inUse, pooled: m.pooled });
  return out;
}

function devicesToSync(device: Device | undefined): number[] {
  if (device !== undefined) return [ordinalOf(parseDevice(device, 'synchronize'))];
  return [-1, ...addon().memory().map((m) => m.device)];
}

/**
 * Waits, without blocking the event loop, until the work queued on `device`
 * (every device used, when omitted: all at once) has run. Rejects with what
 * that work found: a KernelError, or a RangeError for a bad input found on
 * the device; when several devices failed, an AggregateError of their
 * errors (each failure is reported once, so none is dropped).
 *
 * Work that finishes within the spin budget (`RLHF_KERNELS_SPIN_US`,
 * default 50 µs) settles on the calling thread, which polls that long at
 * most; longer work is waited for on libuv's thread pool. (The pool's round
 * trip alone costs tens of microseconds: more than a small op.)
 */
export async function synchronize(device?: Device): Promise<void> {
  // One native wait at a time per stream and thread, shared (lib/stream.ts);
  // the streams' waits all begin now, so each covers what is queued now.
  const waits = devicesToSync(device).map((d) => (d < 0 ? waitCpu() : waitCuda(d)));
  const failures = (await Promise.allSettled(waits)).flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  throwFailures(failures);
}

/** Like synchronize(), blocking the thread. */
export function synchronizeSync(device?: Device): void {
  const native = addon();
  const failures: unknown[] = [];
  for (const d of devicesToSync(device)) {
    try {
      native.synchronize(d);
    } catch (e) {
      failures.push(e);
    }
    if (d < 0) releaseAll();
  }
  throwFailures(failures);
}

/** The one failure, or an AggregateError of several (devices in order: cpu, then cuda:0, ...). */
function throwFailures(failures: unknown[]): void {
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1)
    throw new AggregateError(failures, `synchronize: ${failures.length} devices failed: ${failures.map((e) => (e as Error).message).join('; ')}`);
}

/**
 * Sets the CPU threads (the pool is shared by the process and its workers).
 * Default: $RLHF_KERNELS_NUM_THREADS, else the machine's hardware threads.
 */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    throw new RangeError(`setNumThreads: n expected an integer in [1, 1024], got ${describe(n)}`);
  addon().setThreads(n);
}
