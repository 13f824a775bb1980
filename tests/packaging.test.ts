/**
 * The installed-package experience: the tarball `npm pack` makes, installed
 * with no network, no install scripts and no compiler, must load its prebuilt
 * binary from ESM and CommonJS, compute log-probs right, and run its CLI.
 *
 * The prebuild in the tarball is a fast one (CUDA for sm_90 only, or the CPU
 * backend alone where nvcc is missing; RLHF_KERNELS_CUDA_ARCHS overrides),
 * built incrementally in build-prebuild-test/ by scripts/prebuild.js into a
 * staged copy of the checkout, which is packed from there: the checkout's own
 * dist/ and prebuilds/ are never read or written.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { delimiter, join, posix, relative, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from './helpers/random.js';
import { EPS, type Round, derivedTolerance, errorStats, f32, f64 } from './helpers/tolerance.js';
import { ROOT, childEnv, compileTo, run, runJson, tempDir } from './helpers/package.js';

const PREBUILD = posix.join('prebuilds', `${process.platform}-${process.arch}`, 'rlhf-kernels.glibc.node');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  peerDependencies: Record<string, string>;
};

/** On PATH, as a shell would find it. */
function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}
const NVCC = which('nvcc') !== undefined;

let tmp: ReturnType<typeof tempDir>;
let stage: string;
let tarball: string;
let packed: string[];
let project: string;
/** Environment of the user's shell: PATH holds node and npm only; no npm_* of this run. */
let userEnv: NodeJS.ProcessEnv;

function stageCheckout(): void {
  const skip = new Set(['node_modules', '.git', 'dist', 'prebuilds', 'coverage', '.gpu']);
  cpSync(ROOT, stage, {
    recursive: true,
    filter: (src) => {
      const top = relative(ROOT, src).split(sep)[0]!;
      return !skip.has(top) && !/^build($|-)/.test(top) && !top.endsWith('.tgz');
    },
  });
  compileTo(join(stage, 'dist'));
  const env = childEnv({
    RLHF_KERNELS_CUDA_ARCHS: process.env.RLHF_KERNELS_CUDA_ARCHS ?? '90-real',
    RLHF_KERNELS_BUILD_DIR: 'build-prebuild-test',
    ...(NVCC ? {} : { RLHF_KERNELS_CUDA: '0' }),
  });
  const r = run(process.execPath, [join(ROOT, 'scripts', 'prebuild.js'), '--out', stage], { cwd: ROOT, env, timeout: 1_200_000 });
  if (r.status !== 0) throw new Error(`scripts/prebuild.js failed:\n${r.stdout}${r.stderr}`);
}

function pack(): void {
  const r = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp.path], { cwd: stage });
  if (r.status !== 0) throw new Error(`npm pack failed:\n${r.stderr}`);
  const [report] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(tmp.path, report!.filename);
  packed = report!.files.map((f) => f.path);
}

/** A bin folder with node and npm alone, and the environment that uses it. */
function userShell(): void {
  const bin = join(tmp.path, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync(realpathSync(which('npm')!), join(bin, 'npm'));
  userEnv = childEnv({ PATH: bin });
  for (const key of Object.keys(userEnv)) if (/^npm_/i.test(key) && key !== 'npm_config_cache') delete userEnv[key];
  delete userEnv.NODE_PATH;
}

function install(): void {
  // The install is offline, so the dependencies' registry documents must be
  // in npm's cache: `npm ci` keeps only the tarballs and the abbreviated
  // documents, and npm asks for the full one of a dependency named by range.
  for (const [name, range] of Object.entries(pkg.dependencies ?? {})) {
    const r = run('npm', ['cache', 'add', `${name}@${range}`], { cwd: tmp.path, env: userEnv });
    if (r.status !== 0) console.warn(`npm cache add ${name}@${range} failed (the offline install may too):\n${r.stderr}`);
  }
  project = join(tmp.path, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const r = run('npm', ['install', '--ignore-scripts', '--offline', '--no-audit', '--no-fund', tarball], {
    cwd: project,
    env: userEnv,
  });
  if (r.status !== 0) throw new Error(`npm install --offline failed:\n${r.stdout}${r.stderr}`);
}

beforeAll(() => {
  tmp = tempDir('packaging');
  stage = join(tmp.path, 'stage');
  stageCheckout();
  pack();
  userShell();
  install();
}, 1_500_000);

afterAll(() => tmp?.remove());

describe('the tarball', () => {
  it('holds the prebuild, the compiled JS and types, the CLI and the sources to build from', () => {
    for (const file of [
      PREBUILD,
      'package.json',
      'dist/lib/index.js',
      'dist/lib/index.d.ts',
      'dist/lib/cli.js',
      'dist/bench/run.js',
      'dist/tests/selftest/index.js',
      'dist/tests/helpers/random.js',
      'dist/tests/helpers/tolerance.js',
      'dist/tests/helpers/finite_diff.js',
      'lib/index.ts',
      'CMakeLists.txt',
      'scripts/build-native.js',
      'scripts/cuda-archs.js',
      'native/ops.def',
      'bindings/addon.cpp',
      'kernels/runtime.cu',
    ])
      expect(packed).toContain(file);
  });

  it('holds no tests, build output or dev configuration', () => {
    const unwanted = packed.filter((f) =>
      /\.test\.[jt]s$|^dist\/tests\/gpu\/|^build|^node_modules\/|^tsconfig|^vitest|tsbuildinfo|^scripts\/prebuild/.test(f),
    );
    expect(unwanted).toEqual([]);
  });

  it('resolves every import of its JavaScript: relative ones to packed files, bare ones to builtins or dependencies', () => {
    const shipped = new Set(packed);
    const deps = new Set(Object.keys(pkg.dependencies ?? {}));
    // The benchmark's peers (onnxruntime, tfjs) are optional: bench/peers loads
    // them with a guarded dynamic import() and reports them as unavailable
    // when the user has not installed them.
    const optionalPeers = new Set(Object.keys(pkg.devDependencies ?? {}));
    const broken: string[] = [];
    for (const file of packed.filter((f) => f.endsWith('.js') && f.startsWith('dist/'))) {
      const code = readFileSync(join(stage, file), 'utf8');
      for (const m of code.matchAll(/\b(from|import)\s*(\(?)\s*['"]([^'"]+)['"]/g)) {
        const spec = m[3]!;
        const dynamic = m[1] === 'import' && m[2] === '(';
        if (spec.startsWith('.')) {
          if (!shipped.has(posix.join(posix.dirname(file), spec))) broken.push(`${file}: ${spec}`);
        } else {
          const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          const optional = dynamic && file.startsWith('dist/bench/peers/') && optionalPeers.has(name);
          if (!spec.startsWith('node:') && !builtinModules.includes(name) && !deps.has(name) && !optional)
            broken.push(`${file}: ${spec}`);
        }
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('installed with npm install --ignore-scripts --offline', () => {
  it('had no compiler, cmake or nvcc on its PATH', () => {
    for (const tool of ['c++', 'g++', 'gcc', 'cc', 'clang', 'cmake', 'make', 'nvcc']) {
      const r = run('/bin/sh', ['-c', `command -v ${tool}`], { env: userEnv });
      expect(r.status, `${tool} found at ${r.stdout.trim()}`).not.toBe(0);
    }
  });

  it('has the prebuild and no build output', () => {
    const installed = join(project, 'node_modules', 'rlhf-kernels');
    expect(existsSync(join(installed, PREBUILD))).toBe(true);
    expect(existsSync(join(installed, 'build'))).toBe(false);
  });

  it('runs its CLI: info names the prebuild, selftest passes', () => {
    const cli = join(project, 'node_modules', '.bin', 'rlhf-kernels');
    const infoRun = run(cli, ['info'], { cwd: project, env: userEnv });
    expect(infoRun.stderr).toBe('');
    expect(infoRun.status).toBe(0);
    expect(infoRun.stdout).toContain(`binary    ${join(realpathSync(project), 'node_modules', 'rlhf-kernels', PREBUILD)}`);
    const selftest = run(cli, ['selftest', '--device', 'cpu'], { cwd: project, env: userEnv });
    expect(selftest.status, selftest.stdout + selftest.stderr).toBe(0);
  });

  it('says what to install when build-from-source lacks cmake-js and node-addon-api', () => {
    const cli = join(project, 'node_modules', '.bin', 'rlhf-kernels');
    const r = run(cli, ['build-from-source'], { cwd: project, env: userEnv });
    expect(r.status).toBe(1);
    const specs = ['cmake-js', 'node-addon-api'].map((n) => `"${n}@${pkg.peerDependencies[n]}"`).join(' ');
    expect(r.stderr).toContain(`rlhf-kernels: building from source needs cmake-js and node-addon-api, not found from ${realpathSync(project)}`);
    expect(r.stderr).toContain(`npm install --save-dev ${specs}`);
  });
});

// ---------------------------------------------------------------- log-probs

interface Input {
  rows: number;
  vocab: number;
  logits: number[];
  targets: number[];
}

interface Output {
  binary: string;
  isa: string;
  supportedIsas: string[];
  cuda: { compiled: boolean; available: boolean; reason?: string };
  logprobs: number[];
  lse: number[];
}

// The consumer's code, ESM and CommonJS: tokenLogProbs on the cpu (DESIGN.md,
// "Token log-probs"), read back with the API each module kind would use.
const CONSUMER_BODY = `
  const { rows, vocab, logits, targets } = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  if (typeof rk.tokenLogProbs !== 'function') throw new Error('rlhf-kernels exports no tokenLogProbs (DESIGN.md: Token log-probs)');
  const out = rk.tokenLogProbs(rk.tensor(Float32Array.from(logits), [rows, vocab]), rk.tensor(Int32Array.from(targets), [rows]));
  const { binary, cpu, cuda } = rk.info();
`;
const CONSUMERS = {
  'consumer.mjs': `import { readFileSync } from 'node:fs';
const rk = await import('rlhf-kernels');
${CONSUMER_BODY}
console.log(JSON.stringify({ binary, isa: cpu.isa, supportedIsas: cpu.supportedIsas, cuda,
  logprobs: Array.from(await out.logprobs.read()), lse: Array.from(await out.lse.read()) }));
`,
  'consumer.cjs': `const { readFileSync } = require('node:fs');
const rk = require('rlhf-kernels');
${CONSUMER_BODY}
console.log(JSON.stringify({ binary, isa: cpu.isa, supportedIsas: cpu.supportedIsas, cuda,
  logprobs: Array.from(out.logprobs.toArray()), lse: Array.from(out.lse.toArray()) }));
`,
};

/** log-softmax at the target, written as the obvious loop; `round` after every operation. */
function logSoftmax(input: Input, round: Round): { logprobs: number[]; lse: number[] } {
  const logprobs: number[] = [];
  const lse: number[] = [];
  for (let r = 0; r < input.rows; r++) {
    const row = input.logits.slice(r * input.vocab, (r + 1) * input.vocab);
    const max = Math.max(...row);
    let sum = 0;
    for (const z of row) sum = round(sum + round(Math.exp(round(z - max))));
    const l = round(max + round(Math.log(sum)));
    lse.push(l);
    logprobs.push(round(row[input.targets[r]!]! - l));
  }
  return { logprobs, lse };
}

function writeInput(): { path: string; input: Input } {
  const rng = new Rng();
  // 4099: a prime just above 4096, so every SIMD width and block ends in a tail.
  const rows = 5;
  const vocab = 4099;
  const input: Input = { rows, vocab, logits: Array.from(rng.normals(rows * vocab, 4)), targets: Array.from(rng.ints(rows, 0, vocab)) };
  const path = join(tmp.path, `input-${rng.seed}.json`);
  writeFileSync(path, JSON.stringify(input));
  return { path, input };
}

function consume(script: keyof typeof CONSUMERS, input: string, env: Record<string, string> = {}): Output {
  writeFileSync(join(project, script), CONSUMERS[script]);
  return runJson<Output>(process.execPath, [script, input], { cwd: project, env: { ...userEnv, ...env } });
}

/** Each output within the tolerance rule: 4x the naive float32 error, plus a few ulps. */
function expectLogSoftmax(out: Output, input: Input): void {
  const ref = logSoftmax(input, f64);
  const naive = logSoftmax(input, f32);
  for (const key of ['logprobs', 'lse'] as const) {
    const scale = Math.max(...ref[key].map(Math.abs));
    const tol = derivedTolerance(naive[key], ref[key], 4, 4 * EPS.float32 * scale);
    const stats = errorStats(out[key], ref[key]);
    expect(stats.mismatchedNonFinite, key).toBe(0);
    expect(stats.maxAbs, `${key}: worst at row ${stats.worst}`).toBeLessThanOrEqual(tol);
  }
}

describe('token log-probs from the installed package', () => {
  it.each(['consumer.mjs', 'consumer.cjs'] as const)('%s: loads the prebuild and computes log-softmax right', (script) => {
    const { path, input } = writeInput();
    const out = consume(script, path);
    expect(out.binary).toBe(join(realpathSync(project), 'node_modules', 'rlhf-kernels', PREBUILD));
    expect(out.cuda.compiled).toBe(NVCC);
    if (!out.cuda.available) expect(out.cuda.reason).toMatch(/\S/);
    expectLogSoftmax(out, input);
  });

  it.runIf(process.arch === 'x64')('RLHF_KERNELS_ISA=baseline runs the baseline kernels and agrees with the fastest ISA', () => {
    const { path, input } = writeInput();
    const fastest = consume('consumer.mjs', path);
    const baseline = consume('consumer.mjs', path, { RLHF_KERNELS_ISA: 'baseline' });
    expect(baseline.isa).toBe('baseline');
    expect(fastest.isa).toBe(fastest.supportedIsas.at(-1));
    expectLogSoftmax(baseline, input);
    expectLogSoftmax(fastest, input);
    // DESIGN.md: float32 results of two backends agree within 1e-5 relative.
    for (const key of ['logprobs', 'lse'] as const) expect(errorStats(baseline[key], fastest[key]).maxRel, key).toBeLessThanOrEqual(1e-5);
  });
});
