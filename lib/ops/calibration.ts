/**
 * The calibration family: how fast a device's memory streams, measured the
 * way the benchmark runner needs it (it reports every kernel's GB/s as a
 * fraction of this). A benchmarking tool, not part of the package's public
 * API: it is not exported from the package index.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { addon } from '../addon.js';
import { type Device, ordinalOf, parseDevice, requireCuda } from '../device.js';
import { KernelError } from '../errors.js';
import { synchronize } from '../runtime.js';
import { runOp } from '../stream.js';
import { type Float32Tensor, Tensor, tensor } from '../tensor.js';
import { expectNumber, expectOptions, expectTensor } from '../validate.js';

/**
 * Streams `data` once and returns its sum as a 0-d float32 tensor (the
 * checksum keeps the read from being optimized away). Summed over a fixed
 * partition with float32 lanes combined in float64: the bits depend on the
 * data and the backend only, not on the thread count.
 */
export function readBandwidth(data: Tensor): Float32Tensor {
  const op = 'readBandwidth';
  const x = expectTensor(op, 'data', data, ['float32']);
  const checksum = Tensor.empty([], 'float32', x.device);
  runOp(op, x.ordinal, { data: x._storage(op), checksum: checksum._storage(op), n: x.size });
  return checksum;
}

export interface Bandwidth {
  device: Device;
  /** 'read': the native streaming sum above (cpu); 'copy': a device-to-device copy (cuda). */
  method: 'read' | 'copy';
  /** Bytes one pass moves: a copy counts the bytes it reads and the bytes it writes. */
  bytes: number;
  /** The fastest pass, in seconds. */
  seconds: number;
  /** bytes / seconds / 1e9 of the fastest pass. */
  gbPerSecond: number;
  passes: number;
}

export interface BandwidthOptions {
  /**
   * Buffer size: the bytes read (cpu) or copied (cuda). Default on cpu
   * 512 MiB or twice the last-level cache if that is larger (at most 2 GiB);
   * on cuda 2 GiB (at most 1/8 of the device's memory).
   */
  bytes?: number;
  /** Timed passes; the fastest counts. Default 10 on cpu (other processes take turns with us), 5 on cuda. */
  passes?: number;
}

const MiB = 2 ** 20;

/**
 * The attainable memory bandwidth of `device`: the best of a few passes over
 * a buffer far larger than the last-level cache. On cpu a multithreaded
 * native read (readBandwidth); on cuda a device-to-device copy, which is
 * what HBM bandwidth figures are usually quoted against.
 */
export async function measureBandwidth(device: Device, options?: BandwidthOptions): Promise<Bandwidth> {
  const op = 'measureBandwidth';
  const target = parseDevice(device, `${op}: device`);
  const opts = expectOptions<BandwidthOptions>(op, options, ['bytes', 'passes']);
  const passes = expectNumber(op, 'passes', opts.passes, target === 'cpu' ? 10 : 5, { integer: true, min: 1, max: 1000 });
  if (target === 'cpu') {
    const fallback = Math.min(2048 * MiB, Math.max(512 * MiB, Math.ceil((2 * lastLevelCache()) / MiB) * MiB));
    const bytes = expectNumber(op, 'bytes', opts.bytes, fallback, { integer: true, min: 4, max: 2 ** 33 });
    return measureRead(bytes - (bytes % 4), passes);
  }
  const ordinal = ordinalOf(target);
  requireCuda(ordinal);
  const total = addon().info().cuda.devices[ordinal]!.totalMemory;
  const fallback = Math.min(2048 * MiB, Math.floor(total / 8 / MiB) * MiB);
  const bytes = expectNumber(op, 'bytes', opts.bytes, fallback, { integer: true, min: 4, max: 2 ** 40 });
  return measureCopy(target, bytes - (bytes % 4), passes);
}

/**
 * Bytes of the largest cache level Linux reports for cpu0 (0 when unknown).
 * A streaming pass over twice that evicts everything a pass before left.
 */
function lastLevelCache(): number {
  const dir = '/sys/devices/system/cpu/cpu0/cache';
  let best = 0;
  try {
    for (const index of readdirSync(dir).filter((d) => d.startsWith('index'))) {
      const m = /^(\d+)([KMG]?)/.exec(readFileSync(`${dir}/${index}/size`, 'utf8').trim());
      if (m) best = Math.max(best, Number(m[1]) * ({ '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 } as const)[m[2] as '' | 'K' | 'M' | 'G']);
    }
  } catch {
    return best;
  }
  return best;
}

async function timed(work: () => void, device: Device): Promise<number> {
  const start = performance.now();
  work();
  await synchronize(device);
  return (performance.now() - start) / 1000;
}

async function measureRead(bytes: number, passes: number): Promise<Bandwidth> {
  const n = bytes / 4;
  // Ones: every page is written (never the shared zero page), and the sum of
  // n ones is exact in the kernel's float32 blocks and float64 total.
  const data = tensor(new Float32Array(n).fill(1), [n], { device: 'cpu', copy: false });
  let best = Infinity;
  try {
    for (let pass = 0; pass <= passes; pass++) {
      let checksum: Tensor | undefined;
      const seconds = await timed(() => {
        checksum = readBandwidth(data);
      }, 'cpu');
      const sum = checksum!.item();
      if (sum !== n) throw new KernelError(`measureBandwidth: the read checksum is ${sum}, expected ${n}`, 'EINTERNAL');
      if (pass > 0) best = Math.min(best, seconds); // pass 0 warms up the pool and the TLB
    }
  } finally {
    data.dispose();
  }
  return { device: 'cpu', method: 'read', bytes, seconds: best, gbPerSecond: bytes / best / 1e9, passes };
}

async function measureCopy(device: Device, bytes: number, passes: number): Promise<Bandwidth> {
  const native = addon();
  const src = Tensor.empty([bytes / 4], 'float32', device);
  const dst = Tensor.empty([bytes / 4], 'float32', device);
  // Copies per timed pass: a pass of a few milliseconds hides the launch and
  // synchronize overhead (tens of microseconds) measured from JS.
  const batch = 4;
  let best = Infinity;
  try {
    native.fillDevice(src._buffer!, 0x3f);
    for (let pass = 0; pass <= passes; pass++) {
      const seconds = await timed(() => {
        for (let i = 0; i < batch; i++) native.copyOnDevice(src._buffer!, dst._buffer!, bytes);
      }, device);
      if (pass > 0) best = Math.min(best, seconds / batch);
    }
  } finally {
    src.dispose();
    dst.dispose();
  }
  const moved = 2 * bytes;
  return { device, method: 'copy', bytes: moved, seconds: best, gbPerSecond: moved / best / 1e9, passes };
}
