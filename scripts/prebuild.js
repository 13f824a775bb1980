#!/usr/bin/env node
// Builds the binary shipped in the npm tarball (`npm run build:prebuild`):
//
//   prebuilds/<platform>-<arch>/rlhf-kernels.<libc>.node
//
// the name prebuildify 6 gives a Node-API build of this package with
// --napi --tag-libc, which node-gyp-build 4 also accepts (it ignores the
// unknown "rlhf-kernels" tag and matches the libc tag); lib/addon.ts looks
// for exactly this name. prebuildify itself is not used: it drives node-gyp,
// not cmake-js, so this script builds with scripts/build-native.js and puts
// the file where prebuildify would.
//
// The build is the release one: CUDA compiled in for CMakeLists.txt's arch
// list (sm_75..sm_120 and PTX, fatbins compressed) with the static CUDA
// runtime, libstdc++ and libgcc linked in, baseline x86-64 code with runtime
// ISA dispatch. Then the binary is stripped and checked: it must need nothing
// but glibc, and it must load here. The report gives its size, its shared
// libraries and its glibc floor (the newest GLIBC_x.y symbol version it
// needs: set by the build host's glibc, libstdc++ and libgcc).
//
//   RLHF_KERNELS_BUILD_DIR=dir        build directory (default: build-prebuild)
//   RLHF_KERNELS_CUDA_ARCHS=90-real   fewer architectures, for tests only
//   RLHF_KERNELS_CUDA=0               a CPU-only prebuild (otherwise CUDA must be in)
//   RLHF_KERNELS_MAX_GLIBC=2.28       fail when the binary needs a newer glibc
//   --out DIR                         write DIR/prebuilds/... (default: the package root)
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCudaArchs } from './cuda-archs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function fail(message) {
  console.error(`rlhf-kernels prebuild: ${message}`);
  process.exit(1);
}

function tool(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) fail(`${command} is needed (binutils): ${r.error.message}`);
  if (r.status !== 0) fail(`${command} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** 'glibc' or 'musl': the C library this Node.js runs on (as detect-libc reads it). */
function libc() {
  return process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** Orders versions like 2.2.5 < 2.17 < 2.34. */
function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

if (process.platform !== 'linux') fail(`prebuilds are made on Linux (x64 or arm64), not ${process.platform}`);
const outIndex = process.argv.indexOf('--out');
const outRoot = outIndex > 0 ? resolve(process.argv[outIndex + 1] ?? fail('--out needs a directory')) : root;
const buildDir = process.env.RLHF_KERNELS_BUILD_DIR || 'build-prebuild';
const cpuOnly = /^(0|off|false|no)$/i.test(process.env.RLHF_KERNELS_CUDA ?? '');

// Fatbins compressed for size: the driver inflates a module when it loads it
// (lazily, on first use); SASS and PTX are unchanged, the file is ~10x smaller.
const cudaFlags = '--CDCMAKE_CUDA_FLAGS=--compress-mode=size';
const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.js'), cudaFlags], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, RLHF_KERNELS_BUILD_DIR: buildDir },
});
if (build.status !== 0) process.exit(build.status ?? 1);

// Stripped and checked beside the build; copied to prebuilds/ once it passes.
const name = `rlhf-kernels.${libc()}.node`;
const built = resolve(root, buildDir, 'Release', 'rlhf_kernels.node');
const candidate = resolve(root, buildDir, name);
copyFileSync(built, candidate);
const unstripped = statSync(candidate).size;
// The addon exports one symbol (napi_register_module_v1) through .dynsym;
// --strip-unneeded drops the static symbol table and leaves .nv_fatbin alone.
tool('strip', ['--strip-unneeded', candidate]);
const size = statSync(candidate).size;

// Only the C library and its loader may be needed: libstdc++, libgcc and the
// CUDA runtime are linked in; libcuda is dlopen'ed when cuda is first asked for.
const allowed = /^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|ld-linux[-\w.]*\.so\.\d)$/;
const needed = [...tool('readelf', ['-d', '-W', candidate]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
const extra = needed.filter((lib) => !allowed.test(lib));
if (extra.length) fail(`${candidate} needs ${extra.join(', ')}: only glibc may be a shared dependency`);

const symbols = tool('objdump', ['-T', candidate]);
if (/GLIBCXX_|CXXABI_/.test(symbols)) fail(`${candidate} imports libstdc++ symbols: it must link libstdc++ statically`);
const imports = [...symbols.matchAll(/\(GLIBC_(\d+(?:\.\d+)+)\)\s+(\S+)/g)].map((m) => ({ version: m[1], symbol: m[2] }));
const versions = [...new Set(imports.map((i) => i.version))].sort(compareVersions);
const floor = versions.at(-1) ?? 'none';
const maxGlibc = process.env.RLHF_KERNELS_MAX_GLIBC;
const above = maxGlibc ? imports.filter((i) => compareVersions(i.version, maxGlibc) > 0) : [];
if (above.length) {
  const list = above.map((i) => `${i.symbol}@GLIBC_${i.version}`).join(', ');
  fail(`${candidate} needs glibc ${floor}, more than RLHF_KERNELS_MAX_GLIBC=${maxGlibc} (${list}): build on an older distribution`);
}

// Load it in a fresh process, as an installed package would.
const probe = spawnSync(process.execPath, ['-e', 'console.log(JSON.stringify(require(process.argv[1]).info()))', candidate], {
  encoding: 'utf8',
});
if (probe.status !== 0) fail(`${candidate} does not load here:\n${probe.stderr.trim()}`);
const info = JSON.parse(probe.stdout);
if (!cpuOnly && !info.cuda.compiled)
  fail('CUDA was not compiled in (no nvcc found?): install the CUDA toolkit, or set RLHF_KERNELS_CUDA=0 for a CPU-only prebuild');
const archs = (process.env.RLHF_KERNELS_CUDA_ARCHS || defaultCudaArchs(root)).replaceAll(';', ' ');
if (info.cuda.compiled && info.cuda.archs !== archs) fail(`${candidate} holds CUDA code for "${info.cuda.archs}", not "${archs}"`);

const folder = join(outRoot, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(folder, { recursive: true });
copyFileSync(candidate, join(folder, name));

const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
console.log(`rlhf-kernels prebuild: ${join(folder, name)}`);
console.log(`  size         ${mib(size)} stripped (${mib(unstripped)} before), ${size} bytes`);
console.log(`  needs        ${needed.join(', ')}`);
console.log(`  glibc floor  ${floor} (symbol versions: ${versions.join(' ')})`);
console.log(`  cuda         ${info.cuda.compiled ? `compiled in, runtime ${info.cuda.runtimeVersion}, code for ${info.cuda.archs}` : 'not compiled in'}`);
console.log(`  cpu          ISAs ${info.cpu.supportedIsas.join(', ')} on this machine`);
