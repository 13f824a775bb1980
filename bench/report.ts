/**
 * Turning timings into the runner's outputs: speedups over peers, the
 * readable table, and CSV rows.
 */
import type { BenchReport, BenchResult, BenchSkip } from './types.js';

/** Fills `speedup` of each row of ours: peer median / our median, per peer row of the same case. */
export function addSpeedups(caseRows: BenchResult[]): void {
  const peers = caseRows.filter((r) => !r.ours);
  for (const row of caseRows) {
    if (!row.ours) continue;
    for (const peer of peers) row.speedup[peerName(peer, caseRows)] = peer.medianMs / row.medianMs;
  }
}

/** A peer's name, with its device when the case has that provider on several devices. */
function peerName(peer: BenchResult, caseRows: BenchResult[]): string {
  const twins = caseRows.filter((r) => r.provider === peer.provider).length;
  return twins > 1 ? `${peer.provider}@${peer.device}` : peer.provider;
}

export function sig3(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

/** A duration in the unit that fits `reference` (s, ms or µs). */
function timeIn(ms: number, reference: number): string {
  if (reference >= 1000) return sig3(ms / 1000);
  if (reference >= 1) return sig3(ms);
  return sig3(ms * 1000);
}

function timeUnit(ms: number): string {
  return ms >= 1000 ? 's' : ms >= 1 ? 'ms' : 'µs';
}

/** 0.0123 -> '12.3 µs', 1234 -> '1.23 s'. */
export function formatMs(ms: number): string {
  return `${timeIn(ms, ms)} ${timeUnit(ms)}`;
}

const SI = [
  [1e12, 'T'],
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
] as const;

/** 6.64e9 -> '6.64 G'. */
export function si(x: number): string {
  for (const [scale, prefix] of SI) if (Math.abs(x) >= scale) return `${sig3(x / scale)} ${prefix}`;
  return sig3(x);
}

export function percent(f: number | null): string {
  if (f === null || !Number.isFinite(f)) return '-';
  return f < 0.01 ? '<1%' : `${(f * 100).toFixed(0)}%`;
}

function speedupText(s: Record<string, number>): string {
  return Object.entries(s)
    .map(([peer, x]) => `${x >= 10 ? x.toFixed(0) : x.toPrecision(2)}× ${peer}`)
    .join(', ');
}

const HEADER = ['provider', 'device', 'median', 'p20–p80', 'elem/s', 'GB/s', 'of BW', 'speedup'];
const RIGHT = [false, false, true, true, true, true, true, false];

function cells(r: BenchResult): string[] {
  return [
    r.provider + (r.ours ? ' *' : ''),
    r.device,
    formatMs(r.medianMs),
    `${timeIn(r.p20Ms, r.medianMs)}–${timeIn(r.p80Ms, r.medianMs)}`,
    si(r.gelemPerS * 1e9),
    sig3(r.gbPerS),
    percent(r.bandwidthFraction),
    speedupText(r.speedup),
  ];
}

export function caseKey(r: { family: string; op: string; direction: string; shape: string }): string {
  return `${r.family}\u0000${r.op}\u0000${r.direction}\u0000${r.shape}`;
}

function rank(order: string[], r: BenchResult | BenchSkip): number {
  const i = order.indexOf(caseKey(r));
  return i < 0 ? order.length : i;
}

/** The table: one block per case (in `order` of caseKey, if given), columns aligned over the whole run. */
export function formatTable(report: BenchReport, order: string[] = []): string {
  const blocks = new Map<string, { title: string; rows: string[][]; skips: BenchSkip[] }>();
  const ranked = [...report.results, ...report.skipped].sort((a, b) => rank(order, a) - rank(order, b));
  const block = (r: BenchResult | BenchSkip, elements?: number, bytes?: number) => {
    const key = caseKey(r);
    let b = blocks.get(key);
    if (!b) {
      b = { title: `${r.op} ${r.direction} · ${r.shape} · ${r.family}`, rows: [], skips: [] };
      blocks.set(key, b);
    }
    if (elements !== undefined && !b.title.includes('elements'))
      b.title += ` · ${si(elements)} elements, ${si(bytes!)}B minimal`;
    return b;
  };
  for (const r of ranked) {
    if ('reason' in r) block(r).skips.push(r);
    else block(r, r.elements, r.bytes).rows.push(cells(r));
  }

  const all = [HEADER, ...[...blocks.values()].flatMap((b) => b.rows)];
  const widths = HEADER.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  const line = (row: string[]) =>
    ('  ' + row.map((cell, c) => (RIGHT[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ')).trimEnd();
  const out: string[] = [line(HEADER)];
  for (const b of blocks.values()) {
    out.push('', b.title);
    for (const row of b.rows) out.push(line(row));
    for (const s of b.skips) {
      const lead = `  ${s.provider.padEnd(widths[0]!)}  ${s.device.padEnd(widths[1]!)}  `;
      out.push(`${lead}${s.failed ? 'FAILED' : 'skipped'}: ${s.reason}`);
    }
  }
  return out.join('\n');
}

/** One line per device: what the bandwidth fractions are relative to. */
export function formatCalibration(report: BenchReport): string {
  return report.calibration
    .map((c) =>
      c.error
        ? `calibration ${c.device}: none (${c.error})`
        : `calibration ${c.device}: ${sig3(c.gbPerS!)} GB/s (${c.method === 'copy' ? 'device-to-device copy, read + write' : 'native multithreaded read'} of ${si(c.bytes!)}B, best pass)`,
    )
    .join('\n');
}

export const CSV_COLUMNS = [
  'date', 'commit', 'machine', 'device', 'threads', 'isa', 'op', 'direction', 'shape', 'provider',
  'median_ms', 'p20_ms', 'p80_ms', 'gelem_per_s', 'gb_per_s', 'bandwidth_fraction', 'speedup_vs',
] as const;

function csvField(v: string | number | null): string {
  const s = v === null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV line per result (no header). speedup_vs holds 'peer=x' pairs separated by ';'. */
export function csvLines(report: BenchReport): string[] {
  return report.results.map((r) => {
    const machine = r.device === 'cpu' ? report.machine.cpu : (report.machine.gpus[Number(r.device.slice(5))] ?? '');
    const speedup = Object.entries(r.speedup)
      .map(([peer, x]) => `${peer}=${x.toFixed(3)}`)
      .join(';');
    const values: (string | number | null)[] = [
      report.date, report.commit, machine, r.device, report.threads, report.isa, r.op, r.direction, r.shape,
      r.provider, r.medianMs, r.p20Ms, r.p80Ms, r.gelemPerS, r.gbPerS, r.bandwidthFraction, speedup,
    ];
    return values.map(csvField).join(',');
  });
}
