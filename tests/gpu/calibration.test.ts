// CUDA parity of the calibration family: readBandwidth on cuda against the
// float64 reference and the cpu backend, and the device-to-device copy that
// calibrates the bench. node:test only: runs with `node --test dist/tests/gpu/`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { info, tensor } from '../../lib/index.js';
import { measureBandwidth, readBandwidth } from '../../lib/ops/calibration.js';
import { Rng } from '../helpers/random.js';
import { readBandwidthRef, readBandwidthTolerance } from '../reference/calibration.js';

const cuda = info().cuda;
const skip = cuda.available ? false : `cuda is unavailable: ${cuda.reason}`;

describe('readBandwidth on cuda', { skip }, () => {
  // Edges of the 16384-float chunk (the vectorized path needs a full chunk),
  // one float, and many chunks with a tail.
  for (const n of [1, 16383, 16384, 16385, 3 * 16384 + 5, (1 << 22) + 3]) {
    it(`sums n=${n} like the reference and the cpu`, () => {
      const x = new Rng().normals(n, 3, 1);
      const onCuda = readBandwidth(tensor(x, undefined, { device: 'cuda' })).item();
      const onCpu = readBandwidth(tensor(x)).item();
      const tol = readBandwidthTolerance(x);
      assert.ok(Math.abs(onCuda - readBandwidthRef(x)) <= tol, `cuda ${onCuda} vs reference ${readBandwidthRef(x)} (tolerance ${tol})`);
      assert.ok(Math.abs(onCuda - onCpu) <= 2 * tol, `cuda ${onCuda} vs cpu ${onCpu}`);
    });
  }

  it('writes 0 for an empty buffer', () => {
    assert.equal(readBandwidth(tensor(new Float32Array(0), [0], { device: 'cuda' })).item(), 0);
  });

  it('gives the same bits on every run (fixed chunks, ordered final sum)', () => {
    const x = tensor(new Rng().normals((1 << 23) + 11), undefined, { device: 'cuda' });
    const first = readBandwidth(x).item();
    for (let i = 0; i < 3; i++) assert.ok(Object.is(readBandwidth(x).item(), first));
  });

  it('measures the device-to-device copy bandwidth', async () => {
    const b = await measureBandwidth('cuda');
    console.log(`# cuda:0 ${cuda.devices[0]?.name}: ${b.gbPerSecond.toFixed(0)} GB/s device-to-device (${(b.bytes / 2 ** 30).toFixed(1)} GiB moved per pass)`);
    assert.equal(b.method, 'copy');
    assert.ok(b.gbPerSecond > 0 && Number.isFinite(b.gbPerSecond));
  });
});
