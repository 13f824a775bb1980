#!/usr/bin/env node
// Builds build/Release/rlhf_kernels.node with cmake-js (offline: Node-API
// headers come from the node-api-headers package). Run by `npm run build` in
// a source checkout and by `npx rlhf-kernels build-from-source` in an
// installed package.
//
//   RLHF_KERNELS_CUDA=0           build the CPU backend alone even if nvcc is here
//   RLHF_KERNELS_CUDA=emu         the cuda device over the CPU emulator (native/cuda_emu): tests only
//   RLHF_KERNELS_CUDA=emu-asan    the same with AddressSanitizer on the kernels' memory accesses
//   RLHF_KERNELS_CUDA_ARCHS=90    CUDA architectures (CMake syntax, e.g. "90-real;120-virtual");
//                                 unset: CMakeLists.txt's full list, whatever the build dir was before
//   RLHF_KERNELS_BUILD_DIR=dir    build directory (default: build)
//   RLHF_KERNELS_CUDA_DEFINES="RK_GAE_ITEMS=16 ..."
//                                 launch-shape knobs of the kernels (kernels/tuning.cuh), for the
//                                 GPU run's variant builds (scripts/gpu/prepare.sh); never shipped
//
// Arguments are passed to cmake-js, e.g. --CDCMAKE_CUDA_FLAGS=... (scripts/prebuild.js).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCudaArchs } from './cuda-archs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

// cmake-js and node-addon-api are devDependencies in a source checkout and
// optional peer dependencies of the installed package: found beside it.
function packageDir(name) {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
}
const missing = ['cmake-js', 'node-addon-api'].filter((name) => packageDir(name) === undefined);
if (missing.length) {
  const { peerDependencies = {} } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const specs = missing.map((name) => `"${name}@${peerDependencies[name] ?? 'latest'}"`).join(' ');
  console.error(
    `rlhf-kernels: building from source needs ${missing.join(' and ')}, not found from ${root}. ` +
      `Install ${missing.length > 1 ? 'them' : 'it'} in your project: npm install --save-dev ${specs}`,
  );
  process.exit(1);
}
const cmakeJs = join(packageDir('cmake-js'), 'bin', 'cmake-js');

const off = /^(0|off|false|no)$/i.test(process.env.RLHF_KERNELS_CUDA ?? '');
const emu = /^emu(-asan)?$/.test(process.env.RLHF_KERNELS_CUDA ?? '');
const asan = process.env.RLHF_KERNELS_CUDA === 'emu-asan';
const defines = [
  `--CDRK_CUDA=${off || emu ? 'OFF' : 'ON'}`,
  `--CDRK_CUDA_EMU=${emu ? 'ON' : 'OFF'}`,
  `--CDRK_CUDA_EMU_ASAN=${asan ? 'ON' : 'OFF'}`,
];
defines.push(`--CDRK_CUDA_ARCHS=${process.env.RLHF_KERNELS_CUDA_ARCHS || defaultCudaArchs(root)}`);
// Only the knobs kernels/tuning.cuh declares: a misspelt one would do nothing.
const knobs = (process.env.RLHF_KERNELS_CUDA_DEFINES ?? '').split(/\s+/).filter(Boolean);
const known = [...readFileSync(join(root, 'kernels', 'tuning.cuh'), 'utf8').matchAll(/^#ifndef (RK_[A-Z0-9_]+)$/gm)].map((m) => m[1]);
const badKnob = knobs.find((k) => !/^RK_[A-Z0-9_]+=\d+$/.test(k) || !known.includes(k.split('=')[0]));
if (badKnob !== undefined) {
  console.error(
    `rlhf-kernels: RLHF_KERNELS_CUDA_DEFINES expected <KNOB>=<integer> items with a knob of kernels/tuning.cuh ` +
      `(${known.join(', ')}), got "${badKnob}"`,
  );
  process.exit(1);
}
defines.push(`--CDRK_KERNEL_DEFINES=${knobs.join(';')}`);
const out = ['--out', process.env.RLHF_KERNELS_BUILD_DIR ?? 'build'];
const common = ['--directory', root, ...out, '--log-level', 'warn', ...defines, ...process.argv.slice(2)];

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
