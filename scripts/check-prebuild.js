#!/usr/bin/env node
// Before `npm publish` (prepublishOnly): the tarball must carry a release
// prebuild for linux-x64, made from these sources, with CUDA compiled in for
// the whole default architecture list of CMakeLists.txt (not a test build
// made with RLHF_KERNELS_CUDA_ARCHS). Prebuilds for other platforms, made on
// other machines and copied in, must be newer than the sources too.
// With --any (prepack: every `npm pack`): some prebuild, newer than the
// sources, is enough; a tarball with none installs without a binary.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCudaArchs } from './cuda-archs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const problems = [];

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  return newest;
}
const sources = Math.max(
  statSync(join(root, 'CMakeLists.txt')).mtimeMs,
  ...['native', 'kernels', 'bindings'].map((d) => newestSource(join(root, d))),
);

const any = process.argv.includes('--any');
const required = join(root, 'prebuilds', 'linux-x64', 'rlhf-kernels.glibc.node');
if (!any && !existsSync(required)) problems.push(`${required} is missing: run \`npm run build:prebuild\` on linux-x64`);
const prebuilds = existsSync(join(root, 'prebuilds'))
  ? readdirSync(join(root, 'prebuilds'), { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile() && e.name.endsWith('.node'))
      .map((e) => join(e.parentPath, e.name))
  : [];
for (const file of prebuilds)
  if (statSync(file).mtimeMs < sources) problems.push(`${file} is older than the native sources: rebuild it`);
if (any && prebuilds.length === 0)
  problems.push('prebuilds/ holds no binary, so the tarball would install none: run `npm run build:prebuild` (or pack with --ignore-scripts to skip this check)');

const here = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'rlhf-kernels.glibc.node');
if (!any && existsSync(here)) {
  const want = defaultCudaArchs(root).replaceAll(';', ' ');
  const r = spawnSync(process.execPath, ['-e', 'console.log(JSON.stringify(require(process.argv[1]).info().cuda))', here], {
    encoding: 'utf8',
  });
  if (r.status !== 0) problems.push(`${here} does not load: ${r.stderr.trim()}`);
  else {
    const cuda = JSON.parse(r.stdout);
    if (!cuda.compiled) problems.push(`${here} was built without CUDA`);
    else if (cuda.archs !== want) problems.push(`${here} holds CUDA code for "${cuda.archs}", the release needs "${want}"`);
  }
}

if (problems.length) {
  console.error(`rlhf-kernels: not ready to ${any ? 'pack' : 'publish'}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`rlhf-kernels: prebuilds ready: ${prebuilds.map((p) => p.slice(root.length + 1)).join(', ')}`);
