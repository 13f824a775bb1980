/**
 * For tests that run rlhf-kernels the way a user does: compiled JavaScript in
 * a child Node.js process, in a folder laid out like a checkout or an
 * installed package.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A fresh temporary folder; remove() deletes it. */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `rk-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Compiles the project's TypeScript (tsconfig.json) into `outDir`, as `npm run build:ts` does into dist/. */
export function compileTo(outDir: string): void {
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', join(ROOT, 'tsconfig.json'), '--outDir', outDir, '--tsBuildInfoFile', join(outDir, '.tsbuildinfo')], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`);
}

/** The environment of a child: this one's, less what steers the addon, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('RLHF_KERNELS_') || key === 'NODE_OPTIONS') delete env[key];
  return { ...env, ...extra };
}

export function run(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {},
): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: 'utf8', timeout: 300_000, env: childEnv(), ...opts });
}

/** Runs a child and parses the JSON it prints last; fails with its output if it did not. */
export function runJson<T>(command: string, args: string[], opts: Parameters<typeof run>[2] = {}): T {
  const r = run(command, args, opts);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !last.startsWith('{'))
    throw new Error(`${command} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stdout}${r.stderr}`);
  return JSON.parse(last) as T;
}

/**
 * What a child reports after `import(specifier)` and info(): where the addon
 * came from, or the error (name, code, message) loading it gave.
 */
export interface LoadReport {
  ok: boolean;
  binary?: string;
  isa?: string;
  name?: string;
  code?: string;
  message?: string;
}

const PROBE = `
const [specifier] = process.argv.slice(2);
try {
  const { info } = await import(specifier);
  const i = info();
  console.log(JSON.stringify({ ok: true, binary: i.binary, isa: i.cpu.isa }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, name: e.name, code: e.code, message: e.message }));
}
`;

/** Writes the probe script into `dir` (bare specifiers resolve from there). */
export function writeProbe(dir: string): string {
  const path = join(dir, 'probe.mjs');
  writeFileSync(path, PROBE);
  return path;
}

/**
 * A package folder at `dir`: package.json, the compiled lib/ from `dist`,
 * and the given binaries (relative path in the package -> source file).
 */
export function layPackage(dir: string, dist: string, binaries: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  cpSync(join(dist, 'lib'), join(dir, 'dist', 'lib'), { recursive: true });
  for (const [to, from] of Object.entries(binaries)) {
    mkdirSync(dirname(join(dir, to)), { recursive: true });
    cpSync(from, join(dir, to));
  }
}
