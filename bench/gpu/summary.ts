/**
 * The GPU run's summary (scripts/gpu/run.sh): our cuda rows from
 * `bench --json` beside PyTorch eager and torch.compile from
 * bench/gpu/torch_peers.py, joined on (op, direction, shape label), with the
 * fraction of the HBM bandwidth measured by a device-to-device copy in the
 * same call. Either input may be missing or broken: what is there is shown.
 *
 *   node dist/bench/gpu/summary.js BENCH_JSON TORCH_JSON OUT_MD
 *
 * writes OUT_MD and prints its main table.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { formatMs, percent, sig3 } from '../report.js';
import type { BenchReport, BenchResult } from '../types.js';

/** One row of bench/gpu/torch_peers.py's torch.json. */
export interface TorchRow {
  op: string;
  direction: string;
  shape: string;
  provider: 'torch-eager' | 'torch-compile';
  medianMs: number;
  gbPerS: number;
  compileS?: number;
}

export interface TorchReport {
  torch?: string;
  device?: string;
  error?: string;
  calibration?: { gbPerS?: number; error?: string };
  results?: TorchRow[];
  skipped?: { op: string; direction: string; shape: string; provider: string; reason: string }[];
}

/** A JSON file, or a line saying why it is not there. */
export function readJson<T>(path: string | undefined): T | string {
  if (!path) return 'no file given';
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    return `${path}: ${(e as Error).message.split('\n')[0]}`;
  }
}

// Our backward ops have names of their own (tokenLogProbsBackward); the
// PyTorch rows name the forward op with direction 'backward'.
const key = (r: { op: string; direction: string; shape: string }) =>
  `${r.direction === 'backward' ? r.op.replace(/Backward$/, '') : r.op} | ${r.direction} | ${r.shape}`;
const times = (x: number | undefined) => (x === undefined ? '-' : x >= 10 ? `${x.toFixed(0)}×` : `${x.toPrecision(2)}×`);

function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 3 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** The markdown summary; `main` is the table printed last by run.sh. */
export function summarize(bench: BenchReport | string, torch: TorchReport | string): { markdown: string; main: string } {
  const ours = typeof bench === 'string' ? [] : bench.results.filter((r) => r.ours && r.device.startsWith('cuda'));
  const torchRows = typeof torch === 'string' ? [] : (torch.results ?? []);
  const hbm = (typeof bench !== 'string' && bench.calibration.find((c) => c.device.startsWith('cuda'))?.gbPerS) ||
    (typeof torch !== 'string' && torch.calibration?.gbPerS) || undefined;
  const find = (r: BenchResult, provider: string) => torchRows.find((t) => t.provider === provider && key(t) === key(r));

  const head: string[] = ['# rlhf-kernels on the GPU', ''];
  if (typeof bench === 'string') head.push(`- rlhf-kernels bench: none (${bench})`);
  else head.push(`- rlhf-kernels ${bench.version} (${bench.commit ?? 'no commit'}), ${bench.date}, ${bench.machine.gpus.join(', ') || 'no GPU'}; problems: ${bench.problems.join('; ') || 'none'}`);
  if (typeof torch === 'string') head.push(`- torch peers: none (${torch})`);
  else head.push(`- torch peers: ${torch.error ?? `torch ${torch.torch} on ${torch.device}`}`);
  const copy = (label: string, gb: number | undefined, err?: string) => `${label} ${gb ? `${sig3(gb)} GB/s` : `none${err ? ` (${err})` : ''}`}`;
  head.push(`- HBM bandwidth, device-to-device copy in this call: ${[
    copy('rlhf-kernels', typeof bench === 'string' ? undefined : bench.calibration.find((c) => c.device.startsWith('cuda'))?.gbPerS),
    copy('torch', typeof torch === 'string' ? undefined : torch.calibration?.gbPerS, typeof torch === 'string' ? undefined : torch.calibration?.error),
  ].join(', ')}`, '');

  const mainRows = ours.map((r) => {
    const eager = find(r, 'torch-eager');
    const compiled = find(r, 'torch-compile');
    return [r.op, r.direction, r.shape, formatMs(r.medianMs), eager ? formatMs(eager.medianMs) : '-', compiled ? formatMs(compiled.medianMs) : '-',
      sig3(r.gbPerS), percent(hbm ? r.gbPerS / hbm : null), times(eager && eager.medianMs / r.medianMs), times(compiled && compiled.medianMs / r.medianMs)];
  });
  const main = table(['op', 'direction', 'shape', 'ours', 'torch eager', 'torch.compile', 'ours GB/s', 'of HBM', 'vs eager', 'vs compile'], mainRows);

  const matched = new Set(ours.map(key));
  const torchOnly = [...new Set(torchRows.filter((t) => !matched.has(key(t))).map(key))].map((k) => {
    const [op, direction, shape] = k.split(' | ') as [string, string, string];
    const eager = torchRows.find((t) => key(t) === k && t.provider === 'torch-eager');
    const compiled = torchRows.find((t) => key(t) === k && t.provider === 'torch-compile');
    const best = Math.max(eager?.gbPerS ?? 0, compiled?.gbPerS ?? 0);
    return [op, direction, shape, eager ? formatMs(eager.medianMs) : '-', compiled ? formatMs(compiled.medianMs) : '-', compiled?.compileS?.toString() ?? '-', percent(hbm && best ? best / hbm : null)];
  });

  const notRun = [
    ...(typeof bench === 'string' ? [] : bench.skipped.map((s) => `- ${s.provider} (${s.device}) ${s.op} ${s.direction} ${s.shape}: ${s.failed ? 'FAILED: ' : ''}${s.reason}`)),
    ...(typeof torch === 'string' ? [] : (torch.skipped ?? []).map((s) => `- ${s.provider} ${s.op} ${s.direction} ${s.shape}: ${s.reason}`)),
  ];
  const markdown = [
    ...head, '## Ours against PyTorch (cuda, median of each)', '', ...(mainRows.length ? main : ['(no cuda rows of ours)']), '',
    '## PyTorch rows with no row of ours', '',
    ...(torchOnly.length ? table(['op', 'direction', 'shape', 'torch eager', 'torch.compile', 'compile s', 'of HBM (best)'], torchOnly) : ['(none)']), '',
    '## Did not run', '', ...(notRun.length ? notRun : ['(everything ran)']), '',
  ].join('\n');
  return { markdown, main: [...head.slice(2), ...(mainRows.length ? main : ['(no cuda rows of ours)'])].join('\n') };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [benchPath, torchPath, outPath] = process.argv.slice(2);
  const { markdown, main } = summarize(readJson<BenchReport>(benchPath), readJson<TorchReport>(torchPath));
  if (outPath) writeFileSync(outPath, markdown);
  console.log(main);
}
