/**
 * On a GPU machine: the binary that loaded (run with RLHF_KERNELS_BINARY set
 * to prebuilds/linux-x64/rlhf-kernels.glibc.node to check the prebuild) finds
 * the driver and every device, and the CUDA probe's reasons hold on a real
 * driver. Runs with `node --test dist/tests/gpu/`; skips without cuda.
 *
 * RLHF_KERNELS_MISMATCHED_BINARY, when set, names a build with no code for
 * these GPUs (e.g. RLHF_KERNELS_CUDA_ARCHS=75-real RLHF_KERNELS_BUILD_DIR=build-sm75
 * npm run build:native, on a machine without Turing cards): its reason must be
 * cudaErrorNoKernelImageForDevice.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { info, tensor } from '../../lib/index.js';

const cuda = info().cuda;
// Skip where there is no GPU to use; a GPU the binary cannot use is a failure.
const skip = cuda.devices.length > 0 ? false : `no CUDA device: ${cuda.reason}`;
const entry = fileURLToPath(new URL('../../lib/index.js', import.meta.url));

/** info().cuda in a fresh process with `env` added. */
function childCuda(env: Record<string, string>): typeof cuda {
  const script = `const { info } = await import(${JSON.stringify(entry)}); console.log(JSON.stringify(info().cuda));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as typeof cuda;
}

describe('cuda from the loaded binary', { skip }, () => {
  it('can use the GPU, reporting the driver, the runtime and every device', () => {
    console.log(`binary ${info().binary}; code for ${cuda.archs}; driver ${cuda.driverVersion}`);
    assert.ok(cuda.available, `cuda unavailable: ${cuda.reason}`);
    assert.ok(cuda.driverVersion >= 13000, `driver ${cuda.driverVersion} supports CUDA 13`);
    assert.ok(cuda.devices.length > 0);
    for (const d of cuda.devices) {
      assert.match(d.computeCapability, /^\d+\.\d+$/);
      assert.ok(d.totalMemory > 0 && d.multiprocessors > 0, `${d.name}: memory and SMs`);
    }
  });

  it('moves data through every device unchanged', () => {
    const data = Float32Array.from({ length: 1031 }, (_, i) => Math.sin(i) * 1e3);
    assert.ok(cuda.available, `cuda unavailable: ${cuda.reason}`);
    for (const d of cuda.devices) {
      const back = tensor(data).to(`cuda:${d.ordinal}`).to('cpu').toArray();
      assert.deepEqual(back, data, `cuda:${d.ordinal}`);
    }
  });

  it('says CUDA_VISIBLE_DEVICES hides the devices', () => {
    const hidden = childCuda({ CUDA_VISIBLE_DEVICES: '' });
    assert.equal(hidden.available, false);
    assert.match(hidden.reason ?? '', /no CUDA device visible: hidden by CUDA_VISIBLE_DEVICES=""/);
  });

  const mismatched = process.env.RLHF_KERNELS_MISMATCHED_BINARY;
  const turing = cuda.devices.some((d) => d.computeCapability === '7.5');
  it('reports cudaErrorNoKernelImageForDevice for a binary without code for this GPU', {
    skip: !mismatched ? 'RLHF_KERNELS_MISMATCHED_BINARY is not set' : turing ? 'a Turing card can run sm_75 code' : false,
  }, () => {
    const other = childCuda({ RLHF_KERNELS_BINARY: resolve(mismatched!) });
    assert.equal(other.compiled, true);
    assert.equal(other.available, false);
    assert.match(other.reason ?? '', /cannot run this binary's kernels: cudaErrorNoKernelImageForDevice/);
  });
});
