/**
 * Results do not depend on the GPU's size. Persistent and cooperative grids
 * are sized by the multiprocessors present, so an H100 (132 SMs) and an A100
 * (108) launch different grids for the same op: every reduction has a fixed
 * order over fixed tiles, and the bits must not change. One GPU cannot vary
 * its multiprocessors; the CUDA emulator can (RK_EMU_SMS), so this suite runs
 * there only: grid_child.ts hashes every op family's outputs under 1, 3 and
 * 16 emulated multiprocessors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { info } from '../../lib/index.js';

const device = info().cuda.devices[0];
const skip = device?.name.includes('emulator') ? false : 'needs the CUDA emulator (RK_EMU_SMS varies the grid)';
const child = fileURLToPath(new URL('./grid_child.js', import.meta.url));

function hashWith(sms: number): string {
  const r = spawnSync(process.execPath, [child], { encoding: 'utf8', env: { ...process.env, RK_EMU_SMS: String(sms) } });
  assert.equal(r.status, 0, `RK_EMU_SMS=${sms}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { sha256: string }).sha256;
}

describe('results on GPUs of different sizes', { skip }, () => {
  // GAE's 67 rows of 4500 steps take its three block shapes (kernels/
  // advantages.cu): 64 threads at 1 and 3 SMs (rows >= 15 per SM), 256 at 16
  // (>= 4 per SM), 512 at 32.
  it('are the same bits with 1, 3, 16 and 32 multiprocessors, for every op family', () => {
    const sms = [1, 3, 16, 32];
    const [one, ...more] = sms.map(hashWith);
    more.forEach((hash, k) => assert.equal(hash, one, `${sms[k + 1]} multiprocessors differ from 1`));
  });
});
