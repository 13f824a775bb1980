/**
 * The one loader of the native addon, and the types of what it exports.
 *
 * Order tried: $RLHF_KERNELS_BINARY alone, when set (relative to the working
 * directory); in an installed package (its folder is under node_modules) the
 * prebuild for this platform first, then build/Release (where
 * `npx rlhf-kernels build-from-source` writes); in a source checkout
 * build/Release first, then the prebuild. On failure one KernelError('ELOAD')
 * lists every path tried, what each gave, and the likely fix. The addon
 * loads on first use, never at import, and loading it starts nothing: CUDA
 * is probed only when info() or a cuda op asks.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { truncatedElf } from './elf.js';
import { KernelError } from './errors.js';

/** Memory on a cuda device (bindings/runtime.cpp). */
export interface DeviceBuffer {
  readonly bytes: number;
  readonly device: number;
  free(): void;
}

/** What the addon says of itself and the host (bindings/runtime.cpp info()). */
export interface NativeInfo {
  version: string;
  cpu: {
    threads: number;
    /** The instruction set the CPU kernels run with (baseline, avx2, avx512, neon). */
    isa: string;
    supportedIsas: string[];
    /** Set when RLHF_KERNELS_ISA asked for an ISA that cannot be used, or RLHF_KERNELS_NUM_THREADS is not an integer in [1, 1024]. */
    note?: string;
  };
  cuda: {
    /** Built with the CUDA backend. */
    compiled: boolean;
    available: boolean;
    /** Why cuda is unavailable: not compiled in, no driver, driver too old, no device, hidden by CUDA_VISIBLE_DEVICES, no kernel image. */
    reason?: string;
    driverVersion: number;
    runtimeVersion: number;
    /** The CUDA code compiled in, e.g. "75-real ... 120-virtual". */
    archs: string;
    devices: { ordinal: number; name: string; computeCapability: string; totalMemory: number; multiprocessors: number }[];
  };
}

/** The process's pool of large host blocks (native/core/host_pool.h). */
export interface HostPoolStats {
  /** Bytes of blocks held by live ArrayBuffers (or waiting for their finalizer). */
  inUse: number;
  /** Bytes of blocks kept for reuse. */
  idle: number;
  /** inUse + idle never exceed it; 0: the pool is off. */
  limit: number;
  /** Smaller storage is allocated by JS. */
  minBytes: number;
  /** Blocks of this many bytes and up are advised huge pages; 0: none ($RLHF_KERNELS_HUGE_PAGES=0). */
  hugeFrom: number;
  /** Blocks are filled with 0xff bytes when handed out (tests). */
  poison: boolean;
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
  /** On cpu (device -1), `covers`: the last ticket to wait for (default: all queued). */
  synchronizeAsync(device: number, covers?: number): Promise<void>;
  completed(): number;
  /** The highest cpu ticket queued (absent from binaries older than this file). */
  submitted?(): number;
  copyToDevice(dst: DeviceBuffer, src: ArrayBufferView): void;
  copyToHost(src: DeviceBuffer, dst: ArrayBufferView): void;
  /** A copy of src taken now, in stream order, held natively under the id returned. */
  snapshot(src: DeviceBuffer): number;
  /** Copies each snapshot into its dst (and frees it) once the stream gets there, then drains it (lib/stream.ts waitCuda). */
  copyToHostManyAsync(device: number, snapshots: number[], dsts: ArrayBufferView[]): Promise<void>;
  copyOnDevice(src: DeviceBuffer, dst: DeviceBuffer, bytes?: number): void;
  fillDevice(dst: DeviceBuffer, byte: number): void;
  /** An ArrayBuffer of `bytes` from the host pool (contents undefined), or undefined. */
  hostAlloc(bytes: number): ArrayBuffer | undefined;
  /** Detaches a buffer from hostAlloc and gives its block back in cpu stream order. */
  hostFree(buffer: ArrayBuffer): boolean;
  hostPool(): HostPoolStats;
  /** Releases the pool's idle blocks to the OS. */
  hostPoolTrim(): void;
  /** Each row's nonzero bytes: data is [rows, rowLength]. */
  maskRowCounts(data: Uint8Array, rows: number, rowLength: number): Int32Array;
  [op: string]: unknown;
}

/** What cmake-js builds, in build/Release. */
const BUILT = 'rlhf_kernels.node';
/**
 * The prebuild, in prebuilds/<platform>-<arch>/: `rlhf-kernels.glibc.node` on
 * Linux, as prebuildify names a Node-API build of this package with
 * --tag-libc, and as node-gyp-build accepts it (scripts/prebuild.js).
 */
const PREBUILT = 'rlhf-kernels';

/** This file's folder, or undefined when it was bundled into something that is not a file. */
function here(): string | undefined {
  const url = (import.meta as { url?: unknown }).url;
  return typeof url === 'string' && url.startsWith('file:') ? dirname(fileURLToPath(url)) : undefined;
}

/**
 * The package root: the nearest folder above `from` whose package.json is
 * ours; undefined when there is none (this code was bundled away from it).
 */
export function packageRoot(from = here()): string | undefined {
  for (let dir = from; dir !== undefined; ) {
    try {
      if (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === 'rlhf-kernels') return dir;
    } catch {
      /* no package.json here, or not ours */
    }
    const up = dirname(dir);
    dir = up === dir ? undefined : up;
  }
  return undefined;
}

interface Host {
  libc?: 'glibc' | 'musl';
  glibc?: string;
}

let host: Host | undefined;

/** The C library of this Linux host (from the process report, as detect-libc does). */
function hostLibc(): Host {
  if (host) return host;
  if (process.platform !== 'linux') return (host = {});
  const { header } = process.report.getReport() as { header: { glibcVersionRuntime?: string } };
  return (host = header.glibcVersionRuntime ? { libc: 'glibc', glibc: header.glibcVersionRuntime } : { libc: 'musl' });
}

function platformText(): string {
  const { libc, glibc } = hostLibc();
  const c = libc === 'glibc' ? `, glibc ${glibc}` : libc === 'musl' ? ', musl' : '';
  return `${process.platform}-${process.arch}${c}, Node.js ${process.version}`;
}

/** Every path the loader tries, in order. */
export function candidatePaths(root = packageRoot()): string[] {
  const override = process.env.RLHF_KERNELS_BINARY;
  if (override) return [resolve(override)];
  if (root === undefined) return [];
  const local = join(root, 'build', 'Release', BUILT);
  const folder = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  const libc = hostLibc().libc;
  const prebuilt = libc ? [join(folder, `${PREBUILT}.${libc}.node`)] : [join(folder, `${PREBUILT}.node`)];
  const installed = root.split(sep).includes('node_modules');
  return installed ? [...prebuilt, local] : [local, ...prebuilt];
}

interface Failure {
  path: string;
  error: string;
  /** Node.js's error code, e.g. ERR_DLOPEN_FAILED. */
  code?: string;
}

const BUILD_FROM_SOURCE =
  'npx rlhf-kernels build-from-source (needs cmake >= 3.18, a C++17 compiler, and cmake-js and node-addon-api installed beside rlhf-kernels; nvcc for the cuda backend)';

/** The prebuilt platforms this package holds, e.g. ['linux-x64']. */
function prebuiltPlatforms(root: string | undefined): string[] {
  if (root === undefined) return [];
  try {
    return readdirSync(join(root, 'prebuilds'));
  } catch {
    return [];
  }
}

/** One line saying what most likely went wrong, and what to do. */
function likelyFix(failures: Failure[], root: string | undefined): string {
  const text = failures.map((f) => f.error).join('\n');
  const override = process.env.RLHF_KERNELS_BINARY;
  if (failures.some((f) => f.code === 'ERR_DLOPEN_DISABLED'))
    return 'Node.js runs with --no-addons (on its command line or in NODE_OPTIONS): native addons are disabled. Remove the flag.';
  const glibc = /GLIBC_(\d+(?:\.\d+)+)/.exec(text);
  if (glibc)
    return `This host's C library is glibc ${hostLibc().glibc ?? '(unknown)'}; the binary needs glibc ${glibc[1]} or newer. Build one for this host: ${BUILD_FROM_SOURCE}.`;
  if (/GLIBCXX_|CXXABI_/.test(text))
    return `The C++ runtime here (libstdc++) is older than the one the binary was built against. Rebuild it on this host: ${BUILD_FROM_SOURCE}.`;
  if (/invalid ELF|wrong ELF class|ELF file|exec format|file too short|not a valid/i.test(text))
    return `The file is not a shared library for ${process.platform}-${process.arch} (truncated, or built for another platform). ${override ? 'Point RLHF_KERNELS_BINARY at a build of rlhf-kernels, or unset it.' : `Reinstall rlhf-kernels, or ${BUILD_FROM_SOURCE}.`}`;
  if (/not an rlhf-kernels addon/.test(text))
    return 'Point RLHF_KERNELS_BINARY at a build of rlhf-kernels (build/Release/rlhf_kernels.node or prebuilds/<platform>/rlhf-kernels.*.node), or unset it.';
  if (override)
    return `RLHF_KERNELS_BINARY is set, so only that path was tried: point it at a build of rlhf-kernels (build/Release/${BUILT} or a prebuild), or unset it.`;
  if (root === undefined)
    return 'This copy of rlhf-kernels is not inside its package folder, so its binary cannot be found: if you bundle your code, keep rlhf-kernels external (esbuild --external:rlhf-kernels, webpack externals, Vite ssr.external) so that prebuilds/ stays beside it, or set RLHF_KERNELS_BINARY to the .node file.';
  if (hostLibc().libc === 'musl')
    return `This host uses musl libc (Alpine?): the prebuilt binary is for glibc. Build one for this host: ${BUILD_FROM_SOURCE}.`;
  if (failures.every((f) => f.error === 'not found')) {
    const have = prebuiltPlatforms(root);
    const platforms = have.length ? `this package has prebuilds for ${have.join(', ')} only` : 'this copy has no prebuilds';
    return `No binary for ${process.platform}-${process.arch} is here (${platforms}). In a source checkout run \`npm run build\`; in an installed package run ${BUILD_FROM_SOURCE}.`;
  }
  return `See the errors above; ${BUILD_FROM_SOURCE} rebuilds the binary for this host.`;
}

let loaded: { native: Addon; path: string } | undefined;

/** The addon, loaded on first call. Throws KernelError('ELOAD') if it cannot load. */
export function addon(): Addon {
  if (loaded) return loaded.native;
  const require = createRequire(join(here() ?? process.cwd(), 'addon.js'));
  const root = packageRoot();
  const failures: Failure[] = [];
  for (const path of candidatePaths(root)) {
    if (!existsSync(path)) {
      failures.push({ path, error: 'not found' });
      continue;
    }
    if (statSync(path).isDirectory()) {
      failures.push({ path, error: 'a folder: expected the .node file' });
      continue;
    }
    try {
      const cut = truncatedElf(path);  // would be a SIGBUS in dlopen
      if (cut) {
        failures.push({ path, error: cut });
        continue;
      }
      const native = require(path) as Addon;
      if (typeof native.init !== 'function') {
        failures.push({ path, error: 'it loaded, but it is not an rlhf-kernels addon (it exports no init())' });
        continue;
      }
      native.init({ KernelError });
      loaded = { native, path };
      return native;
    } catch (e) {
      const { message, code } = e as NodeJS.ErrnoException;
      failures.push({ path, error: message.split('\n')[0]!, code });
    }
  }
  const tried = failures.length
    ? failures.map((f) => `  ${f.path}: ${f.error}`).join('\n')
    : `  nothing: no package.json named rlhf-kernels above ${here() ?? 'this bundle'}`;
  throw new KernelError(
    `rlhf-kernels: could not load the native addon (${platformText()}). Tried:\n${tried}\n${likelyFix(failures, root)}`,
    'ELOAD',
  );
}

/** The path the addon was loaded from, for info(). */
export function loadedFrom(): string | undefined {
  return loaded?.path;
}
