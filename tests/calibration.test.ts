import { describe, expect, it } from 'vitest';
import { addon } from '../lib/addon.js';
import { KernelError, setNumThreads, info, tensor } from '../lib/index.js';
import { measureBandwidth, readBandwidth } from '../lib/ops/calibration.js';
import { HAS_CUDA } from './helpers/devices.js';
import { Rng } from './helpers/random.js';
import { poison, isPoison } from './helpers/tolerance.js';
import { readBandwidthRef, readBandwidthTolerance } from './reference/calibration.js';

describe('readBandwidthRef (the float64 reference)', () => {
  it('matches closed forms', () => {
    const n = 100_000;
    expect(readBandwidthRef(Float64Array.from({ length: n }, (_, i) => i + 1))).toBe((n * (n + 1)) / 2);
    expect(readBandwidthRef(Float64Array.from({ length: 64 }, (_, i) => 0.5 ** i))).toBeCloseTo(2, 15);
    expect(readBandwidthRef([])).toBe(0);
  });

  it('rounds each step when asked (the naive float32 run)', () => {
    // 2^24 + 1 is not a float32: the naive loop loses the 1, float64 keeps it.
    expect(readBandwidthRef([2 ** 24, 1], Math.fround)).toBe(2 ** 24);
    expect(readBandwidthRef([2 ** 24, 1])).toBe(2 ** 24 + 1);
  });
});

describe('readBandwidth on cpu', () => {
  // Edges: the 32 float lanes (31, 32, 33), the cuda chunk of 16384 floats,
  // the cpu block of 65536 floats, and a size of many blocks with a tail.
  it.each([1, 31, 32, 33, 16383, 16385, 65535, 65536, 65537, (1 << 20) + 3])('sums n=%i like the reference', (n) => {
    const x = new Rng().uniforms(n, 0.5, 1.5);
    const got = readBandwidth(tensor(x)).item();
    expect(Math.abs(got - readBandwidthRef(x))).toBeLessThanOrEqual(readBandwidthTolerance(x));
  });

  it('sums signed values (cancellation) within the rule', () => {
    const x = new Rng().normals(300_001, 10);
    const got = readBandwidth(tensor(x)).item();
    expect(Math.abs(got - readBandwidthRef(x))).toBeLessThanOrEqual(readBandwidthTolerance(x));
  });

  it('writes its output, also for an empty buffer', () => {
    for (const n of [0, 5]) {
      const checksum = poison(new Float32Array(1));
      const data = new Float32Array(n).fill(2);
      addon().readBandwidth({ device: -1, data, checksum, n });
      addon().synchronize(-1);
      expect(isPoison(checksum[0]!)).toBe(false);
      expect(checksum[0]).toBe(2 * n);
    }
  });

  it('gives the same bits for any thread count (a fixed partition)', () => {
    const x = tensor(new Rng().normals((1 << 21) + 7));
    const threads = info().cpu.threads;
    try {
      setNumThreads(1);
      const one = readBandwidth(x).item();
      setNumThreads(3);
      const three = readBandwidth(x).item();
      expect(Object.is(one, three)).toBe(true);
    } finally {
      setNumThreads(threads);
    }
  });

  it('rejects bad input with the op, the argument and what came', () => {
    expect(() => readBandwidth(new Float32Array(4) as never)).toThrow(
      new TypeError('readBandwidth: data expected a float32 Tensor, got a Float32Array of length 4'),
    );
    expect(() => readBandwidth(tensor(new Int32Array(3)))).toThrow(
      new TypeError('readBandwidth: data expected dtype float32, got int32'),
    );
    const gone = tensor([1, 2]);
    gone.dispose();
    expect(() => readBandwidth(gone)).toThrow(KernelError);
  });

  it('checks byte lengths and n in the binding too', () => {
    const call = (n: number) => addon().readBandwidth({ device: -1, data: new Float32Array(2), checksum: new Float32Array(1), n });
    expect(() => call(5)).toThrow(new TypeError("readBandwidth: 'data' holds 8 bytes, the op needs 20"));
    expect(() => call(-1)).toThrow(new RangeError('readBandwidth: n expected >= 0, got -1'));
    expect(() => call(1.5)).toThrow(new TypeError("readBandwidth: 'n' must be an integer"));
  });
});

describe('measureBandwidth', () => {
  it('measures a native read on cpu', async () => {
    const b = await measureBandwidth('cpu', { bytes: 8 * 2 ** 20, passes: 2 });
    expect(b).toMatchObject({ device: 'cpu', method: 'read', bytes: 8 * 2 ** 20, passes: 2 });
    expect(b.seconds).toBeGreaterThan(0);
    expect(b.gbPerSecond).toBeCloseTo(b.bytes / b.seconds / 1e9, 6);
  });

  it('rejects bad arguments', async () => {
    await expect(measureBandwidth('gpu' as never)).rejects.toThrow(
      new RangeError(`measureBandwidth: device: expected 'cpu', 'cuda' or 'cuda:N', got "gpu"`),
    );
    await expect(measureBandwidth('cpu', { bytes: -1 })).rejects.toThrow(
      new RangeError('measureBandwidth: bytes expected an integer >= 4 <= 8589934592, got -1'),
    );
    await expect(measureBandwidth('cpu', { passes: 0 })).rejects.toThrow(
      new RangeError('measureBandwidth: passes expected an integer >= 1 <= 1000, got 0'),
    );
    await expect(measureBandwidth('cpu', 3 as never)).rejects.toThrow(
      new TypeError('measureBandwidth: options expected an object, got 3'),
    );
  });

  it.skipIf(HAS_CUDA)('says why cuda is unavailable', async () => {
    await expect(measureBandwidth('cuda')).rejects.toMatchObject({ name: 'KernelError', code: 'ENODEVICE' });
  });
});
