import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../bench/args.js';
import { quantile } from '../bench/measure.js';
import { CSV_COLUMNS, addSpeedups, csvLines, formatTable } from '../bench/report.js';
import { type BenchIo, runBench } from '../bench/run.js';
import { SHAPES, type ShapeKind, shapeLabel } from '../bench/shapes.js';
import { loadSuites } from '../bench/suites.js';
import type { BenchReport, BenchResult } from '../bench/types.js';
import { HAS_CUDA } from './helpers/devices.js';

const fixtures = fileURLToPath(new URL('./fixtures/bench', import.meta.url));

function capture(): BenchIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out, err, progress: false, suitesDir: fixtures, calibration: { bytes: 4 * 2 ** 20, passes: 1 },
    stdout: (t) => out.push(t), stderr: (t) => err.push(t),
  };
}

describe('bench arguments', () => {
  it('parses every flag, both spellings', () => {
    expect(parseArgs(['--op', 'a,b', '--op=c', '--device', 'cuda', '--size=large', '--json', '--csv', 'x.csv', '--budget', '90'])).toEqual({
      ops: ['a', 'b', 'c'], devices: ['cuda'], size: 'large', json: true, csv: 'x.csv', budgetS: 90, listShapes: false, help: false,
    });
    expect(parseArgs([])).toMatchObject({ size: 'small', devices: [], budgetS: Infinity });
  });

  it('names the bad flag', () => {
    expect(parseArgs(['--size', 'huge'])).toEqual({ error: 'bench: --size expected one of small, medium, large, got "huge"' });
    expect(parseArgs(['--fast'])).toEqual({ error: 'bench: unknown option "--fast"' });
    expect(parseArgs(['--op'])).toEqual({ error: 'bench: --op expected a value, got nothing' });
    expect(parseArgs(['--op', '--json'])).toEqual({ error: 'bench: --op expected a value, got "--json"' });
    expect(parseArgs(['--budget', '-3'])).toEqual({ error: 'bench: --budget expected a positive number of seconds, got "-3"' });
  });
});

describe('bench statistics and outputs', () => {
  it('interpolates quantiles between order statistics', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    expect(quantile(s, 0.5)).toBe(6);
    expect(quantile(s, 0.2)).toBe(3);
    expect(quantile([1, 3], 0.25)).toBe(1.5);
    expect(quantile([4], 0.8)).toBe(4);
    expect(quantile([], 0.5)).toBeNaN();
  });

  const row = (provider: string, medianMs: number, ours = false): BenchResult => ({
    family: 'f', op: 'op', direction: 'forward', shape: 'N=1', provider, device: 'cpu', ours, elements: 1e6, bytes: 4e6,
    medianMs, p20Ms: medianMs * 0.9, p80Ms: medianMs * 1.1, samples: 10, gelemPerS: 1e6 / (medianMs / 1000) / 1e9,
    gbPerS: 4e6 / (medianMs / 1000) / 1e9, bandwidthFraction: 0.5, speedup: {},
  });

  it('gives rows of ours a speedup over each peer', () => {
    const rows = [row('ours', 2, true), row('peer-a', 6), row('peer-b', 1)];
    addSpeedups(rows);
    expect(rows[0]!.speedup).toEqual({ 'peer-a': 3, 'peer-b': 0.5 });
    expect(rows[1]!.speedup).toEqual({});
  });

  const report = (results: BenchResult[]): BenchReport => ({
    tool: 'rlhf-kernels bench', version: '0', date: '2026-01-01T00:00:00.000Z', commit: 'abc', size: 'small', devices: ['cpu'],
    machine: { cpu: 'CPU, "quoted"', gpus: [] }, threads: 2, isa: 'avx2', calibration: [], results, skipped: [], problems: [],
  });

  it('aligns the table columns and shows units', () => {
    const rows = [row('rlhf-kernels', 0.0123, true), row('a-much-longer-peer-name', 1234.5)];
    addSpeedups(rows);
    const lines = formatTable(report(rows)).split('\n').filter((l) => l.startsWith('  '));
    expect(lines).toHaveLength(3);
    const gbEnd = lines[0]!.indexOf('GB/s') + 4;
    for (const l of lines.slice(1)) expect(l[gbEnd - 1]).toMatch(/\d/);
    expect(lines[1]).toMatch(/12\.3 µs/);
    expect(lines[2]).toMatch(/1\.23 s/);
    expect(lines[1]).toMatch(/ 100366× a-much-longer-peer-name$/);
  });

  it('writes one CSV line per result, quoted where needed', () => {
    const lines = csvLines(report([row('ours', 2, true)]));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith('2026-01-01T00:00:00.000Z,abc,"CPU, ""quoted""",cpu,2,avx2,op,forward,N=1,ours,2,')).toBe(true);
    expect(CSV_COLUMNS).toHaveLength(17);
  });
});

describe('runBench', () => {
  it('runs every provider of the discovered suites and prints one JSON document', async () => {
    const io = capture();
    const csv = join(mkdtempSync(join(tmpdir(), 'rk-bench-')), 'out.csv');
    // A cpu run, whatever else is here (a GPU, or the CUDA emulator).
    const code = await runBench(['--json', '--csv', csv, '--device', 'cpu'], io);
    expect(io.out).toHaveLength(1);
    const doc = JSON.parse(io.out[0]!) as BenchReport;
    expect(doc.devices).toEqual(['cpu']);
    expect(doc.calibration[0]).toMatchObject({ device: 'cpu', method: 'read' });
    expect(doc.calibration[0]!.gbPerS).toBeGreaterThan(0);
    const byName = Object.fromEntries(doc.results.map((r) => [r.provider, r]));
    expect(Object.keys(byName).sort()).toEqual(['fast', 'slow']);
    expect(byName.fast!.ours).toBe(true);
    // The slow peer spins 4x longer than ours: a speedup near 4, surely above 2.
    expect(byName.fast!.speedup.slow).toBeGreaterThan(2);
    expect(byName.fast!.p20Ms).toBeLessThanOrEqual(byName.fast!.medianMs);
    expect(byName.fast!.p80Ms).toBeGreaterThanOrEqual(byName.fast!.medianMs);
    expect(byName.fast!.gbPerS).toBeCloseTo(4000 / (byName.fast!.medianMs / 1000) / 1e9, 9);
    expect(byName.fast!.bandwidthFraction).toBeCloseTo(byName.fast!.gbPerS / doc.calibration[0]!.gbPerS!, 9);
    expect(doc.skipped.map((s) => [s.provider, s.failed, s.reason])).toEqual([
      ['absent', false, 'absent is not installed here'],
      ['broken', true, 'broken peer'],
    ]);
    // The cuda-only case is left out on a cpu run; the file without a suite is reported.
    expect(doc.results.some((r) => r.op === 'cudaOnly')).toBe(false);
    expect(doc.problems).toEqual(['empty.bench.ts: exports no `suite: BenchSuite` (bench/types.ts)']);
    expect(code).toBe(1);

    const csvLinesWritten = readFileSync(csv, 'utf8').trim().split('\n');
    expect(csvLinesWritten[0]).toBe(CSV_COLUMNS.join(','));
    expect(csvLinesWritten).toHaveLength(3);
    expect(csvLinesWritten[1]).toMatch(/,fast,.*,slow=\d/);
  });

  it('prints a table with the skipped providers and appends to an existing CSV', async () => {
    const io = capture();
    const csv = join(mkdtempSync(join(tmpdir(), 'rk-bench-')), 'out.csv');
    writeFileSync(csv, `${CSV_COLUMNS.join(',')}\n`);
    await runBench(['--op', 'fakeOp', '--csv', csv], io);
    const text = io.out.join('\n');
    expect(text).toMatch(/calibration cpu: [\d.]+ GB\/s/);
    expect(text).toMatch(/fakeOp forward · N=1000 size=small · fake/);
    expect(text).toMatch(/absent +cpu +skipped: absent is not installed here/);
    expect(text).toMatch(/broken +cpu +FAILED: broken peer/);
    expect(readFileSync(csv, 'utf8').trim().split('\n')).toHaveLength(3);
  });

  it('names the known ops when --op matches nothing', async () => {
    const io = capture();
    expect(await runBench(['--op', 'nope'], io)).toBe(2);
    expect(io.err).toEqual(['bench: no case matches --op nope; known: cudaOnly, fake, fakeOp']);
  });

  it('stops starting cases once the time budget is spent', async () => {
    const io = capture();
    await runBench(['--json', '--op', 'fake', '--budget', '0.000001', '--csv', join(mkdtempSync(join(tmpdir(), 'rk-')), 'c.csv')], io);
    const doc = JSON.parse(io.out[0]!) as BenchReport;
    expect(doc.results).toEqual([]);
    expect(doc.skipped.every((s) => s.reason === 'time budget of 0.000001 s spent')).toBe(true);
  });

  it.skipIf(HAS_CUDA)('says cleanly that cuda is unavailable', async () => {
    const io = capture();
    expect(await runBench(['--device', 'cuda', '--json'], io)).toBe(1);
    const doc = JSON.parse(io.out[0]!) as BenchReport;
    expect(doc.devices).toEqual([]);
    expect(doc.problems[0]).toMatch(/^cuda:0 is unavailable: /);
    expect(io.err.some((l) => /^bench: cuda:0 is unavailable: /.test(l))).toBe(true);
  });

  it('rejects bad usage with exit code 2', async () => {
    const io = capture();
    expect(await runBench(['--size', 'xl'], io)).toBe(2);
    expect(io.err[0]).toMatch(/^bench: --size expected one of small, medium, large, got "xl"\nusage: /);
  });

  it('lists the registry shapes with their labels', async () => {
    const io = capture();
    expect(await runBench(['--list-shapes', '--size', 'large', '--json'], io)).toBe(0);
    const doc = JSON.parse(io.out[0]!) as { size: string; shapes: Record<string, { label: string }[]> };
    expect(doc.size).toBe('large');
    expect(Object.keys(doc.shapes).sort()).toEqual(Object.keys(SHAPES).sort());
    expect(doc.shapes.tokenLogProbs![0]).toEqual({ ...SHAPES.tokenLogProbs.large[0], label: shapeLabel(SHAPES.tokenLogProbs.large[0]) });
    expect(doc.shapes.gae![0]!.label).toBe('B=2048 T=8192');
  });

  it('runs exactly the registry shapes at every size (what --list-shapes and the GPU peers see)', async () => {
    const { suites, problems } = await loadSuites();
    expect(problems).toEqual([]);
    const kinds: Record<string, ShapeKind> = {
      ppoPolicyLoss: 'ppo', ppoValueLoss: 'ppo', pairwiseLoss: 'preference', dpoLoss: 'preference', readBandwidth: 'calibration',
    };
    for (const size of ['small', 'medium', 'large'] as const) {
      const ran = new Map<ShapeKind, Set<string>>();
      for (const c of suites.flatMap((s) => s.cases(size, ['cpu', 'cuda']))) {
        const kind = kinds[c.op] ?? (c.op.replace(/Backward$/, '') as ShapeKind);
        // A variant appends words to its shape's label.
        const label = SHAPES[kind][size].map(shapeLabel).find((l) => c.shape === l || c.shape.startsWith(`${l} `));
        expect(label, `${size}: ${c.op} ${c.shape}`).toBeDefined();
        ran.set(kind, (ran.get(kind) ?? new Set()).add(label!));
      }
      const listed = Object.entries(SHAPES).map(([kind, s]) => [kind, new Set(s[size].map(shapeLabel))]);
      expect(ran, size).toEqual(new Map(listed as [ShapeKind, Set<string>][]));
    }
  });
});
