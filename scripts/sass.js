#!/usr/bin/env node
// SASS instruction counts of a kernel source's loops, without a GPU: the
// kernels here are bound by instruction issue, and ptxas's output is what
// issues. Compiles one .cu file for one architecture (nvcc -cubin),
// disassembles it (nvdisasm), and for each kernel prints its size and its
// natural loops (a back edge's header and every block that reaches the edge
// without passing the header): instructions, global loads and stores, FMAs.
//
//   node scripts/sass.js kernels/ppo.cu [--arch 90] [--kernel REGEX]
//        [--replace 'FROM=>TO' ...] [-D NAME=VALUE ...] [--list] [--all]
//
//   --replace   edits a copy of kernels/ first (literal text, in every file
//               that has it; each must match somewhere): e.g. forcing a
//               runtime choice to count the instructions of one path
//   --list      prints the loops' instructions too
//   --all       prints the kernel's whole listing, with its branch labels
//               (for straight-line code: a kernel without a hot loop)
//
// nvdisasm is not in the CUDA runtime this machine has. Debian's non-free
// nvidia-cuda-toolkit (11.8) carries one: `apt-get download
// nvidia-cuda-toolkit && dpkg -x nvidia-cuda-toolkit_*.deb /opt/nvt`, then
// NVDISASM=/opt/nvt/usr/bin/nvdisasm. It reads sm_90 code but not the ELF
// header CUDA 12.8+ writes (ABI 8, the arch in bits 8-15 of e_flags), so the
// header is rewritten to the old form (ABI 7, arch in the low byte) on a
// copy; the code itself is unchanged. Architectures newer than 11.8
// (sm_100, sm_120) cannot be read this way.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const o = { arch: '90', kernel: '', replace: [], defines: [], list: false, all: false, file: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--arch') o.arch = next().replace(/^sm_/, '');
    else if (a === '--kernel') o.kernel = next();
    else if (a === '--replace') o.replace.push(next());
    else if (a === '-D') o.defines.push(next());
    else if (a === '--list') o.list = true;
    else if (a === '--all') o.all = true;
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else o.file = a;
  }
  if (!o.file) throw new Error('usage: node scripts/sass.js FILE.cu [--arch 90] [--kernel REGEX] [--replace FROM=>TO] [-D N=V] [--list] [--all]');
  return o;
}

/** The cubin with the ELF header nvdisasm 11.8 reads: ABI version 7, e_flags = sm | 0x500 | sm << 16. */
function oldHeader(cubin) {
  const b = Buffer.from(cubin);
  const flags = b.readUInt32LE(0x30);
  if (b[8] >= 8) {
    const sm = (flags >> 8) & 0xff;
    b[8] = 7;
    b.writeUInt32LE((sm | 0x500 | (sm << 16)) >>> 0, 0x30);
  }
  return b;
}

/** Splits nvdisasm -c output into kernels: name -> instructions and label positions. */
function kernels(text) {
  const out = [];
  const parts = text.split(/\n\s*\.section\s+\.text\.([^,\s]+)/);
  for (let i = 1; i < parts.length; i += 2) {
    const ins = [];
    const labels = new Map();
    for (const line of parts[i + 1].split('\n')) {
      const label = /^\s*(\.L_x_\d+):/.exec(line);
      if (label) labels.set(label[1], ins.length);
      const m = /\/\*[0-9a-f]{4,}\*\/\s+([^;]*);/.exec(line);
      if (m) ins.push(m[1].trim());
    }
    out.push({ mangled: parts[i], ins, labels });
  }
  return out;
}

const opcode = (ins) => ins.replace(/^@!?U?P[T0-9]+\s+/, '').split(/[\s.]/)[0];

/** Basic blocks, their successors, and the natural loop of every back edge. */
function loops({ ins, labels }) {
  const leaders = new Set([0, ...labels.values()]);
  ins.forEach((t, j) => {
    if (/\b(BRA|EXIT|RET|BRX|JMX)\b/.test(t) && j + 1 < ins.length) leaders.add(j + 1);
  });
  const starts = [...leaders].filter((x) => x < ins.length).sort((a, b) => a - b);
  const blocks = starts.map((s, k) => [s, k + 1 < starts.length ? starts[k + 1] : ins.length]);
  const blockAt = new Map(starts.map((s, k) => [s, k]));
  const succ = blocks.map(() => new Set());
  blocks.forEach(([, end], k) => {
    const last = ins[end - 1];
    const op = opcode(last);
    const predicated = last.startsWith('@');
    const target = /`\((\.L_x_\d+)\)/.exec(last);
    if (op === 'BRA') {
      const divergent = /^(@\S+\s+)?BRA\.DIV/.test(last);  // the divergent fallback: not the hot path
      const conditional = predicated || divergent || /BRA\s+!?U?P\d/.test(last);
      if (target && !divergent && labels.has(target[1])) succ[k].add(blockAt.get(labels.get(target[1])));
      if (conditional && end < ins.length) succ[k].add(k + 1);
    } else if (!(op === 'EXIT' && !predicated) && end < ins.length) {
      succ[k].add(k + 1);
    }
  });
  const pred = blocks.map(() => new Set());
  succ.forEach((s, k) => s.forEach((t) => pred[t].add(k)));
  const found = [];
  succ.forEach((s, k) => s.forEach((header) => {
    if (header > k) return;
    const body = new Set([header, k]);
    const stack = [k];
    while (stack.length) for (const p of pred[stack.pop()]) if (!body.has(p)) body.add(p), stack.push(p);
    const lines = [...body].sort((a, b) => a - b).flatMap((b) => ins.slice(blocks[b][0], blocks[b][1]));
    const count = (re) => lines.filter((l) => re.test(opcode(l))).length;
    found.push({ header: blocks[header][0], size: lines.length, blocks: body.size, ldg: count(/^LDG$/), stg: count(/^STG$/), ffma: count(/^FFMA$/), lines });
  }));
  return found.sort((a, b) => a.header - b.header || a.size - b.size);
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  const nvdisasm = process.env.NVDISASM || 'nvdisasm';
  const work = mkdtempSync(join(tmpdir(), 'rk-sass-'));
  try {
    for (const dir of ['kernels', 'native']) cpSync(join(root, dir), join(work, dir), { recursive: true });
    const source = join(work, relative(root, join(process.cwd(), o.file)));
    const files = readdirSync(join(work, 'kernels'), { recursive: true }).map((f) => join(work, 'kernels', f)).filter((f) => /\.(cu|cuh|h)$/.test(f));
    for (const r of o.replace) {
      const [from, to] = r.split('=>');
      let hits = 0;
      for (const f of files) {
        const text = readFileSync(f, 'utf8');
        if (to === undefined || !text.includes(from)) continue;
        writeFileSync(f, text.split(from).join(to));
        hits++;
      }
      if (!hits) throw new Error(`--replace '${r}': FROM=>TO, and FROM must occur in a file under kernels/`);
    }
    const cubin = join(work, 'k.cubin');
    execFileSync('nvcc', ['-cubin', `-arch=sm_${o.arch}`, '-O3', '--expt-relaxed-constexpr', '-std=c++17', '-I', work,
      ...o.defines.map((d) => `-D${d}`), '-o', cubin, source], { stdio: ['ignore', 'ignore', 'inherit'] });
    writeFileSync(cubin, oldHeader(readFileSync(cubin)));
    const listing = execFileSync(nvdisasm, ['-c', cubin], { encoding: 'utf8', maxBuffer: 1 << 30 });
    const pattern = new RegExp(o.kernel);
    for (const k of kernels(listing)) {
      const name = execFileSync('c++filt', [k.mangled], { encoding: 'utf8' }).trim().replace(/rk::cudaops::\(anonymous namespace\)::/g, '');
      if (!pattern.test(name)) continue;
      console.log(`${k.ins.length} instructions: ${name}`);
      if (o.all) {
        const at = new Map([...k.labels].map(([label, j]) => [j, label]));
        k.ins.forEach((line, j) => console.log(`${at.has(j) ? `${at.get(j)}:`.padEnd(12) : ' '.repeat(12)}${String(j).padStart(5)}  ${line}`));
      }
      for (const l of loops(k)) {
        console.log(`  loop at ${l.header}: ${l.size} instructions in ${l.blocks} blocks (LDG ${l.ldg}, STG ${l.stg}, FFMA ${l.ffma})`);
        if (o.list) for (const line of l.lines) console.log(`      ${line}`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  main();
} catch (e) {
  console.error(`sass: ${e.message}`);
  process.exit(1);
}
