/**
 * `rlhf-kernels bench`: the benchmark runner. It finds the suites
 * (bench/suites.ts), measures each device's memory bandwidth once
 * (lib/ops/calibration.ts), times every provider of every case side by side
 * (bench/measure.ts), and prints a table or one JSON document; in a source
 * checkout it also appends CSV rows to bench/results/bench.csv.
 */
import { appendFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { packageRoot } from '../lib/addon.js';
import { type Device, info } from '../lib/index.js';
import { type BandwidthOptions, measureBandwidth } from '../lib/ops/calibration.js';
import { type BenchArgs, USAGE, parseArgs } from './args.js';
import { gitCommit, isSourceCheckout, machineNames } from './machine.js';
import { type PlannedCase, canonical, planCases, resolveDevices } from './plan.js';
import { DEFAULT_TIME, measure } from './measure.js';
import { CSV_COLUMNS, addSpeedups, caseKey, csvLines, formatCalibration, formatTable } from './report.js';
import { shapesOf } from './shapes.js';
import { firstLine, loadSuites } from './suites.js';
import type { BenchCalibration, BenchReport, BenchResult, BenchSkip, BenchSuite } from './types.js';

/** Where the runner writes; tests pass their own. */
export interface BenchIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Live progress on stderr (a terminal). */
  progress: boolean;
  /** The folder to discover suites in (default: beside this file). */
  suitesDir?: string;
  /** Options of the calibration pass (default: measureBandwidth's). */
  calibration?: BandwidthOptions;
}

const defaultIo = (): BenchIo => {
  const write = process.stdout.write.bind(process.stdout);
  return {
    stdout: (t) => write(t + '\n'),
    stderr: (t) => process.stderr.write(t + '\n'),
    progress: process.stderr.isTTY === true,
  };
};

/**
 * Sends what suites and peers print (tfjs, onnxruntime) to stderr while the
 * cases run, so that `--json` leaves exactly one document on stdout.
 * Returns the function that restores stdout.
 */
function stdoutToStderr(): () => void {
  const original = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  return () => {
    process.stdout.write = original;
  };
}

async function calibrate(devices: Device[], options: BandwidthOptions | undefined, note: (t: string) => void): Promise<BenchCalibration[]> {
  const out: BenchCalibration[] = [];
  for (const device of devices) {
    note(`calibrating ${device} memory bandwidth`);
    try {
      const b = await measureBandwidth(device, options);
      out.push({ device, method: b.method, bytes: b.bytes, gbPerS: b.gbPerSecond });
    } catch (e) {
      out.push({ device, error: firstLine(e) });
    }
  }
  return out;
}

/** Times every provider of one case; returns its rows and the providers that did not run. */
async function runCase(
  planned: PlannedCase, args: BenchArgs, calibration: BenchCalibration[], note: (t: string) => void,
): Promise<{ rows: BenchResult[]; skips: BenchSkip[] }> {
  const { suite, case: c } = planned;
  const rows: BenchResult[] = [];
  const skips: BenchSkip[] = [];
  for (const p of c.providers) {
    const device = canonical(p.device) as Device;
    const base = { family: suite.family, op: c.op, direction: c.direction, shape: c.shape, provider: p.name, device, ours: p.ours === true };
    note(`${c.op} ${c.direction} ${c.shape} · ${p.name} (${device})`);
    let prepared;
    try {
      prepared = await p.prepare();
    } catch (e) {
      skips.push({ ...base, reason: firstLine(e), failed: true });
      continue;
    }
    if (typeof prepared === 'string') {
      skips.push({ ...base, reason: prepared.split('\n')[0]!, failed: false });
      continue;
    }
    try {
      const t = await measure(prepared, c.time ?? DEFAULT_TIME[args.size]);
      const seconds = t.medianMs / 1000;
      const gbPerS = c.bytes / seconds / 1e9;
      const bandwidth = calibration.find((k) => k.device === device)?.gbPerS;
      rows.push({
        ...base, elements: c.elements, bytes: c.bytes, ...t,
        gelemPerS: c.elements / seconds / 1e9, gbPerS,
        bandwidthFraction: bandwidth ? gbPerS / bandwidth : null, speedup: {},
      });
    } catch (e) {
      skips.push({ ...base, reason: firstLine(e), failed: true });
    } finally {
      try {
        await prepared.dispose?.();
      } catch (e) {
        skips.push({ ...base, reason: `dispose failed: ${firstLine(e)}`, failed: true });
      }
    }
  }
  addSpeedups(rows);
  return { rows, skips };
}

/** Every provider of a case that will not run, with the reason. */
function skipAll(planned: PlannedCase, reason: string): BenchSkip[] {
  const { suite, case: c } = planned;
  return c.providers.map((p) => ({
    family: suite.family, op: c.op, direction: c.direction, shape: c.shape,
    provider: p.name, device: canonical(p.device) as Device, ours: p.ours === true, reason, failed: false,
  }));
}

function writeCsv(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  const fresh = !existsSync(path) || statSync(path).size === 0;
  const lines = csvLines(report);
  if (fresh) lines.unshift(CSV_COLUMNS.join(','));
  if (lines.length) appendFileSync(path, lines.join('\n') + '\n');
}

/** Runs the benchmark; returns the exit code (0 ok, 1 something of ours failed, 2 bad usage). */
export async function runBench(argv: string[], io: BenchIo = defaultIo()): Promise<number> {
  const args = parseArgs(argv);
  if ('error' in args) {
    io.stderr(`${args.error}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    io.stdout(USAGE);
    return 0;
  }
  if (args.listShapes) {
    const shapes = shapesOf(args.size);
    if (args.json) io.stdout(JSON.stringify({ size: args.size, shapes }, null, 2));
    else for (const [kind, list] of Object.entries(shapes)) io.stdout(`${kind.padEnd(16)} ${list.map((s) => s.label).join(' | ')}`);
    return 0;
  }

  const restoreStdout = args.json ? stdoutToStderr() : () => {};
  try {
    return await execute(args, io);
  } finally {
    restoreStdout();
  }
}

/** The run itself, once the arguments are known. */
async function execute(args: BenchArgs, io: BenchIo): Promise<number> {
  const started = performance.now();
  const note = io.progress ? (t: string) => process.stderr.write(`\r\x1b[K${t.slice(0, (process.stderr.columns ?? 100) - 1)}`) : () => {};
  const rt = info();
  const { devices, problems } = resolveDevices(args.devices, rt);
  const loaded = await loadSuites(io.suitesDir);
  problems.push(...loaded.problems);
  const plan = planCases(loaded.suites, args, devices, problems);
  if (args.ops.length > 0 && plan.length === 0 && devices.length > 0) {
    const names = new Set(loaded.suites.flatMap((s) => [s.family, ...safeOps(s, args, devices)]));
    io.stderr(`bench: no case matches --op ${args.ops.join(',')}; known: ${[...names].sort().join(', ') || 'none'}`);
    return 2;
  }

  const root = packageRoot();
  const report: BenchReport = {
    tool: 'rlhf-kernels bench', version: rt.version, date: new Date().toISOString(), commit: gitCommit(root),
    size: args.size, devices, machine: machineNames(rt), threads: rt.cpu.threads, isa: rt.cpu.isa,
    calibration: [], results: [], skipped: [], problems,
  };
  if (!args.json)
    io.stdout(`rlhf-kernels ${report.version} bench · size ${args.size} · ${devices.join(', ') || 'no device'} · ` +
      `${report.threads} cpu threads, ${report.isa} · ${[report.machine.cpu, ...report.machine.gpus].join(' · ')}`);
  // A run stopped from outside (the GPU script's timeout) still reports what it measured.
  const interrupted = () => {
    report.problems.push('interrupted by SIGTERM: the cases still to run did not');
    finish(report, args, plan, io);
    process.exit(143);
  };
  process.once('SIGTERM', interrupted);
  try {
    report.calibration = await calibrate(devices, io.calibration, note);
    if (!args.json && devices.length) io.stdout(formatCalibration(report));
    for (let i = 0; i < plan.length; i++) {
      const planned = plan[i]!;
      if ((performance.now() - started) / 1000 > args.budgetS) {
        report.skipped.push(...skipAll(planned, `time budget of ${args.budgetS} s spent`));
        continue;
      }
      const { rows, skips } = await runCase(planned, args, report.calibration, (t) => note(`[${i + 1}/${plan.length}] ${t}`));
      report.results.push(...rows);
      report.skipped.push(...skips);
    }
  } finally {
    process.off('SIGTERM', interrupted);
  }
  if (io.progress) process.stderr.write('\r\x1b[K');
  finish(report, args, plan, io);
  const oursFailed = report.skipped.some((s) => s.ours && s.failed);
  return oursFailed || problems.length > 0 || devices.length === 0 ? 1 : 0;
}

/** Appends the CSV rows and prints the table or the JSON document, and the problems. */
function finish(report: BenchReport, args: BenchArgs, plan: PlannedCase[], io: BenchIo): void {
  const root = packageRoot();
  const csvPath = args.csv ?? (isSourceCheckout(root) ? join(root, 'bench', 'results', 'bench.csv') : undefined);
  if (csvPath && report.results.length > 0) {
    try {
      writeCsv(csvPath, report);
    } catch (e) {
      report.problems.push(`could not append to ${csvPath}: ${firstLine(e)}`);
    }
  }
  if (args.json) {
    io.stdout(JSON.stringify(report, null, 2));
    for (const s of report.skipped) io.stderr(`bench: ${s.provider} (${s.device}) ${s.op} ${s.shape}: ${s.failed ? 'FAILED' : 'skipped'}: ${s.reason}`);
  } else {
    const order = plan.map((p) => caseKey({ family: p.suite.family, ...p.case }));
    if (report.results.length || report.skipped.length) io.stdout(`${formatTable(report, order)}\n\n  * = rlhf-kernels (ours); speedup = peer median / our median`);
    const shown = relative(process.cwd(), csvPath ?? '');
    if (csvPath && report.results.length > 0) io.stdout(`results appended to ${shown.startsWith('..') ? csvPath : shown}`);
  }
  for (const p of report.problems) io.stderr(`bench: ${p}`);
}

function safeOps(suite: BenchSuite, args: BenchArgs, devices: Device[]): string[] {
  try {
    return suite.cases(args.size, devices).map((c) => c.op);
  } catch {
    return [];
  }
}
