#!/usr/bin/env node
// Builds build/Release/rlhf_kernels.node with cmake-js (offline: Node-API
// headers come from the node-api-headers package).
//
//   RLHF_KERNELS_CUDA=0           build the CPU backend alone even if nvcc is here
//   RLHF_KERNELS_CUDA_ARCHS=90    CUDA architectures (CMake syntax, e.g. "90-real;120-virtual")
//   RLHF_KERNELS_BUILD_DIR=dir    build directory (default: build)
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');

const off = /^(0|off|false|no)$/i.test(process.env.RLHF_KERNELS_CUDA ?? '');
const defines = [`--CDRK_CUDA=${off ? 'OFF' : 'ON'}`];
if (process.env.RLHF_KERNELS_CUDA_ARCHS) defines.push(`--CDRK_CUDA_ARCHS=${process.env.RLHF_KERNELS_CUDA_ARCHS}`);
const out = ['--out', process.env.RLHF_KERNELS_BUILD_DIR ?? 'build'];
const common = ['--directory', root, ...out, '--log-level', 'warn', ...defines];

function step(command, extra = []) {
  const r = spawnSync(process.execPath, [cmakeJs, command, ...common, ...extra], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.error(`rlhf-kernels: cmake-js ${command} failed (exit ${r.status ?? r.signal}).`);
    process.exit(r.status ?? 1);
  }
}

// Configure every time: switching RLHF_KERNELS_CUDA must take effect.
step('configure');
step('build', ['--parallel', String(availableParallelism())]);
