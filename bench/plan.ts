/** What a run covers: the devices asked for, and the cases of the suites on them. */
import type { Device, Info } from '../lib/index.js';
import { parseDevice } from '../lib/device.js';
import type { BenchArgs } from './args.js';
import { firstLine } from './suites.js';
import type { BenchCase, BenchSuite } from './types.js';

/** The devices to run on, and a line for each one asked for that cannot run here. */
export function resolveDevices(asked: string[], rt: Info): { devices: Device[]; problems: string[] } {
  const available: Device[] = ['cpu', ...(rt.cuda.available ? (['cuda:0'] as Device[]) : [])];
  if (asked.length === 0 || asked.includes('all')) return { devices: available, problems: [] };
  const devices: Device[] = [];
  const problems: string[] = [];
  for (const name of asked) {
    let d: Device;
    try {
      d = parseDevice(name, 'bench: --device');
    } catch (e) {
      problems.push(firstLine(e));
      continue;
    }
    if (d !== 'cpu' && !rt.cuda.available) problems.push(`${d} is unavailable: ${rt.cuda.reason ?? 'no CUDA device'}`);
    else if (d !== 'cpu' && Number(d.slice(5)) >= rt.cuda.devices.length)
      problems.push(`${d} does not exist: this host has ${rt.cuda.devices.length} CUDA device(s)`);
    else if (!devices.includes(d)) devices.push(d);
  }
  return { devices, problems };
}

/** A provider's device in canonical form ('cuda' -> 'cuda:0'); an invalid one matches nothing. */
export function canonical(device: string): string {
  try {
    return parseDevice(device);
  } catch {
    return `invalid device ${JSON.stringify(device)}`;
  }
}

export interface PlannedCase {
  suite: BenchSuite;
  case: BenchCase;
}

/**
 * Cases of every suite for these devices, filtered by --op (op or family
 * name) and then in the order of the --op list. With --device given, only
 * providers on those devices run (a GPU run times no CPU peer); otherwise
 * peers on any device stay beside our kernels.
 */
export function planCases(suites: BenchSuite[], args: BenchArgs, devices: Device[], problems: string[]): PlannedCase[] {
  const wanted = args.ops.map((o) => o.toLowerCase());
  const onlyAsked = args.devices.length > 0 && !args.devices.includes('all');
  const out: (PlannedCase & { rank: number })[] = [];
  for (const suite of suites) {
    let cases: BenchCase[];
    try {
      cases = suite.cases(args.size, devices);
    } catch (e) {
      problems.push(`${suite.family}: cases() threw: ${firstLine(e)}`);
      continue;
    }
    for (const c of cases) {
      const rank = wanted.length === 0 ? 0 : Math.max(wanted.indexOf(c.op.toLowerCase()), wanted.indexOf(suite.family.toLowerCase()));
      if (rank < 0) continue;
      const providers = c.providers.filter(
        (p) => (!p.ours && !onlyAsked) || (devices as string[]).includes(canonical(p.device)),
      );
      const hadOurs = c.providers.some((p) => p.ours);
      if (providers.length > 0 && (!hadOurs || providers.some((p) => p.ours))) out.push({ suite, case: { ...c, providers }, rank });
    }
  }
  // Stable: within one --op entry, the suites' own order.
  return out.sort((a, b) => a.rank - b.rank).map(({ suite, case: c }) => ({ suite, case: c }));
}
