/**
 * The one loader of the native addon, and the types of what it exports.
 *
 * Order tried: $RLHF_KERNELS_BINARY (alone, when set); in a source checkout
 * build/Release first, then prebuilds/; in an installed package (a path under
 * node_modules) prebuilds/ first, then build/Release. On failure one
 * KernelError('ELOAD') lists every path tried, what each gave, and the likely
 * fix. The addon loads on first use, never at import, and loading it starts
 * nothing: CUDA is probed only when info() or a cuda op asks.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KernelError } from './errors.js';

/** Memory on a cuda device (bindings/runtime.cpp). */
export interface DeviceBuffer {
  readonly bytes: number;
  readonly device: number;
  free(): void;
}

export interface NativeInfo {
  version: string;
  cpu: { threads: number; isa: string; supportedIsas: string[]; note?: string };
  cuda: {
    compiled: boolean;
    available: boolean;
    reason?: string;
    driverVersion: number;
    runtimeVersion: number;
    archs: string;
    devices: { ordinal: number; name: string; computeCapability: string; totalMemory: number; multiprocessors: number }[];
  };
}

/** Arguments of a native op: `device` (-1 = cpu), tensors' storage, scalars. */
export type OpArgs = { device: number } & Record<string, unknown>;

/** What the .node file exports (bindings/*.cpp). Ops return the cpu ticket. */
export interface Addon {
  init(classes: { KernelError: typeof KernelError }): void;
  DeviceBuffer: new (device: number, bytes: number) => DeviceBuffer;
  info(): NativeInfo;
  setThreads(n: number): void;
  memory(): { device: number; inUse: number; pooled: number }[];
  synchronize(device: number): void;
  synchronizeAsync(device: number): Promise<void>;
  completed(): number;
  copyToDevice(dst: DeviceBuffer, src: ArrayBufferView): void;
  copyToHost(src: DeviceBuffer, dst: ArrayBufferView): void;
  copyToHostAsync(src: DeviceBuffer, dst: ArrayBufferView): Promise<void>;
  copyOnDevice(src: DeviceBuffer, dst: DeviceBuffer, bytes?: number): void;
  fillDevice(dst: DeviceBuffer, byte: number): void;
  [op: string]: unknown;
}

const BINARY = 'rlhf_kernels.node';
const PREBUILD = 'rlhf-kernels';

/** The package root: the nearest folder above this file with our package.json. */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'rlhf-kernels') return dir;
      } catch {
        /* not ours */
      }
    }
    const up = dirname(dir);
    if (up === dir) return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    dir = up;
  }
}

function libc(): 'glibc' | 'musl' {
  const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** Every path the loader tries, in order. */
export function candidatePaths(root = packageRoot()): string[] {
  const override = process.env.RLHF_KERNELS_BINARY;
  if (override) return [override];
  const local = join(root, 'build', 'Release', BINARY);
  const folder = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  const prebuilt =
    process.platform === 'linux'
      ? [join(folder, `${PREBUILD}.${libc()}.node`), join(folder, `${PREBUILD}.node`)]
      : [join(folder, `${PREBUILD}.node`)];
  const installed = root.split(sep).includes('node_modules');
  return installed ? [...prebuilt, local] : [local, ...prebuilt];
}

function likelyFix(failures: { path: string; error: string }[]): string {
  const text = failures.map((f) => f.error).join('\n');
  if (process.execArgv.includes('--no-addons') || /ERR_DLOPEN_DISABLED|addons are disabled/i.test(text))
    return 'Node.js runs with --no-addons: native addons are disabled. Remove the flag.';
  if (/GLIBC_\d/.test(text))
    return 'The C library here (glibc) is older than the binary needs (glibc 2.28 or newer). Build from source: npx rlhf-kernels build-from-source.';
  if (/GLIBCXX_|CXXABI_/.test(text))
    return 'The C++ runtime here (libstdc++) is older than the binary needs. Build from source: npx rlhf-kernels build-from-source.';
  if (/invalid ELF|wrong ELF class|exec format/i.test(text))
    return `The binary was built for another platform than ${process.platform}-${process.arch}. Build from source: npx rlhf-kernels build-from-source.`;
  if (!import.meta.url.startsWith('file:'))
    return 'rlhf-kernels was bundled: keep it external in your bundler (e.g. esbuild --external:rlhf-kernels, webpack externals) so its .node file stays beside it.';
  if (failures.every((f) => /not found|ENOENT|cannot open shared object file: No such file/i.test(f.error)))
    return `No binary for ${process.platform}-${process.arch} is here. In a source checkout run \`npm run build\`; in an installed package run \`npx rlhf-kernels build-from-source\` (needs cmake and a C++17 compiler; nvcc for the cuda backend). If you bundle your code, keep rlhf-kernels external.`;
  return 'See the errors above; `npx rlhf-kernels build-from-source` rebuilds the binary for this machine.';
}

let loaded: Addon | undefined;

/** The addon, loaded on first call. Throws KernelError('ELOAD') if it cannot load. */
export function addon(): Addon {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const failures: { path: string; error: string }[] = [];
  for (const path of candidatePaths()) {
    if (!existsSync(path)) {
      failures.push({ path, error: 'not found' });
      continue;
    }
    try {
      const native = require(path) as Addon;
      native.init({ KernelError });
      loaded = native;
      return native;
    } catch (e) {
      failures.push({ path, error: (e as Error).message.split('\n')[0]! });
    }
  }
  const lines = failures.map((f) => `  ${f.path}: ${f.error}`).join('\n');
  throw new KernelError(
    `rlhf-kernels: could not load the native addon (${process.platform}-${process.arch}, Node.js ${process.version}). Tried:\n${lines}\n${likelyFix(failures)}`,
    'ELOAD',
  );
}

/** The path the addon was loaded from, for info(). */
export function loadedFrom(): string | undefined {
  if (!loaded) return undefined;
  const require = createRequire(import.meta.url);
  return candidatePaths().find((p) => require.cache[p] !== undefined);
}
