/**
 * The loader (lib/addon.ts), run the way users run it: compiled, in a child
 * process, from folders laid out as a source checkout, an installed package
 * and a bundle. Every failure must name each path tried and a fix.
 */
import { cpSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { info } from '../lib/index.js';
import { type LoadReport, childEnv, compileTo, layPackage, runJson, tempDir, writeProbe } from './helpers/package.js';

const PLATFORM = `${process.platform}-${process.arch}`;
const PREBUILD = join('prebuilds', PLATFORM, 'rlhf-kernels.glibc.node');
const BUILT = join('build', 'Release', 'rlhf_kernels.node');

let tmp: ReturnType<typeof tempDir>;
let dist: string;
/** The binary these tests load in-process: copied into the fake layouts. */
let binary: string;
/** The compiled lib/index.js, imported by path. */
let entry: string;
let probe: string;

function load(specifier: string, opts: { cwd?: string; env?: Record<string, string>; nodeArgs?: string[]; script?: string } = {}): LoadReport {
  return runJson<LoadReport>(process.execPath, [...(opts.nodeArgs ?? []), opts.script ?? probe, specifier], {
    cwd: opts.cwd ?? tmp.path,
    env: childEnv(opts.env),
  });
}

beforeAll(() => {
  tmp = tempDir('loader');
  dist = join(tmp.path, 'dist');
  compileTo(dist);
  entry = join(dist, 'lib', 'index.js');
  binary = info().binary!;
  // No package.json above `entry`: it loads only what RLHF_KERNELS_BINARY names.
  probe = writeProbe(tmp.path);
});

afterAll(() => tmp?.remove());

describe('RLHF_KERNELS_BINARY', () => {
  it('loads the file it names, relative to the working directory', () => {
    const r = load(entry, { cwd: dirname(binary), env: { RLHF_KERNELS_BINARY: basename(binary) } });
    expect(r).toMatchObject({ ok: true, binary });
  });

  it('names the missing file, and only it, and says to fix or unset the variable', () => {
    const missing = join(tmp.path, 'missing.node');
    const r = load(entry, { env: { RLHF_KERNELS_BINARY: missing } });
    expect(r).toMatchObject({ ok: false, name: 'KernelError', code: 'ELOAD' });
    expect(r.message).toMatch(/^rlhf-kernels: could not load the native addon \(linux-x64, glibc [\d.]+, Node\.js v[\d.]+\)\. Tried:\n/);
    expect(r.message).toContain(`Tried:\n  ${missing}: not found\n`);
    expect(r.message).toContain('RLHF_KERNELS_BINARY is set, so only that path was tried');
  });

  it('explains a file that is not a shared library', () => {
    const fake = join(tmp.path, 'text.node');
    writeFileSync(fake, 'this is not an ELF file\n');
    const r = load(entry, { env: { RLHF_KERNELS_BINARY: fake } });
    expect(r).toMatchObject({ ok: false, code: 'ELOAD' });
    expect(r.message).toMatch(new RegExp(`Tried:\\n  ${fake}: .*(invalid ELF header|file too short)`));
    expect(r.message).toContain(`The file is not a shared library for ${PLATFORM}`);
    expect(r.message).toContain('Point RLHF_KERNELS_BINARY at a build of rlhf-kernels, or unset it.');
  });

  it('refuses a truncated binary with an error (dlopen of it would die of SIGBUS)', () => {
    const whole = readFileSync(binary);
    // Cut inside the loaded segments, and in the section header table at the end.
    for (const bytes of [100_000, Math.floor(whole.length / 2), whole.length - 16]) {
      const cut = join(tmp.path, `cut-${bytes}.node`);
      writeFileSync(cut, whole.subarray(0, bytes));
      const r = load(entry, { env: { RLHF_KERNELS_BINARY: cut } });
      expect(r, `${bytes} bytes`).toMatchObject({ ok: false, name: 'KernelError', code: 'ELOAD' });
      expect(r.message).toMatch(new RegExp(`Tried:\\n  ${cut}: the ELF file is truncated: ${bytes} bytes, its .* reaches byte \\d+`));
      expect(r.message).toContain(`The file is not a shared library for ${PLATFORM} (truncated, or built for another platform)`);
    }
  });

  it('names a folder given for the binary', () => {
    const r = load(entry, { env: { RLHF_KERNELS_BINARY: tmp.path } });
    expect(r).toMatchObject({ ok: false, code: 'ELOAD' });
    expect(r.message).toContain(`${tmp.path}: a folder: expected the .node file`);
  });

  it('explains a binary that needs a newer glibc than the host has', () => {
    // The real binary with its first GLIBC_x.y version need renamed to
    // GLIBC_9.9...: the dynamic loader rejects it exactly as on an old host.
    const bytes = readFileSync(binary);
    const text = bytes.toString('latin1');
    const version = /GLIBC_(\d+(?:\.\d+)+)\0/.exec(text)![1]!;
    const newer = version.replace(/\d/g, '9');
    const patched = join(tmp.path, 'old-host.node');
    writeFileSync(patched, Buffer.from(text.split(`GLIBC_${version}\0`).join(`GLIBC_${newer}\0`), 'latin1'));
    const r = load(entry, { env: { RLHF_KERNELS_BINARY: patched } });
    expect(r).toMatchObject({ ok: false, code: 'ELOAD' });
    expect(r.message).toContain(`${patched}: `);
    expect(r.message).toContain(`GLIBC_${newer}' not found`);
    const host = (process.report.getReport() as { header: { glibcVersionRuntime: string } }).header.glibcVersionRuntime;
    expect(r.message).toContain(`This host's C library is glibc ${host}; the binary needs glibc ${newer} or newer.`);
    expect(r.message).toContain('npx rlhf-kernels build-from-source');
  });
});

describe('--no-addons', () => {
  it('on the command line: says addons are disabled and to remove the flag', () => {
    const r = load(entry, { nodeArgs: ['--no-addons'], env: { RLHF_KERNELS_BINARY: binary } });
    expect(r).toMatchObject({ ok: false, code: 'ELOAD' });
    expect(r.message).toContain(`  ${binary}: Cannot load native addon because loading addons is disabled.`);
    expect(r.message).toContain('Node.js runs with --no-addons');
  });

  it('in NODE_OPTIONS: the same', () => {
    const r = load(entry, { env: { RLHF_KERNELS_BINARY: binary, NODE_OPTIONS: '--no-addons' } });
    expect(r).toMatchObject({ ok: false, code: 'ELOAD' });
    expect(r.message).toContain('Node.js runs with --no-addons (on its command line or in NODE_OPTIONS)');
  });
});

describe('layouts', () => {
  const both = (): Record<string, string> => ({ [PREBUILD]: binary, [BUILT]: binary });

  it('an installed package (under node_modules) prefers its prebuild', () => {
    const project = join(tmp.path, 'project');
    const pkg = join(project, 'node_modules', 'rlhf-kernels');
    layPackage(pkg, dist, both());
    const r = load('rlhf-kernels', { cwd: project, script: writeProbe(project) });
    expect(r).toMatchObject({ ok: true, binary: join(realpathSync(pkg), PREBUILD) });
  });

  it('an installed package falls back to build/Release when its prebuild cannot load', () => {
    const project = join(tmp.path, 'project-broken');
    const pkg = join(project, 'node_modules', 'rlhf-kernels');
    layPackage(pkg, dist, both());
    writeFileSync(join(pkg, PREBUILD), 'truncated');
    const r = load('rlhf-kernels', { cwd: project, script: writeProbe(project) });
    expect(r).toMatchObject({ ok: true, binary: join(realpathSync(pkg), BUILT) });
  });

  it('a source checkout prefers its local build', () => {
    const checkout = join(tmp.path, 'checkout');
    layPackage(checkout, dist, both());
    const r = load(join(checkout, 'dist', 'lib', 'index.js'));
    expect(r).toMatchObject({ ok: true, binary: join(checkout, BUILT) });
  });

  it('with no binary: lists both paths in order and says how to get one', () => {
    const project = join(tmp.path, 'project-empty');
    const pkg = join(project, 'node_modules', 'rlhf-kernels');
    layPackage(pkg, dist, {});
    const r = load('rlhf-kernels', { cwd: project, script: writeProbe(project) });
    const real = realpathSync(pkg);
    expect(r).toMatchObject({ ok: false, code: 'ELOAD' });
    expect(r.message).toContain(`Tried:\n  ${join(real, PREBUILD)}: not found\n  ${join(real, BUILT)}: not found\n`);
    expect(r.message).toContain(`No binary for ${PLATFORM} is here (this copy has no prebuilds).`);
    expect(r.message).toContain('npx rlhf-kernels build-from-source (needs cmake >= 3.18, a C++17 compiler, and cmake-js and node-addon-api');
  });

  it('bundled away from its package folder: says to keep it external', () => {
    const bundle = join(tmp.path, 'bundle');
    mkdirSync(bundle);
    cpSync(join(dist, 'lib'), bundle, { recursive: true });
    const r = load(join(bundle, 'index.js'), { cwd: bundle });
    expect(r).toMatchObject({ ok: false, code: 'ELOAD' });
    expect(r.message).toContain('Tried:\n  nothing: no package.json named rlhf-kernels above');
    expect(r.message).toContain('keep rlhf-kernels external (esbuild --external:rlhf-kernels');
  });
});
