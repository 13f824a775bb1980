#!/usr/bin/env node
// The CUDA tests without a GPU, on the CPU emulator (native/cuda_emu). Three
// passes, each over its own build folder:
//   forward   build-emu/: the CUDA suite (`node --test dist/tests/gpu/`) and the
//             vitest suite, whose tests run on every device here, cuda included
//   reverse   the same with each block's threads run last to first between
//             barriers (a read that needs a missing __syncthreads sees the wrong
//             value in one of the two orders), on one multiprocessor instead of
//             four (persistent and cooperative blocks loop over more tiles)
//   asan      build-emu-asan/ (RLHF_KERNELS_CUDA=emu-asan): the CUDA suite with
//             AddressSanitizer on every device access
//
//   RK_EMU_PASSES="forward reverse asan"   the passes to run (default: all three)
//   --no-build                             use the build folders as they are
//   RLHF_KERNELS_CUDA_DEFINES="RK_..=.."   builds with other launch shapes
//                                          (kernels/tuning.cuh): checks a variant
// Needs the TypeScript built (npm run build:ts).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const gpuSuite = ['--test', join(root, 'dist', 'tests', 'gpu')];
const vitest = [join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs'), 'run'];
const PASSES = {
  forward: { cuda: 'emu', dir: 'build-emu', env: { RK_EMU_ORDER: 'forward' }, suites: [gpuSuite, vitest] },
  reverse: { cuda: 'emu', dir: 'build-emu', env: { RK_EMU_ORDER: 'reverse', RK_EMU_SMS: '1' }, suites: [gpuSuite, vitest] },
  asan: { cuda: 'emu-asan', dir: 'build-emu-asan', env: asanEnv, suites: [gpuSuite] },
};

function run(what, args, env) {
  console.log(`== ${what}`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`test-cuda-emu: ${what} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

// AddressSanitizer's runtime must load first: preloaded into node.
function asanEnv() {
  const compiler = process.env.CXX || 'g++';
  const lib = execFileSync(compiler, ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
  if (!isAbsolute(lib) || !existsSync(lib)) {
    console.error(`test-cuda-emu: ${compiler} has no libasan.so (got "${lib}"): install its AddressSanitizer runtime`);
    process.exit(1);
  }
  return { LD_PRELOAD: lib, ASAN_OPTIONS: 'detect_leaks=0' };
}

if (!existsSync(join(root, 'dist', 'tests', 'gpu'))) {
  console.error('test-cuda-emu: dist/tests/gpu/ is missing: run npm run build:ts first');
  process.exit(1);
}
const names = (process.env.RK_EMU_PASSES ?? Object.keys(PASSES).join(' ')).split(/\s+/).filter(Boolean);
for (const name of names) {
  if (!PASSES[name]) {
    console.error(`test-cuda-emu: RK_EMU_PASSES names "${name}"; expected some of ${Object.keys(PASSES).join(', ')}`);
    process.exit(2);
  }
}
const built = new Set();
for (const name of names) {
  const pass = PASSES[name];
  if (!process.argv.includes('--no-build') && !built.has(pass.dir)) {
    const knobs = process.env.RLHF_KERNELS_CUDA_DEFINES ? `, ${process.env.RLHF_KERNELS_CUDA_DEFINES}` : '';
    run(`build ${pass.dir} (RLHF_KERNELS_CUDA=${pass.cuda}${knobs})`, [join(root, 'scripts', 'build-native.js')], {
      RLHF_KERNELS_CUDA: pass.cuda,
      RLHF_KERNELS_BUILD_DIR: pass.dir,
    });
    built.add(pass.dir);
  }
  const env = {
    RLHF_KERNELS_BINARY: join(root, pass.dir, 'Release', 'rlhf_kernels.node'),
    ...(typeof pass.env === 'function' ? pass.env() : pass.env),
  };
  for (const suite of pass.suites) run(`${name}: ${suite === gpuSuite ? 'tests/gpu/' : 'vitest'}`, suite, env);
}
