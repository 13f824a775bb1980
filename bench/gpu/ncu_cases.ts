/**
 * Device time per call of each bench/gpu/device_time.ts case, from the CSV
 * that Nsight Compute writes of that script (scripts/gpu/run.sh):
 *
 *   node dist/bench/gpu/ncu_cases.js DEVICE_TIME.log NCU.csv [BASE.csv] [--variants LIST DIR] > table.md
 *   node dist/bench/gpu/ncu_cases.js --winners LIST DIR DEVICE_TIME.log NCU.csv
 *
 * device_time.ts launches a marker (readBandwidth: kernels chunkSums and
 * finalSum) before each case, so the kernels between two markers are one
 * case's: their durations, summed and divided by the case's calls, give its
 * device time per call, whatever kernels an op launches. The case names
 * come, in order, from the script's "device_time: NAME: ..." lines. BASE.csv,
 * the same script profiled with another build of the addon (run.sh's
 * RK_GPU_BASE), adds a column and the ratio: the A/B of a change, measured
 * in one call on one card. --variants adds a table for the launch-shape
 * variants of scripts/gpu/variants.txt: LIST holds its lines (name, cases,
 * knobs), DIR each variant's NAME.log and NAME.csv (device_time.ts run on
 * that variant's build, its cases only), matched with this build by name,
 * and the variant of each family worth adopting (winners); --winners
 * prints only those, as NAME:TEST_FILE lines for run.sh to run each
 * winner's GPU tests with its build in the same call.
 */
import { readFileSync } from 'node:fs';
import { CALLS_PER_CASE } from './device_time.js';

interface Launch {
  kernel: string;
  ns: number;
}

const MARKER = /\b(chunkSums|finalSum)\b/;
const UNIT_NS: Record<string, number> = { ns: 1, nsecond: 1, us: 1e3, usecond: 1e3, ms: 1e6, msecond: 1e6 };

/** One CSV line into fields (double-quoted, "" inside a field). */
function fields(line: string): string[] {
  const out: string[] = [];
  let cur = '', quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') out.push(cur), (cur = '');
    else cur += ch;
  }
  out.push(cur);
  return out;
}

/** The gpu__time_duration rows of an ncu --csv log, in launch order. */
export function parseNcu(text: string): Launch[] {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('"ID"'));
  if (at < 0) throw new Error('no ncu CSV header ("ID", ...) found');
  const head = fields(lines[at]!);
  const col = (name: string) => {
    const k = head.indexOf(name);
    if (k < 0) throw new Error(`ncu CSV has no column ${name}`);
    return k;
  };
  const [kName, kMetric, kUnit, kValue] = ['Kernel Name', 'Metric Name', 'Metric Unit', 'Metric Value'].map(col) as [number, number, number, number];
  const out: Launch[] = [];
  for (const line of lines.slice(at + 1)) {
    if (!line.startsWith('"')) continue;
    const f = fields(line);
    if (!f[kMetric]?.startsWith('gpu__time_duration')) continue;
    const scale = UNIT_NS[f[kUnit]!];
    if (scale === undefined) throw new Error(`unknown unit ${f[kUnit]}`);
    out.push({ kernel: f[kName]!, ns: Number(f[kValue]!.replace(/,/g, '')) * scale });
  }
  return out;
}

/** Device nanoseconds of each case: launches after the k-th marker group, before the next. */
export function perCase(launches: Launch[]): number[] {
  const cases: number[] = [];
  let inMarker = false;
  for (const l of launches) {
    if (MARKER.test(l.kernel)) {
      if (!inMarker) cases.push(0);
      inMarker = true;
    } else {
      inMarker = false;
      if (cases.length > 0) cases[cases.length - 1]! += l.ns;  // launches before the first marker: setup
    }
  }
  return cases;
}

function us(ns: number | undefined): string {
  return ns === undefined ? '-' : (ns / CALLS_PER_CASE / 1e3).toFixed(1);
}

/** The case names of a device_time log, in order. */
function caseNames(log: string): string[] {
  return [...readFileSync(log, 'utf8').matchAll(/^device_time: (.+?): [\d.]+ us per call/gm)].map((m) => m[1]!);
}

/** Case name to device ns per case, from a device_time log and its ncu CSV. */
export function timesByName(log: string, csv: string): Map<string, number> {
  const names = caseNames(log);
  const ns = perCase(parseNcu(readFileSync(csv, 'utf8')));
  return new Map(names.flatMap((name, k) => (ns[k] === undefined ? [] : [[name, ns[k]!] as [string, number]])));
}

interface Variant {
  name: string;
  knobs: string[];
  /** Case name to device ns, or why there is no profile. */
  times: Map<string, number> | Error;
}

/** The variants of LIST with their profiles in DIR (NAME.log, NAME.csv). */
function readVariants(list: string, dir: string): Variant[] {
  const out: Variant[] = [];
  for (const line of readFileSync(list, 'utf8').split('\n')) {
    const [name, , ...knobs] = line.trim().split(/\s+/);
    if (!name || name.startsWith('#')) continue;
    let times: Map<string, number> | Error;
    try {
      times = timesByName(`${dir}/${name}.log`, `${dir}/${name}.csv`);
    } catch (e) {
      times = e as Error;
    }
    out.push({ name, knobs, times });
  }
  return out;
}

/** The variants' table (markdown lines): each variant's cases beside this build's. */
export function variantTable(list: string, dir: string, ours: Map<string, number>): string[] {
  const out = [
    '## Launch-shape variants (scripts/gpu/variants.txt; knobs of kernels/tuning.cuh; same card, same call)', '',
    '| variant | knobs | case | this build µs | variant µs | this / variant |', '|---|---|---|---:|---:|---:|',
  ];
  for (const { name, knobs, times } of readVariants(list, dir)) {
    if (times instanceof Error) {
      out.push(`| ${name} | ${knobs.join(' ')} | (no profile: ${times.message.split('\n')[0]}) | | | |`);
      continue;
    }
    for (const [c, ns] of times) {
      const a = ours.get(c);
      out.push(`| ${name} | ${knobs.join(' ')} | ${c} | ${us(a)} | ${us(ns)} | ${a ? `${(a / ns).toFixed(2)}×` : '-'} |`);
    }
  }
  return out;
}

/**
 * The GPU test file (in dist/tests/gpu/) of each variant family: a variant's
 * name up to its first '-'.
 */
const PPO_TESTS = ['ppo.test.js', 'ppo_options.test.js'];
export const FAMILY_TESTS: Record<string, string[]> = {
  gae: ['advantages.test.js'], ppo: PPO_TESTS, pref: ['preference.test.js'], tlp: ['token_logprobs.test.js'],
};

/** Knobs shared by several families (kernels/arrival.cuh): their tests too. */
const KNOB_TESTS: Record<string, string[]> = { RK_ARRIVE_ACQ_REL: [...PPO_TESTS, 'preference.test.js'] };

/** The GPU test files to run with a winner's build before it is adopted. */
export function testsOf(w: Winner): string[] {
  const files = new Set(FAMILY_TESTS[w.family]!);
  for (const knob of w.knobs) for (const file of KNOB_TESTS[knob.split('=')[0]!] ?? []) files.add(file);
  return [...files];
}

export interface Winner {
  name: string;
  family: string;
  knobs: string[];
  /** Geometric mean over the variant's cases of this build's time / the variant's. */
  speedup: number;
}

/**
 * Per family, the variant to adopt: the best geometric-mean speedup over its
 * cases, when that is at least `gain` and no case is slower than `worst` times
 * this build's speed (ncu's medians move by 1-2 % between runs of one build).
 */
export function winners(list: string, dir: string, ours: Map<string, number>, gain = 1.03, worst = 0.98): Winner[] {
  const best = new Map<string, Winner>();
  for (const { name, knobs, times } of readVariants(list, dir)) {
    const family = name.split('-')[0]!;
    if (times instanceof Error || !(family in FAMILY_TESTS)) continue;
    const ratios = [...times].flatMap(([c, ns]) => (ours.has(c) && ns > 0 ? [ours.get(c)! / ns] : []));
    if (ratios.length === 0 || Math.min(...ratios) < worst) continue;
    const speedup = Math.exp(ratios.reduce((sum, r) => sum + Math.log(r), 0) / ratios.length);
    if (speedup >= gain && speedup > (best.get(family)?.speedup ?? 0)) best.set(family, { name, family, knobs, speedup });
  }
  return [...best.values()];
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === '--winners') {
    // run.sh's RK_GPU_VARIANT_TESTS=auto: "NAME:FILE,FILE..." of each winner,
    // one per line; run.sh runs a line's files side by side.
    const [, list, dir, log, csv] = args;
    if (!csv) {
      console.error('usage: ncu_cases.js --winners LIST DIR DEVICE_TIME.log NCU.csv');
      process.exit(2);
    }
    for (const w of winners(list!, dir!, timesByName(log!, csv))) console.log(`${w.name}:${testsOf(w).join(',')}`);
    return;
  }
  const v = args.indexOf('--variants');
  const variants = v >= 0 ? args.splice(v, 3).slice(1) : [];
  const [log, csv, base] = args;
  if (!log || !csv || (v >= 0 && variants.length !== 2)) {
    console.error('usage: ncu_cases.js DEVICE_TIME.log NCU.csv [BASE.csv] [--variants LIST DIR]');
    process.exit(2);
  }
  const names = caseNames(log);
  const ours = perCase(parseNcu(readFileSync(csv, 'utf8')));
  const other = base ? perCase(parseNcu(readFileSync(base, 'utf8'))) : undefined;
  console.log(`## Device time per call (Nsight Compute; ${CALLS_PER_CASE} calls per case${base ? '; base: another build, same card, same call' : ''})\n`);
  console.log(base ? '| case | this build µs | base µs | base / this |\n|---|---:|---:|---:|' : '| case | µs |\n|---|---:|');
  names.forEach((name, k) => {
    const a = ours[k], b = other?.[k];
    if (!base) return console.log(`| ${name} | ${us(a)} |`);
    const ratio = a && b ? `${(b / a).toFixed(2)}×` : '-';
    console.log(`| ${name} | ${us(a)} | ${us(b)} | ${ratio} |`);
  });
  if (ours.length !== names.length) console.log(`\n(${ours.length} marked cases in the profile, ${names.length} names: the last may have been cut off)`);
  if (variants.length === 2) {
    const mine = timesByName(log, csv);
    console.log(['', ...variantTable(variants[0]!, variants[1]!, mine)].join('\n'));
    const picked = winners(variants[0]!, variants[1]!, mine);
    console.log('\n## Variants to adopt (best geometric mean per family, at least 1.03×, no case below 0.98×)\n');
    console.log(picked.length ? picked.map((w) => `- ${w.family}: ${w.name} (${w.knobs.join(' ')}), ${w.speedup.toFixed(2)}×`).join('\n') : '(none)');
  }
}

if (process.argv[1]?.endsWith('ncu_cases.js')) main();
