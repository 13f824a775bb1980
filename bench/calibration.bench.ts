/**
 * The calibration family's suite: a streaming read of a large float32
 * buffer. On cpu our native read against a plain TS loop; on cuda our read
 * kernel against the CUDA runtime's device-to-device copy of half the buffer
 * (the same bytes moved: half read, half written).
 */
import { addon } from '../lib/addon.js';
import { type Device, Tensor, synchronize, tensor } from '../lib/index.js';
import { readBandwidth } from '../lib/ops/calibration.js';
import { SHAPES, shapeLabel } from './shapes.js';
import type { BenchCase, BenchProvider, BenchSuite } from './types.js';

const MiB = 2 ** 20;

function ours(device: Device, n: number): BenchProvider {
  return {
    name: 'rlhf-kernels',
    device,
    ours: true,
    async prepare() {
      const data = tensor(new Float32Array(n).fill(1), [n], { device });
      return {
        run: async () => {
          const sum = readBandwidth(data);
          await synchronize(device);
          sum.dispose();
        },
        dispose: () => data.dispose(),
      };
    },
  };
}

/** What a JS programmer writes: one pass, four independent accumulators. */
function tsLoop(n: number): BenchProvider {
  return {
    name: 'ts-loop',
    device: 'cpu',
    async prepare() {
      const x = new Float32Array(n).fill(1);
      return {
        run: () => {
          let a = 0, b = 0, c = 0, d = 0;
          let i = 0;
          for (; i + 4 <= n; i += 4) {
            a += x[i]!;
            b += x[i + 1]!;
            c += x[i + 2]!;
            d += x[i + 3]!;
          }
          for (; i < n; i++) a += x[i]!;
          return a + b + c + d;
        },
      };
    },
  };
}

function deviceCopy(device: Device, n: number): BenchProvider {
  return {
    name: 'cuda-memcpy-d2d',
    device,
    async prepare() {
      const half = Math.floor(n / 2);
      const src = Tensor.empty([half], 'float32', device);
      const dst = Tensor.empty([half], 'float32', device);
      addon().fillDevice(src._buffer!, 0x3f);
      return {
        run: async () => {
          addon().copyOnDevice(src._buffer!, dst._buffer!, half * 4);
          await synchronize(device);
        },
        dispose: () => {
          src.dispose();
          dst.dispose();
        },
      };
    },
  };
}

function readCase(device: Device, shape: { MiB: number }): BenchCase {
  const n = (shape.MiB * MiB) / 4;
  return {
    op: 'readBandwidth',
    direction: 'forward',
    shape: shapeLabel(shape),
    elements: n,
    bytes: n * 4,
    providers: device === 'cpu' ? [ours(device, n), tsLoop(n)] : [ours(device, n), deviceCopy(device, n)],
  };
}

export const suite: BenchSuite = {
  family: 'calibration',
  cases: (size, devices) => SHAPES.calibration[size].flatMap((shape) => devices.map((d) => readCase(d, shape))),
};
