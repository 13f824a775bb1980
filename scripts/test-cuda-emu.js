#!/usr/bin/env node
// The CUDA suite (tests/gpu/) on the CPU emulator (native/cuda_emu): builds
// build-emu/ with RLHF_KERNELS_CUDA=emu, then runs `node --test dist/tests/gpu/`
// against it once per thread order, forward and reverse (a read that needs a
// missing __syncthreads sees the wrong value in one of the two).
//
//   RK_EMU_ORDERS="forward reverse random"   the orders to run (default "forward reverse")
//   --no-build                               use build-emu/ as it is
// Needs the TypeScript built (npm run build:ts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = 'build-emu';
const binary = join(root, buildDir, 'Release', 'rlhf_kernels.node');

function run(what, args, env) {
  console.log(`== ${what}`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`test-cuda-emu: ${what} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

if (!existsSync(join(root, 'dist', 'tests', 'gpu'))) {
  console.error('test-cuda-emu: dist/tests/gpu/ is missing: run npm run build:ts first');
  process.exit(1);
}
if (!process.argv.includes('--no-build'))
  run('build the emulator addon', [join(root, 'scripts', 'build-native.js')], {
    RLHF_KERNELS_CUDA: 'emu',
    RLHF_KERNELS_BUILD_DIR: buildDir,
  });
for (const order of (process.env.RK_EMU_ORDERS ?? 'forward reverse').split(/\s+/).filter(Boolean))
  run(`tests/gpu/ on the emulator, threads in ${order} order`, ['--test', join(root, 'dist', 'tests', 'gpu')], {
    RLHF_KERNELS_BINARY: binary,
    RK_EMU_ORDER: order,
  });
